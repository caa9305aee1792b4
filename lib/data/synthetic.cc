#include "polyguard/data/synthetic.h"

#include <cmath>
#include <string>

#include "polyguard/base/random.h"

namespace polyguard {

StatusOr<std::unique_ptr<SyntheticClassification>> SyntheticClassification::Create(int features,
                                                                                   int classes,
                                                                                   uint64_t seed) {
  if (features < 1 || classes < 1) {
    return InvalidArgumentError("synthetic data: features and classes must be >= 1, got " +
                                std::to_string(features) + " and " + std::to_string(classes));
  }
  Random rng(DeriveSeed(seed, {0x7eac}));
  const int hidden = 2 * classes + 4;
  Matrix u = rng.NormalMatrix(hidden, features) / std::sqrt(double(features));
  Matrix t = rng.NormalMatrix(classes, hidden);
  return std::unique_ptr<SyntheticClassification>(
      new SyntheticClassification(std::move(u), std::move(t), seed));
}

void SyntheticClassification::Batch(int64_t step, int batch, Matrix* x,
                                    std::vector<int>* labels) const {
  Random rng(DeriveSeed(seed_, {0xba7c, uint64_t(step)}));
  *x = rng.NormalMatrix(u_.cols(), batch);
  const Matrix scores = t_ * (u_ * *x).array().tanh().matrix();
  labels->resize(static_cast<size_t>(batch));
  for (int j = 0; j < batch; ++j) {
    Eigen::Index best = 0;
    scores.col(j).maxCoeff(&best);
    (*labels)[static_cast<size_t>(j)] = static_cast<int>(best);
  }
}

}  // namespace polyguard
