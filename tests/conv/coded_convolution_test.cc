#include "polyguard/conv/coded_convolution.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "polyguard/base/random.h"

namespace polyguard {
namespace {
namespace coded_convolution_test {

double Rel(const Matrix& got, const Matrix& want) { return (got - want).norm() / want.norm(); }

ConvShape RandomShape(Random* rng, int min_out_rows, int min_filters) {
  while (true) {
    ConvShape s;
    s.channels = int(rng->UniformInt(1, 3));
    s.height = int(rng->UniformInt(4, 16));
    s.width = int(rng->UniformInt(2, 9));
    s.filters = int(rng->UniformInt(min_filters, min_filters + 5));
    s.pad = int(rng->UniformInt(0, 2));
    s.stride = int(rng->UniformInt(1, 2));
    s.kernel_h = int(rng->UniformInt(1, 5));
    s.kernel_w = int(rng->UniformInt(1, std::min(5, s.width + 2 * s.pad)));
    if (ValidateConvShape(s).ok() && s.out_height() >= min_out_rows) return s;
  }
}

struct ConvRun {
  ConvShape shape;
  Matrix filters, input, expected;
  std::vector<PeerResult> all;
};

ConvRun Compute(const CodedConvolution& code, const ConvShape& s, Random* rng, int batch) {
  ConvRun run;
  run.shape = s;
  run.filters = rng->NormalMatrix(s.filters, s.filter_size());
  run.input = rng->NormalMatrix(s.input_size(), batch);
  run.expected = Conv2d(s, run.filters, run.input);
  for (int r = 0; r < code.num_peers(); ++r) {
    const Matrix shard = code.EncodeFilters(run.filters, r).value();
    run.all.push_back({r, code.PeerConvolution(shard, code.EncodeInput(run.input, r).value())});
  }
  return run;
}

TEST(CodedConvolution, AnyKPeersDecodeTheExactOutput) {
  Random rng(1);
  for (int t = 0; t < 12; ++t) {
    const int k_a = int(rng.UniformInt(1, 2)), k_b = int(rng.UniformInt(1, 2));
    const int p = k_a * k_b + int(rng.UniformInt(1, 3));
    const ConvShape s = RandomShape(&rng, 2 * k_a, 2 * k_b);
    auto code = CodedConvolution::Create(
                    s, {.peers = p, .k_a = k_a, .k_b = k_b, .batch = int(rng.UniformInt(1, 3))})
                    .value();
    const ConvRun run = Compute(*code, s, &rng, int(code->shape().cols));
    const int k = code->recovery_threshold();
    std::vector<int> idx(static_cast<size_t>(k));
    for (int i = 0; i < k; ++i) idx[size_t(i)] = i;
    int subsets = 0;
    while (true) {
      std::vector<PeerResult> some;
      for (int r : idx) some.push_back(run.all[size_t(r)]);
      auto got = code->Decode(some);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_LT(Rel(got->product, run.expected), 1e-11) << s.Describe();
      ++subsets;
      int i = k - 1;
      while (i >= 0 && idx[size_t(i)] == p - k + i) --i;
      if (i < 0) break;
      ++idx[size_t(i)];
      for (int j = i + 1; j < k; ++j) idx[size_t(j)] = idx[size_t(j - 1)] + 1;
    }
    EXPECT_GT(subsets, 0);
  }
}

TEST(CodedConvolution, WrongPeersAreLocatedAndCorrected) {
  Random rng(2);
  for (int t = 0; t < 30; ++t) {
    const int k_a = int(rng.UniformInt(1, 2)), k_b = int(rng.UniformInt(1, 2));
    const int p = k_a * k_b + int(rng.UniformInt(2, 5));
    const ConvShape s = RandomShape(&rng, 2 * k_a, 2 * k_b);
    auto code =
        CodedConvolution::Create(s, {.peers = p, .k_a = k_a, .k_b = k_b, .batch = 2}).value();
    ConvRun run = Compute(*code, s, &rng, 2);
    const int k = code->recovery_threshold();
    const int64_t l = run.all[0].value.size() / 4;
    const int most = std::max<int>((p - k) / 2, int(std::min<int64_t>(l / 4, p - k - 1)));
    const int errors = int(rng.UniformInt(1, most));
    std::vector<int> wrong = rng.Sample(p, errors);
    std::sort(wrong.begin(), wrong.end());
    for (int w : wrong)
      run.all[size_t(w)].value +=
          rng.NormalMatrix(run.all[0].value.rows(), run.all[0].value.cols());
    auto got = code->Decode(run.all);
    ASSERT_TRUE(got.ok()) << got.status() << " " << s.Describe();
    EXPECT_TRUE(got->verified);
    EXPECT_EQ(got->wrong_peers, wrong);
    EXPECT_LT(Rel(got->product, run.expected), 1e-9);
  }
}

// <conv(X, F), dY> = <X, dX> = <F, dF>: the gradients are the adjoints.
TEST(Conv2dGradients, AreTheAdjointsOfTheConvolution) {
  Random rng(3);
  for (int t = 0; t < 100; ++t) {
    const ConvShape s = RandomShape(&rng, 1, 1);
    const Matrix f = rng.NormalMatrix(s.filters, s.filter_size());
    const Matrix x = rng.NormalMatrix(s.input_size(), 2);
    const Matrix dy = rng.NormalMatrix(s.output_size(), 2);
    const double y_dy = Conv2d(s, f, x).cwiseProduct(dy).sum();
    EXPECT_NEAR(x.cwiseProduct(Conv2dInputGradient(s, f, dy)).sum(), y_dy,
                1e-10 * (1 + std::abs(y_dy)));
    EXPECT_NEAR(f.cwiseProduct(Conv2dFilterGradient(s, x, dy)).sum(), y_dy,
                1e-10 * (1 + std::abs(y_dy)));
  }
}

// The input gradient from any 2 k_b - 1 peers, wrong ones located; the
// coded filter update equals the uncoded one.
TEST(CodedConvolution, TransposeAndUpdateMatchTheUncodedGradients) {
  Random rng(4);
  for (int t = 0; t < 12; ++t) {
    const int k_a = int(rng.UniformInt(1, 2)), k_b = int(rng.UniformInt(1, 3));
    const int p = std::max(k_a * k_b, 2 * k_b - 1) + int(rng.UniformInt(2, 4));
    const ConvShape s = RandomShape(&rng, 2 * k_a, 2 * k_b);
    const int batch = int(rng.UniformInt(1, 2));
    auto code =
        CodedConvolution::Create(s, {.peers = p, .k_a = k_a, .k_b = k_b, .batch = batch}).value();
    SCOPED_TRACE(code->Describe());
    EXPECT_EQ(code->transpose_threshold(), 2 * k_b - 1);
    const Matrix f = rng.NormalMatrix(s.filters, s.filter_size());
    const Matrix x = rng.NormalMatrix(s.input_size(), batch);
    const Matrix dy = rng.NormalMatrix(s.output_size(), batch);
    const Matrix want_dx = Conv2dInputGradient(s, f, dy);
    std::vector<Matrix> shards;
    std::vector<PeerResult> all;
    for (int r = 0; r < p; ++r) {
      shards.push_back(code->EncodeShard(f, r).value());
      all.push_back({r, code->PeerTransposeProduct(shards.back(),
                                                   code->EncodeTransposeInput(dy, r).value())});
    }
    const int kt = code->transpose_threshold();
    for (int first = 0; first + kt <= p; ++first) {
      std::vector<PeerResult> some(all.begin() + first, all.begin() + first + kt);
      auto got = code->DecodeTranspose(some);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_LT(Rel(got->product, want_dx), 1e-10);
    }
    // One wrong peer among all P (P - kt - 1 >= 1), enough entries to locate it.
    std::vector<PeerResult> wrong = all;
    const int bad = int(rng.UniformInt(0, p - 1));
    wrong[size_t(bad)].value += rng.NormalMatrix(wrong[0].value.rows(), wrong[0].value.cols());
    auto located = code->DecodeTranspose(wrong);
    ASSERT_TRUE(located.ok()) << located.status();
    EXPECT_EQ(located->wrong_peers, std::vector<int>{bad});
    EXPECT_LT(Rel(located->product, want_dx), 1e-9);
    // Update every shard locally, then the forward decode uses F - eta dF.
    const double eta = 0.1;
    std::vector<PeerResult> fwd;
    for (int r = 0; r < p; ++r) {
      ASSERT_TRUE(code->UpdateShard(&shards[size_t(r)], r, dy, x, eta).ok());
      fwd.push_back({r, code->PeerProduct(shards[size_t(r)], code->EncodeInput(x, r).value())});
    }
    const Matrix f_new = f - eta * Conv2dFilterGradient(s, x, dy);
    auto after = code->Decode(fwd);
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_LT(Rel(after->product, Conv2d(s, f_new, x)), 1e-10);
  }
}

// The direct convolution plus a bias per output channel.
Matrix ConvWithBias(const ConvShape& s, const Matrix& fb, const Matrix& x) {
  const int64_t fs = s.filter_size(), spatial = int64_t(s.out_height()) * s.out_width();
  Matrix y = Conv2d(s, fb.leftCols(fs), x);
  for (int n = 0; n < s.filters; ++n) y.middleRows(n * spatial, spatial).array() += fb(n, fs);
  return y;
}

// With the bias folded in ([F | b]), the forward decodes conv + b from any K
// peers, and the local update moves b by the output gradient's sums.
TEST(CodedConvolution, BiasIsCodedDecodedAndUpdatedWithTheFilters) {
  Random rng(6);
  for (int t = 0; t < 12; ++t) {
    const int k_a = int(rng.UniformInt(1, 2)), k_b = int(rng.UniformInt(1, 2));
    const int p = std::max(k_a * k_b, 2 * k_b - 1) + int(rng.UniformInt(1, 3));
    const ConvShape s = RandomShape(&rng, 2 * k_a, 2 * k_b);
    const int batch = int(rng.UniformInt(1, 3));
    auto code = CodedConvolution::Create(
                    s, {.peers = p, .k_a = k_a, .k_b = k_b, .batch = batch, .bias = true})
                    .value();
    SCOPED_TRACE(code->Describe());
    EXPECT_EQ(code->shape().inner, s.filter_size() + 1);
    Matrix fb = rng.NormalMatrix(s.filters, s.filter_size() + 1);
    const Matrix x = rng.NormalMatrix(s.input_size(), batch);
    const Matrix dy = rng.NormalMatrix(s.output_size(), batch);
    std::vector<Matrix> shards;
    std::vector<PeerResult> all;
    for (int r = 0; r < p; ++r) {
      shards.push_back(code->EncodeShard(fb, r).value());
      all.push_back({r, code->PeerProduct(shards.back(), code->EncodeInput(x, r).value())});
    }
    const int k = code->recovery_threshold();
    std::vector<PeerResult> first(all.end() - k, all.end());
    auto got = code->Decode(first);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_LT(Rel(got->product, ConvWithBias(s, fb, x)), 1e-10);
    // The bias takes no part in the input gradient.
    std::vector<PeerResult> t_all;
    for (int r = 0; r < p; ++r)
      t_all.push_back({r, code->PeerTransposeProduct(shards[size_t(r)],
                                                     code->EncodeTransposeInput(dy, r).value())});
    auto dx = code->DecodeTranspose(t_all);
    ASSERT_TRUE(dx.ok()) << dx.status();
    EXPECT_LT(Rel(dx->product, Conv2dInputGradient(s, fb.leftCols(s.filter_size()), dy)), 1e-10);
    const double eta = 0.05;
    std::vector<PeerResult> fwd;
    for (int r = 0; r < p; ++r) {
      ASSERT_TRUE(code->UpdateShard(&shards[size_t(r)], r, dy, x, eta).ok());
      fwd.push_back({r, code->PeerProduct(shards[size_t(r)], code->EncodeInput(x, r).value())});
    }
    const int64_t spatial = int64_t(s.out_height()) * s.out_width();
    Matrix f_new = fb;
    f_new.leftCols(s.filter_size()) -= eta * Conv2dFilterGradient(s, x, dy);
    for (int n = 0; n < s.filters; ++n)
      f_new(n, s.filter_size()) -= eta * dy.middleRows(n * spatial, spatial).sum();
    auto after = code->Decode(fwd);
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_LT(Rel(after->product, ConvWithBias(s, f_new, x)), 1e-10);
  }
}

// Scrub: the probes of every shard name the corrupted ones (up to
// P - k_b - 1); repair regenerates a shard exactly from any healthy k_b.
TEST(CodedConvolution, ScrubLocatesCorruptedShardsAndRepairRebuildsThem) {
  Random rng(8);
  for (int t = 0; t < 30; ++t) {
    const int k_a = int(rng.UniformInt(1, 3)), k_b = int(rng.UniformInt(1, 3));
    const int p = std::max(k_a * k_b, 2 * k_b - 1) + int(rng.UniformInt(2, 4));
    const ConvShape s = RandomShape(&rng, 2 * k_a, 2 * k_b);
    auto code =
        CodedConvolution::Create(s, {.peers = p, .k_a = k_a, .k_b = k_b, .batch = 1, .bias = true})
            .value();
    SCOPED_TRACE(code->Describe());
    ASSERT_TRUE(code->supports_training());
    const Matrix fb = rng.NormalMatrix(s.filters, s.filter_size() + 1);
    std::vector<Matrix> shards;
    for (int r = 0; r < p; ++r) shards.push_back(code->EncodeShard(fb, r).value());
    // Corrupt up to P - k_b - 1 random shards.
    const int bad_count =
        int(rng.UniformInt(0, std::min<int64_t>(p - k_b - 1, s.filter_size() + 1)));
    std::vector<int> bad;
    while (int(bad.size()) < bad_count) {
      const int b = int(rng.UniformInt(0, p - 1));
      if (std::find(bad.begin(), bad.end(), b) == bad.end()) bad.push_back(b);
    }
    std::sort(bad.begin(), bad.end());
    std::vector<Matrix> stored = shards;
    // Each at its own column (a probe cannot tell apart errors that hit the
    // same column of several shards: the probabilistic model's assumption),
    // either one entry (one block of the peer) or the whole column (both).
    std::vector<int64_t> cols;
    for (int b : bad) {
      int64_t j;
      do j = rng.UniformInt(0, s.filter_size());
      while (std::find(cols.begin(), cols.end(), j) != cols.end());
      cols.push_back(j);
      if (rng.UniformInt(0, 1) == 0) {
        stored[size_t(b)](rng.UniformInt(0, stored[0].rows() - 1), j) += rng.Normal();
      } else {
        stored[size_t(b)].col(j).array() += 1.0;
      }
    }
    const Vector probe = rng.NormalMatrix(code->probe_length(), 1).col(0);
    std::vector<PeerResult> probes;
    for (int r = 0; r < p; ++r) probes.push_back({r, code->ProbeShard(stored[size_t(r)], probe)});
    auto found = code->CheckProbes(probes);
    ASSERT_TRUE(found.ok()) << found.status() << " corrupted " << ::testing::PrintToString(bad);
    EXPECT_EQ(*found, bad);
    std::vector<int> healthy;
    for (int r = 0; r < p; ++r)
      if (!std::binary_search(bad.begin(), bad.end(), r)) healthy.push_back(r);
    for (int target = 0; target < p; ++target) {
      auto sources = code->RepairSources(target, healthy);
      ASSERT_TRUE(sources.ok()) << sources.status();
      ASSERT_EQ(int(sources->size()), k_b);
      std::vector<PeerResult> from;
      for (int q : *sources) {
        EXPECT_NE(q, target);
        EXPECT_TRUE(std::binary_search(healthy.begin(), healthy.end(), q));
        from.push_back({q, stored[size_t(q)]});
      }
      auto rebuilt = code->RepairShard(target, from);
      ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
      EXPECT_LT(Rel(*rebuilt, shards[size_t(target)]), 1e-11) << "target " << target;
    }
  }
  auto code =
      CodedConvolution::Create(
          {.channels = 1, .height = 6, .width = 6, .filters = 4, .kernel_h = 3, .kernel_w = 3},
          {.peers = 5, .k_a = 1, .k_b = 2})
          .value();
  EXPECT_EQ(code->RepairSources(0, std::vector<int>{0, 1}).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(code->RepairShard(0, std::vector<PeerResult>{{1, Matrix::Zero(4, 9)}}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(CodedConvolution, RejectsBadInput) {
  ConvShape s{.channels = 2, .height = 8, .width = 8, .filters = 4, .kernel_h = 3, .kernel_w = 3};
  EXPECT_FALSE(CodedConvolution::Create(s, {.peers = 3, .k_a = 2, .k_b = 2}).ok());  // K > P
  // 8 slabs > H' = 6, and 6 groups > N = 4: named in the caller's k_a, k_b.
  EXPECT_EQ(CodedConvolution::Create(s, {.peers = 8, .k_a = 4, .k_b = 1}).status().message(),
            "coded convolution: conv " + s.Describe() +
                " has 6 output rows, k_a = 4 needs 2 k_a = 8 input slabs of at least one row");
  EXPECT_EQ(CodedConvolution::Create(s, {.peers = 8, .k_a = 1, .k_b = 3}).status().message(),
            "coded convolution: conv " + s.Describe() +
                " has 4 filters, k_b = 3 needs 2 k_b = 6 filter groups of at least one");
  auto code = CodedConvolution::Create(s, {.peers = 6, .k_a = 2, .k_b = 2}).value();
  EXPECT_FALSE(code->EncodeFilters(Matrix::Zero(4, 17), 0).ok());
  EXPECT_FALSE(code->EncodeFilters(Matrix::Zero(4, 18), 6).ok());
  EXPECT_FALSE(code->EncodeInput(Matrix::Zero(127, 1), 0).ok());
  EXPECT_FALSE(code->EncodeInput(Matrix::Zero(128, 2), 0).ok());  // batch 1
  EXPECT_FALSE(CodedConvolution::Create(s, {.peers = 6, .k_a = 2, .k_b = 2, .batch = 0}).ok());
  auto few = code->Decode(std::vector<PeerResult>{});
  EXPECT_EQ(few.status().code(), StatusCode::kUnavailable);
  auto shape = code->Decode(std::vector<PeerResult>{{0, Matrix::Zero(3, 4)}});
  EXPECT_EQ(shape.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace coded_convolution_test
}  // namespace
}  // namespace polyguard
