#include "polyguard/codes/replication_code.h"

#include <gtest/gtest.h>

#include "codes/code_test_util.h"

namespace polyguard {
namespace {
namespace replication_code_test {

using testing::ErrorKind;
using testing::RelativeError;
using testing::RunProduct;

TEST(ReplicationCode, Parameters) {
  auto code = ReplicationCode::Create({9, 4, 2}, {.peers = 9, .replicas = 3}).value();
  EXPECT_EQ(code->groups(), 3);
  EXPECT_EQ(code->recovery_threshold(), 7);
  EXPECT_EQ(code->errors_corrected_probabilistic(), 1);
  EXPECT_EQ(code->errors_corrected_adversarial(), 1);
  EXPECT_FALSE(ReplicationCode::Create({9, 4, 2}, {.peers = 8, .replicas = 3}).ok());
  EXPECT_FALSE(ReplicationCode::Create({9, 4, 2}, {.peers = 8, .replicas = 0}).ok());
}

TEST(ReplicationCode, VotesOutWrongCopies) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    Random rng(seed);
    const int r = int(rng.UniformInt(3, 5));
    const int g = int(rng.UniformInt(1, 4));
    auto code =
        ReplicationCode::Create({rng.UniformInt(1, 12), 5, 3}, {.peers = r * g, .replicas = r})
            .value();
    // r - 2 wrong copies of one block.
    auto run = RunProduct(*code, &rng, 0, 0, ErrorKind::kDense, 0);
    const int block = int(rng.UniformInt(0, g - 1));
    std::vector<int> wrong;
    for (int c = 0; c < r - 2; ++c) wrong.push_back(block + c * g);
    for (auto& res : run.results)
      if (std::find(wrong.begin(), wrong.end(), res.peer) != wrong.end())
        testing::InjectError(&res.value, ErrorKind::kDense, 1.0, &rng);
    auto decoded = code->Decode(run.results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_TRUE(decoded->verified);
    EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-14);
    EXPECT_EQ(decoded->wrong_peers, wrong);
  }
}

TEST(ReplicationCode, TwoCopiesDetectButCannotCorrect) {
  Random rng(3);
  auto code = ReplicationCode::Create({6, 4, 2}, {.peers = 6, .replicas = 2}).value();
  auto run = RunProduct(*code, &rng, 0, 1, ErrorKind::kDense, 1.0);
  auto decoded = code->Decode(run.results);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(decoded.status().message().find(std::to_string(run.wrong[0])), std::string::npos);
}

TEST(ReplicationCode, MissingCopies) {
  Random rng(4);
  auto code = ReplicationCode::Create({6, 4, 2}, {.peers = 6, .replicas = 2}).value();
  auto run = RunProduct(*code, &rng, 0, 0, ErrorKind::kDense, 0);
  // Drop peer 0: block 0 has one copy left, unverified.
  std::vector<PeerResult> some(run.results.begin(), run.results.end());
  std::erase_if(some, [](const PeerResult& r) { return r.peer == 0; });
  auto decoded = code->Decode(some);
  ASSERT_TRUE(decoded.ok());
  EXPECT_FALSE(decoded->verified);
  EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-14);
  // Drop both copies of block 0.
  std::erase_if(some, [](const PeerResult& r) { return r.peer == 3; });
  EXPECT_EQ(code->Decode(some).status().code(), StatusCode::kUnavailable);
}

}  // namespace replication_code_test
}  // namespace
}  // namespace polyguard
