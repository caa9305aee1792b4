#include "polyguard/codes/errors_and_erasures_decoder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>

#include "codes/code_test_util.h"
#include "polyguard/base/random.h"
#include "polyguard/codes/evaluation_points.h"

namespace polyguard {
namespace {
namespace errors_and_erasures_decoder_test {

struct Setup {
  std::unique_ptr<ErrorsAndErasuresDecoder> decoder;
  Matrix coefficients;  // L x K
  Matrix results;       // L x P, exact code words
};

Setup MakeSetup(int p, int k, int l, Random& rng) {
  const auto points = MakeEvaluationPoints(PointKind::kChebyshev, p);
  std::vector<int> wanted(static_cast<size_t>(k));
  std::iota(wanted.begin(), wanted.end(), 0);
  Setup s;
  s.decoder = ErrorsAndErasuresDecoder::Create(points, MonomialBasis(points, k), wanted).value();
  s.coefficients = rng.NormalMatrix(l, k);
  s.results = s.coefficients * MonomialBasis(points, k).transpose();
  return s;
}

TEST(ErrorsAndErasuresDecoder, RejectsBadConstruction) {
  const auto pts = MakeEvaluationPoints(PointKind::kChebyshev, 4);
  EXPECT_FALSE(ErrorsAndErasuresDecoder::Create(pts, Matrix::Ones(3, 2), {0}).ok());
  EXPECT_FALSE(ErrorsAndErasuresDecoder::Create(pts, MonomialBasis(pts, 5), {0}).ok());
  EXPECT_FALSE(ErrorsAndErasuresDecoder::Create(pts, MonomialBasis(pts, 2), {2}).ok());
  EXPECT_FALSE(ErrorsAndErasuresDecoder::Create({0.1, 0.1, 0.3}, Matrix::Ones(3, 1), {0}).ok());
  // Tolerances outside [DBL_EPSILON, 1): below double roundoff (1e-300) no
  // honest decode would verify.
  for (double tolerance : {0.0, 1e-300, 1e-17, 1.0, std::nan("")}) {
    DecoderOptions bad;
    bad.tolerance = tolerance;
    auto created = ErrorsAndErasuresDecoder::Create(pts, MonomialBasis(pts, 2), {0}, bad);
    EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument) << tolerance;
    EXPECT_NE(created.status().message().find("tolerance must be in"), std::string::npos);
    auto product = MakeProductCode(
        {.strategy = Strategy::kReplication, .shape = {4, 4, 2}, .peers = 4, .decoder = bad});
    EXPECT_EQ(product.status().code(), StatusCode::kInvalidArgument) << tolerance;
  }
}

TEST(ErrorsAndErasuresDecoder, RejectsBadResults) {
  Random rng(1);
  auto s = MakeSetup(6, 3, 4, rng);
  std::vector<int> dup = {0, 1, 1, 2};
  EXPECT_EQ(s.decoder->Decode(dup, s.results.leftCols(4)).status().code(),
            StatusCode::kInvalidArgument);
  std::vector<int> unknown = {0, 1, 9};
  EXPECT_EQ(s.decoder->Decode(unknown, s.results.leftCols(3)).status().code(),
            StatusCode::kInvalidArgument);
  std::vector<int> few = {0, 1};
  auto st = s.decoder->Decode(few, s.results.leftCols(2)).status();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("need 3"), std::string::npos) << st;
  std::vector<int> mismatch = {0, 1, 2};
  EXPECT_EQ(s.decoder->Decode(mismatch, s.results.leftCols(4)).status().code(),
            StatusCode::kInvalidArgument);
}

// Every subset of answering peers decodes (small P, exhaustive).
TEST(ErrorsAndErasuresDecoder, DecodesFromEverySubsetOfAnsweringPeers) {
  Random rng(2);
  const int p = 10, k = 4;
  auto s = MakeSetup(p, k, 6, rng);
  for (uint32_t mask = 0; mask < (1u << p); ++mask) {
    if (std::popcount(mask) < k) continue;
    std::vector<int> peers;
    for (int i = 0; i < p; ++i)
      if (mask & (1u << i)) peers.push_back(i);
    Matrix y(6, static_cast<Eigen::Index>(peers.size()));
    for (size_t j = 0; j < peers.size(); ++j) y.col(Eigen::Index(j)) = s.results.col(peers[j]);
    auto out = s.decoder->Decode(peers, y);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_LT((out->coefficients - s.coefficients).norm(), 1e-10 * s.coefficients.norm());
    EXPECT_EQ(out->verified, int(peers.size()) > k);
    EXPECT_TRUE(out->wrong_peers.empty());
  }
}

// Every error count up to R - K - 1, including with L < e (scalar results
// fall back to the per-entry decode, which corrects floor((R - K)/2)).
TEST(ErrorsAndErasuresDecoder, LocatesUpToRMinusKMinusOneErrors) {
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    Random rng(seed);
    const int p = int(rng.UniformInt(4, 24));
    const int k = int(rng.UniformInt(1, std::min(p - 2, 10)));
    const int l = int(rng.UniformInt(1, 40));
    auto s = MakeSetup(p, k, l, rng);
    const int max_e = std::max((p - k) / 2, std::min(l, p - k - 1));
    const int e = int(rng.UniformInt(0, max_e));
    std::vector<int> wrong = rng.Sample(p, e);
    Matrix y = s.results;
    for (int w : wrong) y.col(w) += std::pow(10.0, rng.Uniform(-6, 6)) * rng.NormalMatrix(l, 1);
    std::vector<int> peers(static_cast<size_t>(p));
    std::iota(peers.begin(), peers.end(), 0);
    auto out = s.decoder->Decode(peers, y);
    SCOPED_TRACE("seed=" + std::to_string(seed) + " P=" + std::to_string(p) +
                 " K=" + std::to_string(k) + " L=" + std::to_string(l) + " e=" + std::to_string(e));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_TRUE(out->verified);
    std::sort(wrong.begin(), wrong.end());
    EXPECT_EQ(out->wrong_peers, wrong);
    EXPECT_LT((out->coefficients - s.coefficients).norm(), 1e-8 * s.coefficients.norm());
  }
}

