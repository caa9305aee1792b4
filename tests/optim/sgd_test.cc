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
      ASSERT_TRUE(CodedSgdStep(*code, p, o, d, x, &shards[size_t(p)], &velocities[size_t(p)]).ok());
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
