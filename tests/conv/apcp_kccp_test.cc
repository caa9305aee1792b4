#include "polyguard/conv/apcp_kccp.h"

#include <gtest/gtest.h>

#include "polyguard/base/random.h"

namespace polyguard {
namespace {
namespace apcp_kccp_test {

// The definition, loop by loop.
Matrix NaiveConv(const ConvShape& s, const Matrix& f, const Matrix& x) {
  const int ho = s.out_height(), wo = s.out_width();
  Matrix y = Matrix::Zero(s.output_size(), x.cols());
  for (Eigen::Index b = 0; b < x.cols(); ++b)
    for (int n = 0; n < s.filters; ++n)
      for (int oy = 0; oy < ho; ++oy)
        for (int ox = 0; ox < wo; ++ox) {
          double acc = 0;
          for (int c = 0; c < s.channels; ++c)
            for (int i = 0; i < s.kernel_h; ++i)
              for (int j = 0; j < s.kernel_w; ++j) {
                const int yy = oy * s.stride + i - s.pad, xx = ox * s.stride + j - s.pad;
                if (yy < 0 || yy >= s.height || xx < 0 || xx >= s.width) continue;
                acc += f(n, (c * s.kernel_h + i) * s.kernel_w + j) *
                       x((c * s.height + yy) * s.width + xx, b);
              }
          y((n * ho + oy) * wo + ox, b) = acc;
        }
  return y;
}

ConvShape RandomShape(Random* rng) {
  ConvShape s;
  s.channels = int(rng->UniformInt(1, 3));
  s.height = int(rng->UniformInt(1, 13));
  s.width = int(rng->UniformInt(1, 11));
  s.filters = int(rng->UniformInt(1, 7));
  s.pad = int(rng->UniformInt(0, 2));
  s.stride = int(rng->UniformInt(1, 3));
  s.kernel_h = int(rng->UniformInt(1, std::min(5, s.height + 2 * s.pad)));
  s.kernel_w = int(rng->UniformInt(1, std::min(5, s.width + 2 * s.pad)));
  return s;
}

TEST(Conv2d, MatchesTheDefinitionOverRandomShapes) {
  Random rng(1);
  for (int t = 0; t < 300; ++t) {
    const ConvShape s = RandomShape(&rng);
    ASSERT_TRUE(ValidateConvShape(s).ok()) << s.Describe();
    const Matrix f = rng.NormalMatrix(s.filters, s.filter_size());
    const Matrix x = rng.NormalMatrix(s.input_size(), rng.UniformInt(1, 3));
    ASSERT_TRUE(CheckConvOperands(s, f, x).ok());
    EXPECT_LT((Conv2d(s, f, x) - NaiveConv(s, f, x)).norm(), 1e-12 * (1 + f.norm() * x.norm()))
        << s.Describe();
  }
}

// A float32 peer's convolution and input gradient at any data scale: its
// operands are scaled by powers of two first (unscaled, filters of 1e-43
// underflowed to a zero output that decoded as verified, and 1e38
// overflowed). Relative to the float64 ones, within float32 roundoff.
class Conv2dFloat32Test : public ::testing::TestWithParam<std::pair<double, double>> {};

TEST_P(Conv2dFloat32Test, FollowsFloat64AtAnyScale) {
  const auto [filter_scale, data_scale] = GetParam();
  const ConvShape s{.channels = 2,
                    .height = 6,
                    .width = 5,
                    .filters = 4,
                    .kernel_h = 3,
                    .kernel_w = 3,
                    .stride = 1,
                    .pad = 1};
  Random rng(2);
  const Matrix f = rng.NormalMatrix(s.filters, s.filter_size()) * filter_scale;
  const Matrix x = rng.NormalMatrix(s.input_size(), 2) * data_scale;
  const Matrix g = rng.NormalMatrix(s.output_size(), 2) * data_scale;
  const Matrix y64 = Conv2d(s, f, x), y32 = Conv2d(s, f, x, Precision::kFloat32);
  // stableNorm: the plain norm's squares underflow for subnormal outputs.
  EXPECT_LT((y32 - y64).stableNorm(), 1e-6 * y64.stableNorm());
  const Matrix d64 = Conv2dInputGradient(s, f, g);
  const Matrix d32 = Conv2dInputGradient(s, f, g, Precision::kFloat32);
  EXPECT_LT((d32 - d64).stableNorm(), 1e-6 * d64.stableNorm());
}

INSTANTIATE_TEST_SUITE_P(Scales, Conv2dFloat32Test,
                         ::testing::Values(std::pair{1.0, 1.0}, std::pair{1e-43, 1.0},
                                           std::pair{1e-100, 1.0}, std::pair{1e38, 1.0},
                                           std::pair{1e100, 1e-20}, std::pair{1e-20, 1e-30},
                                           std::pair{1.0, 1e-310}, std::pair{1e300, 1e-310}));

// APCP slabs and KCCP groups tile the output exactly, for any kernel, stride,
// padding and any numbers of slabs and groups.
TEST(ApcpKccp, BlocksTileTheDirectConvolution) {
  Random rng(2);
  for (int t = 0; t < 400; ++t) {
    const ConvShape s = RandomShape(&rng);
    const int k_a = int(rng.UniformInt(1, s.out_height()));
    const int k_b = int(rng.UniformInt(1, s.filters));
    auto p = PartitionConv(s, k_a, k_b);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->slab.out_height(), p->rows) << s.Describe();
    EXPECT_EQ(p->slab.out_width(), s.out_width()) << s.Describe();
    const Matrix f = rng.NormalMatrix(s.filters, s.filter_size());
    const Matrix x = rng.NormalMatrix(s.input_size(), rng.UniformInt(1, 3));
    Matrix y = Matrix::Constant(s.output_size(), x.cols(), std::nan(""));
    for (int i = 0; i < k_a; ++i) {
      const Matrix slab = ApcpSlab(*p, x, i);
      ASSERT_EQ(slab.rows(), p->slab.input_size());
      for (int l = 0; l < k_b; ++l)
        PlaceConvBlock(*p, i, l, Conv2d(p->slab, KccpGroup(*p, f, l), slab), &y);
    }
    ASSERT_TRUE(y.allFinite()) << "a block left a gap: " << s.Describe() << " k_a=" << k_a
                               << " k_b=" << k_b;
    EXPECT_LT((y - Conv2d(s, f, x)).norm(), 1e-12 * (1 + f.norm() * x.norm()))
        << s.Describe() << " k_a=" << k_a << " k_b=" << k_b;
  }
}

TEST(ApcpKccp, RejectsBadShapesAndSplits) {
  ConvShape s{.channels = 3, .height = 8, .width = 8, .filters = 4, .kernel_h = 3, .kernel_w = 3};
  EXPECT_FALSE(PartitionConv(s, 7, 1).ok());  // H' = 6
  EXPECT_FALSE(PartitionConv(s, 1, 5).ok());  // N = 4
  EXPECT_FALSE(PartitionConv(s, 0, 1).ok());
  ConvShape big = s;
  big.kernel_h = 11;
  EXPECT_NE(PartitionConv(big, 1, 1).status().message().find("kernel"), std::string::npos);
  ConvShape zero = s;
  zero.stride = 0;
  EXPECT_NE(ValidateConvShape(zero).message().find("stride"), std::string::npos);
  EXPECT_FALSE(CheckConvOperands(s, Matrix::Zero(4, 26), Matrix::Zero(192, 1)).ok());
  EXPECT_FALSE(CheckConvOperands(s, Matrix::Zero(4, 27), Matrix::Zero(191, 1)).ok());
}

}  // namespace apcp_kccp_test
}  // namespace
}  // namespace polyguard
