// CodedLinear: a fully connected layer whose weights exist only as per-peer
// coded shards, under any training strategy of codes/product_code.h
// (Generalized PolyDot by default; uncoded, replication, ABFT). The bias is folded into the coded
// weights, W_aug = [W | b] acting on [x; 1], so it is protected and updated
// like every other weight (docs/architecture.md, lesson 1); the momentum buffer is
// coded too. Every peer runs the same calls, with no master:
//   Forward   S = W_aug [x; 1] (coded product, decoded here), A = f(S)
//   Backward  dS = dA o f'(S);  dX = (W_aug^T dS) without the bias row
//   Update    the coded SGD step (optim/sgd.h) on this peer's shards
// Activations and the Hadamard product act on this peer's decoded copies; the
// fault injector is consulted at kActivation and kHadamard here, and at the
// product's points in CodedProduct.
//
// Thresholds: the code's forward and backward thresholds (Generalized
// PolyDot: K = mnd + n - 1 and mnd + mn - n); P must cover both, and the
// strategy must support training (Create says so otherwise).
//
// Sparse weights (e.g. after pruning): with the low-weight strategy
// (code.strategy = kLowWeight, code.k_a row blocks of W_aug) each peer keeps
// its shard as a sparse matrix that mixes only a few row blocks, and Forward
// multiplies sparse times dense. That strategy is forward only (inference):
// a code on row blocks of W says nothing about W^T dS, so Backward and Update
// return FailedPrecondition, and Sequential (a training model) refuses it.
//
// An uncorrectable decode is handled as for every CodedLayer (coded_layer.h).
//
// Thread safety: one call at a time (like the PeerGroup it uses).
#ifndef POLYGUARD_NN_CODED_LINEAR_H_
#define POLYGUARD_NN_CODED_LINEAR_H_

#include <memory>
#include <vector>

#include "polyguard/codes/product_code.h"
#include "polyguard/fault/fault_injector.h"
#include "polyguard/nn/activation.h"
#include "polyguard/nn/coded_layer.h"
#include "polyguard/optim/sgd.h"
#include "polyguard/runtime/coded_product.h"
#include "polyguard/runtime/peer_group.h"

namespace polyguard {

struct CodedLinearOptions {
  int inputs = 1;   // >= 1
  int outputs = 1;  // >= 1
  int batch = 1;    // B >= 1: every call uses exactly this many samples
  Activation activation = Activation::kRelu;
  // The strategy and its parameters (m, n, d, replicas, points, decoder);
  // shape and peers are filled in from the layer and the group.
  ProductCodeOptions code;
  // With product.wait_for != 0 (straggler-tolerant decodes) peers encode
  // copies decoded from different result sets, which differ by the decode's
  // roundoff: far below the decoder's tolerance, which stays as it is.
  CodedProductOptions product;
  int layer = 0;  // tags this layer's exchanges; distinct per layer
};

// The code a CodedLinear with `options` builds on `peers` peers (pure math,
// no group): what Create uses, so a launcher can check a job before any peer
// starts. The error names the field.
StatusOr<std::unique_ptr<ProductCode>> MakeCodedLinearCode(const CodedLinearOptions& options,
                                                           int peers);

class CodedLinear : public CodedLayer {
 public:
  // initial_weights: outputs x (inputs + 1), [W | b]; every peer passes the
  // same matrix (e.g. from a shared seed) and keeps only its shard.
  static StatusOr<std::unique_ptr<CodedLinear>> Create(const CodedLinearOptions& options,
                                                       PeerGroup* group, FaultInjector* faults,
                                                       const MatrixRef& initial_weights);

  // x: inputs x B. Returns f(S), outputs x B; keeps [x; 1] and S.
  StatusOr<Matrix> Forward(const MatrixRef& x, int64_t step) override;
  // grad_output: dLoss/dA, outputs x B. Returns dLoss/dx (inputs x B), or an
  // empty matrix when need_input_gradient is false (the first layer).
  StatusOr<Matrix> Backward(const MatrixRef& grad_output, int64_t step,
                            bool need_input_gradient = true) override;
  // The coded SGD step with the dS and [x; 1] of the last Backward/Forward.
  Status Update(const SgdOptions& sgd, int64_t step) override;

  int inputs() const override { return options_.inputs; }
  int outputs() const override { return options_.outputs; }
  const CodedLinearOptions& options() const { return options_; }
  // Forward-only layers with sparse shards (the low-weight strategy); their
  // shard() and velocity() are empty.
  bool forward_only() const { return sparse_; }
  const SparseMatrix& sparse_shard() const { return sparse_shard_; }

 private:
  CodedLinear() = default;

  CodedLinearOptions options_;
  bool sparse_ = false;
  SparseMatrix sparse_shard_;
};

}  // namespace polyguard

#endif  // POLYGUARD_NN_CODED_LINEAR_H_