// Errors of wildly different sizes at once are peeled off one scale at a time.
TEST(ErrorsAndErasuresDecoder, MixedMagnitudes) {
  Random rng(9);
  auto s = MakeSetup(16, 5, 30, rng);
  Matrix y = s.results;
  y.col(2) += 1e8 * rng.NormalMatrix(30, 1);
  y.col(7) += 1e-8 * rng.NormalMatrix(30, 1);
  y.col(11) += rng.NormalMatrix(30, 1);
  std::vector<int> peers(16);
  std::iota(peers.begin(), peers.end(), 0);
  auto out = s.decoder->Decode(peers, y);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->wrong_peers, (std::vector<int>{2, 7, 11}));
  EXPECT_LT((out->coefficients - s.coefficients).norm(), 1e-10 * s.coefficients.norm());
}

TEST(ErrorsAndErasuresDecoder, DecodePlansAreCachedAndThreadSafe) {
  Random rng(4);
  auto s = MakeSetup(12, 4, 8, rng);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::vector<int> peers;
        for (int p = 0; p < 12; ++p)
          if ((p + i + t) % 3 != 0) peers.push_back(p);
        Matrix y(8, Eigen::Index(peers.size()));
        for (size_t j = 0; j < peers.size(); ++j) y.col(Eigen::Index(j)) = s.results.col(peers[j]);
        auto out = s.decoder->Decode(peers, y);
        if (!out.ok() || (out->coefficients - s.coefficients).norm() > 1e-9) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace errors_and_erasures_decoder_test
}  // namespace
}  // namespace polyguard

