#include "polyguard/codes/linear_code_decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "codes/code_test_util.h"
#include "polyguard/base/random.h"

namespace polyguard {
namespace {
namespace linear_code_decoder_test {

struct Trial {
  std::vector<int> peers;
  Matrix results;  // L x R
  Matrix coefficients;
  std::vector<int> wrong;
};

// R of the P peers answer; `errors` of them get a random error vector.
Trial MakeTrial(const Matrix& g, int r, int errors, int64_t length, Random* rng) {
  Trial t;
  t.coefficients = rng->NormalMatrix(length, g.cols());
  t.peers = rng->Sample(static_cast<int>(g.rows()), r);
  t.results.resize(length, r);
  for (int j = 0; j < r; ++j)
    t.results.col(j) = t.coefficients * g.row(t.peers[static_cast<size_t>(j)]).transpose();
  for (int e = 0; e < errors; ++e) {
    t.results.col(e) += rng->NormalMatrix(length, 1) * std::pow(10.0, rng->Uniform(-5, 3));
    t.wrong.push_back(t.peers[static_cast<size_t>(e)]);
  }
  std::sort(t.wrong.begin(), t.wrong.end());
  return t;
}

TEST(LinearCodeDecoder, CorrectsUpToRedundancyMinusOneGenericErrors) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Random rng(seed);
    const int k = int(rng.UniformInt(1, 8));
    const int p = k + int(rng.UniformInt(1, 8));
    const Matrix g = rng.NormalMatrix(p, k);
    auto dec = LinearCodeDecoder::Create(g).value();
    const int r = int(rng.UniformInt(k + 1, p));
    const int errors = int(rng.UniformInt(0, r - k - 1));
    Trial t = MakeTrial(g, r, errors, int(rng.UniformInt(errors + 1, 40)), &rng);
    SCOPED_TRACE("seed=" + std::to_string(seed));
    auto out = dec->Decode(t.peers, t.results);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_TRUE(out->verified);
    EXPECT_EQ(out->wrong_peers, t.wrong);
    EXPECT_LT((out->coefficients - t.coefficients).norm() / t.coefficients.norm(), 1e-9);
  }
}

TEST(LinearCodeDecoder, ExactlyKResultsAreDecodedUnverified) {
  Random rng(2);
  const Matrix g = rng.NormalMatrix(6, 4);
  auto dec = LinearCodeDecoder::Create(g).value();
  Trial t = MakeTrial(g, 4, 0, 10, &rng);
  auto out = dec->Decode(t.peers, t.results).value();
  EXPECT_FALSE(out.verified);
  EXPECT_LT((out.coefficients - t.coefficients).norm(), 1e-10);
}

TEST(LinearCodeDecoder, NonFiniteResultsAreWrong) {
  Random rng(4);
  const Matrix g = rng.NormalMatrix(7, 3);
  auto dec = LinearCodeDecoder::Create(g).value();
  Trial t = MakeTrial(g, 7, 0, 12, &rng);
  t.results(3, 2) = std::numeric_limits<double>::quiet_NaN();
  t.results(5, 4) = std::numeric_limits<double>::infinity();
  auto out = dec->Decode(t.peers, t.results).value();
  std::vector<int> want = {t.peers[2], t.peers[4]};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(out.wrong_peers, want);
  EXPECT_LT((out.coefficients - t.coefficients).norm(), 1e-9);
}

TEST(LinearCodeDecoder, ReportsTooManyErrorsAndSingularSubsets) {
  Random rng(6);
  Matrix g = rng.NormalMatrix(6, 3);
  auto dec = LinearCodeDecoder::Create(g).value();
  Trial t = MakeTrial(g, 6, 3, 20, &rng);
  auto out = dec->Decode(t.peers, t.results);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kDataLoss);

