// Sequential: a stack of coded layers — convolutions (CodedConv2d, with
// pooling) and dense layers (CodedLinear) — trained together, every peer
// holding only its coded shards of every layer. A dense layer after a
// convolution takes its output as is (flattening is the identity in the
// (C H W) x B layout).
//
// Initial weights are a pure function of (seed, layer) and the layer's shape
// (InitialWeights), so a coded model and an uncoded reference built from the
// same seed start from the same W_aug and can be compared step by step.
//
// A step through the model keeps going when a decode is uncorrectable: the
// peer must still take part in every later exchange of the step (the other
// peers wait for its results), so the failing layer's value is taken as zero
// and the first DataLoss is reported at the end. The caller then recomputes
// the step (train/trainer.h). Any other error (a peer gone, bad shapes) is
// returned at once.
//
// Thread safety: one call at a time (like the PeerGroup it uses).
#ifndef POLYGUARD_NN_SEQUENTIAL_H_
#define POLYGUARD_NN_SEQUENTIAL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "polyguard/nn/coded_conv2d.h"
#include "polyguard/nn/coded_linear.h"

namespace polyguard {

enum class LayerKind { kDense, kConv };

struct LayerSpec {
  int inputs = 1;   // values per sample in (a convolution: conv.input_size())
  int outputs = 1;  // values per sample out (a convolution: after pooling)
  Activation activation = Activation::kRelu;
  LayerKind kind = LayerKind::kDense;
  // Convolution layers only: the convolution and the max pooling after the
  // activation (pool 0: none; pool_stride 0: the window).
  ConvShape conv;
  int pool = 0, pool_stride = 0;
};

// A convolution layer with inputs and outputs filled in from its shapes.
LayerSpec ConvLayerSpec(const ConvShape& conv, int pool, int pool_stride, Activation activation);

struct SequentialOptions {
  // Consecutive layers: layers[i].outputs == layers[i + 1].inputs. The last
  // layer's outputs are the logits (use Activation::kIdentity there).
  std::vector<LayerSpec> layers;
  int batch = 1;  // B >= 1
  // Strategy and code parameters, the same for every layer (k_a, k_b: the
  // coded convolution's split, coded_conv2d.h).
  ProductCodeOptions code;
  bool fcdcc = true;  // genpolydot convolutions: FCDCC (else PolyDot on im2col)
  CodedProductOptions product;
  uint64_t seed = 1;  // initial weights
  // The error budget: wrong results per product the job must correct (under
  // the probabilistic model). Create refuses a strategy and P that correct
  // fewer, and says how many they do. Default 0.
  int errors_to_correct = 0;
};

// Seeded initial [W | b] (outputs x (inputs + 1)): W uniform in +-limit with
// limit = sqrt(6 / inputs) for ReLU (He) and sqrt(6 / (inputs + outputs))
// otherwise (Glorot); b = 0. For a convolution [F | b] (N x (C kh kw + 1)),
// with fan-in C kh kw (and fan-out N), and b = 0.01 (see the .cc).
Matrix InitialWeights(const LayerSpec& layer, uint64_t seed, int index);

// The wrong results per product that `code` corrects under the probabilistic
// model when its decodes wait for what CodedProduct waits for with this
// wait_for (ResultsAwaited, forward and backward): every result not awaited
// is an erasure and costs one of the code's P-result budget.
int ErrorBudget(const ProductCode& code, int wait_for);

// Everything Sequential::Create on `peers` peers refuses, checked without a
// group so that a launcher can refuse a job before it starts any peer: the
// layer chain (ValidateSequentialOptions), a strategy that cannot train,
// every layer's code on `peers` peers (MakeCodedLinearCode,
// MakeCodedConv2dCode: K, layouts, replicas), the backward threshold and
// wait_for against each code (ValidateTrainingCode), and errors_to_correct
// against every layer's ErrorBudget. The message names the layer or field.
// Cost: builds every layer's code (small matrices, no weights).
Status ValidateSequentialForPeers(const SequentialOptions& options, int peers);

// Bytes one peer of this model holds, about: every layer's full initial
// weights (built on every peer), its shard with velocity and an update
// buffer, `weight_copies` more copies of the shard and velocity (a
// trainer's snapshots: TrainerWeightCopies), the results a decode holds (P
// results, three copies) and a batch's activations, all counted as doubles.
// An over-estimate of at most a few times.
StatusOr<double> EstimatePeerBytes(const SequentialOptions& options, int peers,
                                   int weight_copies = 2);

// ResourceExhausted when `peers_here` peers of the model (all of them for a
// local job, one on each machine otherwise), each with `data_bytes` of data
// besides (JobDataBytes), do not fit in `available` bytes; the message names
// the largest layer, the data and the bytes per peer.
Status CheckSequentialMemory(const SequentialOptions& options, int peers, int peers_here,
                             int64_t available, int weight_copies = 2, int64_t data_bytes = 0);

// Checks the layer chain and batch; the message names the layer.
Status ValidateSequentialOptions(const SequentialOptions& options);

class Sequential {
 public:
  // Builds every layer from InitialWeights(options.seed); a job the code
  // cannot run (too few peers, a strategy that cannot train) is refused here.
  static StatusOr<std::unique_ptr<Sequential>> Create(const SequentialOptions& options,
                                                      PeerGroup* group, FaultInjector* faults);

  // x: inputs x B. Sets *logits (outputs x B) and returns Ok, or the first
  // DataLoss after finishing every layer's exchange (see above).
  Status Forward(const MatrixRef& x, int64_t round, Matrix* logits);
  // grad: dLoss/dlogits. Runs every layer's backward (the first layer needs
  // no input gradient), with the same DataLoss rule.
  Status Backward(const MatrixRef& grad, int64_t round);
  // The coded SGD step on every layer.
  Status Update(const SgdOptions& sgd, int64_t round);

  // Wrong results per product that every forward and backward decode of
  // every layer corrects (probabilistic model): what the job tolerates per
  // product. 0 for uncoded, 2-way replication, ABFT (whole results), and the
  // MDS layout with one parity row and column (they detect instead).
  int errors_corrected_per_product() const;

  int num_layers() const { return static_cast<int>(layers_.size()); }
  CodedLayer& layer(int i) { return *layers_[static_cast<size_t>(i)]; }
  const CodedLayer& layer(int i) const { return *layers_[static_cast<size_t>(i)]; }
  const SequentialOptions& options() const { return options_; }
  // Sorted union of the peers the last Forward and Backward found wrong.
  std::vector<int> last_wrong_peers() const;
  // Wrong results located by the last Forward and Backward (a peer wrong in
  // two decodes counts twice).
  int64_t last_wrong_results() const;
  // Decodes so far that checked nothing (CodedLayer::unverified_decodes).
  int64_t unverified_decodes() const;
  // Results the decodes of every layer went without (stragglers), so far.
  int64_t results_not_awaited() const;
  // Float32 products computed again in float64 (CodedProduct), so far.
  int64_t products_widened() const;

 private:
  Sequential() = default;
  SequentialOptions options_;
  std::vector<std::unique_ptr<CodedLayer>> layers_;
};

}  // namespace polyguard

#endif  // POLYGUARD_NN_SEQUENTIAL_H_