namespace polyguard {
namespace {
namespace errors_and_erasures_decoder_test {

// The slow, obviously correct reference: the largest set of results that fit
// one polynomial of degree < K (by trying every subset, largest first). Under
// the probabilistic model the honest results are that set.
std::vector<int> ReferenceWrongPeers(const std::vector<double>& points, int k, const Matrix& y) {
  const int p = static_cast<int>(points.size());
  for (int size = p; size > k; --size) {
    for (uint32_t mask = 0; mask < (1u << p); ++mask) {
      if (std::popcount(mask) != size) continue;
      std::vector<double> pts;
      std::vector<int> idx;
      for (int i = 0; i < p; ++i)
        if (mask & (1u << i)) {
          pts.push_back(points[size_t(i)]);
          idx.push_back(i);
        }
      const Matrix v = ChebyshevBasis(pts, k);
      Matrix ys(y.rows(), Eigen::Index(idx.size()));
      for (size_t j = 0; j < idx.size(); ++j) ys.col(Eigen::Index(j)) = y.col(idx[j]);
      const Matrix fit = v * v.colPivHouseholderQr().solve(ys.transpose());
      if ((fit - ys.transpose()).norm() <= 1e-9 * (1 + ys.norm())) {
        std::vector<int> wrong;
        for (int i = 0; i < p; ++i)
          if (!(mask & (1u << i))) wrong.push_back(i);
        return wrong;
      }
    }
  }
  return {-1};
}

TEST(ErrorsAndErasuresDecoder, AgreesWithTheExhaustiveReference) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Random rng(seed * 31);
    const int p = int(rng.UniformInt(4, 10));
    const int k = int(rng.UniformInt(1, p - 2));
    const int l = int(rng.UniformInt(p, p + 5));
    auto s = MakeSetup(p, k, l, rng);
    const int e = int(rng.UniformInt(0, p - k - 1));
    Matrix y = s.results;
    for (int w : rng.Sample(p, e)) y.col(w) += rng.NormalMatrix(l, 1);
    std::vector<int> peers(static_cast<size_t>(p));
    std::iota(peers.begin(), peers.end(), 0);
    auto out = s.decoder->Decode(peers, y);
    ASSERT_TRUE(out.ok()) << out.status() << " seed=" << seed;
    EXPECT_EQ(out->wrong_peers,
              ReferenceWrongPeers(MakeEvaluationPoints(PointKind::kChebyshev, p), k, y))
        << "seed=" << seed;
  }
}

// The numbers evaluation_points.h states.
TEST(EvaluationPointsSafety, WorstCaseConditionNumbersAsDocumented) {
  const auto cheb16 = MakeEvaluationPoints(PointKind::kChebyshev, 16);
  const auto cheb20 = MakeEvaluationPoints(PointKind::kChebyshev, 20);
  const double c16 = WorstCaseConditionNumber(cheb16, 11);
  const double c20 = WorstCaseConditionNumber(cheb20, 15);
  RecordProperty("cond_P16_K11", std::to_string(c16));
  RecordProperty("cond_P20_K15", std::to_string(c20));
  EXPECT_LT(c16, 1e6);
  EXPECT_LT(c20, 1e8);
  EXPECT_LT(WorstCaseConditionNumber(cheb16, 11),
            WorstCaseConditionNumber(MakeEvaluationPoints(PointKind::kEquispaced, 16), 11));
}

// The fast path against the public reference decode (DecodeReference): for
// every pattern, the same status code, verified flag and wrong peers, and
// coefficients equal to roundoff. Structured patterns, not only random ones:
// none, roundoff-sized errors just below and just above the tolerance,
// identical and proportional errors, huge beside tiny, NaN and Inf, and
// stragglers with all of them.
enum class Pattern {
  kNone,
  kBelowTolerance,
  kAboveTolerance,
  kIdentical,
  kProportional,
  kHugeBesideTiny,
  kNaN,
  kInf,
  kTooMany
};

struct FastCase {
  const char* name;
  int p, k, stragglers;
  Pattern pattern;
};
std::ostream& operator<<(std::ostream& out, const FastCase& c) { return out << c.name; }

class FastPath : public ::testing::TestWithParam<FastCase> {};

TEST_P(FastPath, AgreesWithTheReferenceDecode) {
  const FastCase& c = GetParam();
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Random rng(seed);
    const int l = 24;
    auto s = MakeSetup(c.p, c.k, l, rng);
    std::vector<int> order = rng.Sample(c.p, c.p);
    std::vector<int> peers(order.begin() + c.stragglers, order.end());
    const int r = static_cast<int>(peers.size());
    Matrix y(l, r);
    for (int j = 0; j < r; ++j) y.col(j) = s.results.col(peers[size_t(j)]);
    const double scale = y.norm() / std::sqrt(double(y.size()));
    const double tol = s.decoder->options().tolerance;
    const int t = (r - c.k) / 2;
    const Eigen::Index entry = rng.UniformInt(0, l - 1);
    switch (c.pattern) {
      case Pattern::kNone:
        break;
      case Pattern::kBelowTolerance:  // roundoff by definition: accepted
        for (int j = 0; j < t; ++j) y(entry, j) += 0.1 * tol * scale;
        break;
      case Pattern::kAboveTolerance:  // just above: located
        for (int j = 0; j < t; ++j) y(entry, j) += 100.0 * tol * scale;
        break;
      case Pattern::kIdentical:
        for (int j = 0; j < t; ++j) y(entry, j) += 3.0;
        break;
      case Pattern::kProportional:
        for (int j = 0; j < t; ++j) y.col(j) += (j + 1) * 1e3 * y.col(r - 1);
        break;
      case Pattern::kHugeBesideTiny:
        y(entry, 0) += 1e12;
        if (t >= 2) y(entry, 1) += 1e-6;
        break;
      case Pattern::kNaN:
        y(entry, 0) = std::nan("");
        break;
      case Pattern::kInf:
        y(entry, 0) = std::numeric_limits<double>::infinity();
        break;
      case Pattern::kTooMany:  // beyond the guarantee: DataLoss or exact, in both
        for (int j = 0; j < r - c.k; ++j) y(entry, j) += rng.Normal();
        break;
    }
    const StatusOr<DecodeOutcome> fast = s.decoder->Decode(peers, y);
    const StatusOr<DecodeOutcome> ref = s.decoder->DecodeReference(peers, y);
    ASSERT_EQ(fast.status().code(), ref.status().code()) << fast.status() << " / " << ref.status();
    if (!ref.ok()) continue;
    EXPECT_EQ(fast->verified, ref->verified);
    EXPECT_EQ(fast->wrong_peers, ref->wrong_peers);
    const double diff = (fast->coefficients - ref->coefficients).norm();
    EXPECT_LE(diff, 1e-9 * std::max(ref->coefficients.norm(), 1.0));
    if (c.pattern != Pattern::kTooMany && c.pattern != Pattern::kBelowTolerance) {
      EXPECT_LE((ref->coefficients - s.coefficients).norm(), 1e-8 * s.coefficients.norm());
    }
  }
}

