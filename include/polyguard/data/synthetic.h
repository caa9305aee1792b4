// SyntheticClassification: an endless, seeded classification task for tests
// and benchmarks. Inputs are standard normal; the label of x is the argmax of
// a fixed random teacher network T tanh(U x), so the task is learnable and
// every batch is a pure function of (seed, step): a replayed step (after a
// rollback) sees the same batch.
//
// Thread safety: const methods are safe to call concurrently.
#ifndef POLYGUARD_DATA_SYNTHETIC_H_
#define POLYGUARD_DATA_SYNTHETIC_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "polyguard/base/matrix.h"
#include "polyguard/base/status.h"

namespace polyguard {

class SyntheticClassification {
 public:
  // features, classes >= 1 (classes >= 2 to be meaningful).
  static StatusOr<std::unique_ptr<SyntheticClassification>> Create(int features, int classes,
                                                                   uint64_t seed);
  // Batch of `step`: x is features x batch, labels has batch entries.
  void Batch(int64_t step, int batch, Matrix* x, std::vector<int>* labels) const;

  int features() const { return static_cast<int>(u_.cols()); }
  int classes() const { return static_cast<int>(t_.rows()); }

 private:
  SyntheticClassification(Matrix u, Matrix t, uint64_t seed)
      : u_(std::move(u)), t_(std::move(t)), seed_(seed) {}
  Matrix u_, t_;
  uint64_t seed_;
};

}  // namespace polyguard

#endif  // POLYGUARD_DATA_SYNTHETIC_H_
