#include "polyguard/codes/evaluation_points.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace polyguard {
namespace {
namespace evaluation_points_test {

TEST(EvaluationPoints, DistinctAndInRange) {
  for (PointKind kind : {PointKind::kChebyshev, PointKind::kEquispaced}) {
    for (int p = 1; p <= 64; ++p) {
      auto pts = MakeEvaluationPoints(kind, p);
      ASSERT_EQ(int(pts.size()), p);
      std::sort(pts.begin(), pts.end());
      for (size_t i = 0; i < pts.size(); ++i) {
        EXPECT_LE(std::abs(pts[i]), 1.0);
        if (i) {
          EXPECT_LT(pts[i - 1], pts[i]);
        }
      }
    }
  }
}

TEST(EvaluationPoints, ChebyshevBasisSpansTheMonomials) {
  const auto pts = MakeEvaluationPoints(PointKind::kChebyshev, 9);
  const Matrix mono = MonomialBasis(pts, 6), cheb = ChebyshevBasis(pts, 6);
  // Projecting the monomial columns onto the Chebyshev column space loses nothing.
  const Matrix q = cheb.householderQr().householderQ() * Matrix::Identity(9, 6);
  EXPECT_LT((mono - q * (q.transpose() * mono)).norm(), 1e-12);
  EXPECT_NEAR(cheb(3, 2), 2 * pts[3] * pts[3] - 1, 1e-15);
}

TEST(EvaluationPoints, ChebyshevIsBetterConditionedThanEquispaced) {
  const double cheb = WorstCaseConditionNumber(MakeEvaluationPoints(PointKind::kChebyshev, 12), 8);
  const double equi = WorstCaseConditionNumber(MakeEvaluationPoints(PointKind::kEquispaced, 12), 8);
  EXPECT_LT(cheb, equi);
  EXPECT_LT(cheb, 1e5);  // docs/codes.md §4: 1.7e4
}

TEST(EvaluationPoints, ParsesNames) {
  EXPECT_EQ(ParsePointKind("chebyshev").value(), PointKind::kChebyshev);
  EXPECT_EQ(ParsePointKind("equispaced").value(), PointKind::kEquispaced);
  EXPECT_EQ(ParsePointKind("roots").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace evaluation_points_test
}  // namespace
}  // namespace polyguard