// The per-entry search has one budget per decode (DecoderOptions::max_fits):
// 400 entries with two wrong values each, at different peers in every
// entry (so no peer is located as a whole and every entry is searched), are
// corrected with the default budget and end in DataLoss with a budget of
// 100 fits, after fewer than 100 entries.
TEST(ErrorsAndErasuresDecoder, ADecodeSpendsAtMostItsBudget) {
  Random rng(31);
  const int p = 12, k = 4, entries = 400;
  auto s = MakeSetup(p, k, entries, rng);
  for (int l = 0; l < entries; ++l)
    for (int q : rng.Sample(p, 2)) s.results(l, q) += rng.Uniform(1, 2);
  std::vector<int> all(static_cast<size_t>(p));
  std::iota(all.begin(), all.end(), 0);
  const auto plenty = s.decoder->Decode(all, s.results);
  ASSERT_TRUE(plenty.ok()) << plenty.status();
  EXPECT_TRUE(plenty->verified);
  EXPECT_LT((plenty->coefficients - s.coefficients).norm(), 1e-9 * s.coefficients.norm());

  DecoderOptions small;
  small.max_fits = 100;
  const auto points = MakeEvaluationPoints(PointKind::kChebyshev, p);
  std::vector<int> wanted(static_cast<size_t>(k));
  std::iota(wanted.begin(), wanted.end(), 0);
  auto poor =
      ErrorsAndErasuresDecoder::Create(points, MonomialBasis(points, k), wanted, small).value();
  const auto out = poor->Decode(all, s.results);
  const int done = testing::EntriesBeforeBudgetSpent(out.status(), 100, entries);
  EXPECT_GE(done, 0) << out.status();
  EXPECT_LT(done, 100) << out.status();

  small.max_fits = 0;
  EXPECT_EQ(ErrorsAndErasuresDecoder::Create(points, MonomialBasis(points, k), wanted, small)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(
    Patterns, FastPath,
    ::testing::Values(FastCase{"None", 12, 5, 0, Pattern::kNone},
                      FastCase{"NoneWithStragglers", 12, 5, 3, Pattern::kNone},
                      FastCase{"NoneExactlyK", 8, 8, 0, Pattern::kNone},
                      FastCase{"BelowTolerance", 12, 5, 0, Pattern::kBelowTolerance},
                      FastCase{"AboveTolerance", 12, 5, 1, Pattern::kAboveTolerance},
                      FastCase{"Identical", 14, 6, 0, Pattern::kIdentical},
                      FastCase{"IdenticalWithStragglers", 14, 6, 2, Pattern::kIdentical},
                      FastCase{"Proportional", 12, 5, 0, Pattern::kProportional},
                      FastCase{"HugeBesideTiny", 12, 4, 0, Pattern::kHugeBesideTiny},
                      FastCase{"NaN", 10, 4, 1, Pattern::kNaN},
                      FastCase{"Inf", 10, 4, 0, Pattern::kInf},
                      FastCase{"TooMany", 10, 4, 2, Pattern::kTooMany}),
    [](const ::testing::TestParamInfo<FastCase>& info) { return std::string(info.param.name); });

}  // namespace errors_and_erasures_decoder_test
}  // namespace
}  // namespace polyguard
