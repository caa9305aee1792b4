#include "polyguard/codes/low_weight_code.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <string>
#include <tuple>

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#include "polyguard/base/peer_set.h"
#include "polyguard/base/random.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard {
namespace {

int CeilDiv(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

double Binomial(int n, int k) {
  if (k < 0 || k > n) return 0.0;
  double b = 1.0;
  for (int i = 1; i <= k; ++i) b = b * (n - k + i) / i;
  return b;
}

// Blocks start, start + 1, ..., start + w - 1 (mod k), ascending.
std::vector<int> CyclicSupport(int start, int w, int k) {
  std::vector<int> s;
  for (int i = 0; i < w; ++i) s.push_back((start + i) % k);
  std::sort(s.begin(), s.end());
  return s;
}

// The necessary coverage conditions of the header (1)-(3): cheap to check
// before any condition number.
bool CoversEnough(const std::vector<std::vector<int>>& sa, const std::vector<std::vector<int>>& sb,
                  int n, int ka, int kb) {
  const int s = n - ka * kb;
  std::vector<int> pair(static_cast<size_t>(ka * kb), 0), ca(static_cast<size_t>(ka), 0),
      cb(static_cast<size_t>(kb), 0);
  for (int r = 0; r < n; ++r) {
    for (int i : sa[static_cast<size_t>(r)]) {
      ++ca[static_cast<size_t>(i)];
      for (int j : sb[static_cast<size_t>(r)]) ++pair[static_cast<size_t>(i * kb + j)];
    }
    for (int j : sb[static_cast<size_t>(r)]) ++cb[static_cast<size_t>(j)];
  }
  for (int c : pair)
    if (c < s + 1) return false;
  for (int c : ca)
    if (c < kb + s) return false;
  for (int c : cb)
    if (c < ka + s) return false;
  return true;
}

void DrawCoefficients(LowWeightDesign* d, Random* rng) {
  d->coef_a = Matrix::Zero(d->peers, d->k_a);
  d->coef_b = Matrix::Zero(d->peers, d->k_b);
  for (int r = 0; r < d->peers; ++r) {
    for (int i : d->support_a[static_cast<size_t>(r)]) d->coef_a(r, i) = rng->Normal();
    for (int j : d->support_b[static_cast<size_t>(r)]) d->coef_b(r, j) = rng->Normal();
  }
  // Matrix-vector blocks need no B coefficient: keep it exactly 1.
  if (d->k_b == 1) d->coef_b.setOnes();
  if (d->k_a == 1) d->coef_a.setOnes();
  d->generator.resize(d->peers, d->k_a * d->k_b);
  for (int r = 0; r < d->peers; ++r)
    for (int i = 0; i < d->k_a; ++i)
      for (int j = 0; j < d->k_b; ++j)
        d->generator(r, i * d->k_b + j) = d->coef_a(r, i) * d->coef_b(r, j);
}

// Candidate start offsets (A, B) per peer: A cyclic in peer order, B spread
// by a stride (and the same with the roles swapped). The first family that
// decodes from every K-subset is used.
std::vector<std::pair<std::vector<int>, std::vector<int>>> StartFamilies(int n, int ka, int kb) {
  std::vector<std::pair<std::vector<int>, std::vector<int>>> out;
  std::set<std::pair<std::vector<int>, std::vector<int>>> seen;
  auto add = [&](auto fa, auto fb) {
    std::vector<int> a, b;
    for (int r = 0; r < n; ++r) {
      a.push_back(fa(r));
      b.push_back(fb(r));
    }
    if (seen.insert({a, b}).second) out.emplace_back(a, b);
  };
  for (int swap = 0; swap < 2; ++swap) {
    const int k1 = swap ? kb : ka, k2 = swap ? ka : kb;
    for (int shift = 0; shift < 2; ++shift) {
      for (int c = 0; c < std::max(k2, 1); ++c) {
        auto f1 = [=](int r) { return static_cast<int>(int64_t(r) * k1 / n) % k1; };
        auto f2 = [=](int r) {
          const int base = shift ? static_cast<int>(int64_t(r) * k2 / n) : 0;
          return (base + r * c) % k2;
        };
        if (swap) {
          add(f2, f1);
        } else {
          add(f1, f2);
        }
      }
    }
  }
  return out;
}

// A random generator on these supports decodes from every K-subset checked.
constexpr double kFeasibleCondition = 1e10;

}  // namespace

StatusOr<LowWeightPair> LowWeightLowerBound(int n, int ka, int kb) {
  if (ka < 1 || kb < 1) {
    return InvalidArgumentError("lowweight: k_a and k_b must be >= 1, got " + std::to_string(ka) +
                                " and " + std::to_string(kb));
  }
  if (n < 1 || n > kMaxPeers) {
    return InvalidArgumentError("lowweight: peers must be in [1, " + std::to_string(kMaxPeers) +
                                "], got " + std::to_string(n));
  }
  const int k = ka * kb;
  if (k > n) {
    return InvalidArgumentError("lowweight: K = k_a k_b = " + std::to_string(k) + " exceeds the " +
                                std::to_string(n) + " peers");
  }
  const int s = n - k;
  const int amin = CeilDiv(int64_t(ka) * (kb + s), n);
  const int bmin = CeilDiv(int64_t(kb) * (ka + s), n);
  const int pmin = CeilDiv(int64_t(k) * (s + 1), n);
  LowWeightPair best{ka, kb};
  for (int wa = amin; wa <= ka; ++wa) {
    for (int wb = bmin; wb <= kb; ++wb) {
      if (wa * wb < pmin) continue;
      const auto key = [](int x, int y) { return std::make_tuple(x * y, x + y, x); };
      if (key(wa, wb) < key(best.weight_a, best.weight_b)) best = {wa, wb};
    }
  }
  return best;
}

double WorstCaseCondition(const Matrix& g, int64_t max_subsets, uint64_t seed, bool* exhaustive,
                          double stop_above) {
  const int n = static_cast<int>(g.rows()), k = static_cast<int>(g.cols());
  const bool all = Binomial(n, k) <= static_cast<double>(std::max<int64_t>(max_subsets, 1));
  if (exhaustive != nullptr) *exhaustive = all;
  double worst = 0.0;
  Matrix sub(k, k), gram(k, k);
  Eigen::SelfAdjointEigenSolver<Matrix> eig(k);
  // The Gram matrix's eigenvalues are cheap and accurate while the condition
  // number is moderate; near singular ones are recomputed by SVD.
  auto cond_of = [&](const std::vector<int>& rows) {
    for (int i = 0; i < k; ++i) sub.row(i) = g.row(rows[static_cast<size_t>(i)]);
    gram.noalias() = sub.transpose() * sub;
    eig.compute(gram, Eigen::EigenvaluesOnly);
    const Vector& l = eig.eigenvalues();
    if (l(0) > 0.0 && l(k - 1) < 1e12 * l(0)) return std::sqrt(l(k - 1) / l(0));
    Eigen::JacobiSVD<Matrix> svd(sub);
    const Vector s = svd.singularValues();
    return s(k - 1) > 0.0 ? s(0) / s(k - 1) : std::numeric_limits<double>::infinity();
  };
  std::vector<int> idx(static_cast<size_t>(k));
  if (all) {
    for (int i = 0; i < k; ++i) idx[static_cast<size_t>(i)] = i;
    while (worst <= stop_above) {
      worst = std::max(worst, cond_of(idx));
      int i = k - 1;
      while (i >= 0 && idx[static_cast<size_t>(i)] == n - k + i) --i;
      if (i < 0) break;
      ++idx[static_cast<size_t>(i)];
      for (int j = i + 1; j < k; ++j)
        idx[static_cast<size_t>(j)] = idx[static_cast<size_t>(j - 1)] + 1;
    }
    return worst;
  }
  Random rng(seed);
  for (int64_t t = 0; t < max_subsets && worst <= stop_above; ++t) {
    idx = rng.Sample(n, k);
    worst = std::max(worst, cond_of(idx));
  }
  return worst;
}

StatusOr<LowWeightDesign> DesignLowWeightCode(const LowWeightOptions& o) {
  POLYGUARD_ASSIGN_OR_RETURN(LowWeightPair bound, LowWeightLowerBound(o.peers, o.k_a, o.k_b));
  if (o.draws < 1) {
    return InvalidArgumentError("lowweight: draws must be >= 1, got " + std::to_string(o.draws));
  }
  if (o.max_subsets < 1) {
    return InvalidArgumentError("lowweight: max_subsets must be >= 1");
  }
  auto check_weight = [](const char* name, int w, int k) -> Status {
    if (w < 0 || w > k) {
      return InvalidArgumentError(std::string("lowweight: ") + name + " must be in [0, " +
                                  std::to_string(k) + "] (0: the lower bound), got " +
                                  std::to_string(w));
    }
    return Status::Ok();
  };
  POLYGUARD_RETURN_IF_ERROR(check_weight("weight_a", o.weight_a, o.k_a));
  POLYGUARD_RETURN_IF_ERROR(check_weight("weight_b", o.weight_b, o.k_b));
  const int n = o.peers, ka = o.k_a, kb = o.k_b, k = ka * kb;

  // Weight pairs to try: the requested one, or the bound and then the next
  // pairs by product (a pair satisfying the bound's conditions may still
  // have no cyclic family that decodes).
  std::vector<LowWeightPair> pairs;
  if (o.weight_a != 0 || o.weight_b != 0) {
    pairs.push_back({o.weight_a != 0 ? o.weight_a : bound.weight_a,
                     o.weight_b != 0 ? o.weight_b : bound.weight_b});
  } else {
    for (int wa = bound.weight_a; wa <= ka; ++wa)
      for (int wb = 1; wb <= kb; ++wb)
        if (wa * wb >= bound.weight_a * bound.weight_b && wb >= bound.weight_b)
          pairs.push_back({wa, wb});
    std::stable_sort(pairs.begin(), pairs.end(), [](LowWeightPair x, LowWeightPair y) {
      return std::make_tuple(x.weight_a * x.weight_b, x.weight_a + x.weight_b) <
             std::make_tuple(y.weight_a * y.weight_b, y.weight_a + y.weight_b);
    });
  }

  Random rng(o.seed);
  for (const LowWeightPair& w : pairs) {
    for (const auto& [start_a, start_b] : StartFamilies(n, ka, kb)) {
      LowWeightDesign d;
      d.peers = n;
      d.k_a = ka;
      d.k_b = kb;
      d.weight_a = w.weight_a;
      d.weight_b = w.weight_b;
      for (int r = 0; r < n; ++r) {
        d.support_a.push_back(CyclicSupport(start_a[static_cast<size_t>(r)], w.weight_a, ka));
        d.support_b.push_back(CyclicSupport(start_b[static_cast<size_t>(r)], w.weight_b, kb));
      }
      if (!CoversEnough(d.support_a, d.support_b, n, ka, kb)) continue;
      // Keep the best of `draws` coefficient sets; a family whose first draw
      // has a singular K-subset is structurally singular (with probability 1).
      LowWeightDesign best;
      for (int draw = 0; draw < o.draws; ++draw) {
        DrawCoefficients(&d, &rng);
        // A draw stops being checked once it is worse than the best so far.
        d.worst_condition = WorstCaseCondition(
            d.generator, o.max_subsets, DeriveSeed(o.seed, {uint64_t(draw)}), &d.exhaustive,
            draw == 0 ? kFeasibleCondition : best.worst_condition);
        if (draw == 0 && !(d.worst_condition < kFeasibleCondition)) break;
        if (draw == 0 || d.worst_condition < best.worst_condition) best = d;
        if (k == 1 || (ka == 1 && kb == 1)) break;  // nothing to choose
      }
      if (best.peers == 0) continue;
      return best;
    }
  }
  return FailedPreconditionError(
      "lowweight: no cyclic support family with weights " + std::to_string(pairs.front().weight_a) +
      " x " + std::to_string(pairs.front().weight_b) + " decodes from every set of " +
      std::to_string(k) + " of " + std::to_string(n) + " peers; ask for larger weights");
}

LowWeightCode::LowWeightCode(ProductShape shape, LowWeightDesign design)
    : ProductCode(shape, design.peers), design_(std::move(design)) {
  block_rows_ = internal::BlockSize(shape.rows, design_.k_a);
  block_cols_ = internal::BlockSize(shape.cols, design_.k_b);
}

StatusOr<std::unique_ptr<LowWeightCode>> LowWeightCode::Create(ProductShape shape,
                                                               LowWeightOptions options) {
  POLYGUARD_RETURN_IF_ERROR(internal::ValidateShape(shape).WithContext("lowweight"));
  if (options.k_b > shape.cols) {
    return InvalidArgumentError("lowweight: k_b = " + std::to_string(options.k_b) +
                                " column blocks of B, but B has only " +
                                std::to_string(shape.cols) + " columns");
  }
  POLYGUARD_ASSIGN_OR_RETURN(LowWeightDesign design, DesignLowWeightCode(options));
  auto code = std::unique_ptr<LowWeightCode>(new LowWeightCode(shape, std::move(design)));
  POLYGUARD_ASSIGN_OR_RETURN(code->decoder_,
                             LinearCodeDecoder::Create(code->design_.generator, options.decoder));
  return code;
}

int LowWeightCode::errors_corrected_probabilistic() const {
  return std::max(0, num_peers() - recovery_threshold() - 1);
}
int LowWeightCode::errors_corrected_adversarial() const {
  return (num_peers() - recovery_threshold()) / 2;
}

std::string LowWeightCode::Describe() const {
  std::string out = "lowweight P=" + std::to_string(num_peers());
  out += " ka=" + std::to_string(design_.k_a);
  out += " kb=" + std::to_string(design_.k_b);
  out += " wa=" + std::to_string(design_.weight_a);
  out += " wb=" + std::to_string(design_.weight_b);
  auto bound = LowWeightLowerBound(num_peers(), design_.k_a, design_.k_b);
  if (bound.ok() && bound->weight_a * bound->weight_b < design_.weight_a * design_.weight_b) {
    out += " (above the bound " + std::to_string(bound->weight_a);
    out += "x" + std::to_string(bound->weight_b);
    out += ")";
  }
  char cond[32];
  std::snprintf(cond, sizeof(cond), "%.3g", design_.worst_condition);
  out += " cond=";
  out += cond;
  return out;
}

StatusOr<Matrix> LowWeightCode::EncodeShard(const MatrixRef& a, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckA(a).WithContext("lowweight shard"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("lowweight shard"));
  Matrix shard = Matrix::Zero(block_rows_, a.cols());
  for (int i : design_.support_a[static_cast<size_t>(peer)])
    internal::AddBlock(&shard, design_.coef_a(peer, i), a, i, 0, block_rows_, a.cols());
  return shard;
}

StatusOr<Matrix> LowWeightCode::EncodeInput(const MatrixRef& b, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckB(b).WithContext("lowweight input"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("lowweight input"));
  Matrix piece = Matrix::Zero(b.rows(), block_cols_);
  for (int j : design_.support_b[static_cast<size_t>(peer)])
    internal::AddBlock(&piece, design_.coef_b(peer, j), b, 0, j, b.rows(), block_cols_);
  return piece;
}

StatusOr<SparseMatrix> LowWeightCode::EncodeSparseShard(const SparseMatrix& a, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckSparseA(a).WithContext("lowweight shard"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("lowweight shard"));
  // Column by column: the rows of the support's blocks, shifted into one
  // block and scaled. Within a column, the blocks' rows arrive in order, so
  // merging them is a sum of sorted runs; a map keeps it simple and O(nnz log).
  const auto coef = design_.coef_a.row(peer);
  SparseMatrix shard(block_rows_, a.cols());
  std::vector<Eigen::Triplet<double>> triplets;
  for (Eigen::Index c = 0; c < a.outerSize(); ++c) {
    for (SparseMatrix::InnerIterator it(a, c); it; ++it) {
      const int64_t i = it.row() / block_rows_;
      const double g = coef(i);
      if (g == 0.0) continue;
      triplets.emplace_back(static_cast<int>(it.row() - i * block_rows_), static_cast<int>(c),
                            g * it.value());
    }
  }
  shard.setFromTriplets(triplets.begin(), triplets.end());
  return shard;
}

StatusOr<SparseMatrix> LowWeightCode::EncodeSparseInput(const SparseMatrix& b, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckSparseB(b).WithContext("lowweight input"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("lowweight input"));
  const auto coef = design_.coef_b.row(peer);
  std::vector<Eigen::Triplet<double>> triplets;
  for (Eigen::Index c = 0; c < b.outerSize(); ++c) {
    const int64_t j = c / block_cols_;
    const double g = coef(j);
    if (g == 0.0) continue;
    for (SparseMatrix::InnerIterator it(b, c); it; ++it)
      triplets.emplace_back(static_cast<int>(it.row()), static_cast<int>(c - j * block_cols_),
                            g * it.value());
  }
  SparseMatrix piece(b.rows(), block_cols_);
  piece.setFromTriplets(triplets.begin(), triplets.end());
  return piece;
}

StatusOr<DecodedProduct> LowWeightCode::Decode(std::span<const PeerResult> results) const {
  POLYGUARD_RETURN_IF_ERROR(CheckResults(results, block_rows_, block_cols_));
  std::vector<int> peers;
  std::vector<const double*> columns;
  for (const PeerResult& r : results) {
    peers.push_back(r.peer);
    columns.push_back(r.value.data());
  }
  const int64_t rows = shape().rows, cols = shape().cols;
  DecodedProduct out;
  out.product.resize(rows, cols);
  auto sink = [&](int64_t l0, const MatrixRef& chunk) {
    internal::ScatterBlockChunk(&out.product, l0, chunk, design_.k_a, design_.k_b, block_rows_,
                                block_cols_);
  };
  POLYGUARD_ASSIGN_OR_RETURN(DecodeOutcome outcome,
                             decoder_->Decode(peers, columns, block_rows_ * block_cols_, sink,
                                              RoundoffFloor(results, recovery_threshold())));
  internal::TakeVerdict(&outcome, block_rows_ * block_cols_ * design_.k_a * design_.k_b,
                        out.product.size(), &out);
  return out;
}

StrategyEntry LowWeightStrategyEntry() {
  StrategyEntry e;
  e.name = std::string(Strategy::kLowWeight.name());
  e.parameters = "k_a, k_b, weight_a, weight_b";
  e.can = {.keeps_sparsity = true, .corrects_errors = true};
  e.make = [](const ProductCodeOptions& o) -> StatusOr<std::unique_ptr<ProductCode>> {
    LowWeightOptions p{.peers = o.peers,
                       .k_a = o.k_a,
                       .k_b = o.k_b,
                       .weight_a = o.weight_a,
                       .weight_b = o.weight_b,
                       .decoder = o.decoder};
    POLYGUARD_ASSIGN_OR_RETURN(auto code, LowWeightCode::Create(o.shape, p));
    return std::unique_ptr<ProductCode>(std::move(code));
  };
  return e;
}

}  // namespace polyguard
