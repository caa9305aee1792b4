#include "polyguard/codes/polydot_code.h"

#include <gtest/gtest.h>

#include "codes/code_test_util.h"

namespace polyguard {
namespace {
namespace polydot_code_test {

using testing::ErrorKind;
using testing::RelativeError;
using testing::RunProduct;

struct Config {
  int p, m, n, d;
  ProductShape shape;
};

// Random code parameters with K small enough for Chebyshev points to be
// numerically safe (evaluation_points.h) and P up to 24.
Config RandomConfig(Random& rng) {
  while (true) {
    Config c;
    c.m = int(rng.UniformInt(1, 3));
    c.n = int(rng.UniformInt(1, 3));
    c.d = int(rng.UniformInt(1, 2));
    const int k = c.m * c.n * c.d + c.n - 1;
    if (k > 10) continue;
    c.p = int(rng.UniformInt(k + 1, std::min(24, k + 12)));
    c.shape = {rng.UniformInt(1, 13), rng.UniformInt(1, 13), rng.UniformInt(1, 7)};
    return c;
  }
}

std::unique_ptr<PolyDotCode> Make(const Config& c) {
  auto code = PolyDotCode::Create(c.shape, {.peers = c.p, .m = c.m, .n = c.n, .d = c.d});
  EXPECT_TRUE(code.ok()) << code.status();
  return std::move(code).value();
}

std::string Describe(uint64_t seed, const Config& c) {
  return "seed=" + std::to_string(seed) + " P=" + std::to_string(c.p) +
         " m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " d=" + std::to_string(c.d) +
         " shape=" + std::to_string(c.shape.rows) + "x" + std::to_string(c.shape.inner) + "x" +
         std::to_string(c.shape.cols);
}

TEST(PolyDotCode, Thresholds) {
  auto code = PolyDotCode::Create({8, 8, 4}, {.peers = 12, .m = 2, .n = 2, .d = 2}).value();
  EXPECT_EQ(code->recovery_threshold(), 2 * 2 * 2 + 2 - 1);
  EXPECT_EQ(code->transpose_threshold(), 2 * 2 * 2 + 2 * 2 - 2);
  EXPECT_EQ(code->errors_corrected_probabilistic(), 12 - 9 - 1);
  EXPECT_EQ(code->errors_corrected_adversarial(), (12 - 9) / 2);
  EXPECT_EQ(code->stored_doubles_per_peer(), 4 * 4);
  EXPECT_EQ(code->result_doubles_per_peer(), 4 * 2);
}

TEST(PolyDotCode, SpecialCasesHaveTheirThresholds) {
  // Polynomial code: n = 1, K = m*d.
  EXPECT_EQ(PolyDotCode::Create({6, 6, 6}, {.peers = 9, .m = 3, .n = 1, .d = 2})
                .value()
                ->recovery_threshold(),
            6);
  // MatDot: m = d = 1, K = 2n - 1.
  EXPECT_EQ(PolyDotCode::Create({6, 6, 6}, {.peers = 9, .m = 1, .n = 3, .d = 1})
                .value()
                ->recovery_threshold(),
            5);
}

TEST(PolyDotCode, RejectsBadParameters) {
  auto too_few = PolyDotCode::Create({4, 4, 4}, {.peers = 4, .m = 2, .n = 2, .d = 1});
  ASSERT_FALSE(too_few.ok());
  EXPECT_EQ(too_few.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_few.status().message().find("K = mnd + n - 1 = 5"), std::string::npos)
      << too_few.status();
  EXPECT_FALSE(PolyDotCode::Create({4, 4, 4}, {.peers = 8, .m = 0, .n = 1, .d = 1}).ok());
  EXPECT_FALSE(PolyDotCode::Create({4, 4, 4}, {.peers = 8, .m = 1, .n = -1, .d = 1}).ok());
  EXPECT_FALSE(PolyDotCode::Create({0, 4, 4}, {.peers = 8}).ok());
  EXPECT_FALSE(PolyDotCode::Create({4, 4, 4}, {.peers = kMaxPeers + 1}).ok());
}

TEST(PolyDotCode, RejectsBadInputs) {
  auto code = PolyDotCode::Create({4, 5, 3}, {.peers = 6, .m = 2, .n = 2}).value();
  EXPECT_EQ(code->EncodeShard(Matrix::Ones(5, 4), 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(code->EncodeInput(Matrix::Ones(5, 2), 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(code->EncodeShard(Matrix::Ones(4, 5), 6).status().code(), StatusCode::kInvalidArgument);
  Matrix nan_b = Matrix::Ones(5, 3);
  nan_b(1, 1) = std::nan("");
  auto st = code->EncodeInput(nan_b, 0).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("NaN"), std::string::npos);
  // Results: unknown peer, duplicate peer, wrong shape, too few.
  Matrix r = Matrix::Zero(2, 3);
  std::vector<PeerResult> unknown = {{7, r}};
  EXPECT_EQ(code->Decode(unknown).status().code(), StatusCode::kInvalidArgument);
  std::vector<PeerResult> dup = {{1, r}, {1, r}};
  EXPECT_EQ(code->Decode(dup).status().code(), StatusCode::kInvalidArgument);
  std::vector<PeerResult> shape = {{1, Matrix::Zero(3, 3)}};
  EXPECT_EQ(code->Decode(shape).status().code(), StatusCode::kInvalidArgument);
  std::vector<PeerResult> few = {{0, r}, {1, r}};
  EXPECT_EQ(code->Decode(few).status().code(), StatusCode::kUnavailable);
}

// The main property sweep: random shapes (non-divisible too), P up to 24,
// random stragglers, every error count from 0 to R - K - 1, dense and
// single-entry errors with magnitudes from 1e-8 to 1e8 of the data.
TEST(PolyDotCode, DecodesAndLocatesAcrossRandomConfigurations) {
  const ErrorKind kinds[] = {ErrorKind::kDense, ErrorKind::kEntry, ErrorKind::kBitflip,
                             ErrorKind::kNaN};
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    Random rng(seed);
    const Config c = RandomConfig(rng);
    auto code = Make(c);
    const int k = code->recovery_threshold();
    const int stragglers = int(rng.UniformInt(0, c.p - k - 1));
    const int r = c.p - stragglers;
    const int max_errors = testing::MaxCorrectable(r, k, code->result_doubles_per_peer());
    for (int errors = 0; errors <= max_errors; ++errors) {
      const ErrorKind kind = kinds[rng.UniformInt(0, 3)];
      const double magnitude = std::pow(10.0, rng.Uniform(-8, 8));
      auto run = RunProduct(*code, &rng, stragglers, errors, kind, magnitude);
      SCOPED_TRACE(Describe(seed, c) + " stragglers=" + std::to_string(stragglers) +
                   " errors=" + std::to_string(errors) + " kind=" + std::to_string(int(kind)) +
                   " magnitude=" + std::to_string(magnitude));
      auto decoded = code->Decode(run.results);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_TRUE(decoded->verified);
      EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-9);
      // Entry-kind errors in zero-padded regions may be invisible only if they
      // hit exact zeros of padding; any reported peer must be a wrong one.
      for (int w : decoded->wrong_peers)
        EXPECT_TRUE(std::binary_search(run.wrong.begin(), run.wrong.end(), w)) << w;
      if (kind == ErrorKind::kDense || kind == ErrorKind::kNaN) {
        EXPECT_EQ(decoded->wrong_peers, run.wrong);
      }
    }
  }
}

TEST(PolyDotCode, PolynomialAndMatDotSpecialCasesDecode) {
  Random rng(42);
  for (auto [m, n, d] :
       {std::tuple{3, 1, 2}, std::tuple{1, 4, 1}, std::tuple{2, 1, 1}, std::tuple{1, 3, 2}}) {
    auto code = PolyDotCode::Create({9, 10, 5}, {.peers = 14, .m = m, .n = n, .d = d}).value();
    const int k = code->recovery_threshold();
    auto run = RunProduct(*code, &rng, 1, 14 - 1 - k - 1, ErrorKind::kDense, 1.0);
    auto decoded = code->Decode(run.results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-10);
    EXPECT_EQ(decoded->wrong_peers, run.wrong);
  }
}

TEST(PolyDotCode, ExactlyRMinusKWrongIsReportedNeverMiscorrected) {
  for (uint64_t seed = 1; seed <= 120; ++seed) {
    Random rng(seed * 7919);
    const Config c = RandomConfig(rng);
    auto code = Make(c);
    const int k = code->recovery_threshold();
    const int stragglers = int(rng.UniformInt(0, c.p - k - 1));
    const int errors = c.p - stragglers - k;
    const ErrorKind kind = rng.Uniform() < 0.5 ? ErrorKind::kDense : ErrorKind::kNaN;
    const double magnitude = std::pow(10.0, rng.Uniform(-6, 6));
    auto run = RunProduct(*code, &rng, stragglers, errors, kind, magnitude);
    SCOPED_TRACE(Describe(seed, c) + " errors=" + std::to_string(errors));
    auto decoded = code->Decode(run.results);
    if (decoded.ok()) {
      // Allowed only if it is in fact right (e.g. an error that hit padding).
      EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-9);
    } else {
      EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss) << decoded.status();
      EXPECT_NE(decoded.status().message().find("suspect peers"), std::string::npos);
    }
  }
}

TEST(PolyDotCode, TwoPeersWrongInTheSameSingleEntry) {
  // Non-generic errors: the subspace locator cannot separate them; the
  // per-entry decode corrects them when floor((R - K)/2) >= 2.
  Random rng(5);
  auto code = PolyDotCode::Create({6, 8, 4}, {.peers = 12, .m = 2, .n = 2, .d = 1}).value();
  ASSERT_EQ(code->recovery_threshold(), 5);
  for (int trial = 0; trial < 20; ++trial) {
    auto run = RunProduct(*code, &rng, 0, 0, ErrorKind::kDense, 0);
    const auto entry = rng.UniformInt(0, run.results[0].value.size() - 1);
    const std::vector<int> wrong = rng.Sample(12, 2);
    for (auto& r : run.results)
      if (r.peer == wrong[0] || r.peer == wrong[1]) r.value.data()[entry] += rng.Normal() * 3;
    auto decoded = code->Decode(run.results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-10);
    std::vector<int> want = wrong;
    std::sort(want.begin(), want.end());
    EXPECT_EQ(decoded->wrong_peers, want);
  }
  // With R - K = 3 only one per entry is guaranteed: two in the same entry are
  // reported, never mis-corrected.
  for (int trial = 0; trial < 20; ++trial) {
    auto run = RunProduct(*code, &rng, 4, 0, ErrorKind::kDense, 0);
    const auto entry = rng.UniformInt(0, run.results[0].value.size() - 1);
    run.results[0].value.data()[entry] += 1.0;
    run.results[1].value.data()[entry] -= 2.0;
    auto decoded = code->Decode(run.results);
    if (decoded.ok()) {
      EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-9);
    } else {
      EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
    }
  }
}

TEST(PolyDotCode, NaNAndInfResultsAreCorrected) {
  Random rng(11);
  auto code = PolyDotCode::Create({8, 8, 3}, {.peers = 10, .m = 2, .n = 2, .d = 1}).value();
  for (ErrorKind kind : {ErrorKind::kNaN, ErrorKind::kInf}) {
    auto run = RunProduct(*code, &rng, 1, 3, kind, 0);
    auto decoded = code->Decode(run.results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-10);
    EXPECT_EQ(decoded->wrong_peers, run.wrong);
  }
}

TEST(PolyDotCode, ExactlyKResultsDecodeUnverified) {
  Random rng(3);
  auto code = PolyDotCode::Create({5, 7, 2}, {.peers = 8, .m = 2, .n = 2, .d = 1}).value();
  auto run = RunProduct(*code, &rng, 3, 0, ErrorKind::kDense, 0);
  auto decoded = code->Decode(run.results);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_FALSE(decoded->verified);
  EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-10);
}

