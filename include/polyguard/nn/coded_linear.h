// CodedLinear: a fully connected layer whose weights exist only as per-peer
// coded shards (Generalized PolyDot). The bias is folded into the coded
// weights, W_aug = [W | b] acting on [x; 1], so it is protected and updated
// like every other weight (architecture.md, lesson 1); the momentum buffer is
// coded too. Every peer runs the same calls, with no master:
//   Forward   S = W_aug [x; 1] (coded product, decoded here), A = f(S)
//   Backward  dS = dA o f'(S);  dX = (W_aug^T dS) without the bias row
//   Update    the coded SGD step (optim/sgd.h) on this peer's shards
// Activations and the Hadamard product act on this peer's decoded copies; the
// fault injector is consulted at kActivation and kHadamard here, and at the
// product's points in CodedProduct.
//
// Thresholds: forward K = mnd + n - 1, backward mnd + mn - n; P must cover
// both (Create says so otherwise).
//
// Thread safety: one call at a time (like the PeerGroup it uses).
#ifndef POLYGUARD_NN_CODED_LINEAR_H_
#define POLYGUARD_NN_CODED_LINEAR_H_

#include <memory>
#include <vector>

#include "polyguard/codes/polydot_code.h"
#include "polyguard/fault/fault_injector.h"
#include "polyguard/nn/activation.h"
#include "polyguard/optim/sgd.h"
#include "polyguard/runtime/coded_product.h"
#include "polyguard/runtime/peer_group.h"

namespace polyguard {

struct CodedLinearOptions {
  int inputs = 1;   // >= 1
  int outputs = 1;  // >= 1
  int batch = 1;    // B >= 1: every call uses exactly this many samples
  Activation activation = Activation::kRelu;
  int m = 1, n = 1, d = 1;  // Generalized PolyDot splits of W_aug and the batch
  PointKind points = PointKind::kChebyshev;
  DecoderOptions decoder;
  CodedProductOptions product;
  int layer = 0;  // tags this layer's exchanges; distinct per layer
};

class CodedLinear {
 public:
  // initial_weights: outputs x (inputs + 1), [W | b]; every peer passes the
  // same matrix (e.g. from a shared seed) and keeps only its shard.
  static StatusOr<std::unique_ptr<CodedLinear>> Create(const CodedLinearOptions& options,
                                                       PeerGroup* group, FaultInjector* faults,
                                                       const MatrixRef& initial_weights);

  // x: inputs x B. Returns f(S), outputs x B; keeps [x; 1] and S.
  StatusOr<Matrix> Forward(const MatrixRef& x, int64_t step);
  // grad_output: dLoss/dA, outputs x B. Returns dLoss/dx (inputs x B), or an
  // empty matrix when need_input_gradient is false (the first layer).
  StatusOr<Matrix> Backward(const MatrixRef& grad_output, int64_t step,
                            bool need_input_gradient = true);
  // The coded SGD step with the dS and [x; 1] of the last Backward/Forward.
  Status Update(const SgdOptions& sgd, int64_t step);

  const PolyDotCode& code() const { return *code_; }
  const Matrix& shard() const { return shard_; }
  Matrix* mutable_shard() { return &shard_; }
  // Peers found wrong by this layer's last forward and backward decodes.
  const std::vector<int>& last_wrong_peers() const { return last_wrong_; }

 private:
  CodedLinear() = default;

  CodedLinearOptions options_;
  PeerGroup* group_ = nullptr;
  FaultInjector* faults_ = nullptr;
  std::unique_ptr<PolyDotCode> code_;
  std::unique_ptr<CodedProduct> product_;
  Matrix shard_, velocity_;
  Matrix x_aug_, s_, ds_;  // this step's decoded values, not kept across steps' updates
  std::vector<int> last_wrong_;
};

}  // namespace polyguard

#endif  // POLYGUARD_NN_CODED_LINEAR_H_
