#include "polyguard/nn/softmax_cross_entropy.h"

#include <gtest/gtest.h>

#include <cmath>

#include "polyguard/base/random.h"

namespace polyguard {
namespace {
namespace softmax_cross_entropy_test {

TEST(SoftmaxCrossEntropy, GradientMatchesFiniteDifferences) {
  const Matrix logits = 3.0 * Random(2).NormalMatrix(4, 3);
  const std::vector<int> labels = {1, 3, 0};
  auto out = SoftmaxCrossEntropy(logits, labels).value();
  const double h = 1e-6;
  for (Eigen::Index i = 0; i < logits.rows(); ++i) {
    for (Eigen::Index j = 0; j < logits.cols(); ++j) {
      Matrix up = logits, down = logits;
      up(i, j) += h;
      down(i, j) -= h;
      const double fd =
          (SoftmaxCrossEntropy(up, labels)->loss - SoftmaxCrossEntropy(down, labels)->loss) /
          (2 * h);
      EXPECT_NEAR(fd, out.gradient(i, j), 1e-7);
    }
  }
  // Stable for large logits.
  Matrix big = Matrix::Zero(2, 1);
  big(0, 0) = 1000.0;
  auto b = SoftmaxCrossEntropy(big, std::vector<int>{0}).value();
  EXPECT_NEAR(b.loss, 0.0, 1e-12);
  EXPECT_EQ(b.correct, 1);
}

TEST(SoftmaxCrossEntropy, RejectsBadLabels) {
  const Matrix logits = Matrix::Zero(3, 2);
  EXPECT_FALSE(SoftmaxCrossEntropy(logits, std::vector<int>{0, 3}).ok());
  EXPECT_FALSE(SoftmaxCrossEntropy(logits, std::vector<int>{0}).ok());
  Matrix nan = logits;
  nan(0, 0) = std::nan("");
  EXPECT_FALSE(SoftmaxCrossEntropy(nan, std::vector<int>{0, 1}).ok());
}

}  // namespace softmax_cross_entropy_test
}  // namespace
}  // namespace polyguard
