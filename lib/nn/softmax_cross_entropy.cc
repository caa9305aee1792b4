#include "polyguard/nn/softmax_cross_entropy.h"

#include <cmath>
#include <string>

namespace polyguard {

StatusOr<LossAndGradient> SoftmaxCrossEntropy(const MatrixRef& logits,
                                              std::span<const int> labels) {
  const Eigen::Index classes = logits.rows(), batch = logits.cols();
  if (batch < 1 || static_cast<Eigen::Index>(labels.size()) != batch) {
    return InvalidArgumentError("softmax cross-entropy: " + std::to_string(labels.size()) +
                                " labels for a batch of " + std::to_string(batch));
  }
  if (!AllFinite(logits)) return InvalidArgumentError("softmax cross-entropy: non-finite logits");
  LossAndGradient out;
  out.gradient.resize(classes, batch);
  for (Eigen::Index j = 0; j < batch; ++j) {
    const int label = labels[static_cast<size_t>(j)];
    if (label < 0 || label >= classes) {
      return InvalidArgumentError("softmax cross-entropy: label " + std::to_string(label) +
                                  " of sample " + std::to_string(j) + " not in [0, " +
                                  std::to_string(classes) + ")");
    }
    Eigen::Index arg = 0;
    const double mx = logits.col(j).maxCoeff(&arg);
    const Vector e = (logits.col(j).array() - mx).exp();
    const double sum = e.sum();
    out.loss += -(logits(label, j) - mx - std::log(sum));
    out.gradient.col(j) = e / sum;
    out.gradient(label, j) -= 1.0;
    out.correct += arg == label;
  }
  out.loss /= double(batch);
  out.gradient /= double(batch);
  return out;
}

}  // namespace polyguard