  g.row(1) = 2.0 * g.row(0);  // not MDS: peers 0, 1 and any other are singular
  auto bad = LinearCodeDecoder::Create(g).value();
  Matrix y = rng.NormalMatrix(5, 3);
  auto singular = bad->Decode(std::vector<int>{0, 1, 2}, y);
  ASSERT_FALSE(singular.ok());
  EXPECT_NE(singular.status().message().find("singular"), std::string::npos);
}

// Peers whose result is several blocks: every generator column comes back,
// through the plain overload too, and a wrong peer is named once.
TEST(LinearCodeDecoder, PeersWithSeveralBlocks) {
  Random rng(10);
  const int p = 6, g = 2, k = 5;  // threshold ceil(5 / 2) = 3 peers
  const Matrix gen = rng.NormalMatrix(g * p, k);
  auto dec = LinearCodeDecoder::Create(gen, {}, g).value();
  EXPECT_EQ(dec->num_peers(), p);
  EXPECT_EQ(dec->recovery_threshold(), 3);
  const Matrix c = rng.NormalMatrix(20, k);
  Matrix y = c * gen.transpose();  // L x (g P), peer-major
  y.middleCols(2 * g, g) += rng.NormalMatrix(20, g);
  const std::vector<int> peers = {0, 1, 2, 3, 4, 5};
  auto out = dec->Decode(peers, y);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->coefficients.cols(), k);
  EXPECT_LT((out->coefficients - c).norm(), 1e-9 * c.norm());
  EXPECT_EQ(out->wrong_peers, std::vector<int>{2});
  EXPECT_FALSE(LinearCodeDecoder::Create(gen, {}, 5).ok());  // 5 does not divide 12 rows
}

// One budget per decode for the per-entry search (DecoderOptions::max_fits):
// 400 entries with two wrong values of 12, at different peers in every
// entry, are corrected with the default budget and end in DataLoss with a
// budget of 100 fits, after fewer than 100 entries.
TEST(LinearCodeDecoder, ADecodeSpendsAtMostItsBudget) {
  Random rng(32);
  const int p = 12, k = 4, entries = 400;
  const Matrix g = rng.NormalMatrix(p, k);
  Trial t = MakeTrial(g, p, 0, entries, &rng);
  for (int l = 0; l < entries; ++l)
    for (int q : rng.Sample(p, 2)) t.results(l, q) += rng.Uniform(1, 2);
  const auto plenty = LinearCodeDecoder::Create(g).value()->Decode(t.peers, t.results);
  ASSERT_TRUE(plenty.ok()) << plenty.status();
  EXPECT_TRUE(plenty->verified);
  EXPECT_LT((plenty->coefficients - t.coefficients).norm(), 1e-9 * t.coefficients.norm());

  DecoderOptions small;
  small.max_fits = 100;
  const auto out = LinearCodeDecoder::Create(g, small).value()->Decode(t.peers, t.results);
  const int done = testing::EntriesBeforeBudgetSpent(out.status(), 100, entries);
  EXPECT_GE(done, 0) << out.status();
  EXPECT_LT(done, 100) << out.status();

  small.max_fits = 0;
  EXPECT_EQ(LinearCodeDecoder::Create(g, small).status().code(), StatusCode::kInvalidArgument);
}

TEST(LinearCodeDecoder, RejectsBadInput) {
  Random rng(8);
  EXPECT_FALSE(LinearCodeDecoder::Create(rng.NormalMatrix(3, 4)).ok());
  Matrix nan = rng.NormalMatrix(4, 2);
  nan(0, 0) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_FALSE(LinearCodeDecoder::Create(nan).ok());
  auto dec = LinearCodeDecoder::Create(rng.NormalMatrix(4, 2)).value();
  Matrix y = rng.NormalMatrix(3, 2);
  EXPECT_EQ(dec->Decode(std::vector<int>{0, 0}, y).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dec->Decode(std::vector<int>{0, 9}, y).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dec->Decode(std::vector<int>{0}, Matrix(y.leftCols(1))).status().code(),
            StatusCode::kUnavailable);
}

}  // namespace linear_code_decoder_test
}  // namespace
}  // namespace polyguard
