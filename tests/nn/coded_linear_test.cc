#include "polyguard/nn/coded_linear.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "polyguard/base/random.h"
#include "polyguard/data/synthetic.h"
#include "polyguard/nn/sequential.h"
#include "polyguard/nn/softmax_cross_entropy.h"
#include "runtime/peers.h"
#include "train/reference_mlp.h"

namespace polyguard {
namespace {
namespace coded_linear_test {

using namespace std::chrono_literals;

// The model, data and optimiser shared with the uncoded reference
// (tests/train/reference_mlp.h): the same seeded initial weights and batches.
SequentialOptions Mlp() {
  SequentialOptions m;
  m.layers = {{6, 8, Activation::kTanh}, {8, 5, Activation::kRelu}, {5, 3, Activation::kIdentity}};
  m.batch = 4;
  m.seed = 2024;
  return m;
}
constexpr int kSteps = 100;
const SgdOptions kSgd{.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 1e-4};
const SyntheticClassification& Data() {
  static const auto data = SyntheticClassification::Create(6, 3, 77).value();
  return *data;
}

std::vector<double> UncodedLosses() {
  return testing::ReferenceLosses(Mlp(), kSgd, Data(), kSteps);
}

// One peer's coded training; returns its losses, or empty on failure.
std::vector<double> CodedLosses(PeerGroup* group, FaultInjector* faults, int* located) {
  const SequentialOptions mlp = Mlp();
  std::vector<std::unique_ptr<CodedLinear>> layers;
  for (size_t i = 0; i < mlp.layers.size(); ++i) {
    CodedLinearOptions o;
    o.inputs = mlp.layers[i].inputs;
    o.outputs = mlp.layers[i].outputs;
    o.batch = mlp.batch;
    o.activation = mlp.layers[i].activation;
    o.code.m = 2;
    o.code.n = 2;
    o.layer = int(i);
    auto layer =
        CodedLinear::Create(o, group, faults, InitialWeights(mlp.layers[i], mlp.seed, int(i)));
    if (!layer.ok()) {
      ADD_FAILURE() << layer.status();
      return {};
    }
    layers.push_back(std::move(layer).value());
  }
  std::vector<double> losses;
  for (int64_t step = 1; step <= kSteps; ++step) {
    Matrix a;
    std::vector<int> labels;
    Data().Batch(step, mlp.batch, &a, &labels);
    for (auto& l : layers) {
      auto out = l->Forward(a, step);
      if (!out.ok()) {
        ADD_FAILURE() << out.status();
        return {};
      }
      a = std::move(out).value();
    }
    auto loss = SoftmaxCrossEntropy(a, labels);
    if (!loss.ok()) {
      ADD_FAILURE() << loss.status();
      return {};
    }
    losses.push_back(loss->loss);
    Matrix grad = loss->gradient;
    for (size_t i = layers.size(); i-- > 0;) {
      auto g = layers[i]->Backward(grad, step, i > 0);
      if (!g.ok()) {
        ADD_FAILURE() << g.status();
        return {};
      }
      grad = std::move(g).value();
      *located += int(layers[i]->last_wrong_peers().size());
      if (!layers[i]->Update(kSgd, step).ok()) {
        ADD_FAILURE();
        return {};
      }
    }
  }
  return losses;
}

void TrainOnThreads(const std::string& name, const FaultModel* model,
                    std::vector<std::vector<double>>* losses, std::vector<int>* located,
                    std::vector<int64_t>* injected) {
  const int p = 8;
  losses->assign(p, {});
  located->assign(p, 0);
  injected->assign(p, 0);
  testing::RunPeerGroup(testing::PeerMode::kThreads, p, name, [&](int r, PeerGroup& group) {
    std::unique_ptr<FaultInjector> faults;
    if (model != nullptr) faults = std::make_unique<FaultInjector>(*model, 9, r);
    (*losses)[size_t(r)] = CodedLosses(&group, faults.get(), &(*located)[size_t(r)]);
    if (faults) (*injected)[size_t(r)] = faults->faults_injected();
    return true;
  });
}

TEST(CodedLinear, RejectsBadShapesAndTooFewPeers) {
  PeerGroupOptions o;
  o.rendezvous = "inproc:linear-bad";
  auto group = PeerGroup::Connect(o).value();
  CodedLinearOptions l;
  l.inputs = 3;
  l.outputs = 2;
  EXPECT_EQ(CodedLinear::Create(l, group.get(), nullptr, Matrix::Zero(2, 3)).status().code(),
            StatusCode::kInvalidArgument);  // missing the bias column
  l.code.m = 2;
  l.code.n = 2;
  EXPECT_EQ(CodedLinear::Create(l, group.get(), nullptr, Matrix::Zero(2, 4)).status().code(),
            StatusCode::kInvalidArgument);  // 1 peer < K
  l.code.m = l.code.n = 1;
  auto layer = CodedLinear::Create(l, group.get(), nullptr, Matrix::Zero(2, 4)).value();
  EXPECT_EQ(layer->Forward(Matrix::Zero(4, 1), 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(layer->Backward(Matrix::Zero(2, 1), 1).status().code(),
            StatusCode::kFailedPrecondition);
}

// A float32 layer holds a float64 build of its code: a forward product
// float32 cannot resolve (W's input columns in two halves 10^4 apart in
// scale, the inputs the other way: Generalized PolyDot's cross products
// dwarf W x) is computed again in float64 from the shards' full values;
// the same layer with ordinary weights is not widened. The layer keeps its
// shard to 2^-40 (CompensatedMatrix), and the cross products scale that by
// the halves' 10^4: about 6e-9 off (float32's own rounding of the shard,
// 2^-24, would leave it about 1e-3 off).
TEST(CodedLinear, Float32ProductsItCannotResolveAreComputedInFloat64) {
  const int p = 8, inputs = 64, outputs = 16, batch = 8;
  Random rng(11);
  Matrix unbalanced = rng.NormalMatrix(outputs, inputs + 1), x = rng.NormalMatrix(inputs, batch);
  const Matrix ordinary = unbalanced;
  for (int k = 0; k < inputs; ++k) {
    const double by = k < inputs / 2 ? 1e2 : 1e-2;
    unbalanced.col(k) *= by;
    x.row(k) /= by;
  }
  std::vector<int64_t> widened(p, -1), widened_ordinary(p, -1);
  std::vector<double> off(p, 1.0);
  const std::vector<bool> ran = testing::RunPeerGroup(
      testing::PeerMode::kThreads, p, "linear-widened", [&](int r, PeerGroup& group) {
        CodedLinearOptions o;
        o.inputs = inputs;
        o.outputs = outputs;
        o.batch = batch;
        o.activation = Activation::kIdentity;
        o.code.m = 2;
        o.code.n = 2;
        o.code.precision = Precision::kFloat32;
        auto layer = CodedLinear::Create(o, &group, nullptr, unbalanced);
        if (!layer.ok()) return false;
        auto out = (*layer)->Forward(x, 1);
        if (!out.ok()) return false;
        Matrix with_bias(inputs + 1, batch);
        with_bias.topRows(inputs) = x;
        with_bias.row(inputs).setOnes();
        const Matrix want = unbalanced * with_bias;
        off[size_t(r)] = (*out - want).norm() / want.norm();
        widened[size_t(r)] = (*layer)->products_widened();
        o.layer = 1;
        auto plain = CodedLinear::Create(o, &group, nullptr, ordinary);
        if (!plain.ok() || !(*plain)->Forward(x, 1).ok()) return false;
        widened_ordinary[size_t(r)] = (*plain)->products_widened();
        return true;
      });
  for (int r = 0; r < p; ++r) {
    EXPECT_TRUE(ran[size_t(r)]) << "rank " << r;
    EXPECT_EQ(widened[size_t(r)], 1) << "rank " << r;
    EXPECT_LT(off[size_t(r)], 1e-7) << "rank " << r;
    EXPECT_EQ(widened_ordinary[size_t(r)], 0) << "rank " << r;
  }
}

// Correctness 1 (Generalized PolyDot): with no faults, coded training on 8
// peers follows uncoded single-process training of the same seed.
TEST(CodedLinear, FaultFreeTrainingFollowsUncodedTraining) {
  const std::vector<double> want = UncodedLosses();
  std::vector<std::vector<double>> losses;
  std::vector<int> located;
  std::vector<int64_t> injected;
  TrainOnThreads("mlp-clean", nullptr, &losses, &located, &injected);
  for (int r = 0; r < 8; ++r) {
    ASSERT_EQ(losses[size_t(r)].size(), want.size()) << "rank " << r;
    for (size_t s = 0; s < want.size(); ++s)
      ASSERT_NEAR(losses[size_t(r)][s], want[s], 1e-8 * std::abs(want[s]))
          << "rank " << r << " step " << s;
    EXPECT_EQ(located[size_t(r)], 0);
  }
  EXPECT_LT(want.back(), want.front());  // it learns
}

// A peer whose products and sent results are often wrong: every wrong result
// is located and corrected at the next decode, so training is unchanged.
TEST(CodedLinear, WrongResultsOfOnePeerAreCorrectedEveryStep) {
  const std::vector<double> want = UncodedLosses();
  FaultModel model;
  model.error_rate = 0.3;
  model.points = {StepPoint::kProduct, StepPoint::kSend};
  model.faulty_peers = {3};
  std::vector<std::vector<double>> losses;
  std::vector<int> located;
  std::vector<int64_t> injected;
  TrainOnThreads("mlp-faulty", &model, &losses, &located, &injected);
  EXPECT_GT(injected[3], 20);
  for (int r = 0; r < 8; ++r) {
    ASSERT_EQ(losses[size_t(r)].size(), want.size()) << "rank " << r;
    for (size_t s = 0; s < want.size(); ++s)
      ASSERT_NEAR(losses[size_t(r)][s], want[s], 1e-8 * std::abs(want[s]))
          << "rank " << r << " step " << s;
    EXPECT_GT(located[size_t(r)], 20) << "rank " << r;
  }
}

}  // namespace coded_linear_test
}  // namespace
}  // namespace polyguard

namespace polyguard {
namespace {
namespace coded_linear_test {

// Sparse (pruned) weights under the low-weight strategy: forward only, each
// peer's shard mixes 3 of 4 row blocks and stays sparse; one peer's shard
// and products are wrong and every peer corrects them.
TEST(CodedLinear, PrunedWeightsForwardThroughTheLowWeightCode) {
  const int p = 8, inputs = 40, outputs = 24, batch = 5;
  Random rng(31);
  Matrix w = rng.NormalMatrix(outputs, inputs + 1);
  for (Eigen::Index i = 0; i < w.size(); ++i)
    if (rng.Uniform() < 0.9) w.data()[i] = 0.0;  // pruned to 10%
  const Matrix x = rng.NormalMatrix(inputs, batch);
  Matrix x_aug(inputs + 1, batch);
  x_aug << x, Matrix::Ones(1, batch);
  const Matrix want = Activate(Activation::kRelu, w * x_aug);
  FaultModel model;
  model.error_rate = 1.0;
  model.points = {StepPoint::kShard, StepPoint::kProduct};
  model.faulty_peers = {5};
  std::vector<int> ok(p, 0);
  std::vector<std::thread> threads;
  for (int r = 0; r < p; ++r) {
    threads.emplace_back([&, r] {
      PeerGroupOptions g;
      g.rank = r;
      g.size = p;
      g.rendezvous = "inproc:pruned";
      g.timeout = 30s;
      auto group = PeerGroup::Connect(g).value();
      FaultInjector faults(model, 4, r);
      CodedLinearOptions o;
      o.inputs = inputs;
      o.outputs = outputs;
      o.batch = batch;
      o.code.strategy = Strategy::kLowWeight;
      o.code.k_a = 4;
      auto layer = CodedLinear::Create(o, group.get(), &faults, w);
      if (!layer.ok()) {
        ADD_FAILURE() << layer.status();
        return;
      }
      EXPECT_TRUE((*layer)->forward_only());
      // Weight ceil(4 * 5 / 8) = 3 of 4 blocks of a 10%-dense matrix.
      EXPECT_LT((*layer)->sparse_shard().nonZeros(), outputs * (inputs + 1) * 3 / 4 / 4);
      for (int64_t step = 1; step <= 3; ++step) {
        auto a = (*layer)->Forward(x, step);
        if (!a.ok()) {
          ADD_FAILURE() << a.status();
          return;
        }
        EXPECT_LT((*a - want).norm(), 1e-9 * want.norm());
        EXPECT_EQ((*layer)->last_wrong_peers(), std::vector<int>{5});
      }
      auto back = (*layer)->Backward(Matrix::Zero(outputs, batch), 4);
      EXPECT_EQ(back.status().code(), StatusCode::kFailedPrecondition);
      EXPECT_NE(back.status().message().find("forward only"), std::string::npos);
      ok[size_t(r)] = 1;
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < p; ++r) EXPECT_EQ(ok[size_t(r)], 1) << "rank " << r;

  PeerGroupOptions g;
  g.rendezvous = "inproc:pruned-model";
  auto group = PeerGroup::Connect(g).value();
  SequentialOptions m = Mlp();
  m.code.strategy = Strategy::kLowWeight;
  auto refused = Sequential::Create(m, group.get(), nullptr);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("forward only"), std::string::npos);
}

}  // namespace coded_linear_test
}  // namespace
}  // namespace polyguard
