#include "polyguard/optim/sgd.h"

#include <gtest/gtest.h>

#include <cmath>

#include "polyguard/codes/polydot_code.h"

#include "polyguard/base/random.h"

namespace polyguard {
namespace {
namespace sgd_test {

// Coded SGD with momentum and weight decay, step after step, equals the
// encoding of uncoded SGD: nothing needs re-encoding.
TEST(CodedSgd, FollowsUncodedSgdInCodedForm) {
  Random rng(3);
  const int rows = 7, inner = 6, b = 3, peers = 8;
  auto code = PolyDotCode::Create({rows, inner, b}, {.peers = peers, .m = 2, .n = 2}).value();
  const SgdOptions o{.learning_rate = 0.1, .momentum = 0.9, .weight_decay = 0.01};
  Matrix a = rng.NormalMatrix(rows, inner), v = Matrix::Zero(rows, inner);
  std::vector<Matrix> shards, velocities;
  for (int p = 0; p < peers; ++p) {
    shards.push_back(code->EncodeShard(a, p).value());
    velocities.push_back(Matrix::Zero(shards.back().rows(), shards.back().cols()));
  }
  for (int step = 0; step < 10; ++step) {
    const Matrix d = rng.NormalMatrix(rows, b), x = rng.NormalMatrix(inner, b);
    v = o.momentum * v + d * x.transpose();
    a = (1 - o.learning_rate * o.weight_decay) * a - o.learning_rate * v;
    for (int p = 0; p < peers; ++p) {
      ASSERT_TRUE(CodedSgdStep(*code, p, o, d, x, &shards[size_t(p)], &velocities[size_t(p)]).ok());
      const Matrix want = code->EncodeShard(a, p).value();
      EXPECT_LT((shards[size_t(p)] - want).norm(), 1e-11 * want.norm()) << step << " " << p;
    }
  }
}

// A float32 job's state (shard and velocity kept in float32 with residuals)
// stays on the code word of uncoded float64 SGD at every peer: off by about
// sqrt(steps) 2^-41 of its size after 2,000 steps, at each peer on its own
// (with plain float32 the peers would part by ~sqrt(steps) 2^-24).
TEST(CodedSgd, Float32StateStaysOnTheCodeWord) {
  Random rng(5);
  const int rows = 9, inner = 8, b = 4, peers = 8, steps = 2000;
  auto code = PolyDotCode::Create({rows, inner, b}, {.peers = peers, .m = 2, .n = 2}).value();
  const SgdOptions o{.learning_rate = 0.05, .momentum = 0.9, .weight_decay = 1e-4};
  Matrix a = rng.NormalMatrix(rows, inner), v = Matrix::Zero(rows, inner);
  std::vector<CompensatedMatrix> shards, velocities;
  for (int p = 0; p < peers; ++p) {
    shards.emplace_back(code->EncodeShard(a, p).value());
    velocities.emplace_back(Matrix::Zero(shards.back().rows(), shards.back().cols()));
  }
  for (int step = 0; step < steps; ++step) {
    const Matrix d = 0.1 * rng.NormalMatrix(rows, b), x = rng.NormalMatrix(inner, b);
    v = o.momentum * v + d * x.transpose();
    a = (1 - o.learning_rate * o.weight_decay) * a - o.learning_rate * v;
    for (int p = 0; p < peers; ++p) {
      ASSERT_TRUE(CodedSgdStep(*code, p, o, d, x, &shards[size_t(p)], &velocities[size_t(p)],
                               uint64_t(1000 * step + p + 1))
                      .ok());
    }
  }
  const double bound = 8.0 * std::sqrt(double(steps)) * 0x1p-40;
  for (int p = 0; p < peers; ++p) {
    const Matrix want = code->EncodeShard(a, p).value();
    const Matrix want_v = code->EncodeShard(v, p).value();
    EXPECT_LT((shards[size_t(p)].ToDouble() - want).cwiseAbs().maxCoeff(),
              bound * want.cwiseAbs().maxCoeff())
        << p;
    EXPECT_LT((velocities[size_t(p)].ToDouble() - want_v).cwiseAbs().maxCoeff(),
              bound * want_v.cwiseAbs().maxCoeff())
        << p;
  }
}

// The same batch again and again (full-batch training): rounded to nearest,
// every step would round off the same way and the drift grow with the steps
// (adversary s21: 2^-28 after 4,096 steps, where sqrt(steps) 2^-41 is 2^-35;
// a product computed again in float64 checks to 2^-30); stochastic rounding
// keeps it near sqrt(steps) 2^-41.
TEST(CodedSgd, Float32StateDoesNotDriftUnderRepeatedUpdates) {
  Random rng(7);
  const int rows = 16, inner = 16, b = 8, peers = 8, steps = 4096;
  auto code = PolyDotCode::Create({rows, inner, b}, {.peers = peers, .m = 2, .n = 2}).value();
  const SgdOptions o{.learning_rate = 1e-6};
  const Matrix a0 = rng.NormalMatrix(rows, inner);
  const Matrix d = rng.NormalMatrix(rows, b), x = rng.NormalMatrix(inner, b);
  std::vector<CompensatedMatrix> shards;
  for (int p = 0; p < peers; ++p) shards.emplace_back(code->EncodeShard(a0, p).value());
  for (int step = 0; step < steps; ++step)
    for (int p = 0; p < peers; ++p)
      ASSERT_TRUE(CodedSgdStep(*code, p, o, d, x, &shards[size_t(p)], nullptr,
                               uint64_t(1000 * step + p + 1))
                      .ok());
  // The reference in long double: float64's own rounding would drift too.
  Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic> a = a0.cast<long double>();
  const auto g = (d.cast<long double>() * x.cast<long double>().transpose()).eval();
  for (int step = 0; step < steps; ++step) a -= (long double)o.learning_rate * g;
  const Matrix reference = a.cast<double>();
  for (int p = 0; p < peers; ++p) {
    const Matrix want = code->EncodeShard(reference, p).value();
    EXPECT_LT((shards[size_t(p)].ToDouble() - want).cwiseAbs().maxCoeff(),
              8.0 * std::sqrt(double(steps)) * 0x1p-40 * want.cwiseAbs().maxCoeff())
        << p;
  }
}

TEST(CodedSgd, ValidatesOptions) {
  EXPECT_FALSE(ValidateSgdOptions({.learning_rate = 0}).ok());
  EXPECT_FALSE(ValidateSgdOptions({.learning_rate = 0.1, .momentum = 1.0}).ok());
  EXPECT_FALSE(ValidateSgdOptions({.learning_rate = 0.1, .weight_decay = -1}).ok());
  auto code = PolyDotCode::Create({2, 2, 1}, {.peers = 1}).value();
  Matrix shard = Matrix::Zero(2, 2);
  EXPECT_FALSE(CodedSgdStep(*code, 0, {.learning_rate = 0.1, .momentum = 0.5}, Matrix::Ones(2, 1),
                            Matrix::Ones(2, 1), &shard, nullptr)
                   .ok());
}

}  // namespace sgd_test
}  // namespace
}  // namespace polyguard
