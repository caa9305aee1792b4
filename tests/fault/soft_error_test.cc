#include "polyguard/fault/soft_error.h"

#include <gtest/gtest.h>

#include <cmath>

namespace polyguard {
namespace {
namespace soft_error_test {

TEST(SoftError, EachKindChangesWhatItSays) {
  Random rng(1);
  const Matrix base = Random(2).NormalMatrix(6, 5);
  for (SoftErrorKind kind : {SoftErrorKind::kDense, SoftErrorKind::kEntry, SoftErrorKind::kBitflip,
                             SoftErrorKind::kNaN, SoftErrorKind::kInf}) {
    Matrix m = base;
    ApplySoftError(&m, kind, 1.0, &rng, 0.0, 7);
    const Eigen::Index changed = ((m.array() != base.array())).count();
    if (kind == SoftErrorKind::kDense) {
      EXPECT_EQ(changed, m.size());
    } else {
      EXPECT_EQ(changed, 1) << SoftErrorKindName(kind);
      EXPECT_NE(m.data()[7], base.data()[7]);
    }
    EXPECT_EQ(ParseSoftErrorKind(SoftErrorKindName(kind)).value(), kind);
  }
  EXPECT_FALSE(ParseSoftErrorKind("cosmic").ok());
}

TEST(SoftError, MagnitudeIsRelativeToScale) {
  Random rng(3);
  Matrix m = Matrix::Zero(4, 4);
  ApplySoftError(&m, SoftErrorKind::kEntry, 1e-3, &rng, 100.0, 0);
  EXPECT_GE(std::abs(m(0, 0)), 0.05);
  EXPECT_LE(std::abs(m(0, 0)), 0.15);
}

}  // namespace soft_error_test
}  // namespace
}  // namespace polyguard
