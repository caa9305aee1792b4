#include "polyguard/nn/sequential.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "polyguard/base/memory.h"
#include "polyguard/base/random.h"
#include "polyguard/codes/product_mds_code.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard {

LayerSpec ConvLayerSpec(const ConvShape& conv, int pool, int pool_stride, Activation activation) {
  LayerSpec l;
  l.kind = LayerKind::kConv;
  l.conv = conv;
  l.pool = pool;
  l.pool_stride = pool_stride;
  l.activation = activation;
  l.inputs = static_cast<int>(conv.input_size());
  CodedConv2dOptions o;
  o.conv = conv;
  o.pool = pool;
  o.pool_stride = pool_stride;
  l.outputs = static_cast<int>(Conv2dLayerOutputs(o));
  return l;
}

Matrix InitialWeights(const LayerSpec& l, uint64_t seed, int index) {
  Random rng(DeriveSeed(seed, {0x1417, uint64_t(index)}));
  const bool conv = l.kind == LayerKind::kConv;
  const int64_t rows = conv ? l.conv.filters : l.outputs;
  const int64_t fan_in = conv ? l.conv.filter_size() : l.inputs;
  const double fan = l.activation == Activation::kRelu ? double(fan_in) : double(fan_in + rows);
  const double limit = std::sqrt(6.0 / fan);
  Matrix w = Matrix::Zero(rows, fan_in + 1);
  for (Eigen::Index j = 0; j < fan_in; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) w(i, j) = rng.Uniform(-limit, limit);
  // Convolutions start with a small positive bias: on images with blank
  // regions (MNIST's zero background) a zero bias makes many pre-activations
  // exactly 0, where ReLU's derivative would be decided by the decode's
  // roundoff (+-1e-17) instead of by the data.
  if (conv) w.col(fan_in).setConstant(0.01);
  return w;
}

namespace {
CodedConv2dOptions ConvOptions(const LayerSpec& l, const SequentialOptions& o, int index) {
  CodedConv2dOptions c;
  c.conv = l.conv;
  c.pool = l.pool;
  c.pool_stride = l.pool_stride;
  c.batch = o.batch;
  c.activation = l.activation;
  c.code = o.code;
  c.fcdcc = o.fcdcc;
  c.product = o.product;
  c.layer = index;
  return c;
}

CodedLinearOptions LinearOptions(const LayerSpec& l, const SequentialOptions& o, int index) {
  CodedLinearOptions lo;
  lo.inputs = l.inputs;
  lo.outputs = l.outputs;
  lo.batch = o.batch;
  lo.activation = l.activation;
  lo.code = o.code;
  lo.product = o.product;
  lo.layer = index;
  return lo;
}

std::string LayerName(const SequentialOptions& o, size_t i) {
  const LayerSpec& l = o.layers[i];
  return "layer " + std::to_string(i) + " (" +
         (l.kind == LayerKind::kConv
              ? "conv " + l.conv.Describe()
              : "dense " + std::to_string(l.inputs) + " -> " + std::to_string(l.outputs)) +
         ")";
}

// The code layer i builds on `peers` peers: the one place a layer's code is
// chosen for a check (the layers' Create use the same functions).
StatusOr<std::unique_ptr<ProductCode>> LayerCode(const SequentialOptions& o, size_t i, int peers) {
  const LayerSpec& l = o.layers[i];
  if (l.kind == LayerKind::kConv) return MakeCodedConv2dCode(ConvOptions(l, o, int(i)), peers);
  return MakeCodedLinearCode(LinearOptions(l, o, int(i)), peers);
}

}  // namespace

