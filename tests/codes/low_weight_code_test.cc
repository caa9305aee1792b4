#include "polyguard/codes/low_weight_code.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "codes/code_test_util.h"

namespace polyguard {
namespace {
namespace low_weight_code_test {

using testing::ErrorKind;
using testing::ForEachSubset;
using testing::RelativeError;
using testing::RunProduct;

int CeilDiv(int a, int b) { return (a + b - 1) / b; }

// Visits every k-subset of [0, n).

// A generator with Gaussian coefficients on the given supports.
Matrix GeneratorOn(const std::vector<std::vector<int>>& sa, const std::vector<std::vector<int>>& sb,
                   int ka, int kb, Random* rng) {
  const int n = static_cast<int>(sa.size());
  Matrix g = Matrix::Zero(n, ka * kb);
  for (int r = 0; r < n; ++r) {
    Vector a = Vector::Zero(ka), b = Vector::Zero(kb);
    for (int i : sa[static_cast<size_t>(r)]) a(i) = rng->Normal();
    for (int j : sb[static_cast<size_t>(r)]) b(j) = rng->Normal();
    for (int i = 0; i < ka; ++i)
      for (int j = 0; j < kb; ++j) g(r, i * kb + j) = a(i) * b(j);
  }
  return g;
}

bool DecodesFromEverySubset(const Matrix& g) { return WorstCaseCondition(g, 1'000'000, 1) < 1e10; }

TEST(LowWeightBound, MatrixVectorIsCeilKTimesSPlusOneOverN) {
  for (int n = 1; n <= 24; ++n) {
    for (int k = 1; k <= n; ++k) {
      auto b = LowWeightLowerBound(n, k, 1).value();
      EXPECT_EQ(b.weight_a, CeilDiv(k * (n - k + 1), n)) << n << " " << k;
      EXPECT_EQ(b.weight_b, 1);
    }
  }
}

TEST(LowWeightBound, MatrixMatrixMeetsAllThreeConditions) {
  // The published configuration: n = 24, k_a = 4, k_b = 5 (s = 4).
  auto b = LowWeightLowerBound(24, 4, 5).value();
  EXPECT_EQ(b.weight_a, 2);
  EXPECT_EQ(b.weight_b, 3);
  for (int n = 2; n <= 30; ++n) {
    for (int ka = 1; ka <= n; ++ka) {
      for (int kb = 1; ka * kb <= n; ++kb) {
        const int s = n - ka * kb;
        auto w = LowWeightLowerBound(n, ka, kb).value();
        EXPECT_GE(w.weight_a * w.weight_b, CeilDiv(ka * kb * (s + 1), n));
        EXPECT_GE(w.weight_a, CeilDiv(ka * (kb + s), n));
        EXPECT_GE(w.weight_b, CeilDiv(kb * (ka + s), n));
        // "Weight at least 2 in each factor" whenever there is a straggler.
        if (s >= 1 && ka >= 2 && kb >= 2) {
          EXPECT_GE(w.weight_a, 2);
          EXPECT_GE(w.weight_b, 2);
        }
      }
    }
  }
  EXPECT_FALSE(LowWeightLowerBound(5, 2, 3).ok());  // K = 6 > 5 peers
  EXPECT_FALSE(LowWeightLowerBound(5, 0, 1).ok());
}

// Every k-subset decodes, for every n <= 16 and k <= n, with every coded
// block at the bound; decoded products equal the uncoded ones.
TEST(LowWeightCode, MatrixVectorDecodesFromEverySubsetUpTo16Peers) {
  Random rng(3);
  for (int n = 1; n <= 16; ++n) {
    for (int k = 1; k <= n; ++k) {
      SCOPED_TRACE("n=" + std::to_string(n) + " k=" + std::to_string(k));
      const int w = LowWeightLowerBound(n, k, 1).value().weight_a;
      auto code =
          LowWeightCode::Create({2 * k + 1, 5, 1}, {.peers = n, .k_a = k, .draws = 2}).value();
      const LowWeightDesign& d = code->design();
      ASSERT_EQ(d.weight_a, w);
      ASSERT_TRUE(d.exhaustive);
      EXPECT_LT(d.worst_condition, 1e8);
      for (int r = 0; r < n; ++r) {
        EXPECT_EQ(static_cast<int>(d.support_a[static_cast<size_t>(r)].size()), w);
        EXPECT_EQ((d.coef_a.row(r).array() != 0.0).count(), w);
      }
      Matrix a = rng.NormalMatrix(2 * k + 1, 5), x = rng.NormalMatrix(5, 1);
      std::vector<PeerResult> all;
      for (int r = 0; r < n; ++r)
        all.push_back({r, code->PeerProduct(code->EncodeShard(a, r).value(),
                                            code->EncodeInput(x, r).value())});
      const Matrix want = a * x;
      int failures = 0;
      ForEachSubset(n, k, [&](const std::vector<int>& subset) {
        std::vector<PeerResult> some;
        for (int r : subset) some.push_back(all[static_cast<size_t>(r)]);
        auto got = code->Decode(some);
        if (!got.ok() || RelativeError(got->product, want) > 1e-9) ++failures;
      });
      EXPECT_EQ(failures, 0);
    }
  }
}

// No support family of lower weight decodes: exhaustively over every family
// for small n, and the cyclic family at weight w - 1 up to 16 peers.
TEST(LowWeightCode, MatrixVectorBoundIsTight) {
  Random rng(5);
  for (int n = 2; n <= 6; ++n) {
    for (int k = 2; k < n; ++k) {
      const int w = LowWeightLowerBound(n, k, 1).value().weight_a;
      if (w == 1) continue;
      // Every family in which every peer combines at most w - 1 blocks.
      std::vector<std::vector<int>> options;
      for (int mask = 1; mask < (1 << k); ++mask) {
        if (__builtin_popcount(static_cast<unsigned>(mask)) > w - 1) continue;
        std::vector<int> s;
        for (int i = 0; i < k; ++i)
          if (mask & (1 << i)) s.push_back(i);
        options.push_back(s);
      }
      std::vector<int> pick(static_cast<size_t>(n), 0);
      int64_t families = 0, decodable = 0;
      while (true) {
        std::vector<std::vector<int>> sa, sb(static_cast<size_t>(n), std::vector<int>{0});
        for (int r = 0; r < n; ++r)
          sa.push_back(options[static_cast<size_t>(pick[static_cast<size_t>(r)])]);
        ++families;
        if (DecodesFromEverySubset(GeneratorOn(sa, sb, k, 1, &rng))) ++decodable;
        int r = 0;
        while (r < n && ++pick[static_cast<size_t>(r)] == static_cast<int>(options.size()))
          pick[static_cast<size_t>(r++)] = 0;
        if (r == n) break;
      }
      EXPECT_EQ(decodable, 0) << "n=" << n << " k=" << k << " families=" << families;
    }
  }
  for (int n = 2; n <= 16; ++n) {
    for (int k = 2; k < n; ++k) {
      const int w = LowWeightLowerBound(n, k, 1).value().weight_a;
      if (w == 1) continue;
      std::vector<std::vector<int>> sa, sb(static_cast<size_t>(n), std::vector<int>{0});
      for (int r = 0; r < n; ++r) {
        std::vector<int> s;
        for (int i = 0; i < w - 1; ++i) s.push_back((r * k / n + i) % k);
        sa.push_back(s);
      }
      EXPECT_FALSE(DecodesFromEverySubset(GeneratorOn(sa, sb, k, 1, &rng))) << n << " " << k;
    }
  }
}

TEST(LowWeightCode, MatrixMatrixDesignsAreAtTheBound) {
  struct Case {
    int n, ka, kb;
  };
  for (Case c : {Case{24, 4, 5}, Case{8, 2, 3}, Case{10, 2, 4}, Case{12, 3, 3}, Case{7, 2, 3},
                 Case{9, 2, 2}, Case{16, 3, 4}}) {
    SCOPED_TRACE("n=" + std::to_string(c.n) + " ka=" + std::to_string(c.ka) +
                 " kb=" + std::to_string(c.kb));
    const LowWeightPair bound = LowWeightLowerBound(c.n, c.ka, c.kb).value();
    auto d = DesignLowWeightCode({.peers = c.n, .k_a = c.ka, .k_b = c.kb, .draws = 2}).value();
    EXPECT_EQ(d.weight_a, bound.weight_a);
    EXPECT_EQ(d.weight_b, bound.weight_b);
    EXPECT_TRUE(d.exhaustive);
    EXPECT_LT(d.worst_condition, 1e8);
    for (int r = 0; r < c.n; ++r) {
      EXPECT_EQ(static_cast<int>(d.support_a[static_cast<size_t>(r)].size()), d.weight_a);
      EXPECT_EQ(static_cast<int>(d.support_b[static_cast<size_t>(r)].size()), d.weight_b);
      EXPECT_EQ((d.generator.row(r).array() != 0.0).count(), d.weight_a * d.weight_b);
    }
  }
}

// Uniform-weight codes below the bound fail: every family in which every
// peer has the same weights (w_a, w_b) violating the bound, exhaustively, for
// small n. Codes with unequal weights can have a smaller largest product
// (the header's remark), which this also checks.
TEST(LowWeightCode, MatrixMatrixBoundIsTightExhaustively) {
  Random rng(9);
  struct Case {
    int n, ka, kb;
  };
  for (Case c : {Case{5, 2, 2}, Case{6, 2, 2}, Case{7, 2, 3}, Case{9, 2, 4}}) {
    SCOPED_TRACE("n=" + std::to_string(c.n) + " ka=" + std::to_string(c.ka) +
                 " kb=" + std::to_string(c.kb));
    const int s = c.n - c.ka * c.kb;
    const LowWeightPair bound = LowWeightLowerBound(c.n, c.ka, c.kb).value();
    auto subsets_of = [](int k, int w) {
      std::vector<std::vector<int>> out;
      for (int mask = 1; mask < (1 << k); ++mask) {
        if (__builtin_popcount(static_cast<unsigned>(mask)) != w) continue;
        std::vector<int> v;
        for (int i = 0; i < k; ++i)
          if (mask & (1 << i)) v.push_back(i);
        out.push_back(v);
      }
      return out;
    };
    int64_t families = 0, decodable = 0;
    for (int wa = 1; wa <= c.ka; ++wa) {
      for (int wb = 1; wb <= c.kb; ++wb) {
        const bool meets = wa * wb >= CeilDiv(c.ka * c.kb * (s + 1), c.n) &&
                           wa >= CeilDiv(c.ka * (c.kb + s), c.n) &&
                           wb >= CeilDiv(c.kb * (c.ka + s), c.n);
        if (meets) {
          EXPECT_GE(wa * wb, bound.weight_a * bound.weight_b);
          continue;
        }
        const auto sa = subsets_of(c.ka, wa), sb = subsets_of(c.kb, wb);
        const int options = static_cast<int>(sa.size() * sb.size());
        if (std::pow(double(options), c.n) > 20000) {
          // Too many families: the cyclic ones at these weights.
          std::vector<std::vector<int>> fa, fb;
          for (int r = 0; r < c.n; ++r) {
            std::vector<int> a, b;
            for (int i = 0; i < wa; ++i) a.push_back((r * c.ka / c.n + i) % c.ka);
            for (int j = 0; j < wb; ++j) b.push_back((r + j) % c.kb);
            fa.push_back(a);
            fb.push_back(b);
          }
          ++families;
          if (DecodesFromEverySubset(GeneratorOn(fa, fb, c.ka, c.kb, &rng))) ++decodable;
          continue;
        }
        std::vector<int> pick(static_cast<size_t>(c.n), 0);
        while (true) {
          std::vector<std::vector<int>> fa, fb;
          for (int r = 0; r < c.n; ++r) {
            const int o = pick[static_cast<size_t>(r)];
            fa.push_back(sa[static_cast<size_t>(o) / sb.size()]);
            fb.push_back(sb[static_cast<size_t>(o) % sb.size()]);
          }
          ++families;
          if (DecodesFromEverySubset(GeneratorOn(fa, fb, c.ka, c.kb, &rng))) ++decodable;
          int r = 0;
          while (r < c.n && ++pick[static_cast<size_t>(r)] == options)
            pick[static_cast<size_t>(r++)] = 0;
          if (r == c.n) break;
        }
      }
    }
    EXPECT_GT(families, 0);
    EXPECT_EQ(decodable, 0);
    // At the bound, the design decodes from every K of the n.
    auto d = DesignLowWeightCode({.peers = c.n, .k_a = c.ka, .k_b = c.kb}).value();
    EXPECT_EQ(d.weight_a * d.weight_b, bound.weight_a * bound.weight_b);
    EXPECT_TRUE(DecodesFromEverySubset(d.generator));
  }

  // Unequal weights: n = 5, k_a = k_b = 2, no peer with weight 2 in both.
  const std::vector<std::vector<int>> sets = {{0}, {1}, {0, 1}};
  int64_t decodable = 0;
  std::vector<int> pick(5, 0);
  while (true) {
    std::vector<std::vector<int>> fa, fb;
    for (int o : pick) {
      fa.push_back(sets[static_cast<size_t>(o) / 3]);
      fb.push_back(sets[static_cast<size_t>(o) % 3]);
    }
    if (DecodesFromEverySubset(GeneratorOn(fa, fb, 2, 2, &rng))) ++decodable;
    int r = 0;
    while (r < 5 && ++pick[static_cast<size_t>(r)] == 8) pick[static_cast<size_t>(r++)] = 0;
    if (r == 5) break;
  }
  EXPECT_GT(decodable, 0);  // largest product 2 < 4: only bound (1) applies
}

TEST(LowWeightCode, MatrixMatrixDecodesFromEverySubset) {
  Random rng(11);
  auto code = LowWeightCode::Create({9, 7, 8}, {.peers = 9, .k_a = 2, .k_b = 3}).value();
  Matrix a = rng.NormalMatrix(9, 7), b = rng.NormalMatrix(7, 8);
  std::vector<PeerResult> all;
  for (int r = 0; r < 9; ++r)
    all.push_back(
        {r, code->PeerProduct(code->EncodeShard(a, r).value(), code->EncodeInput(b, r).value())});
  int checked = 0;
  ForEachSubset(9, 6, [&](const std::vector<int>& subset) {
    std::vector<PeerResult> some;
    for (int r : subset) some.push_back(all[static_cast<size_t>(r)]);
    auto got = code->Decode(some);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_LT(RelativeError(got->product, a * b), 1e-10);
    ++checked;
  });
  EXPECT_EQ(checked, 84);
}

SparseMatrix RandomSparse(int64_t rows, int64_t cols, double density, Random* rng) {
  std::vector<Eigen::Triplet<double>> t;
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r)
      if (rng->Uniform() < density) t.emplace_back(int(r), int(c), rng->Normal());
  SparseMatrix m(rows, cols);
  m.setFromTriplets(t.begin(), t.end());
  return m;
}

TEST(LowWeightCode, SparseEncodingKeepsSparsityAndMatchesDense) {
  Random rng(13);
  const ProductShape shape{120, 90, 70};
  auto low = LowWeightCode::Create(shape, {.peers = 24, .k_a = 4, .k_b = 5}).value();
  auto dense =
      LowWeightCode::Create(shape, {.peers = 24, .k_a = 4, .k_b = 5, .weight_a = 4, .weight_b = 5})
          .value();
  SparseMatrix a = RandomSparse(shape.rows, shape.inner, 0.02, &rng);
  SparseMatrix b = RandomSparse(shape.inner, shape.cols, 0.02, &rng);
  int64_t low_nnz = 0, dense_nnz = 0;
  for (int r = 0; r < 24; ++r) {
    SparseMatrix sa = low->EncodeSparseShard(a, r).value();
    SparseMatrix sb = low->EncodeSparseInput(b, r).value();
    EXPECT_LT(RelativeError(Matrix(sa), low->EncodeShard(Matrix(a), r).value()), 1e-15);
    EXPECT_LT(RelativeError(Matrix(sb), low->EncodeInput(Matrix(b), r).value()), 1e-15);
    EXPECT_LT(
        RelativeError(low->SparsePeerProduct(sa, sb), low->PeerProduct(Matrix(sa), Matrix(sb))),
        1e-14);
    EXPECT_LE(sa.nonZeros(), a.nonZeros());  // weight 2 of 4 blocks: about half
    low_nnz += sa.nonZeros() + sb.nonZeros();
    dense_nnz += dense->EncodeSparseShard(a, r).value().nonZeros() +
                 dense->EncodeSparseInput(b, r).value().nonZeros();
  }
  // Weights 2 and 3 against 4 and 5.
  EXPECT_LT(double(low_nnz), 0.65 * double(dense_nnz));
  EXPECT_GT(double(low_nnz), 0.45 * double(dense_nnz));
}

TEST(LowWeightCode, SparseProductsDecodeToTheUncodedOne) {
  Random rng(17);
  const ProductShape shape{60, 50, 40};
  auto code = LowWeightCode::Create(shape, {.peers = 10, .k_a = 2, .k_b = 3}).value();
  SparseMatrix a = RandomSparse(shape.rows, shape.inner, 0.05, &rng);
  SparseMatrix b = RandomSparse(shape.inner, shape.cols, 0.05, &rng);
  std::vector<PeerResult> results;
  for (int r : rng.Sample(10, 8)) {
    results.push_back({r, code->SparsePeerProduct(code->EncodeSparseShard(a, r).value(),
                                                  code->EncodeSparseInput(b, r).value())});
  }
  auto got = code->Decode(results).value();
  EXPECT_TRUE(got.verified);
  EXPECT_LT(RelativeError(got.product, Matrix(a * b)), 1e-12);
}

TEST(LowWeightCode, LocatesAndCorrectsWrongResults) {
  for (uint64_t seed = 1; seed <= 120; ++seed) {
    Random rng(seed * 31);
    const int ka = int(rng.UniformInt(1, 4)), kb = int(rng.UniformInt(1, 3));
    const int n = ka * kb + int(rng.UniformInt(1, 5));
    auto code =
        LowWeightCode::Create({rng.UniformInt(ka, 14), rng.UniformInt(1, 8), rng.UniformInt(kb, 9)},
                              {.peers = n, .k_a = ka, .k_b = kb, .draws = 2})
            .value();
    const int k = code->recovery_threshold();
    const int stragglers = int(rng.UniformInt(0, n - k - 1));
    const int errors = int(rng.UniformInt(
        0, testing::MaxCorrectable(n - stragglers, k, code->result_doubles_per_peer())));
    const ErrorKind kind = rng.Uniform() < 0.7 ? ErrorKind::kDense : ErrorKind::kNaN;
    const double magnitude = std::pow(10.0, rng.Uniform(-6, 6));
    auto run = RunProduct(*code, &rng, stragglers, errors, kind, magnitude);
    SCOPED_TRACE("seed=" + std::to_string(seed) + " " + code->Describe() +
                 " stragglers=" + std::to_string(stragglers) + " errors=" + std::to_string(errors));
    auto decoded = code->Decode(run.results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_TRUE(decoded->verified);
    EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-9);
    EXPECT_EQ(decoded->wrong_peers, run.wrong);
  }
}

TEST(LowWeightCode, SingleEntryErrorsAreCorrectedUpToHalfTheRedundancy) {
  Random rng(23);
  auto code = LowWeightCode::Create({8, 4, 1}, {.peers = 9, .k_a = 4}).value();
  // Two wrong peers in the same single entry: not separable by span, found
  // by the suspect search (floor((9 - 4)/2) = 2).
  Matrix a = rng.NormalMatrix(8, 4), x = rng.NormalMatrix(4, 1);
  std::vector<PeerResult> results;
  for (int r = 0; r < 9; ++r)
    results.push_back(
        {r, code->PeerProduct(code->EncodeShard(a, r).value(), code->EncodeInput(x, r).value())});
  results[3].value(1, 0) += 5.0;
  results[7].value(1, 0) -= 2.0;
  auto got = code->Decode(results).value();
  EXPECT_EQ(got.wrong_peers, (std::vector<int>{3, 7}));
  EXPECT_LT(RelativeError(got.product, a * x), 1e-10);
}

TEST(LowWeightCode, TooManyErrorsAreReportedNotReturned) {
  Random rng(29);
  auto code = LowWeightCode::Create({12, 6, 4}, {.peers = 8, .k_a = 4}).value();
  auto run = RunProduct(*code, &rng, 0, 4, ErrorKind::kDense, 1.0);
  auto decoded = code->Decode(run.results);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(decoded.status().message().find("suspect peers"), std::string::npos);
}

TEST(LowWeightCode, RejectsBadInput) {
  EXPECT_FALSE(LowWeightCode::Create({8, 4, 4}, {.peers = 3, .k_a = 4}).ok());  // K > n
  EXPECT_FALSE(LowWeightCode::Create({8, 4, 4}, {.peers = 8, .k_a = 2, .weight_a = 3}).ok());
  EXPECT_FALSE(LowWeightCode::Create({8, 4, 2}, {.peers = 8, .k_a = 2, .k_b = 3}).ok());
  EXPECT_FALSE(LowWeightCode::Create({8, 4, 4}, {.peers = 8, .k_a = 2, .draws = 0}).ok());
  auto code = LowWeightCode::Create({8, 4, 4}, {.peers = 6, .k_a = 4}).value();
  EXPECT_FALSE(code->EncodeSparseShard(SparseMatrix(8, 5), 0).ok());
  EXPECT_FALSE(code->EncodeSparseShard(SparseMatrix(8, 4), 6).ok());
  EXPECT_FALSE(code->EncodeSparseInput(SparseMatrix(3, 4), 0).ok());
  auto few = code->Decode(std::vector<PeerResult>{{0, Matrix::Zero(2, 4)}});
  EXPECT_EQ(few.status().code(), StatusCode::kUnavailable);
  auto shape = code->Decode(std::vector<PeerResult>{{0, Matrix::Zero(3, 4)}});
  EXPECT_EQ(shape.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(
      MakeProductCode({.strategy = Strategy::kLowWeight, .shape = {8, 4, 4}, .peers = 6, .k_a = 4})
          .value()
          ->Describe()
          .substr(0, 9),
      "lowweight");
  EXPECT_EQ(ParseStrategy("lowweight").value(), Strategy::kLowWeight);
}

}  // namespace low_weight_code_test
}  // namespace
}  // namespace polyguard
