// ComputeCleanProduct against each peer's own encode and product, and the
// typical scale: a median that one huge (wrong) result cannot move.
#include "polyguard/codes/product_trial.h"

#include <gtest/gtest.h>

#include <limits>

#include "polyguard/base/random.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard {
namespace {
namespace product_trial_test {

TEST(ProductTrial, ResultsAreThePeersOwnProductsAndDecodeToTheProduct) {
  auto code = MakeProductCode({.strategy = Strategy::kPolyDot,
                               .shape = {.rows = 8, .inner = 6, .cols = 4},
                               .peers = 10,
                               .m = 2,
                               .n = 2,
                               .d = 1});
  ASSERT_TRUE(code.ok()) << code.status();
  Random rng(3);
  const Matrix a = rng.NormalMatrix(8, 6), b = rng.NormalMatrix(6, 4);
  const std::vector<int> peers = {9, 2, 5, 0, 7, 1, 3, 8};
  auto clean = ComputeCleanProduct(**code, a, b, peers);
  ASSERT_TRUE(clean.ok()) << clean.status();
  ASSERT_EQ(clean->results.size(), peers.size());
  for (size_t i = 0; i < peers.size(); ++i) {
    EXPECT_EQ(clean->results[i].peer, peers[i]);
    const Matrix own = (*code)->PeerProduct((*code)->EncodeShard(a, peers[i]).value(),
                                            (*code)->EncodeInput(b, peers[i]).value());
    EXPECT_EQ(clean->results[i].value, own);
  }
  EXPECT_EQ(clean->expected, a * b);
  auto decoded = (*code)->Decode(clean->results);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_LE((decoded->product - a * b).norm(), 1e-10 * (a * b).norm());
  EXPECT_EQ(ComputeCleanProduct(**code, a, b)->results.size(), 10u);  // every peer
  EXPECT_FALSE(ComputeCleanProduct(**code, a, b, std::vector<int>{10}).ok());
}

TEST(ProductTrial, TypicalScaleIsTheMedianRms) {
  std::vector<PeerResult> r = {{0, Matrix::Constant(2, 2, 1.0)},
                               {1, Matrix::Constant(2, 2, 3.0)},
                               {2, Matrix::Constant(2, 2, 2.0)}};
  EXPECT_DOUBLE_EQ(TypicalResultScale(r), 2.0);
  r[1].value.setConstant(1e300);  // a huge wrong result does not set the scale
  EXPECT_DOUBLE_EQ(TypicalResultScale(r), 2.0);
  r[0].value.setZero();
  r[2].value.setZero();
  EXPECT_EQ(TypicalResultScale(r), 0.0);  // zero results: ApplySoftError's own scaling
  EXPECT_EQ(TypicalResultScale({}), 1.0);
}

}  // namespace product_trial_test
}  // namespace
}  // namespace polyguard
