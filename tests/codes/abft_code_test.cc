#include "polyguard/codes/abft_code.h"

#include <gtest/gtest.h>

#include "codes/code_test_util.h"

namespace polyguard {
namespace {
namespace abft_code_test {

using testing::ErrorKind;
using testing::RelativeError;
using testing::RunProduct;

TEST(AbftCode, CorrectsOneWrongEntryPerPeer) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    Random rng(seed);
    const int p = int(rng.UniformInt(1, 8));
    auto code =
        AbftCode::Create({rng.UniformInt(1, 20), rng.UniformInt(1, 8), rng.UniformInt(1, 6)},
                         {.peers = p})
            .value();
    const ErrorKind kinds[] = {ErrorKind::kEntry, ErrorKind::kNaN, ErrorKind::kInf};
    const int errors = int(rng.UniformInt(0, p));
    const ErrorKind kind = kinds[rng.UniformInt(0, 2)];
    const double magnitude = std::pow(10.0, rng.Uniform(-6, 6));
    auto run = RunProduct(*code, &rng, 0, errors, kind, magnitude);
    auto decoded = code->Decode(run.results);
    ASSERT_TRUE(decoded.ok()) << decoded.status() << " seed=" << seed;
    EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-10) << seed;
    // An error can land in the checksum row/column: then the data are fine
    // and the peer is still reported.
    EXPECT_EQ(decoded->wrong_peers, run.wrong) << seed;
  }
}

TEST(AbftCode, DetectsDenseErrors) {
  Random rng(2);
  auto code = AbftCode::Create({8, 5, 4}, {.peers = 2}).value();
  auto run = RunProduct(*code, &rng, 0, 1, ErrorKind::kDense, 1.0);
  auto decoded = code->Decode(run.results);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(decoded.status().message().find("peer " + std::to_string(run.wrong[0])),
            std::string::npos);
}

TEST(AbftCode, NeedsEveryPeer) {
  Random rng(3);
  auto code = AbftCode::Create({8, 5, 4}, {.peers = 4}).value();
  auto run = RunProduct(*code, &rng, 1, 0, ErrorKind::kDense, 0);
  EXPECT_EQ(code->Decode(run.results).status().code(), StatusCode::kUnavailable);
}

}  // namespace abft_code_test
}  // namespace
}  // namespace polyguard
