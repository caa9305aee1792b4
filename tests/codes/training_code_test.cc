// The training verbs of every strategy (product_code.h), checked the same
// way over random shapes: the transpose product, the coded update, and the
// scrub and repair of stored shards.
#include <gtest/gtest.h>

#include <cfloat>
#include <cstring>
#include <limits>

#include "polyguard/base/random.h"
#include "polyguard/codes/product_code.h"
#include "polyguard/codes/product_mds_code.h"

namespace polyguard {
namespace {
namespace training_code_test {

double RelErr(const Matrix& got, const Matrix& want) {
  return (got - want).norm() / std::max(want.norm(), 1e-300);
}

// A random training configuration of `strategy`.
ProductCodeOptions RandomOptions(Strategy strategy, Random* rng) {
  ProductCodeOptions o;
  o.strategy = strategy;
  o.shape = {rng->UniformInt(1, 13), rng->UniformInt(1, 11), rng->UniformInt(1, 5)};
  if (strategy == Strategy::kPolyDot) {
    o.m = int(rng->UniformInt(1, 3));
    o.n = int(rng->UniformInt(1, 3));
    o.peers = std::max(o.m * o.n + o.n - 1, 2 * o.m * o.n - o.n) +
              int(rng->UniformInt(0, 4));  // >= both thresholds
  } else if (strategy == Strategy::kReplication) {
    o.replicas = int(rng->UniformInt(2, 4));
    o.peers = o.replicas * int(rng->UniformInt(1, 4));
  } else if (strategy == Strategy::kMds) {
    o.row_blocks = int(rng->UniformInt(1, 3));
    o.col_blocks = int(rng->UniformInt(1, 3));
    o.row_peers = o.row_blocks + int(rng->UniformInt(1, 3));
    o.col_peers = o.col_blocks + int(rng->UniformInt(1, 3));
    o.peers = ProductMdsPeers({.row_peers = o.row_peers,
                               .row_blocks = o.row_blocks,
                               .col_peers = o.col_peers,
                               .col_blocks = o.col_blocks});
  } else if (strategy == Strategy::kAbft || strategy == Strategy::kUncoded) {
    o.peers = int(rng->UniformInt(1, 8));
  } else {
    ADD_FAILURE() << "no random options for " << strategy.name();
  }
  return o;
}

// Seeds as when strategies were an enum (the same random configurations).
uint64_t SeedOf(Strategy s) {
  const Strategy order[] = {Strategy::kUncoded, Strategy::kReplication, Strategy::kMds,
                            Strategy::kPolyDot, Strategy::kAbft};
  for (uint64_t i = 0; i < 5; ++i)
    if (order[i] == s) return i;
  return 99;
}

std::string NameOf(const ::testing::TestParamInfo<Strategy>& info) {
  return std::string(info.param.name());
}

class TrainingCode : public ::testing::TestWithParam<Strategy> {};
class CorrectingTrainingCode : public TrainingCode {};

INSTANTIATE_TEST_SUITE_P(Every, TrainingCode,
                         ::testing::Values(Strategy::kPolyDot, Strategy::kReplication,
                                           Strategy::kMds, Strategy::kAbft, Strategy::kUncoded),
                         NameOf);
INSTANTIATE_TEST_SUITE_P(Every, CorrectingTrainingCode,
                         ::testing::Values(Strategy::kPolyDot, Strategy::kReplication,
                                           Strategy::kMds),
                         NameOf);

TEST_P(TrainingCode, TransposeProductAndUpdateMatchThePlainMath) {
  const Strategy strategy = GetParam();
  {
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      Random rng(seed * 31 + SeedOf(strategy));
      const ProductCodeOptions o = RandomOptions(strategy, &rng);
      SCOPED_TRACE(std::string(strategy.name()) + " seed " + std::to_string(seed));
      auto code = MakeProductCode(o).value();
      ASSERT_TRUE(code->supports_training());
      const ProductShape s = o.shape;
      const Matrix a = rng.NormalMatrix(s.rows, s.inner), b = rng.NormalMatrix(s.inner, s.cols);
      const Matrix d = rng.NormalMatrix(s.rows, s.cols), x = rng.NormalMatrix(s.inner, s.cols);
      const double eta = 0.3;
      std::vector<PeerResult> forward, transpose;
      std::vector<Matrix> shards = code->EncodeShards(a).value();
      for (int p = 0; p < o.peers; ++p) {
        forward.push_back(
            {p, code->PeerProduct(shards[size_t(p)], code->EncodeInput(b, p).value())});
        transpose.push_back({p, code->PeerTransposeProduct(
                                    shards[size_t(p)], code->EncodeTransposeInput(d, p).value())});
      }
      EXPECT_LT(RelErr(code->Decode(forward).value().product, a * b), 1e-10);
      auto t = code->DecodeTranspose(transpose);
      ASSERT_TRUE(t.ok()) << t.status();
      EXPECT_LT(RelErr(t->product, a.transpose() * d), 1e-10);
      EXPECT_TRUE(t->wrong_peers.empty());
      // The coded update equals encoding the updated weights.
      const Matrix updated = a - eta * d * x.transpose();
      for (int p = 0; p < o.peers; ++p) {
        Matrix shard = shards[size_t(p)];
        ASSERT_TRUE(code->UpdateShard(&shard, p, d, x, eta).ok());
        EXPECT_LT(RelErr(shard, code->EncodeShard(updated, p).value()), 1e-12);
      }
    }
  }
}

bool SameBits(const Matrix& x, const Matrix& y) {
  return x.rows() == y.rows() && x.cols() == y.cols() &&
         std::memcmp(x.data(), y.data(), sizeof(double) * size_t(x.size())) == 0;
}

// A double matrix within float32's range, rounded to float32.
Eigen::MatrixXf ToFloat(const Matrix& m) {
  return m.cwiseMax(-FLT_MAX).cwiseMin(FLT_MAX).cast<float>();
}

// A float32 job keeps its shards in float32 (base/compensated_matrix.h) and
// multiplies them as they are (PeerProductFloat32): bit for bit the float32
// code's products of the same values in double, at every peer, for data of
// every scale (1e-30 and 1e25 take the scaled path).
TEST_P(TrainingCode, Float32ShardProductsAreTheDoubleOnesBitForBit) {
  const Strategy strategy = GetParam();
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    Random rng(seed * 37 + SeedOf(strategy));
    ProductCodeOptions o = RandomOptions(strategy, &rng);
    o.precision = Precision::kFloat32;
    const double scale = seed % 3 == 0 ? 1e-30 : (seed % 3 == 1 ? 1.0 : 1e25);
    // Every fourth: a NaN in the shard (a fault), the rest near 1e35: both
    // paths must take the same scale (adversary s21: they did not).
    const bool nan = seed % 4 == 0;
    SCOPED_TRACE(std::string(strategy.name()) + " seed " + std::to_string(seed));
    auto code = MakeProductCode(o).value();
    const ProductShape s = o.shape;
    const Matrix a = (nan ? 1e35 : scale) * rng.NormalMatrix(s.rows, s.inner);
    const Matrix b = rng.NormalMatrix(s.inner, s.cols), d = rng.NormalMatrix(s.rows, s.cols);
    for (int p = 0; p < o.peers; ++p) {
      Eigen::MatrixXf kept = ToFloat(code->EncodeShard(a, p).value());
      if (nan && kept.size() > 0) kept(0, 0) = std::numeric_limits<float>::quiet_NaN();
      const Matrix widened = kept.cast<double>();
      const Matrix piece = code->EncodeInput(b, p).value();
      const Matrix tpiece = code->EncodeTransposeInput(d, p).value();
      EXPECT_TRUE(
          SameBits(code->PeerProductFloat32(kept, piece), code->PeerProduct(widened, piece)))
          << p;
      EXPECT_TRUE(SameBits(code->PeerTransposeProductFloat32(kept, tpiece),
                           code->PeerTransposeProduct(widened, tpiece)))
          << p;
    }
  }
}

TEST_P(CorrectingTrainingCode, OneWrongTransposeResultIsCorrected) {
  const Strategy strategy = GetParam();
  {
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      Random rng(seed * 17 + SeedOf(strategy));
      const ProductCodeOptions o = RandomOptions(strategy, &rng);
      auto code = MakeProductCode(o).value();
      if (code->transpose_errors_corrected_probabilistic() < 1) continue;
      SCOPED_TRACE(code->Describe() + " seed " + std::to_string(seed));
      const Matrix a = rng.NormalMatrix(o.shape.rows, o.shape.inner);
      const Matrix d = rng.NormalMatrix(o.shape.rows, o.shape.cols);
      std::vector<PeerResult> results;
      for (int p = 0; p < o.peers; ++p)
        results.push_back(
            {p, code->PeerTransposeProduct(code->EncodeShard(a, p).value(),
                                           code->EncodeTransposeInput(d, p).value())});
      // Corrupt a peer whose result is used (MDS idle peers send zeros).
      int victim = -1;
      for (int tries = 0; tries < 50 && victim < 0; ++tries) {
        const int p = int(rng.UniformInt(0, o.peers - 1));
        if (results[size_t(p)].value.norm() > 0) victim = p;
      }
      if (victim < 0) continue;
      results[size_t(victim)].value +=
          rng.NormalMatrix(results[0].value.rows(), results[0].value.cols());
      auto t = code->DecodeTranspose(results);
      ASSERT_TRUE(t.ok()) << t.status();
      EXPECT_LT(RelErr(t->product, a.transpose() * d), 1e-9);
      EXPECT_TRUE(std::find(t->wrong_peers.begin(), t->wrong_peers.end(), victim) !=
                  t->wrong_peers.end());
    }
  }
}

