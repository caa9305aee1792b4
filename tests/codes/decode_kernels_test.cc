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

// FusedCheckChunks against FusedCheck on the whole results: the same values
// bit for bit (each entry's sums run in the same order), chunk by chunk, for
// lengths around the chunk and every split of the stored columns.
struct ChunksShape {
  int64_t length;
  int results, probes, wanted, rest;
};
class FusedCheckChunksTest : public ::testing::TestWithParam<ChunksShape> {};

TEST_P(FusedCheckChunksTest, EqualsTheWholePassChunkByChunk) {
  const ChunksShape& c = GetParam();
  const int columns = c.probes + c.wanted + c.rest;
  Random rng(uint64_t(41 + c.length + 3 * columns));
  const Matrix y = rng.NormalMatrix(c.length, c.results);
  const RowMajorMatrix m = rng.NormalMatrix(c.results, columns);
  std::vector<const double*> cols;
  for (int r = 0; r < c.results; ++r) cols.push_back(y.col(r).data());
  Vector zsq, entry_sq;
  Matrix wanted, rest;
  double sumsq = 0.0;
  FusedCheck(cols, c.length, m, c.probes, &zsq, &wanted, &sumsq, c.wanted, &rest, &entry_sq);
  Matrix chunked_wanted;
  double chunked_sumsq = -1.0;
  int64_t next = 0;
  const bool done = FusedCheckChunks(
      cols, c.length, m, c.probes, c.wanted, &chunked_wanted, &chunked_sumsq,
      [&](int64_t l0, int64_t n, const ChunkOfCheck& chunk) {
        EXPECT_EQ(l0, next);
        EXPECT_EQ(n, std::min(kSetAsideChunk, c.length - l0));
        next = l0 + n;
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_EQ(chunk.zsq[i], zsq(l0 + i)) << l0 + i;
          EXPECT_EQ(chunk.entry_sq[i], entry_sq(l0 + i)) << l0 + i;
          for (int q = 0; q < c.rest; ++q)
            EXPECT_EQ(chunk.rest[q * chunk.rest_stride + i], rest(l0 + i, q)) << l0 + i;
        }
        return true;
      });
  EXPECT_TRUE(done);
  EXPECT_EQ(next, c.length);
  ASSERT_EQ(chunked_wanted.rows(), c.length);
  ASSERT_EQ(chunked_wanted.cols(), c.wanted);
  EXPECT_TRUE(chunked_wanted == wanted);
  EXPECT_NEAR(chunked_sumsq, sumsq, 1e-12 * (1.0 + sumsq));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, FusedCheckChunksTest,
    ::testing::Values(ChunksShape{0, 3, 1, 1, 1}, ChunksShape{3, 6, 1, 2, 2},
                      ChunksShape{255, 8, 2, 2, 3}, ChunksShape{256, 10, 1, 4, 6},
                      ChunksShape{257, 10, 1, 4, 6}, ChunksShape{1030, 16, 3, 4, 0},
                      ChunksShape{1030, 7, 1, 0, 5}, ChunksShape{300, 5, 0, 2, 2}));

TEST(FusedCheckChunks, StopsWhenTheVisitDoes) {
  Random rng(43);
  const Matrix y = rng.NormalMatrix(1000, 5);
  const RowMajorMatrix m = rng.NormalMatrix(5, 4);
  std::vector<const double*> cols;
  for (int r = 0; r < 5; ++r) cols.push_back(y.col(r).data());
  Matrix wanted;
  double sumsq = 0.0;
  int visits = 0;
  EXPECT_FALSE(
      FusedCheckChunks(cols, 1000, m, 1, 2, &wanted, &sumsq,
                       [&](int64_t, int64_t, const ChunkOfCheck&) { return ++visits < 2; }));
  EXPECT_EQ(visits, 2);
}

// CheckSetAsideChunk against its contract written out entry by entry, on
// structured values: deviations at, just above and just below the limit,
// NaN and Inf given values, huge ones, zero tolerances (DBL_MIN), kept checks
// failing in the vector part or in the tail, every tail length.
struct AsideReference {
  bool passed = true;
  std::vector<double> cs, smallest;
  std::vector<int64_t> off;
  std::vector<int> wrong;
  double word_sumsq = 0.0;
};

AsideReference ReferenceAside(const std::vector<double>& zsq, const std::vector<double>& entry_sq,
                              int kept, double tol, double rms,
                              const std::vector<std::vector<double>>& given,
                              const std::vector<std::vector<double>>& word) {
  AsideReference out;
  const double quick = tol * rms;
  const size_t n = zsq.size();
  out.wrong.assign(given.size(), 0);
  for (size_t i = 0; i < n; ++i) {
    const double c = std::max(tol * (rms + std::sqrt(entry_sq[i] / double(kept))), DBL_MIN);
    out.cs.push_back(c);
    const double z = zsq[i];
    const bool within = z <= quick * quick || (z <= c * c && z <= DBL_MAX && c <= DBL_MAX);
    if (!within) out.passed = false;
    int64_t off = 0;
    double smallest = kHuge;
    for (size_t q = 0; q < given.size(); ++q) {
      const double dev = std::abs(given[q][i] - word[q][i]);
      if (dev <= std::max(quick, c)) continue;
      ++off;
      out.wrong[q] = 1;
      if (dev < smallest) smallest = dev;
    }
    out.off.push_back(off);
    out.smallest.push_back(smallest);
  }
  for (const auto& w : word)
    for (double v : w) out.word_sumsq += v * v;
  return out;
}

