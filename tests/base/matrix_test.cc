#include "polyguard/base/matrix.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

namespace polyguard {
namespace {

// AllFinite against the definition, value by value: every kind of value
// (zeros of both signs, subnormals, the largest finite, Inf, NaN) at every
// position, including where a plain sum would overflow.
bool Reference(const Matrix& m) {
  for (Eigen::Index i = 0; i < m.size(); ++i)
    if (!std::isfinite(m.data()[i])) return false;
  return true;
}

TEST(AllFinite, IsEveryValueFiniteForEveryKindAtEveryPosition) {
  const double inf = std::numeric_limits<double>::infinity();
  const double values[] = {0.0,     -0.0,     DBL_MIN / 4, -DBL_MIN, 1.0,
                           DBL_MAX, -DBL_MAX, inf,         -inf,     std::nan("")};
  for (Eigen::Index rows : {1, 3, 7, 16}) {
    for (double v : values) {
      for (Eigen::Index at = 0; at < rows * 3; ++at) {
        // Around the odd value: the largest finite values, whose plain sum overflows.
        Matrix m = Matrix::Constant(rows, 3, DBL_MAX);
        m.data()[at] = v;
        EXPECT_EQ(AllFinite(m), Reference(m)) << v << " at " << at << " of " << rows << " x 3";
        const Eigen::Ref<const Matrix> block = m.topRows(rows);
        EXPECT_EQ(AllFinite(block), Reference(m));
        // In float: finite values clamped to float's range, Inf and NaN kept.
        const Eigen::MatrixXf f = m.unaryExpr(
            [](double x) { return float(std::isfinite(x) ? std::clamp(x, -1e38, 1e38) : x); });
        EXPECT_EQ(AllFinite(f), Reference(m)) << v << " (float)";
      }
    }
  }
  EXPECT_TRUE(AllFinite(Matrix(0, 4)));
  // A strided block sees only its own values.
  Matrix m = Matrix::Ones(8, 4);
  m(7, 3) = std::nan("");
  EXPECT_TRUE(AllFinite(m.topLeftCorner(7, 4)));
  EXPECT_FALSE(AllFinite(m));
}

}  // namespace
}  // namespace polyguard
