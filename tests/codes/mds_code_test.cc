#include "polyguard/codes/mds_code.h"

#include <gtest/gtest.h>

#include "codes/code_test_util.h"

namespace polyguard {
namespace {
namespace mds_code_test {

using testing::ErrorKind;
using testing::RelativeError;
using testing::RunProduct;

TEST(MdsCode, IsSystematic) {
  auto code = MdsCode::Create({10, 6, 3}, {.peers = 9, .data_blocks = 5}).value();
  EXPECT_TRUE(code->generator().topRows(5).isIdentity());
  Random rng(1);
  Matrix a = rng.NormalMatrix(10, 6);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(code->EncodeShard(a, i).value(), a.middleRows(2 * i, 2));
  EXPECT_EQ(code->recovery_threshold(), 5);
  EXPECT_EQ(code->errors_corrected_probabilistic(), 3);
  EXPECT_EQ(code->errors_corrected_adversarial(), 2);
}

TEST(MdsCode, RejectsBadParameters) {
  EXPECT_FALSE(MdsCode::Create({4, 4, 4}, {.peers = 4, .data_blocks = 5}).ok());
  EXPECT_FALSE(MdsCode::Create({4, 4, 4}, {.peers = 4, .data_blocks = 0}).ok());
  EXPECT_FALSE(MdsCode::Create({4, 0, 4}, {.peers = 4, .data_blocks = 2}).ok());
}

TEST(MdsCode, DecodesAndLocatesAcrossRandomConfigurations) {
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    Random rng(seed + 77);
    const int p = int(rng.UniformInt(3, 24));
    const int q = int(rng.UniformInt(1, std::min(p - 1, 10)));
    auto code = MdsCode::Create({rng.UniformInt(1, 15), rng.UniformInt(1, 9), rng.UniformInt(1, 6)},
                                {.peers = p, .data_blocks = q})
                    .value();
    const int stragglers = int(rng.UniformInt(0, p - q - 1));
    const int errors = int(rng.UniformInt(
        0, testing::MaxCorrectable(p - stragglers, q, code->result_doubles_per_peer())));
    const ErrorKind kind = rng.Uniform() < 0.7 ? ErrorKind::kDense : ErrorKind::kNaN;
    const double magnitude = std::pow(10.0, rng.Uniform(-8, 8));
    auto run = RunProduct(*code, &rng, stragglers, errors, kind, magnitude);
    SCOPED_TRACE("seed=" + std::to_string(seed) + " " + code->Describe());
    auto decoded = code->Decode(run.results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_TRUE(decoded->verified);
    EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-9);
    EXPECT_EQ(decoded->wrong_peers, run.wrong);
  }
}

TEST(MdsCode, TooManyErrorsAreReported) {
  Random rng(8);
  auto code = MdsCode::Create({12, 6, 4}, {.peers = 10, .data_blocks = 6}).value();
  auto run = RunProduct(*code, &rng, 0, 4, ErrorKind::kDense, 1.0);
  auto decoded = code->Decode(run.results);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
}

}  // namespace mds_code_test
}  // namespace
}  // namespace polyguard
