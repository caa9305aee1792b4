#include "polyguard/codes/rotation_code.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <complex>
#include <functional>

#include "codes/code_test_util.h"
#include "polyguard/codes/evaluation_points.h"

namespace polyguard {
namespace {
namespace rotation_code_test {

using testing::ErrorKind;
using testing::ForEachSubset;
using testing::RelativeError;
using testing::RunProduct;

TEST(RotationCode, RotationsComposeLikeUnitCirclePoints) {
  EXPECT_LT((Rotation(0.3) * Rotation(0.4) - Rotation(0.7)).norm(), 1e-15);
  const Matrix g = RotationEncoder(3, 7, 4, 2);  // exponents 0, 2, 4, 6 at angle 3 (2 pi / 7)
  for (int s = 0; s < 4; ++s)
    EXPECT_LT((g.middleCols(2 * s, 2) - Rotation(2.0 * std::numbers::pi * 3 / 7 * 2 * s)).norm(),
              1e-12);
}

TEST(RotationCode, DecodesFromEveryKSubset) {
  Random rng(1);
  struct Case {
    int p, m, d;
  };
  for (Case c : {Case{5, 2, 2}, Case{7, 3, 1}, Case{8, 2, 3}, Case{10, 3, 2}, Case{9, 1, 4}}) {
    auto code =
        RotationCode::Create({4 * c.m + 1, 5, 4 * c.d + 3}, {.peers = c.p, .m = c.m, .d = c.d})
            .value();
    EXPECT_EQ(code->recovery_threshold(), c.m * c.d);
    const Matrix a = rng.NormalMatrix(4 * c.m + 1, 5), b = rng.NormalMatrix(5, 4 * c.d + 3);
    std::vector<PeerResult> all;
    for (int r = 0; r < c.p; ++r)
      all.push_back(
          {r, code->PeerProduct(code->EncodeShard(a, r).value(), code->EncodeInput(b, r).value())});
    int checked = 0;
    ForEachSubset(c.p, c.m * c.d, [&](const std::vector<int>& subset) {
      std::vector<PeerResult> some;
      for (int r : subset) some.push_back(all[static_cast<size_t>(r)]);
      auto got = code->Decode(some);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_LT(RelativeError(got->product, a * b), 1e-12) << code->Describe();
      ++checked;
    });
    EXPECT_GT(checked, 0);
  }
}

TEST(RotationCode, LocatesAndCorrectsWrongPeers) {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    Random rng(seed * 7);
    const int m = int(rng.UniformInt(1, 3)), d = int(rng.UniformInt(1, 3));
    const int p = m * d + int(rng.UniformInt(1, 6));
    auto code = RotationCode::Create(
                    {rng.UniformInt(2 * m, 13), rng.UniformInt(1, 7), rng.UniformInt(2 * d, 11)},
                    {.peers = p, .m = m, .d = d})
                    .value();
    const int k = code->recovery_threshold();
    const int stragglers = int(rng.UniformInt(0, p - k - 1));
    // Generic errors are located when each result block has at least 4 per
    // wrong peer entries (a wrong peer spans 4 dimensions of the syndrome);
    // otherwise floor((R - K)/2) (rotation_code.h).
    const int64_t l = code->result_doubles_per_peer() / 4;
    const int r = p - stragglers;
    const int most =
        std::max<int>((r - k) / 2, static_cast<int>(std::min<int64_t>(l / 4, r - k - 1)));
    const int errors = int(rng.UniformInt(0, most));
    const ErrorKind kind = rng.Uniform() < 0.7 ? ErrorKind::kDense : ErrorKind::kNaN;
    auto run =
        RunProduct(*code, &rng, stragglers, errors, kind, std::pow(10.0, rng.Uniform(-6, 6)));
    SCOPED_TRACE("seed=" + std::to_string(seed) + " " + code->Describe());
    auto decoded = code->Decode(run.results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_TRUE(decoded->verified);
    EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-9);
    EXPECT_EQ(decoded->wrong_peers, run.wrong);
  }
}

// Beyond 64 peers: at P = 96 (K = 16) wrong peers on both sides of 64,
// among stragglers, are located, named and corrected; the plan cache tells
// answering sets apart that differ only above peer 63.
TEST(RotationCode, LocatesWrongPeersAboveSixtyThreeAtNinetySixPeers) {
  // Results of 128 numbers (4 blocks of 32): up to 8 wrong peers are
  // located by their span (rotation_code.h).
  auto code = RotationCode::Create({128, 12, 16}, {.peers = 96, .m = 8, .d = 2}).value();
  ASSERT_EQ(code->recovery_threshold(), 16);
  Random rng(96);
  const Matrix a = rng.NormalMatrix(128, 12), b = rng.NormalMatrix(12, 16);
  const std::vector<int> wrong = {3, 40, 63, 64, 70, 95};
  for (int absent : {65, 66}) {
    std::vector<PeerResult> results;
    for (int r = 0; r < 96; ++r) {
      if (r == absent || r == 1) continue;  // stragglers
      Matrix y =
          code->PeerProduct(code->EncodeShard(a, r).value(), code->EncodeInput(b, r).value());
      if (std::find(wrong.begin(), wrong.end(), r) != wrong.end())
        y += rng.NormalMatrix(y.rows(), y.cols());
      results.push_back({r, std::move(y)});
    }
    auto decoded = code->Decode(results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_TRUE(decoded->verified);
    EXPECT_EQ(decoded->wrong_peers, wrong);
    EXPECT_LT(RelativeError(decoded->product, a * b), 1e-9);
  }
}

// The target: P = 20, K = 16, every set of 16 answering peers.
TEST(RotationCode, StableAtTwentyPeersWhereRealVandermondeIsNot) {
  auto code = RotationCode::Create({64, 24, 64}, {.peers = 20, .m = 4, .d = 4}).value();
  const double rotation = WorstCasePeerCondition(code->generator(), 4, 16, 1'000'000, 1);
  const double chebyshev =
      WorstCaseConditionNumber(MakeEvaluationPoints(PointKind::kChebyshev, 20), 16);
  const double equispaced =
      WorstCaseConditionNumber(MakeEvaluationPoints(PointKind::kEquispaced, 20), 16);
  std::printf(
      "P = 20, K = 16, worst case over all 4845 sets: rotation %.3g, Chebyshev %.3g, "
      "equispaced %.3g\n",
      rotation, chebyshev, equispaced);
  EXPECT_LT(rotation, 1e3);
  EXPECT_GT(chebyshev, 1e3 * rotation);
  EXPECT_GT(equispaced, 1e3 * rotation);
  // Decode error from many sets of 16 (N(0,1) data), and from the real
  // Polynomial codes for comparison.
  Random rng(2);
  const Matrix a = rng.NormalMatrix(64, 24), b = rng.NormalMatrix(24, 64);
  double worst = 0.0, worst_cheb = 0.0;
  auto cheb = MakeProductCode({.strategy = Strategy::kPolyDot,
                               .shape = {64, 24, 64},
                               .peers = 20,
                               .m = 4,
                               .n = 1,
                               .d = 4})
                  .value();
  std::vector<PeerResult> all, all_cheb;
  for (int r = 0; r < 20; ++r) {
    all.push_back(
        {r, code->PeerProduct(code->EncodeShard(a, r).value(), code->EncodeInput(b, r).value())});
    all_cheb.push_back(
        {r, cheb->PeerProduct(cheb->EncodeShard(a, r).value(), cheb->EncodeInput(b, r).value())});
  }
  for (int t = 0; t < 200; ++t) {
    std::vector<int> subset = rng.Sample(20, 16);
    std::vector<PeerResult> some, some_cheb;
    for (int r : subset) {
      some.push_back(all[size_t(r)]);
      some_cheb.push_back(all_cheb[size_t(r)]);
    }
    worst = std::max(worst, RelativeError(code->Decode(some).value().product, a * b));
    auto c = cheb->Decode(some_cheb);
    if (c.ok()) worst_cheb = std::max(worst_cheb, RelativeError(c->product, a * b));
  }
  std::printf("relative decode error over 200 sets: rotation %.2g, Chebyshev %.2g\n", worst,
              worst_cheb);
  EXPECT_LT(worst, 1e-12);
}

// MatDot and Generalized PolyDot with the rotation embedding (the header's
// derivation), checked in complex arithmetic: pair the inner dimension, put
// A_ij at exponent i n + j and B_jk at j + k m n; then A~ conj(B~) carries
// sum_j a_ij conj(b_jk), whose real part is C_ik, at exponent i n - k m n,
// and any m n d + n - 1 peers decode it.
TEST(RotationCode, ConjugateFamilyAlignsForMatDotAndGeneralizedPolyDot) {
  using C = std::complex<double>;
  using CMatrix = Eigen::Matrix<C, Eigen::Dynamic, Eigen::Dynamic>;
  Random rng(3);
  struct Case {
    int m, n, d;
  };
  for (Case c : {Case{1, 3, 1}, Case{2, 2, 1}, Case{2, 2, 2}, Case{1, 2, 3}}) {
    const int k = c.m * c.n * c.d + c.n - 1, p = k + 2, br = 2, inner = 2, bc = 3;
    // Real blocks A_ij (br x 2 inner: the two halves of the pair) and
    // B_jk (2 inner x bc); C_ik = sum_j A_ij B_jk.
    std::vector<Matrix> a(size_t(c.m * c.n)), b(size_t(c.n * c.d));
    std::vector<CMatrix> ac(a.size()), bcx(b.size());
    for (int i = 0; i < c.m; ++i)
      for (int j = 0; j < c.n; ++j) {
        Matrix& x = a[size_t(i * c.n + j)] = rng.NormalMatrix(br, 2 * inner);
        ac[size_t(i * c.n + j)] =
            x.leftCols(inner).cast<C>() + C(0, 1) * x.rightCols(inner).cast<C>();
      }
    for (int j = 0; j < c.n; ++j)
      for (int kk = 0; kk < c.d; ++kk) {
        Matrix& x = b[size_t(j * c.d + kk)] = rng.NormalMatrix(2 * inner, bc);
        bcx[size_t(j * c.d + kk)] =
            x.topRows(inner).cast<C>() + C(0, 1) * x.bottomRows(inner).cast<C>();
      }
    const int lo = -(c.d - 1) * c.m * c.n - (c.n - 1);  // lowest exponent of a - b
    std::vector<CMatrix> y(static_cast<size_t>(p));
    std::vector<C> z(static_cast<size_t>(p));
    for (int r = 0; r < p; ++r) {
      z[size_t(r)] = std::polar(1.0, 2.0 * std::numbers::pi * r / p);
      CMatrix at = CMatrix::Zero(br, inner), bt = CMatrix::Zero(inner, bc);
      for (int i = 0; i < c.m; ++i)
        for (int j = 0; j < c.n; ++j)
          at += ac[size_t(i * c.n + j)] * std::pow(z[size_t(r)], i * c.n + j);
      for (int j = 0; j < c.n; ++j)
        for (int kk = 0; kk < c.d; ++kk)
          bt += bcx[size_t(j * c.d + kk)] * std::pow(z[size_t(r)], j + kk * c.m * c.n);
      y[size_t(r)] = at * bt.conjugate();
    }
    int subsets = 0;
    ForEachSubset(p, k, [&](const std::vector<int>& s) {
      CMatrix v(k, k);
      for (int i = 0; i < k; ++i)
        for (int e = 0; e < k; ++e) v(i, e) = std::pow(z[size_t(s[size_t(i)])], lo + e);
      const CMatrix inv = v.inverse();
      for (int i = 0; i < c.m; ++i)
        for (int kk = 0; kk < c.d; ++kk) {
          const int e = i * c.n - kk * c.m * c.n - lo;
          CMatrix coef = CMatrix::Zero(br, bc);
          for (int t = 0; t < k; ++t) coef += inv(e, t) * y[size_t(s[size_t(t)])];
          Matrix want = Matrix::Zero(br, bc);
          for (int j = 0; j < c.n; ++j) want += a[size_t(i * c.n + j)] * b[size_t(j * c.d + kk)];
          EXPECT_LT((coef.real() - want).norm(), 1e-10 * want.norm())
              << "m=" << c.m << " n=" << c.n << " d=" << c.d;
        }
      ++subsets;
    });
    EXPECT_GT(subsets, 0);
  }
}

TEST(RotationCode, OnlyThePolynomialCodeTakesRotationPoints) {
  EXPECT_TRUE(MakeProductCode({.strategy = Strategy::kPolyDot,
                               .shape = {8, 4, 8},
                               .peers = 6,
                               .m = 2,
                               .n = 1,
                               .d = 2,
                               .points = PointKind::kRotation})
                  .ok());
  EXPECT_FALSE(MakeProductCode({.strategy = Strategy::kPolyDot,
                                .shape = {8, 4, 8},
                                .peers = 6,
                                .m = 2,
                                .n = 2,
                                .d = 1,
                                .points = PointKind::kRotation})
                   .ok());
  EXPECT_FALSE(MakeProductCode({.strategy = Strategy::kMds,
                                .shape = {8, 4, 8},
                                .peers = 6,
                                .data_blocks = 3,
                                .points = PointKind::kRotation})
                   .ok());
  EXPECT_FALSE(RotationCode::Create({8, 4, 8}, {.peers = 3, .m = 2, .d = 2}).ok());
  EXPECT_EQ(ParsePointKind("rotation").value(), PointKind::kRotation);
}

}  // namespace rotation_code_test
}  // namespace
}  // namespace polyguard
