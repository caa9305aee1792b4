// The coded convolution layer's code (MakeCodedConv2dCode) in float32: the
// peers' convolutions run in float32, and decodes use a tolerance calibrated
// to float32 roundoff (DecoderForPrecision), for FCDCC and im2col alike.
#include "polyguard/nn/coded_conv2d.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "polyguard/base/random.h"
#include "polyguard/conv/convolution.h"

namespace polyguard {
namespace {
namespace coded_conv2d_test {

double Rel(const Matrix& got, const Matrix& want) { return (got - want).norm() / want.norm(); }

CodedConv2dOptions Lenet2(bool fcdcc, Precision precision) {
  CodedConv2dOptions o;
  o.conv = {.channels = 3,
            .height = 12,
            .width = 12,
            .filters = 8,
            .kernel_h = 5,
            .kernel_w = 5,
            .stride = 1,
            .pad = 2};
  o.batch = 4;
  o.code.strategy = Strategy::kPolyDot;
  o.code.k_a = 2;
  o.code.k_b = 2;
  o.code.m = 2;
  o.code.n = 2;
  o.code.precision = precision;
  o.fcdcc = fcdcc;
  return o;
}

struct ConvRun {
  Matrix expected, expected_dx;
  std::vector<PeerResult> forward, transpose;
};

ConvRun Compute(const ProductCode& code, const CodedConv2dOptions& o, Random* rng) {
  ConvRun run;
  const Matrix filters = rng->NormalMatrix(o.conv.filters, o.conv.filter_size() + 1);
  const Matrix x = rng->NormalMatrix(o.conv.input_size(), o.batch);
  const Matrix dy = rng->NormalMatrix(o.conv.output_size(), o.batch);
  run.expected = Conv2d(o.conv, filters.leftCols(o.conv.filter_size()), x);
  for (Eigen::Index n = 0; n < o.conv.filters; ++n)
    run.expected
        .middleRows(n * o.conv.out_height() * o.conv.out_width(),
                    o.conv.out_height() * o.conv.out_width())
        .array() += filters(n, o.conv.filter_size());
  run.expected_dx = Conv2dInputGradient(o.conv, filters.leftCols(o.conv.filter_size()), dy);
  for (int r = 0; r < code.num_peers(); ++r) {
    const Matrix shard = code.EncodeShard(filters, r).value();
    run.forward.push_back({r, code.PeerProduct(shard, code.EncodeInput(x, r).value())});
    run.transpose.push_back(
        {r, code.PeerTransposeProduct(shard, code.EncodeTransposeInput(dy, r).value())});
  }
  return run;
}

class CodedConv2dFloat32 : public ::testing::TestWithParam<bool> {};

TEST_P(CodedConv2dFloat32, ConvolvesInFloat32AndNamesNoHonestPeer) {
  const CodedConv2dOptions o32 = Lenet2(GetParam(), Precision::kFloat32);
  const CodedConv2dOptions o64 = Lenet2(GetParam(), Precision::kFloat64);
  auto code = MakeCodedConv2dCode(o32, 8).value();
  auto code64 = MakeCodedConv2dCode(o64, 8).value();
  EXPECT_EQ(code->precision(), Precision::kFloat32);
  Random rng(7), rng64(7);
  const ConvRun run = Compute(*code, o32, &rng);
  const ConvRun run64 = Compute(*code64, o64, &rng64);  // the same operands
  // Float32 arithmetic, not float64: results differ at float32 roundoff.
  for (int r = 0; r < 8; ++r) {
    const double d = Rel(run.forward[size_t(r)].value, run64.forward[size_t(r)].value);
    EXPECT_GT(d, 1e-9) << "peer " << r;
    EXPECT_LT(d, 1e-5) << "peer " << r;
  }
  // Every subset of R >= K + 1 results: no peer named, the product within
  // float32 roundoff; the float64 code's tolerance would see that roundoff
  // as errors (the calibration is what passes them).
  for (bool transpose : {false, true}) {
    const std::vector<PeerResult>& all = transpose ? run.transpose : run.forward;
    const Matrix& want = transpose ? run.expected_dx : run.expected;
    const int k = transpose ? code->transpose_threshold() : code->recovery_threshold();
    for (int r = k + 1; r <= 8; ++r) {
      for (int subset = 0; subset < 6; ++subset) {
        std::vector<PeerResult> some;
        for (int q : rng.Sample(8, r)) some.push_back(all[size_t(q)]);
        auto d = transpose ? code->DecodeTranspose(some) : code->Decode(some);
        ASSERT_TRUE(d.ok()) << d.status() << (transpose ? " transpose" : " forward") << " R " << r;
        EXPECT_TRUE(d->wrong_peers.empty()) << (transpose ? "transpose" : "forward") << " R " << r;
        EXPECT_TRUE(d->verified);
        EXPECT_LT(Rel(d->product, want), 1e-4);
      }
    }
    auto strict = transpose ? code64->DecodeTranspose(all) : code64->Decode(all);
    EXPECT_TRUE(!strict.ok() || !strict->wrong_peers.empty())
        << "a float64 tolerance passed float32 results";
  }
  // A wrong result 1e-2 of the typical result in every entry is located.
  std::vector<PeerResult> wrong = run.forward;
  wrong[3].value += 1e-2 * wrong[3].value.norm() / std::sqrt(double(wrong[3].value.size())) *
                    rng.NormalMatrix(wrong[3].value.rows(), wrong[3].value.cols());
  auto d = code->Decode(wrong);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->wrong_peers, std::vector<int>{3});
  EXPECT_LT(Rel(d->product, run.expected), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(CodedConv2d, CodedConv2dFloat32, ::testing::Values(true, false),
                         [](const auto& info) {
                           return std::string(info.param ? "fcdcc" : "im2col");
                         });

}  // namespace coded_conv2d_test
}  // namespace
}  // namespace polyguard
