#include "polyguard/codes/product_code.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "codes/code_test_util.h"
#include "polyguard/base/random.h"

namespace polyguard {
namespace {
namespace product_code_test {

using testing::ErrorKind;
using testing::RelativeError;
using testing::RunProduct;

ProductCodeOptions Options(Strategy s) { return testing::StrategyOptions(s, {12, 10, 4}); }

// Every strategy goes through the same interface, without special cases:
// with as many wrong results as it claims to correct, it decodes.
TEST(ProductCode, EveryStrategyHonoursItsClaims) {
  for (Strategy s : {Strategy::kUncoded, Strategy::kReplication, Strategy::kMds, Strategy::kPolyDot,
                     Strategy::kAbft}) {
    auto code = MakeProductCode(Options(s));
    ASSERT_TRUE(code.ok()) << code.status();
    SCOPED_TRACE((*code)->Describe());
    EXPECT_EQ((*code)->num_peers(), 12);
    EXPECT_GE((*code)->errors_corrected_probabilistic(), (*code)->errors_corrected_adversarial());
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      Random rng(seed);
      auto run = RunProduct(**code, &rng, 0, (*code)->errors_corrected_probabilistic(),
                            ErrorKind::kDense, 1.0);
      // Replication's claim is per block: put the wrong copies in one block.
      if (s == Strategy::kReplication) {
        run = RunProduct(**code, &rng, 0, 0, ErrorKind::kDense, 0);
        testing::InjectError(&run.results[0].value, ErrorKind::kDense, 1.0, &rng);
      }
      auto decoded = (*code)->Decode(run.results);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-9);
    }
  }
}

// RoundoffScale against its definition, from the terms S = |A| |B| written
// out: their mean over sqrt(inner).
double ReferenceScale(const Matrix& a, const Matrix& b) {
  const Matrix s = a.cwiseAbs() * b.cwiseAbs();
  return s.mean() / std::sqrt(double(a.cols()));
}

struct ScaleCase {
  const char* name;
  double offset;      // added to every entry of A
  double hot_row;     // added to A's row 0
  int used_columns;   // B's columns kept (the rest zero: a padded batch)
  double hot_column;  // B's column 0 times this
};

class RoundoffScaleTest : public ::testing::TestWithParam<ScaleCase> {};

TEST_P(RoundoffScaleTest, IsTheMeanTermScale) {
  const ScaleCase& c = GetParam();
  Random rng(3);
  // 41 and 23: AbsSumsOf's four-column blocks and its tail.
  Matrix a = rng.NormalMatrix(23, 41), b = rng.NormalMatrix(41, 16);
  a.array() += c.offset;
  a.row(0).array() += c.hot_row;
  b.rightCols(16 - c.used_columns).setZero();
  b.col(0) *= c.hot_column;
  const double want = ReferenceScale(a, b);
  EXPECT_NEAR(RoundoffScale(a, b), want, 1e-12 * want);
  // The transpose product of a^T and b, and the sparse overloads.
  const Matrix at = a.transpose();
  EXPECT_NEAR(RoundoffScale(at, b, /*transpose=*/true), want, 1e-12 * want);
  // From the shard's kept sums, both ways.
  EXPECT_NEAR(RoundoffScale(AbsSumsOf(a), b), want, 1e-12 * want);
  EXPECT_NEAR(RoundoffScale(AbsSumsOf(at), b, /*transpose=*/true), want, 1e-12 * want);
  const SparseMatrix as = a.sparseView(), bs = b.sparseView();
  EXPECT_NEAR(RoundoffScale(as, b), want, 1e-12 * want);
  EXPECT_NEAR(RoundoffScale(as, bs), want, 1e-12 * want);
  // Scale-free, also where the sums would overflow.
  EXPECT_NEAR(RoundoffScale(Matrix(a * 1e152), Matrix(b * 1e152)) / 1e304, want, 1e-12 * want);
  // Sums of either operand beyond DBL_MAX while the terms are near 1: the
  // declaration was NaN (adversary s11), every overload.
  const double top = 0.5 * std::numeric_limits<double>::max();
  for (const double big : {top / a.cwiseAbs().maxCoeff(), b.cwiseAbs().maxCoeff() / top}) {
    const Matrix ab = a * big, bb = b / big, abt = ab.transpose();
    const SparseMatrix abs = ab.sparseView(), bbs = bb.sparseView();
    EXPECT_NEAR(RoundoffScale(ab, bb), want, 1e-12 * want) << big;
    EXPECT_NEAR(RoundoffScale(AbsSumsOf(abt), bb, /*transpose=*/true), want, 1e-12 * want) << big;
    EXPECT_NEAR(RoundoffScale(abs, bb), want, 1e-12 * want) << big;
    EXPECT_NEAR(RoundoffScale(abs, bbs), want, 1e-12 * want) << big;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Data, RoundoffScaleTest,
    ::testing::Values(ScaleCase{"plain", 0, 0, 16, 1}, ScaleCase{"offset", 100, 0, 16, 1},
                      ScaleCase{"hot_row", 0, 100, 16, 1}, ScaleCase{"padded_batch", 10, 0, 2, 1},
                      ScaleCase{"hot_column", 10, 0, 16, 100}),
    [](const ::testing::TestParamInfo<ScaleCase>& info) { return std::string(info.param.name); });

TEST(AbsSumsOf, MatchesTheSumsWrittenOut) {
  Random rng(5);
  for (Eigen::Index cols : {0, 1, 3, 4, 7, 9}) {
    const Matrix a = rng.NormalMatrix(13, cols);
    const ShardAbsSums sums = AbsSumsOf(a);
    ASSERT_EQ(sums.columns.size(), cols);
    ASSERT_EQ(sums.rows.size(), 13);
    if (cols > 0) {
      EXPECT_LT((sums.columns - a.cwiseAbs().colwise().sum().transpose()).norm(), 1e-12) << cols;
    }
    EXPECT_LT((sums.rows - a.cwiseAbs().rowwise().sum()).norm(), 1e-12) << cols;
  }
}

TEST(RoundoffScale, ZeroAndNonFiniteOperands) {
  Random rng(4);
  const Matrix a = rng.NormalMatrix(6, 5), b = rng.NormalMatrix(5, 3);
  EXPECT_EQ(RoundoffScale(Matrix(Matrix::Zero(6, 5)), b), 0.0);
  EXPECT_EQ(RoundoffScale(a, Matrix(Matrix::Zero(5, 3))), 0.0);
  Matrix bad = a;
  bad(2, 3) = std::numeric_limits<double>::quiet_NaN();
  const double with_nan = RoundoffScale(bad, b);
  EXPECT_TRUE(std::isnan(with_nan)) << with_nan;
  EXPECT_EQ(RoundoffScale(a, rng.NormalMatrix(4, 3)), 0.0);  // shapes that do not multiply
}

TEST(ProductCode, FactoryNamesTheBadField) {
  auto o = Options(Strategy::kPolyDot);
  o.peers = 3;
  auto st = MakeProductCode(o).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("too few peers"), std::string::npos) << st;
  o = Options(Strategy::kReplication);
  o.replicas = 5;
  st = MakeProductCode(o).status();
  EXPECT_NE(st.message().find("multiple of replicas"), std::string::npos) << st;
  EXPECT_EQ(ParseStrategy("genpolydot").value(), Strategy::kPolyDot);
  EXPECT_EQ(ParseStrategy("fountain").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace product_code_test
}  // namespace
}  // namespace polyguard