class CheckSetAsideChunkTest : public ::testing::TestWithParam<int> {};

TEST_P(CheckSetAsideChunkTest, FollowsItsContractEntryByEntry) {
  const int64_t n = GetParam();
  const double tol = 1e-6, rms = 2.0, quick = tol * rms;
  const int kept = 7, f = 3;
  Random rng(uint64_t(50 + n));
  for (int trial = 0; trial < 12; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const int64_t l0 = 5;  // given values start at l0; the chunk's at 0
    std::vector<double> zsq(static_cast<size_t>(n)), entry_sq(static_cast<size_t>(n));
    std::vector<std::vector<double>> given(f, std::vector<double>(size_t(l0 + n))),
        word(f, std::vector<double>(size_t(n)));
    for (int64_t i = 0; i < n; ++i) {
      entry_sq[size_t(i)] = trial == 3 ? 0.0 : std::abs(rng.Normal()) * 10.0;
      const double c = std::max(tol * (rms + std::sqrt(entry_sq[size_t(i)] / kept)), DBL_MIN);
      const double limit = std::max(quick, c);
      zsq[size_t(i)] = 0.25 * c * c;
      for (int q = 0; q < f; ++q) {
        const double w = rng.Normal();
        word[size_t(q)][size_t(i)] = w;
        // Deviations: none, at the limit, just above and below it, far off,
        // and now and then NaN, Inf or huge.
        const int kind = int((i + q + trial) % 7);
        double dev = 0.0;
        if (kind == 1) dev = limit;
        if (kind == 2) dev = std::nextafter(limit, INFINITY) * 1.0000001;
        if (kind == 3) dev = limit * 0.999;
        if (kind == 4) dev = 1e3 * limit * (1 + q);
        double g = w + (q % 2 == 0 ? dev : -dev);
        if (trial == 5 && kind == 5) g = std::nan("");
        if (trial == 6 && kind == 5) g = INFINITY;
        if (trial == 7 && kind == 5) g = 1e300;
        given[size_t(q)][size_t(l0 + i)] = g;
      }
    }
    // Kept checks failing: far above the tolerance, NaN, overflowed, in the
    // vector part (entry 0) or the last entry (a tail when n % 4 != 0).
    if (n > 0 && trial == 8) zsq[0] = 100.0 * quick * quick + 4.0 * entry_sq[0];
    if (n > 0 && trial == 9) zsq[size_t(n - 1)] = std::nan("");
    if (n > 0 && trial == 10) zsq[size_t(n - 1)] = INFINITY;
    if (n > 0 && trial == 11) entry_sq[size_t(n - 1)] = INFINITY;
    std::vector<std::vector<double>> given_chunk(f);
    std::vector<const double*> given_cols;
    for (int q = 0; q < f; ++q) {
      given_chunk[size_t(q)].assign(given[size_t(q)].begin() + l0, given[size_t(q)].end());
      given_cols.push_back(given[size_t(q)].data());
    }
    const AsideReference want = ReferenceAside(zsq, entry_sq, kept, tol, rms, given_chunk, word);
    // The chunk's code word, columns n apart (a stride as FusedCheckChunks').
    std::vector<double> rest(size_t(f * std::max<int64_t>(n, 1)));
    for (int q = 0; q < f; ++q)
      std::copy(word[size_t(q)].begin(), word[size_t(q)].end(), rest.begin() + q * n);
    std::vector<double> cs(static_cast<size_t>(n)), smallest(static_cast<size_t>(n));
    std::vector<int64_t> off(static_cast<size_t>(n));
    std::vector<int> wrong(f, 0);
    double word_sumsq = 0.0;
    const bool passed = CheckSetAsideChunk({zsq.data(), entry_sq.data(), rest.data(), n}, kept, tol,
                                           rms, l0, n, given_cols, cs.data(), off.data(),
                                           smallest.data(), wrong.data(), &word_sumsq);
    ASSERT_EQ(passed, want.passed);
    if (!passed) continue;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(cs[size_t(i)], want.cs[size_t(i)]) << i;
      EXPECT_EQ(off[size_t(i)], want.off[size_t(i)]) << i;
      EXPECT_EQ(smallest[size_t(i)], want.smallest[size_t(i)]) << i;
    }
    EXPECT_EQ(wrong, want.wrong);
    EXPECT_NEAR(word_sumsq, want.word_sumsq, 1e-12 * (1.0 + want.word_sumsq));
  }
}

INSTANTIATE_TEST_SUITE_P(Lengths, CheckSetAsideChunkTest,
                         ::testing::Values(0, 1, 2, 3, 4, 5, 7, 8, 13, 255, 256));

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
