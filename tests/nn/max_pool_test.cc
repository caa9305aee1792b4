#include "polyguard/nn/max_pool.h"

#include <gtest/gtest.h>

#include "polyguard/base/random.h"

namespace polyguard {
namespace {
namespace max_pool_test {

TEST(MaxPool, MatchesTheDefinitionAndItsGradient) {
  Random rng(1);
  for (int t = 0; t < 100; ++t) {
    PoolShape s;
    s.channels = int(rng.UniformInt(1, 3));
    s.height = int(rng.UniformInt(2, 9));
    s.width = int(rng.UniformInt(2, 9));
    s.size = int(rng.UniformInt(1, std::min(s.height, s.width)));
    s.stride = int(rng.UniformInt(1, 3));
    ASSERT_TRUE(ValidatePoolShape(s).ok());
    const Matrix x = rng.NormalMatrix(s.input_size(), 2);
    Matrix y;
    std::vector<int64_t> arg;
    MaxPool2d(s, x, &y, &arg);
    for (Eigen::Index b = 0; b < 2; ++b)
      for (int c = 0; c < s.channels; ++c)
        for (int oy = 0; oy < s.out_height(); ++oy)
          for (int ox = 0; ox < s.out_width(); ++ox) {
            double m = -1e300;
            for (int i = 0; i < s.size; ++i)
              for (int j = 0; j < s.size; ++j)
                m = std::max(
                    m, x((c * s.height + oy * s.stride + i) * s.width + ox * s.stride + j, b));
            EXPECT_EQ(y((c * s.out_height() + oy) * s.out_width() + ox, b), m);
          }
    // d(sum(w o y))/dx by finite differences (maxima are unique with N(0,1)).
    const Matrix w = rng.NormalMatrix(y.rows(), y.cols());
    const Matrix dx = MaxPool2dBackward(s, w, arg);
    for (int probe = 0; probe < 5; ++probe) {
      const Eigen::Index r = rng.UniformInt(0, x.rows() - 1), b = rng.UniformInt(0, 1);
      Matrix xp = x;
      xp(r, b) += 1e-6;
      Matrix yp;
      std::vector<int64_t> ap;
      MaxPool2d(s, xp, &yp, &ap);
      EXPECT_NEAR((w.cwiseProduct(yp - y)).sum() / 1e-6, dx(r, b), 1e-6);
    }
  }
}

TEST(MaxPool, RejectsBadShapes) {
  EXPECT_FALSE(ValidatePoolShape({.channels = 1, .height = 2, .width = 2, .size = 3}).ok());
  EXPECT_FALSE(ValidatePoolShape({.channels = 0}).ok());
  EXPECT_FALSE(
      ValidatePoolShape({.channels = 1, .height = 4, .width = 4, .size = 2, .stride = 0}).ok());
}

}  // namespace max_pool_test
}  // namespace
}  // namespace polyguard