TEST_P(TrainingCode, ScrubNamesACorruptedShardAndRepairRestoresIt) {
  const Strategy strategy = GetParam();
  {
    int checked = 0;
    for (uint64_t seed = 1; seed <= 60; ++seed) {
      Random rng(seed * 13 + SeedOf(strategy));
      ProductCodeOptions o = RandomOptions(strategy, &rng);
      if (strategy == Strategy::kReplication && o.replicas < 3)
        o.replicas = 3, o.peers = 3 * (o.peers / 2 + 1);
      auto code = MakeProductCode(o).value();
      SCOPED_TRACE(code->Describe() + " seed " + std::to_string(seed));
      const Matrix a = rng.NormalMatrix(o.shape.rows, o.shape.inner);
      std::vector<Matrix> shards = code->EncodeShards(a).value();
      const Vector probe = rng.NormalMatrix(code->probe_length(), 1).col(0);
      auto probes = [&] {
        std::vector<PeerResult> out;
        for (int p = 0; p < o.peers; ++p)
          out.push_back({p, code->ProbeShard(shards[size_t(p)], probe)});
        return out;
      };
      auto clean = code->CheckProbes(probes());
      ASSERT_TRUE(clean.ok()) << clean.status();
      EXPECT_TRUE(clean->empty());
      const int victim = int(rng.UniformInt(0, o.peers - 1));
      const Matrix original = shards[size_t(victim)];
      shards[size_t(victim)] += rng.NormalMatrix(original.rows(), original.cols());
      auto found = code->CheckProbes(probes());
      std::vector<int> healthy;
      for (int p = 0; p < o.peers; ++p)
        if (p != victim) healthy.push_back(p);
      auto sources = code->RepairSources(victim, healthy);
      if (strategy == Strategy::kUncoded) {
        ASSERT_TRUE(found.ok());
        EXPECT_TRUE(found->empty());  // nothing to check with
        EXPECT_FALSE(sources.ok());
        continue;
      }
      if (strategy == Strategy::kAbft) {
        ASSERT_TRUE(found.ok());
        EXPECT_EQ(*found, std::vector<int>{victim});
        EXPECT_EQ(sources.status().code(), StatusCode::kFailedPrecondition);
        continue;
      }
      if (strategy == Strategy::kPolyDot && o.peers == o.m * o.n) continue;  // no redundancy
      if (strategy == Strategy::kPolyDot && o.peers == o.m * o.n + 1) {
        // One redundant shard detects the corruption but cannot say whose.
        EXPECT_EQ(found.status().code(), StatusCode::kDataLoss);
        continue;
      }
      ASSERT_TRUE(found.ok()) << found.status();
      EXPECT_EQ(*found, std::vector<int>{victim});
      ASSERT_TRUE(sources.ok()) << sources.status();
      std::vector<PeerResult> from;
      for (int s : *sources) from.push_back({s, shards[size_t(s)]});
      auto repaired = code->RepairShard(victim, from);
      ASSERT_TRUE(repaired.ok()) << repaired.status();
      // (A shard can be all zero padding: compare against the data's scale.)
      EXPECT_LT((*repaired - original).norm(), 1e-9 * a.norm())
          << "victim " << victim << " sources " << FormatPeers(*sources);
      ++checked;
    }
    if (strategy != Strategy::kUncoded && strategy != Strategy::kAbft) {
      EXPECT_GT(checked, 10);
    }
  }
}

