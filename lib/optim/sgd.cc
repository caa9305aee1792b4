#include "polyguard/optim/sgd.h"

#include <cmath>
#include <string>

#include "polyguard/base/random.h"

namespace polyguard {

Status ValidateSgdOptions(const SgdOptions& o) {
  if (!(o.learning_rate > 0.0) || !std::isfinite(o.learning_rate)) {
    return InvalidArgumentError("sgd: learning_rate must be > 0, got " +
                                std::to_string(o.learning_rate));
  }
  if (!(o.momentum >= 0.0 && o.momentum < 1.0)) {
    return InvalidArgumentError("sgd: momentum must be in [0, 1), got " +
                                std::to_string(o.momentum));
  }
  if (!(o.weight_decay >= 0.0) || !std::isfinite(o.weight_decay)) {
    return InvalidArgumentError("sgd: weight_decay must be >= 0, got " +
                                std::to_string(o.weight_decay));
  }
  return Status::Ok();
}

Status CodedSgdStep(const ProductCode& code, int peer, const SgdOptions& o, const MatrixRef& d,
                    const MatrixRef& x, Matrix* shard, Matrix* velocity) {
  POLYGUARD_RETURN_IF_ERROR(ValidateSgdOptions(o));
  if (shard == nullptr) return InvalidArgumentError("sgd: no shard");
  if (o.momentum == 0.0 && velocity == nullptr) {
    // A <- (1 - lr wd) A - lr G
    if (o.weight_decay != 0.0) *shard *= (1.0 - o.learning_rate * o.weight_decay);
    return code.UpdateShard(shard, peer, d, x, o.learning_rate);
  }
  if (velocity == nullptr || velocity->rows() != shard->rows() ||
      velocity->cols() != shard->cols()) {
    return InvalidArgumentError("sgd: momentum needs a velocity shaped like the shard");
  }
  *velocity *= o.momentum;
  // V += G: the update with eta = -1 adds the coded gradient.
  POLYGUARD_RETURN_IF_ERROR(code.UpdateShard(velocity, peer, d, x, -1.0));
  *shard = (1.0 - o.learning_rate * o.weight_decay) * *shard - o.learning_rate * *velocity;
  return Status::Ok();
}

Status CodedSgdStep(const ProductCode& code, int peer, const SgdOptions& o, const MatrixRef& d,
                    const MatrixRef& x, CompensatedMatrix* shard, CompensatedMatrix* velocity,
                    uint64_t seed) {
  POLYGUARD_RETURN_IF_ERROR(ValidateSgdOptions(o));
  if (shard == nullptr) return InvalidArgumentError("sgd: no shard");
  if (velocity != nullptr &&
      (velocity->rows() != shard->rows() || velocity->cols() != shard->cols())) {
    return InvalidArgumentError("sgd: momentum needs a velocity shaped like the shard");
  }
  if (o.momentum != 0.0 && velocity == nullptr) {
    return InvalidArgumentError("sgd: momentum needs a velocity shaped like the shard");
  }
  // V <- momentum V + G in double (with eta = -1 the update adds G), in a
  // per-thread buffer (a fresh shard-sized one costs page faults per step).
  thread_local Matrix v;
  if (velocity != nullptr) {
    velocity->ToDouble(&v, o.momentum);
  } else {
    v.setZero(shard->rows(), shard->cols());
  }
  POLYGUARD_RETURN_IF_ERROR(code.UpdateShard(&v, peer, d, x, -1.0));
  // Two streams of the seed, never 0 (that is rounding to nearest).
  const uint64_t velocity_seed = DeriveSeed(seed, {1}) | 1, shard_seed = DeriveSeed(seed, {2}) | 1;
  if (velocity != nullptr) velocity->Assign(v, velocity_seed);
  shard->ScaleAndAdd(1.0 - o.learning_rate * o.weight_decay, v, -o.learning_rate, shard_seed);
  return Status::Ok();
}

}  // namespace polyguard
