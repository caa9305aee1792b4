#include "polyguard/conv/im2col_convolution.h"

#include <gtest/gtest.h>

#include "polyguard/base/random.h"

namespace polyguard {
namespace {
namespace im2col_convolution_test {

double Rel(const Matrix& got, const Matrix& want) { return (got - want).norm() / want.norm(); }

ProductCodeOptions Options(Strategy strategy, int peers) {
  ProductCodeOptions o;
  o.strategy = strategy;
  o.peers = peers;
  o.m = 2;
  o.n = 2;
  o.replicas = 2;
  return o;
}

// Every strategy runs a convolution through its own code on the im2col
// product: forward (with bias), input gradient and update agree with the
// direct convolution, for random shapes.
TEST(Im2ColConvolution, EveryStrategyComputesTheConvolutionItsGradientAndUpdate) {
  Random rng(3);
  for (Strategy strategy : {Strategy::kPolyDot, Strategy::kMds, Strategy::kReplication,
                            Strategy::kAbft, Strategy::kUncoded}) {
    for (int t = 0; t < 4; ++t) {
      ConvShape s;
      do {
        s = {.channels = int(rng.UniformInt(1, 3)),
             .height = int(rng.UniformInt(3, 9)),
             .width = int(rng.UniformInt(3, 9)),
             .filters = int(rng.UniformInt(2, 6)),
             .kernel_h = int(rng.UniformInt(1, 3)),
             .kernel_w = int(rng.UniformInt(1, 3)),
             .stride = int(rng.UniformInt(1, 2)),
             .pad = int(rng.UniformInt(0, 1))};
      } while (!ValidateConvShape(s).ok());
      const int batch = int(rng.UniformInt(1, 3)), p = 8;
      auto code = Im2ColConvolution::Create(s, batch, Options(strategy, p));
      ASSERT_TRUE(code.ok()) << code.status();
      SCOPED_TRACE((*code)->Describe());
      const int64_t fs = s.filter_size(), spatial = int64_t(s.out_height()) * s.out_width();
      const Matrix fb = rng.NormalMatrix(s.filters, fs + 1);
      const Matrix x = rng.NormalMatrix(s.input_size(), batch);
      const Matrix dy = rng.NormalMatrix(s.output_size(), batch);
      auto with_bias = [&](const Matrix& w) {
        Matrix y = Conv2d(s, w.leftCols(fs), x);
        for (int n = 0; n < s.filters; ++n) y.middleRows(n * spatial, spatial).array() += w(n, fs);
        return y;
      };
      std::vector<Matrix> shards;
      std::vector<PeerResult> fwd, bwd;
      for (int r = 0; r < p; ++r) {
        shards.push_back((*code)->EncodeShard(fb, r).value());
        fwd.push_back({r, (*code)->PeerProduct(shards.back(), (*code)->EncodeInput(x, r).value())});
        bwd.push_back({r, (*code)->PeerTransposeProduct(
                              shards.back(), (*code)->EncodeTransposeInput(dy, r).value())});
      }
      auto y = (*code)->Decode(fwd);
      ASSERT_TRUE(y.ok()) << y.status();
      EXPECT_LT(Rel(y->product, with_bias(fb)), 1e-10);
      auto dx = (*code)->DecodeTranspose(bwd);
      ASSERT_TRUE(dx.ok()) << dx.status();
      EXPECT_LT(Rel(dx->product, Conv2dInputGradient(s, fb.leftCols(fs), dy)), 1e-10);
      const double eta = 0.1;
      Matrix f_new = fb;
      f_new.leftCols(fs) -= eta * Conv2dFilterGradient(s, x, dy);
      for (int n = 0; n < s.filters; ++n)
        f_new(n, fs) -= eta * dy.middleRows(n * spatial, spatial).sum();
      fwd.clear();
      for (int r = 0; r < p; ++r) {
        ASSERT_TRUE((*code)->UpdateShard(&shards[size_t(r)], r, dy, x, eta).ok());
        fwd.push_back(
            {r, (*code)->PeerProduct(shards[size_t(r)], (*code)->EncodeInput(x, r).value())});
      }
      auto after = (*code)->Decode(fwd);
      ASSERT_TRUE(after.ok()) << after.status();
      EXPECT_LT(Rel(after->product, with_bias(f_new)), 1e-10);
    }
  }
}

TEST(Im2ColConvolution, LayoutsAndBadInput) {
  const ConvShape s{.channels = 2,
                    .height = 5,
                    .width = 4,
                    .filters = 3,
                    .kernel_h = 3,
                    .kernel_w = 2,
                    .stride = 1,
                    .pad = 1};
  Random rng(1);
  const Matrix y = rng.NormalMatrix(s.output_size(), 3);
  EXPECT_EQ(ProductToOutputLayout(s, OutputToProductLayout(s, y)), y);
  // Col2ImBatch is the adjoint of Im2ColBatch: <im2col x, c> = <x, col2im c>.
  const Matrix x = rng.NormalMatrix(s.input_size(), 3);
  const Matrix c = rng.NormalMatrix(s.filter_size(), int64_t(s.out_height()) * s.out_width() * 3);
  EXPECT_NEAR((Im2ColBatch(s, x).array() * c.array()).sum(),
              (x.array() * Col2ImBatch(s, c, 3).array()).sum(), 1e-9);
  auto code = Im2ColConvolution::Create(s, 3, Options(Strategy::kUncoded, 4)).value();
  EXPECT_EQ(code->EncodeInput(Matrix::Zero(s.input_size(), 2), 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code->EncodeTransposeInput(Matrix::Zero(5, 3), 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(Im2ColConvolution::Create(s, 0, Options(Strategy::kUncoded, 4)).ok());
  EXPECT_FALSE(Im2ColConvolution::Create(s, 1, Options(Strategy::kLowWeight, 4)).ok());
}

}  // namespace im2col_convolution_test
}  // namespace
}  // namespace polyguard