// Transpose product from the same shard, with stragglers and errors.
TEST(PolyDotCode, TransposeProductFromTheSameShard) {
  for (uint64_t seed = 1; seed <= 80; ++seed) {
    Random rng(seed + 1000);
    Config c = RandomConfig(rng);
    const int kt = c.m * c.n * c.d + c.m * c.n - c.n;
    if (kt > 12) continue;
    const int need = std::max(kt, c.m * c.n * c.d + c.n - 1);
    c.p = int(rng.UniformInt(need + 1, std::min(24, need + 10)));
    auto code = Make(c);
    ASSERT_EQ(code->transpose_threshold(), kt);
    Matrix a = rng.NormalMatrix(c.shape.rows, c.shape.inner);
    Matrix dm = rng.NormalMatrix(c.shape.rows, c.shape.cols);
    const int stragglers = int(rng.UniformInt(0, c.p - kt - 1));
    const int errors =
        int(rng.UniformInt(0, testing::MaxCorrectable(c.p - stragglers, kt,
                                                      code->transpose_threshold() > 0
                                                          ? ((c.shape.inner + c.n - 1) / c.n) *
                                                                ((c.shape.cols + c.d - 1) / c.d)
                                                          : 0)));
    std::vector<int> order = rng.Sample(c.p, c.p);
    std::vector<PeerResult> results;
    std::vector<int> wrong(order.begin() + stragglers, order.begin() + stragglers + errors);
    for (int i = stragglers; i < c.p; ++i) {
      const int p = order[size_t(i)];
      Matrix shard = code->EncodeShard(a, p).value();
      Matrix value = code->PeerTransposeProduct(shard, code->EncodeTransposeInput(dm, p).value());
      if (i < stragglers + errors) testing::InjectError(&value, ErrorKind::kDense, 1e-3, &rng);
      results.push_back({p, value});
    }
    std::sort(wrong.begin(), wrong.end());
    SCOPED_TRACE(Describe(seed, c));
    auto decoded = code->DecodeTranspose(results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_LT(RelativeError(decoded->product, a.transpose() * dm), 1e-9);
    EXPECT_EQ(decoded->wrong_peers, wrong);
  }
}

TEST(PolyDotCode, TransposeNeedsEnoughPeers) {
  auto code = PolyDotCode::Create({4, 4, 2}, {.peers = 6, .m = 2, .n = 2, .d = 1}).value();
  ASSERT_EQ(code->transpose_threshold(), 6);
  auto small = PolyDotCode::Create({4, 4, 2}, {.peers = 5, .m = 2, .n = 2, .d = 1}).value();
  EXPECT_EQ(small->EncodeTransposeInput(Matrix::Ones(4, 2), 0).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(code->EncodeTransposeInput(Matrix::Ones(4, 2), 0).ok());
}

// The coded rank-B update equals the encoding of the updated matrix.
TEST(PolyDotCode, CodedUpdateEqualsEncodingOfUpdatedMatrix) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    Random rng(seed + 5000);
    const Config c = RandomConfig(rng);
    auto code = Make(c);
    Matrix a = rng.NormalMatrix(c.shape.rows, c.shape.inner);
    const int b = int(rng.UniformInt(1, 5));
    Matrix dm = rng.NormalMatrix(c.shape.rows, b), x = rng.NormalMatrix(c.shape.inner, b);
    const double eta = rng.Uniform(0.001, 0.5);
    const Matrix updated = a - eta * dm * x.transpose();
    for (int p = 0; p < c.p; ++p) {
      Matrix shard = code->EncodeShard(a, p).value();
      ASSERT_TRUE(code->UpdateShard(&shard, p, dm, x, eta).ok());
      const Matrix want = code->EncodeShard(updated, p).value();
      EXPECT_LT((shard - want).norm(), 1e-12 * (1 + want.norm())) << Describe(seed, c);
    }
  }
  auto code = PolyDotCode::Create({4, 4, 2}, {.peers = 6, .m = 2, .n = 2}).value();
  Matrix shard = code->EncodeShard(Matrix::Ones(4, 4), 0).value();
  EXPECT_EQ(code->UpdateShard(&shard, 0, Matrix::Ones(4, 2), Matrix::Ones(3, 2), 0.1).code(),
            StatusCode::kInvalidArgument);
}

TEST(PolyDotCode, EquispacedPointsDecodeToo) {
  Random rng(77);
  auto code =
      PolyDotCode::Create({7, 9, 4},
                          {.peers = 10, .m = 2, .n = 2, .d = 1, .points = PointKind::kEquispaced})
          .value();
  auto run = RunProduct(*code, &rng, 1, 3, ErrorKind::kDense, 1.0);
  auto decoded = code->Decode(run.results);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-9);
  EXPECT_EQ(decoded->wrong_peers, run.wrong);
}

}  // namespace polydot_code_test
}  // namespace
}  // namespace polyguard
