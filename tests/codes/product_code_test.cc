#include "polyguard/codes/product_code.h"

#include <gtest/gtest.h>

#include "codes/code_test_util.h"

namespace polyguard {
namespace {

using testing::ErrorKind;
using testing::RelativeError;
using testing::RunProduct;

ProductCodeOptions Options(Strategy s) {
  ProductCodeOptions o;
  o.strategy = s;
  o.shape = {12, 10, 4};
  o.peers = 12;
  o.m = 2;
  o.n = 2;
  o.data_blocks = 6;
  o.replicas = 3;
  return o;
}

// Every strategy goes through the same interface, without special cases:
// with as many wrong results as it claims to correct, it decodes.
TEST(ProductCode, EveryStrategyHonoursItsClaims) {
  for (Strategy s : {Strategy::kUncoded, Strategy::kReplication, Strategy::kMds, Strategy::kPolyDot,
                     Strategy::kAbft}) {
    auto code = MakeProductCode(Options(s));
    ASSERT_TRUE(code.ok()) << code.status();
    SCOPED_TRACE((*code)->Describe());
    EXPECT_EQ((*code)->num_peers(), 12);
    EXPECT_GE((*code)->errors_corrected_probabilistic(), (*code)->errors_corrected_adversarial());
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      Random rng(seed);
      auto run = RunProduct(**code, &rng, 0, (*code)->errors_corrected_probabilistic(),
                            ErrorKind::kDense, 1.0);
      // Replication's claim is per block: put the wrong copies in one block.
      if (s == Strategy::kReplication) {
        run = RunProduct(**code, &rng, 0, 0, ErrorKind::kDense, 0);
        testing::InjectError(&run.results[0].value, ErrorKind::kDense, 1.0, &rng);
      }
      auto decoded = (*code)->Decode(run.results);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-9);
    }
  }
}

TEST(ProductCode, FactoryNamesTheBadField) {
  auto o = Options(Strategy::kPolyDot);
  o.peers = 3;
  auto st = MakeProductCode(o).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("too few peers"), std::string::npos) << st;
  o = Options(Strategy::kReplication);
  o.replicas = 5;
  st = MakeProductCode(o).status();
  EXPECT_NE(st.message().find("multiple of replicas"), std::string::npos) << st;
  EXPECT_EQ(ParseStrategy("genpolydot").value(), Strategy::kPolyDot);
  EXPECT_EQ(ParseStrategy("fountain").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace polyguard