Status ValidateSequentialOptions(const SequentialOptions& o) {
  if (o.layers.empty()) return InvalidArgumentError("model: needs at least one layer");
  if (o.batch < 1) {
    return InvalidArgumentError("model: batch must be >= 1, got " + std::to_string(o.batch));
  }
  for (size_t i = 0; i < o.layers.size(); ++i) {
    const LayerSpec& l = o.layers[i];
    if (l.inputs < 1 || l.outputs < 1) {
      return InvalidArgumentError("model: layer " + std::to_string(i) +
                                  " needs inputs and outputs >= 1, got " +
                                  std::to_string(l.inputs) + " -> " + std::to_string(l.outputs));
    }
    if (l.kind == LayerKind::kConv) {
      const CodedConv2dOptions c = ConvOptions(l, o, int(i));
      if (Status v = ValidateCodedConv2dOptions(c); !v.ok())
        return InvalidArgumentError("model: layer " + std::to_string(i) + ": " + v.message());
      if (l.inputs != c.conv.input_size() || l.outputs != Conv2dLayerOutputs(c)) {
        return InvalidArgumentError(
            "model: layer " + std::to_string(i) + " (conv " + c.conv.Describe() + ") takes " +
            std::to_string(c.conv.input_size()) + " and gives " +
            std::to_string(Conv2dLayerOutputs(c)) + " values per sample, not " +
            std::to_string(l.inputs) + " -> " + std::to_string(l.outputs));
      }
    }
    if (i > 0 && o.layers[i - 1].outputs != l.inputs) {
      return InvalidArgumentError("model: layer " + std::to_string(i) + " takes " +
                                  std::to_string(l.inputs) + " inputs but layer " +
                                  std::to_string(i - 1) + " gives " +
                                  std::to_string(o.layers[i - 1].outputs));
    }
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<Sequential>> Sequential::Create(const SequentialOptions& o,
                                                         PeerGroup* group, FaultInjector* faults) {
  if (group == nullptr) return InvalidArgumentError("model: no peer group");
  // Every refusal before the first allocation of weights.
  POLYGUARD_RETURN_IF_ERROR(ValidateSequentialForPeers(o, group->size()));
  POLYGUARD_RETURN_IF_ERROR(CheckSequentialMemory(o, group->size(), 1, AvailableMemoryBytes()));
  auto model = std::unique_ptr<Sequential>(new Sequential());
  model->options_ = o;
  for (size_t i = 0; i < o.layers.size(); ++i) {
    const Matrix initial = InitialWeights(o.layers[i], o.seed, int(i));
    if (o.layers[i].kind == LayerKind::kConv) {
      POLYGUARD_ASSIGN_OR_RETURN(
          auto layer,
          CodedConv2d::Create(ConvOptions(o.layers[i], o, int(i)), group, faults, initial));
      model->layers_.push_back(std::move(layer));
      continue;
    }
    const CodedLinearOptions lo = LinearOptions(o.layers[i], o, int(i));
    POLYGUARD_ASSIGN_OR_RETURN(auto layer, CodedLinear::Create(lo, group, faults, initial));
    model->layers_.push_back(std::move(layer));
  }
  return model;
}

namespace {
// Keeps the first DataLoss; any other error ends the step at once.
bool Note(const Status& s, Status* first) {
  if (s.ok()) return true;
  if (s.code() != StatusCode::kDataLoss) return false;
  if (first->ok()) *first = s;
  return true;
}
}  // namespace

Status Sequential::Forward(const MatrixRef& x, int64_t round, Matrix* logits) {
  Status first;
  Matrix a = x;
  for (auto& layer : layers_) {
    StatusOr<Matrix> out = layer->Forward(a, round);
    if (out.ok()) {
      a = std::move(out).value();
    } else {
      if (!Note(out.status(), &first)) return out.status();
      a = Matrix::Zero(layer->outputs(), options_.batch);
    }
  }
  *logits = std::move(a);
  return first;
}

Status Sequential::Backward(const MatrixRef& grad, int64_t round) {
  Status first;
  Matrix g = grad;
  for (size_t i = layers_.size(); i-- > 0;) {
    StatusOr<Matrix> out = layers_[i]->Backward(g, round, i > 0);
    if (out.ok()) {
      g = std::move(out).value();
    } else {
      if (!Note(out.status(), &first)) return out.status();
      g = Matrix::Zero(layers_[i]->inputs(), options_.batch);
    }
  }
  return first;
}

Status Sequential::Update(const SgdOptions& sgd, int64_t round) {
  for (auto& layer : layers_) POLYGUARD_RETURN_IF_ERROR(layer->Update(sgd, round));
  return Status::Ok();
}

std::vector<int> Sequential::last_wrong_peers() const {
  std::vector<int> all;
  for (const auto& layer : layers_)
    all.insert(all.end(), layer->last_wrong_peers().begin(), layer->last_wrong_peers().end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

int64_t Sequential::last_wrong_results() const {
  int64_t n = 0;
  for (const auto& layer : layers_) n += layer->last_wrong_results();
  return n;
}

int64_t Sequential::unverified_decodes() const {
  int64_t n = 0;
  for (const auto& layer : layers_) n += layer->unverified_decodes();
  return n;
}

int Sequential::errors_corrected_per_product() const {
  int n = std::numeric_limits<int>::max();
  for (const auto& layer : layers_)
    n = std::min(n, ErrorBudget(layer->code(), options_.product.wait_for));
  return layers_.empty() ? 0 : n;
}

int ErrorBudget(const ProductCode& code, int wait_for) {
  const int p = code.num_peers();
  const int forward = code.errors_corrected_probabilistic() -
                      (p - ResultsAwaited(wait_for, code.recovery_threshold(), p));
  int budget = forward;
  if (code.supports_training()) {
    budget = std::min(budget, code.transpose_errors_corrected_probabilistic() -
                                  (p - ResultsAwaited(wait_for, code.transpose_threshold(), p)));
  }
  return std::max(budget, 0);
}

Status ValidateSequentialForPeers(const SequentialOptions& o, int peers) {
  POLYGUARD_RETURN_IF_ERROR(ValidateSequentialOptions(o));
  if (!CapabilitiesOf(o.code.strategy).trains) {
    return InvalidArgumentError("model: the " + std::string(o.code.strategy.name()) +
                                " strategy is forward only (no transpose product or coded "
                                "update); a training model needs " +
                                StrategyNames({.trains = true}));
  }
  for (size_t i = 0; i < o.layers.size(); ++i) {
    const std::string what = "model: " + LayerName(o, i);
    StatusOr<std::unique_ptr<ProductCode>> made = LayerCode(o, i, peers);
    if (!made.ok()) return made.status().WithContext(what);
    POLYGUARD_RETURN_IF_ERROR(ValidateTrainingCode(what, **made, o.product));
    const int budget = ErrorBudget(**made, o.product.wait_for);
    if (budget < o.errors_to_correct) {
      return InvalidArgumentError(
          "code.errors_to_correct: " + (*made)->Describe() + " corrects " + std::to_string(budget) +
          " wrong results per product when its decodes wait for " +
          (o.product.wait_for == 0 ? std::string("all results")
                                   : "wait_for = " + std::to_string(o.product.wait_for)) +
          " (forward and backward), the job asks for " + std::to_string(o.errors_to_correct) +
          "; add peers, raise wait_for or change the code");
    }
  }
  return Status::Ok();
}

namespace {

// The bytes of layer i on one peer (see EstimatePeerBytes).
StatusOr<double> LayerPeerBytes(const SequentialOptions& o, size_t i, int peers,
                                int weight_copies) {
  const LayerSpec& l = o.layers[i];
  POLYGUARD_ASSIGN_OR_RETURN(std::unique_ptr<ProductCode> code, LayerCode(o, i, peers));
  const double rows = l.kind == LayerKind::kConv ? l.conv.filters : l.outputs;
  const double cols =
      l.kind == LayerKind::kConv ? double(l.conv.filter_size()) + 1 : l.inputs + 1.0;
  const double stored = 3.0 + 2.0 * std::max(weight_copies, 0);  // shard, velocity, buffer, copies
  const double doubles = rows * cols + stored * double(code->stored_doubles_per_peer()) +
                         3.0 * double(peers) * double(code->result_doubles_per_peer()) +
                         4.0 * (double(l.inputs) + double(l.outputs)) * double(o.batch);
  return 8.0 * doubles;
}

}  // namespace

StatusOr<double> EstimatePeerBytes(const SequentialOptions& o, int peers, int weight_copies) {
  double total = 0;
  for (size_t i = 0; i < o.layers.size(); ++i) {
    POLYGUARD_ASSIGN_OR_RETURN(double bytes, LayerPeerBytes(o, i, peers, weight_copies));
    total += bytes;
  }
  return total;
}

Status CheckSequentialMemory(const SequentialOptions& o, int peers, int peers_here,
                             int64_t available, int weight_copies, int64_t data_bytes) {
  double total = double(std::max<int64_t>(data_bytes, 0)), largest = -1;
  size_t largest_layer = 0;
  for (size_t i = 0; i < o.layers.size(); ++i) {
    POLYGUARD_ASSIGN_OR_RETURN(double bytes, LayerPeerBytes(o, i, peers, weight_copies));
    total += bytes;
    if (bytes > largest) {
      largest = bytes;
      largest_layer = i;
    }
  }
  std::string what = "model: " + std::to_string(peers_here) +
                     (peers_here == 1 ? " peer" : " peers") + " on this machine, " +
                     FormatBytes(total) + " each (" + LayerName(o, largest_layer) + ": " +
                     FormatBytes(largest) +
                     (data_bytes > 0 ? "; data: " + FormatBytes(double(data_bytes)) : "") + ")";
  return CheckMemory(what, total * double(peers_here), available);
}

int64_t Sequential::products_widened() const {
  int64_t n = 0;
  for (const auto& layer : layers_) n += layer->products_widened();
  return n;
}

int64_t Sequential::results_not_awaited() const {
  int64_t n = 0;
  for (const auto& layer : layers_) n += layer->results_not_awaited();
  return n;
}

}  // namespace polyguard
