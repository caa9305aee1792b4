#include "polyguard/base/random.h"

#include <gtest/gtest.h>

#include <set>

namespace polyguard {
namespace {
namespace random_test {

TEST(Random, SameSeedSameStream) {
  Random a(42), b(42);
  EXPECT_EQ(a.NormalMatrix(3, 4), b.NormalMatrix(3, 4));
  EXPECT_NE(DeriveSeed(1, {2, 3}), DeriveSeed(1, {3, 2}));
  EXPECT_EQ(DeriveSeed(1, {2, 3}), DeriveSeed(1, {2, 3}));
}

TEST(Random, SampleIsDistinct) {
  Random rng(1);
  for (int n = 1; n < 30; ++n) {
    auto s = rng.Sample(n, n / 2);
    EXPECT_EQ(std::set<int>(s.begin(), s.end()).size(), size_t(n / 2));
    for (int v : s) EXPECT_TRUE(v >= 0 && v < n);
  }
}

}  // namespace random_test
}  // namespace
}  // namespace polyguard
