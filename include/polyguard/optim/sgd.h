// SGD with momentum and weight decay, acting on coded shards.
//
// For a layer A (weights with the bias folded in) the step is
//   V <- momentum * V + G,   A <- A - lr * (V + weight_decay * A),
// with G = D X^T (the batch gradient). Every operation is linear, so each peer
// applies it to its own coded shards: G's shard is the local rank-B update of
// docs/codes.md §1 and the velocity V lives in the same coded form as A. Nothing
// is re-encoded and no peer holds a plain copy of anything across steps.
//
// Thread safety: stateless.
#ifndef POLYGUARD_OPTIM_SGD_H_
#define POLYGUARD_OPTIM_SGD_H_

#include "polyguard/base/compensated_matrix.h"
#include "polyguard/base/matrix.h"
#include "polyguard/base/status.h"
#include "polyguard/codes/product_code.h"

namespace polyguard {

struct SgdOptions {
  double learning_rate = 0.01;  // > 0
  double momentum = 0.0;        // in [0, 1)
  double weight_decay = 0.0;    // >= 0
};

Status ValidateSgdOptions(const SgdOptions& options);

// One coded SGD step at `peer`: d is rows x b (the gradient w.r.t. the layer's
// outputs), x is inner x b (its inputs, with the constant row of ones when the
// bias is folded in). `velocity` may be null when momentum is 0.
Status CodedSgdStep(const ProductCode& code, int peer, const SgdOptions& options,
                    const MatrixRef& d, const MatrixRef& x, Matrix* shard, Matrix* velocity);
// The same step on state kept in float32 with residuals (a float32 job's:
// base/compensated_matrix.h): the new velocity is computed in double and
// stored once, and the shard's update uses it before that rounding. The
// velocity needs the residual too: its plain float32 rounding, different at
// every peer, reaches the shard through lr V, and a float32 job's products
// computed again in float64 would see the shards part after a few hundred
// steps. Both are rounded stochastically from `seed` (nonzero; a peer's
// own, derived from the step and the layer: reproducible), so that repeated
// updates (full-batch training, an equilibrium) do not drift. Costs a
// per-thread double buffer the size of the shard.
Status CodedSgdStep(const ProductCode& code, int peer, const SgdOptions& options,
                    const MatrixRef& d, const MatrixRef& x, CompensatedMatrix* shard,
                    CompensatedMatrix* velocity, uint64_t seed);

}  // namespace polyguard

#endif  // POLYGUARD_OPTIM_SGD_H_
