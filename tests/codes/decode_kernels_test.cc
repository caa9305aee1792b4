#include "lib/codes/decode_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "polyguard/base/random.h"
#include "polyguard/codes/evaluation_points.h"

namespace polyguard::internal {
namespace {
namespace decode_kernels_test {

// The definition, entry by entry: e_l is the (skip + 1)-th largest |value| of
// entry l (the smallest when there are fewer), cs_l = tol * (RMS of e + e_l),
// at least DBL_MIN.
Vector ReferenceTolerances(const Matrix& yt, double tol, int skip, double* global) {
  const Eigen::Index l = yt.rows(), c = yt.cols();
  Vector e = Vector::Zero(l);
  for (Eigen::Index i = 0; i < l && c > 0; ++i) {
    std::vector<double> v;
    for (Eigen::Index j = 0; j < c; ++j) v.push_back(std::abs(yt(i, j)));
    std::sort(v.begin(), v.end(), std::greater<double>());
    e(i) = v[size_t(std::min<Eigen::Index>(skip, c - 1))];
  }
  // The RMS without under- or overflow of the squares (stableNorm).
  *global = l > 0 ? e.stableNorm() / std::sqrt(double(l)) : 0.0;
  Vector cs(l);
  for (Eigen::Index i = 0; i < l; ++i) cs(i) = std::max((e(i) + *global) * tol, DBL_MIN);
  return cs;
}

struct Shape {
  int entries, columns, skip;
};

std::string ShapeName(const ::testing::TestParamInfo<Shape>& info) {
  std::string name = "L";  // appended piece by piece: GCC 12 misreads "L" + std::string
  name += std::to_string(info.param.entries);
  name += "C";
  name += std::to_string(info.param.columns);
  name += "Skip";
  name += std::to_string(info.param.skip);
  return name;
}

// Matrices a wrong result could make: random, ties (identical and
// proportional columns), huge beside tiny, all-zero entries (padding), one
// column far larger than the rest, negative values.
std::vector<Matrix> Cases(const Shape& s) {
  Random rng(uint64_t(s.entries * 131 + s.columns * 7 + s.skip));
  std::vector<Matrix> out;
  out.push_back(rng.NormalMatrix(s.entries, s.columns));
  Matrix ties(s.entries, s.columns);
  for (int j = 0; j < s.columns; ++j) ties.col(j) = out[0].col(0) * (j % 2 == 0 ? 1.0 : -1.0);
  out.push_back(ties);
  Matrix proportional = ties;
  for (int j = 0; j < s.columns; ++j) proportional.col(j) *= double(1 + j % 3);
  out.push_back(proportional);
  Matrix spread = rng.NormalMatrix(s.entries, s.columns);
  for (int i = 0; i < s.entries; ++i)
    for (int j = 0; j < s.columns; ++j)
      spread(i, j) *= std::ldexp(1.0, ((i * 7 + j * 13) % 400) - 200);
  out.push_back(spread);
  Matrix padded = rng.NormalMatrix(s.entries, s.columns);
  for (int i = 0; i < s.entries; i += 3) padded.row(i).setZero();
  out.push_back(padded);
  Matrix one_big = rng.NormalMatrix(s.entries, s.columns);
  if (s.columns > 0) one_big.col(s.columns / 2) *= 1e120;
  out.push_back(one_big);
  return out;
}

class RobustTolerancesTest : public ::testing::TestWithParam<Shape> {};

// The selection is exact: the same tolerances, bit for bit, as the definition.
TEST_P(RobustTolerancesTest, EqualsTheDefinitionExactly) {
  const Shape s = GetParam();
  int index = 0;
  for (const Matrix& yt : Cases(s)) {
    double global = -1, expected_global = -2;
    const Vector cs = RobustTolerances(yt, 1e-9, s.skip, &global);
    const Vector expected = ReferenceTolerances(yt, 1e-9, s.skip, &expected_global);
    ASSERT_EQ(cs.size(), expected.size());
    EXPECT_EQ(global, expected_global) << "case " << index;
    for (Eigen::Index i = 0; i < cs.size(); ++i)
      ASSERT_EQ(cs(i), expected(i)) << "case " << index << ", entry " << i;
    ++index;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RobustTolerancesTest,
                         ::testing::Values(Shape{1, 1, 0}, Shape{5, 3, 0}, Shape{64, 8, 0},
                                           Shape{64, 8, 1}, Shape{64, 8, 3}, Shape{100, 8, 7},
                                           Shape{100, 8, 20}, Shape{33, 20, 7}, Shape{33, 20, 8},
                                           Shape{17, 96, 39}, Shape{0, 8, 1}, Shape{9, 0, 0}),
                         ShapeName);

// The sampled exponent stays at the honest magnitude when fewer than half of
// the results are wrong by any amount, and near the full median otherwise.
// FusedCheck and FusedProduct against the product written out: results
// (length x R) times m (R x columns), for lengths with and without a tail
// (length mod 4) and every number of probes.
struct FusedShape {
  int64_t length;
  int results, columns;
};
class FusedCheckTest : public ::testing::TestWithParam<FusedShape> {};

// The largest |value| (0 for no value: maxCoeff needs one).
double MaxAbs(const Matrix& m) { return m.size() > 0 ? m.cwiseAbs().maxCoeff() : 0.0; }

TEST_P(FusedCheckTest, EqualsTheProductWrittenOut) {
  const FusedShape& c = GetParam();
  Random rng(uint64_t(31 + c.length + 7 * c.columns));
  const Matrix y = rng.NormalMatrix(c.length, c.results);
  const RowMajorMatrix m = rng.NormalMatrix(c.results, c.columns);
  std::vector<const double*> cols;
  for (int r = 0; r < c.results; ++r) cols.push_back(y.col(r).data());
  const Matrix want = y * Matrix(m);
  const double tol = 1e-12 * (1.0 + MaxAbs(want));
  Matrix product;
  double sumsq = -1.0;
  FusedProduct(cols, c.length, m, &product, &sumsq);
  EXPECT_LE(MaxAbs(product - want), tol);
  EXPECT_NEAR(sumsq, y.squaredNorm(), 1e-12 * (1.0 + y.squaredNorm()));
  for (int probes = 0; probes <= c.columns; ++probes) {
    SCOPED_TRACE("probes " + std::to_string(probes));
    Vector zsq;
    Matrix wanted;
    ASSERT_TRUE(FusedCheck(cols, c.length, m, probes, &zsq, &wanted, &sumsq));
    ASSERT_EQ(zsq.size(), c.length);
    ASSERT_EQ(wanted.rows(), c.length);
    ASSERT_EQ(wanted.cols(), c.columns - probes);
    const Vector want_zsq = want.leftCols(probes).rowwise().squaredNorm();
    EXPECT_LE(MaxAbs(zsq - want_zsq), 1e-12 * (1.0 + MaxAbs(want_zsq)));
    EXPECT_LE(MaxAbs(wanted - want.rightCols(c.columns - probes)), tol);
    EXPECT_NEAR(sumsq, y.squaredNorm(), 1e-12 * (1.0 + y.squaredNorm()));
    for (int64_t l = 0; l < c.length; l += std::max<int64_t>(1, c.length / 5)) {
      EXPECT_LE(MaxAbs(CombineEntry(cols, l, m, probes).transpose() - want.row(l).head(probes)),
                tol);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, FusedCheckTest,
                         ::testing::Values(FusedShape{0, 3, 2}, FusedShape{1, 3, 2},
                                           FusedShape{3, 8, 5}, FusedShape{4, 8, 5},
                                           FusedShape{7, 16, 11}, FusedShape{1001, 12, 12},
                                           FusedShape{1024, 5, 1}));

// A NaN or Inf in any result, in the vector part or the tail, makes the check
// report a non-finite output; so does an output that overflows.
TEST(FusedCheck, ReportsNonFiniteOutputs) {
  Random rng(32);
  // Coefficients of at least 1: DBL_MAX times one of them overflows.
  const RowMajorMatrix m = rng.NormalMatrix(6, 5).array().abs() + 1.0;
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {std::nan(""), inf, -inf, DBL_MAX}) {
    for (int64_t at : {0, 5, 9}) {  // 10 entries: 8 in vectors of 4, 2 in the tail
      Matrix y = rng.NormalMatrix(10, 6);
      y(at, 2) = bad;
      std::vector<const double*> cols;
      for (int r = 0; r < 6; ++r) cols.push_back(y.col(r).data());
      Vector zsq;
      Matrix wanted;
      double sumsq = 0.0;
      EXPECT_FALSE(FusedCheck(cols, 10, m, 3, &zsq, &wanted, &sumsq)) << bad << " at " << at;
    }
  }
}

TEST(TypicalExponent, IgnoresAMinorityOfHugeOrTinyColumns) {
  Random rng(5);
  Matrix m = rng.NormalMatrix(8192, 8) * std::ldexp(1.0, 40);
  m.col(1) *= 1e200;
  m.col(5) *= 1e-200;
  m.col(6).setZero();
  const int e = TypicalExponent(m);
  EXPECT_GE(e, 38);
  EXPECT_LE(e, 41);
}

TEST(TypicalExponent, ZeroWithoutAnyNonzeroFiniteValue) {
  Matrix m = Matrix::Zero(100, 4);
  m(3, 2) = std::nan("");
  m(7, 1) = INFINITY;
  EXPECT_EQ(TypicalExponent(m), 0);
}

// CorrectEntry's budget: every fit spends one, and a spent budget ends the
// search (false), so a decode with many inconsistent entries cannot take
// minutes (an adversarial run once saw a peer silent for 124 s).
class CorrectEntryBudget : public ::testing::Test {
 protected:
  // 12 results of a K = 4 Chebyshev code word; `wrong` of them off by 1.
  void SetUp() override {
    std::vector<double> pts;
    for (int i = 0; i < 12; ++i) pts.push_back(std::cos(M_PI * (i + 0.5) / 12));
    basis_ = ChebyshevBasis(pts, 4);
    Random rng(7);
    exact_ = basis_ * rng.NormalMatrix(4, 1).col(0);
  }
  Vector With(std::initializer_list<int> wrong) const {
    Vector y = exact_;
    for (int p : wrong) y(p) += 1.0;
    return y;
  }
  static EntrySearch Search(int64_t max_sets) {
    EntrySearch search;
    search.t_max = 4;
    search.tol = 1e-12;
    search.global = 1.0;
    search.max_sets = max_sets;
    return search;
  }
  Matrix basis_;
  Vector exact_;
};

TEST_F(CorrectEntryBudget, ASpentBudgetTriesNothing) {
  Vector y = With({3});
  const Vector before = y;
  int64_t budget = 0;
  std::vector<int> wrong;
  EXPECT_EQ(CorrectEntry(basis_, 1, y, Search(4096), &budget, &wrong), EntryFit::kNone);
  EXPECT_EQ(budget, 0);
  EXPECT_EQ(y, before);
}

TEST_F(CorrectEntryBudget, EachFitSpendsOne) {
  // One wrong value: the greedy pass's first fit finds it.
  Vector y = With({3});
  int64_t budget = 1;
  std::vector<int> wrong;
  ASSERT_EQ(CorrectEntry(basis_, 1, y, Search(4096), &budget, &wrong), EntryFit::kClean);
  EXPECT_EQ(budget, 0);
  EXPECT_EQ(wrong, std::vector<int>{3});
  EXPECT_LE((y - exact_).cwiseAbs().maxCoeff(), 1e-12);
}

TEST_F(CorrectEntryBudget, AnUncorrectableEntryStopsWithinItsBound) {
  // Five wrong values where at most four can be set aside: every set fails.
  // The search ends after at most the greedy fits, every set up to
  // max_sets, and 2 max_sets in all; with a smaller budget, there.
  for (const int64_t given : {int64_t{1} << 20, int64_t{100}}) {
    Vector y = With({0, 2, 5, 7, 11});
    int64_t budget = given;
    std::vector<int> wrong;
    EXPECT_EQ(CorrectEntry(basis_, 1, y, Search(512), &budget, &wrong), EntryFit::kNone);
    EXPECT_GE(budget, std::max<int64_t>(0, given - 2 * 512));
    EXPECT_LT(budget, given);
    if (given == 100) {
      EXPECT_EQ(budget, 0);
    }
  }
}

// The orthonormal parity check (R - K) x R of Chebyshev points for K.
Matrix ChebyshevParity(int r, int k) {
  std::vector<double> pts;
  for (int i = 0; i < r; ++i) pts.push_back(std::cos(M_PI * (i + 0.5) / r));
  const Eigen::HouseholderQR<Matrix> qr(ChebyshevBasis(pts, k));
  return (qr.householderQ() * Matrix::Identity(r, r)).rightCols(r - k).transpose();
}

// The sets of up to 31 of 66 peers number about 4e19, beyond an int64: the
// count must saturate (every peer of a 66-peer job once threw reserving
// that many), and Binomial itself saturates.
TEST(LocateBySets, TooManySetsToCountInAnInt64AreTooMany) {
  const Matrix parity = ChebyshevParity(66, 4);
  const Matrix rows = parity.col(3).transpose() + parity.col(40).transpose();
  const SetSearch out = LocateBySets(rows, parity, 1, 1, 1e-6, 1e-9);
  EXPECT_EQ(out.outcome, SetSearch::kTooMany);
  EXPECT_EQ(Binomial(100, 40), std::numeric_limits<int64_t>::max());
  EXPECT_NEAR(double(Binomial(66, 31)), 6406484391866534976.0, 1e6);
}

// Two peers' parity columns summed: the one set of two that spans it, over
// every single peer and every other pair.
TEST(LocateBySets, FindsTheOnePairThatSpansAnAlignedSyndrome) {
  const Matrix parity = ChebyshevParity(16, 12);
  const Matrix rows = 300.0 * (parity.col(14) + parity.col(15)).transpose();
  const SetSearch out = LocateBySets(rows, parity, 1, 1, 0.1, 1e-9);
  EXPECT_EQ(out.outcome, SetSearch::kFound);
  EXPECT_EQ(out.peers, (std::vector<int>{14, 15}));
}

// Dirty rows of a whole-peer error: each an error at peer `wrong` (1e3 to 1e5
// tolerances) plus honest noise that follows the row's own share of its
// tolerance (OwnShares), most small and some near 1, as the float32
// backward products' rows beside a wrong peer were (3e-6 to 0.06 of their
// tolerances).
struct SpanCase {
  const char* name;
  int r, k, wrong;
};

class LocateBySpanShares : public ::testing::TestWithParam<SpanCase> {
 protected:
  static constexpr int kRows = 64;
  static constexpr double kNoise = 2e-3;  // per unit of share, in tolerances
  void SetUp() override {
    const SpanCase& c = GetParam();
    parity_ = ChebyshevParity(c.r, c.k);
    Random rng(uint64_t(c.r) * 131 + uint64_t(c.k));
    rows_.resize(kRows, parity_.rows());
    for (int i = 0; i < kRows; ++i) {
      // Most rows small beside the results' scale, a quarter near it.
      share_.push_back(i % 4 == 0 ? std::pow(0.125, rng.Uniform())
                                  : rng.Uniform(kLeastOwnShare, 2 * kLeastOwnShare));
      const Vector z = rng.NormalMatrix(parity_.rows(), 1).col(0);
      rows_.row(i) = (std::pow(10.0, rng.Uniform(3.0, 5.0)) * parity_.col(c.wrong) +
                      kNoise * share_.back() * z / std::sqrt(double(z.size())))
                         .transpose();
    }
  }
  Matrix parity_, rows_;
  std::vector<double> share_;
};

// The peer is found and every honest row explained. The rule of the rows'
// median alone (no shares) names honest rows of large share here, which sent
// such decodes to the slow path.
TEST_P(LocateBySpanShares, HonestRowsOfEveryShareAreExplained) {
  std::vector<Eigen::Index> unexplained;
  EXPECT_EQ(LocateBySpan(rows_, parity_, 1, 0.5, &unexplained, &share_),
            (std::vector<int>{GetParam().wrong}));
  EXPECT_TRUE(unexplained.empty()) << unexplained.size() << " rows";
  LocateBySpan(rows_, parity_, 1, 0.5, &unexplained);
  EXPECT_FALSE(unexplained.empty()) << "the case no longer needs shares";
}

// A row off the peer's span by 100 times the noise of its share (errors
// mimicking the peer there) is still named, at every share; so is one off by
// far less than clean_share.
TEST_P(LocateBySpanShares, ARowOffTheSpanIsStillUnexplained) {
  const Matrix q = Eigen::HouseholderQR<Matrix>(parity_.col(GetParam().wrong)).householderQ();
  for (double share : {kLeastOwnShare, 0.1, 1.0}) {
    Matrix rows = rows_;
    std::vector<double> shares = share_;
    rows.row(5) =
        (1e4 * parity_.col(GetParam().wrong) + 100 * kNoise * share * q.col(1)).transpose();
    shares[5] = share;
    std::vector<Eigen::Index> unexplained;
    EXPECT_EQ(LocateBySpan(rows, parity_, 1, 0.5, &unexplained, &shares),
              (std::vector<int>{GetParam().wrong}));
    EXPECT_EQ(unexplained, (std::vector<Eigen::Index>{5})) << "share " << share;
  }
}

// Rows of products of zeros beside the wrong value (ReLU-masked rows: no
// magnitude of their own, exact in any precision) do not set the others'
// noise level: with four in five such rows every row of real entries was
// named (adversary s22: 0.6 s a float32 decode at P = 20, K = 14).
TEST_P(LocateBySpanShares, RowsWithoutMagnitudeDoNotSetTheNoise) {
  Matrix rows = rows_;
  std::vector<double> shares = share_;
  for (int i = 0; i < kRows; ++i) {
    if (i % 5 == 0) continue;
    rows.row(i) = 1e3 * parity_.col(GetParam().wrong).transpose();
    shares[static_cast<size_t>(i)] = kLeastOwnShare;
  }
  std::vector<Eigen::Index> unexplained;
  EXPECT_EQ(LocateBySpan(rows, parity_, 1, 0.5, &unexplained, &shares),
            (std::vector<int>{GetParam().wrong}));
  EXPECT_TRUE(unexplained.empty()) << unexplained.size() << " rows";
}

INSTANTIATE_TEST_SUITE_P(Shapes, LocateBySpanShares,
                         ::testing::Values(SpanCase{"P8K5Edge", 8, 5, 0},
                                           SpanCase{"P8K5Inner", 8, 5, 3},
                                           SpanCase{"P16K12", 16, 12, 9},
                                           SpanCase{"P20K14Edge", 20, 14, 19}),
                         [](const auto& info) { return std::string(info.param.name); });

// tol m / cs within [kLeastOwnShare, 1]; a tolerance of 0 or below (none)
// counts as the entry's own.
TEST(OwnShares, AreTheMagnitudesPartOfTheToleranceInRange) {
  const double tol = 1e-5, scale = 3.0;
  const std::vector<double> shares =
      OwnShares({tol * (scale + 1.0), tol * (scale + 9.0), tol * scale, 0.0, tol},
                {1.0, 9.0, 0.0, 5.0, 7.0}, tol);
  ASSERT_EQ(shares.size(), 5u);
  EXPECT_NEAR(shares[0], 0.25, 1e-12);
  EXPECT_NEAR(shares[1], 0.75, 1e-12);
  EXPECT_EQ(shares[2], kLeastOwnShare);
  EXPECT_EQ(shares[3], 1.0);
  EXPECT_EQ(shares[4], 1.0);
}

// RobustTolerances' own e_l, recovered from its tolerances: the share each
// row's magnitude makes of them, as OwnShares gives from the magnitudes.
TEST(OwnShares, OfRobustTolerancesAreTheirMagnitudesShares) {
  Matrix yt(3, 4);
  yt << 1.0, -2.0, 3.0, 100.0,  //
      0.0, 0.0, 0.0, 5.0,       //
      -40.0, 30.0, 20.0, 10.0;
  const double tol = 1e-6;
  double global = 0.0;
  const Vector cs = RobustTolerances(yt, tol, 1, &global);
  const std::vector<double> tolerances(cs.data(), cs.data() + cs.size());
  const std::vector<double> shares = OwnSharesOfRobust(tolerances, tol, global);
  const std::vector<double> expected = OwnShares(tolerances, {3.0, 0.0, 30.0}, tol);
  ASSERT_EQ(shares.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(shares[i], expected[i], 1e-9) << i;
  EXPECT_EQ(shares[1], kLeastOwnShare);
  EXPECT_NEAR(shares[2], 30.0 / (30.0 + global), 1e-9);
}

// The (skip + 1)-th largest |value|: what t wrong values cannot raise.
TEST(RobustMagnitude, IsTheSkipPlusFirstLargest) {
  const std::vector<double> a = {0.0, -7.0, 2.0}, b = {1.0, 3.0, -9.0}, c = {-4.0, 5.0, 0.5};
  const std::vector<const double*> cols = {a.data(), b.data(), c.data()};
  EXPECT_EQ(RobustMagnitude(cols, 0, 0), 4.0);
  EXPECT_EQ(RobustMagnitude(cols, 1, 1), 5.0);
  EXPECT_EQ(RobustMagnitude(cols, 2, 2), 0.5);
  EXPECT_EQ(RobustMagnitude(cols, 2, 7), 0.5);
}

}  // namespace decode_kernels_test
}  // namespace
}  // namespace polyguard::internal