TEST(TrainingCodeMds, OneDimensionalMdsCannotTrainAndSaysSo) {
  auto code = MakeProductCode(
                  {.strategy = Strategy::kMds, .shape = {4, 4, 2}, .peers = 4, .data_blocks = 2})
                  .value();
  EXPECT_FALSE(code->supports_training());
  auto t = code->EncodeTransposeInput(Matrix::Zero(4, 2), 0);
  EXPECT_EQ(t.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(t.status().message().find("product-code layout"), std::string::npos);
}

TEST(ProductMdsCode, LayoutAndDefaults) {
  EXPECT_EQ(ProductMdsPeers({.row_peers = 7, .row_blocks = 5, .col_peers = 6, .col_blocks = 4}),
            38);
  auto eight = DefaultProductMdsLayout(8).value();
  EXPECT_EQ(eight.row_blocks, 2);
  EXPECT_EQ(eight.col_blocks, 2);
  EXPECT_FALSE(DefaultProductMdsLayout(4).ok());
  auto code = ProductMdsCode::Create({8, 8, 2}, eight).value();
  for (int p = 0; p < 8; ++p) {
    const auto [i, j] = code->Position(p);
    EXPECT_EQ(code->PeerAt(i, j), p);
  }
  EXPECT_EQ(code->PeerAt(2, 2), -1);  // no corner
  auto bad = MakeProductCode({.strategy = Strategy::kMds,
                              .shape = {4, 4, 2},
                              .peers = 9,
                              .row_peers = 3,
                              .row_blocks = 2,
                              .col_peers = 3,
                              .col_blocks = 2});
  EXPECT_NE(bad.status().message().find("needs Q_r P_c + (P_r - Q_r) Q_c = 8 peers"),
            std::string::npos);
}

// The scrub with up to 3 probes missing and one corrupted shard: it may
// miss the shard where stragglers left its lines no redundancy, or fail, but
// never name an honest peer. A row inconsistent but unexplained by its
// columns blamed the row's parity peer by elimination even when a column
// had lost its redundancy, so the corrupted data peer there was unchecked
// (64 of these 1,300 cases named an honest peer).
TEST(ProductMdsCode, ScrubWithStragglersNamesNoHonestPeer) {
  auto code = MakeProductCode({.strategy = Strategy::kMds,
                               .shape = {16, 12, 8},
                               .peers = 10,
                               .row_peers = 4,
                               .row_blocks = 2,
                               .col_peers = 3,
                               .col_blocks = 2})
                  .value();
  Random rng(5);
  const Matrix a = rng.NormalMatrix(16, 12);
  const Vector probe = rng.NormalMatrix(code->probe_length(), 1);
  std::vector<Matrix> shards;
  for (int p = 0; p < 10; ++p) shards.push_back(code->EncodeShard(a, p).value());
  int named = 0;
  for (int missing = 0; missing < (1 << 10); ++missing) {
    if (__builtin_popcount(unsigned(missing)) > 3) continue;
    for (int bad = 0; bad < 10; ++bad) {
      if (missing >> bad & 1) continue;
      std::vector<PeerResult> probes;
      for (int p = 0; p < 10; ++p) {
        if (missing >> p & 1) continue;
        Matrix shard = shards[size_t(p)];
        if (p == bad) shard(0, 0) += 5.0;
        probes.push_back({p, Matrix(code->ProbeShard(shard, probe))});
      }
      auto found = code->CheckProbes(probes);
      if (!found.ok()) continue;
      for (int q : *found) EXPECT_EQ(q, bad) << "missing mask " << missing;
      named += found->size() == 1;
    }
  }
  EXPECT_GT(named, 500);  // 532 of 1,300 locate it; the rest miss it or fail
}

}  // namespace training_code_test
}  // namespace
}  // namespace polyguard

namespace polyguard {
namespace {
namespace training_code_test {

// The README's table: wrong results corrected per product on 8 peers
// (probabilistic model), forward and backward.
TEST(TrainingCode, ErrorsCorrectedPerProductAsDocumented) {
  struct Row {
    ProductCodeOptions options;
    int forward, backward;
  };
  const ProductShape s{16, 17, 4};
  const Row rows[] = {
      {{.strategy = Strategy::kPolyDot, .shape = s, .peers = 8, .m = 2, .n = 2}, 2, 1},
      {{.strategy = Strategy::kMds,
        .shape = s,
        .peers = 8,
        .row_peers = 3,
        .row_blocks = 2,
        .col_peers = 3,
        .col_blocks = 2},
       0,
       0},
      {{.strategy = Strategy::kReplication, .shape = s, .peers = 8, .replicas = 2}, 0, 0},
      {{.strategy = Strategy::kReplication, .shape = s, .peers = 6, .replicas = 3}, 1, 1},
      {{.strategy = Strategy::kAbft, .shape = s, .peers = 8}, 0, 0},
      {{.strategy = Strategy::kUncoded, .shape = s, .peers = 8}, 0, 0},
  };
  for (const Row& row : rows) {
    auto code = MakeProductCode(row.options).value();
    SCOPED_TRACE(code->Describe());
    EXPECT_EQ(code->errors_corrected_probabilistic(), row.forward);
    EXPECT_EQ(code->transpose_errors_corrected_probabilistic(), row.backward);
  }
}

}  // namespace training_code_test
}  // namespace
}  // namespace polyguard
