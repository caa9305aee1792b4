#include "polyguard/codes/rotation_code.h"

#include <cmath>
#include <limits>
#include <numbers>

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#include "polyguard/base/peer_set.h"
#include "polyguard/base/random.h"

namespace polyguard {

Matrix Rotation(double t) {
  Matrix r(2, 2);
  r << std::cos(t), -std::sin(t), std::sin(t), std::cos(t);
  return r;
}

Matrix RotationEncoder(int peer, int q, int symbols, int step) {
  Matrix g(2, 2 * symbols);
  const double t = 2.0 * std::numbers::pi * peer / q;
  for (int s = 0; s < symbols; ++s) {
    // Exponent step * s, reduced mod q so the angle stays small and exact.
    const int e = static_cast<int>((int64_t(step) * s) % q);
    g.middleCols(2 * s, 2) = Rotation(e * t);
  }
  return g;
}

Matrix RotationProductGenerator(int peers, int q, int m, int d) {
  const int ka = 2 * m, kb = 2 * d;
  Matrix g(4 * peers, ka * kb);
  for (int r = 0; r < peers; ++r) {
    const Matrix ga = RotationEncoder(r, q, m, 1);
    const Matrix gb = RotationEncoder(r, q, d, m);
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b)
        for (int u = 0; u < ka; ++u)
          for (int v = 0; v < kb; ++v) g(4 * r + 2 * a + b, u * kb + v) = ga(a, u) * gb(b, v);
  }
  return g;
}

RotationCode::RotationCode(ProductShape shape, RotationOptions o)
    : ProductCode(shape, o.peers), options_(o) {
  q_ = o.peers;
  block_rows_ = internal::BlockSize(shape.rows, 2 * int64_t{o.m});
  block_cols_ = internal::BlockSize(shape.cols, 2 * int64_t{o.d});
  generator_ = RotationProductGenerator(o.peers, q_, o.m, o.d);
}

StatusOr<std::unique_ptr<RotationCode>> RotationCode::Create(ProductShape shape,
                                                             RotationOptions o) {
  POLYGUARD_RETURN_IF_ERROR(internal::ValidateShape(shape).WithContext("rotation"));
  if (o.peers < 1 || o.peers > kMaxPeers) {
    return InvalidArgumentError("rotation: peers must be in [1, " + std::to_string(kMaxPeers) +
                                "], got " + std::to_string(o.peers));
  }
  if (o.m < 1 || o.d < 1 || int64_t{o.m} * o.d > o.peers) {
    return InvalidArgumentError(
        "rotation: m, d >= 1 with K = m d <= P = " + std::to_string(o.peers) +
        ", got m=" + std::to_string(o.m) + " d=" + std::to_string(o.d));
  }
  auto code = std::unique_ptr<RotationCode>(new RotationCode(shape, o));
  POLYGUARD_ASSIGN_OR_RETURN(code->decoder_,
                             LinearCodeDecoder::Create(code->generator_, o.decoder, 4));
  return code;
}

int RotationCode::errors_corrected_probabilistic() const {
  return std::max(0, num_peers() - recovery_threshold() - 1);
}
int RotationCode::errors_corrected_adversarial() const {
  return (num_peers() - recovery_threshold()) / 2;
}

std::string RotationCode::Describe() const {
  std::string out = "genpolydot P=" + std::to_string(num_peers());
  out += " m=" + std::to_string(options_.m);
  out += " n=1 d=" + std::to_string(options_.d);
  out += " K=" + std::to_string(recovery_threshold());
  out += " points=rotation";
  return out;
}

StatusOr<Matrix> RotationCode::EncodeShard(const MatrixRef& a, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckA(a).WithContext("rotation shard"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("rotation shard"));
  const Matrix g = RotationEncoder(peer, q_, options_.m, 1);
  Matrix shard = Matrix::Zero(2 * block_rows_, a.cols());
  for (int u = 0; u < 2 * options_.m; ++u) {
    const Matrix block = internal::RowBlock(a, u, block_rows_);
    for (int half = 0; half < 2; ++half)
      if (g(half, u) != 0.0)
        shard.middleRows(half * block_rows_, block_rows_).noalias() += g(half, u) * block;
  }
  return shard;
}

StatusOr<Matrix> RotationCode::EncodeInput(const MatrixRef& b, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckB(b).WithContext("rotation input"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("rotation input"));
  const Matrix g = RotationEncoder(peer, q_, options_.d, options_.m);
  Matrix piece = Matrix::Zero(b.rows(), 2 * block_cols_);
  for (int v = 0; v < 2 * options_.d; ++v) {
    for (int half = 0; half < 2; ++half) {
      if (g(half, v) == 0.0) continue;
      Matrix part = Matrix::Zero(b.rows(), block_cols_);
      internal::AddBlock(&part, g(half, v), b, 0, v, b.rows(), block_cols_);
      piece.middleCols(half * block_cols_, block_cols_) += part;
    }
  }
  return piece;
}

StatusOr<DecodedProduct> RotationCode::Decode(std::span<const PeerResult> results) const {
  POLYGUARD_RETURN_IF_ERROR(CheckResults(results, 2 * block_rows_, 2 * block_cols_));
  const int64_t l = block_rows_ * block_cols_;
  // A peer's result is its 4 blocks p_ab; lay each out contiguously.
  std::vector<Matrix> blocks;
  blocks.reserve(results.size());
  std::vector<int> peers;
  std::vector<const double*> columns;
  for (const PeerResult& r : results) {
    Matrix four(l, 4);
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b)
        four.col(2 * a + b) =
            r.value.block(a * block_rows_, b * block_cols_, block_rows_, block_cols_).reshaped();
    blocks.push_back(std::move(four));
    peers.push_back(r.peer);
  }
  for (const Matrix& four : blocks)
    for (int c = 0; c < 4; ++c) columns.push_back(four.col(c).data());
  DecodedProduct out;
  out.product.resize(shape().rows, shape().cols);
  auto sink = [&](int64_t l0, const MatrixRef& chunk) {
    internal::ScatterBlockChunk(&out.product, l0, chunk, 2 * options_.m, 2 * options_.d,
                                block_rows_, block_cols_);
  };
  POLYGUARD_ASSIGN_OR_RETURN(
      DecodeOutcome outcome,
      decoder_->Decode(peers, columns, l, sink, RoundoffFloor(results, recovery_threshold())));
  internal::TakeVerdict(&outcome, l * 4 * options_.m * options_.d, out.product.size(), &out);
  return out;
}

double WorstCasePeerCondition(const Matrix& g, int rows_per_peer, int k, int64_t max_subsets,
                              uint64_t seed) {
  const int n = static_cast<int>(g.rows()) / rows_per_peer;
  double binom = 1.0;
  for (int i = 1; i <= k; ++i) binom = binom * (n - k + i) / i;
  const bool all = binom <= static_cast<double>(max_subsets);
  const int rows = k * rows_per_peer;
  Matrix sub(rows, g.cols()), gram(g.cols(), g.cols());
  Eigen::SelfAdjointEigenSolver<Matrix> eig(g.cols());
  double worst = 0.0;
  auto visit = [&](const std::vector<int>& peers) {
    for (int i = 0; i < k; ++i)
      sub.middleRows(i * rows_per_peer, rows_per_peer) =
          g.middleRows(peers[static_cast<size_t>(i)] * rows_per_peer, rows_per_peer);
    gram.noalias() = sub.transpose() * sub;
    eig.compute(gram, Eigen::EigenvaluesOnly);
    const Vector& e = eig.eigenvalues();
    double c;
    if (e(0) > 0.0 && e(e.size() - 1) < 1e12 * e(0)) {
      c = std::sqrt(e(e.size() - 1) / e(0));
    } else {
      Eigen::JacobiSVD<Matrix> svd(sub);
      const Vector s = svd.singularValues();
      c = s(s.size() - 1) > 0 ? s(0) / s(s.size() - 1) : std::numeric_limits<double>::infinity();
    }
    worst = std::max(worst, c);
  };
  std::vector<int> idx(static_cast<size_t>(k));
  if (all) {
    for (int i = 0; i < k; ++i) idx[static_cast<size_t>(i)] = i;
    while (true) {
      visit(idx);
      int i = k - 1;
      while (i >= 0 && idx[static_cast<size_t>(i)] == n - k + i) --i;
      if (i < 0) break;
      ++idx[static_cast<size_t>(i)];
      for (int j = i + 1; j < k; ++j)
        idx[static_cast<size_t>(j)] = idx[static_cast<size_t>(j - 1)] + 1;
    }
  } else {
    Random rng(seed);
    for (int64_t t = 0; t < max_subsets; ++t) {
      idx = rng.Sample(n, k);
      std::sort(idx.begin(), idx.end());
      visit(idx);
    }
  }
  return worst;
}

}  // namespace polyguard
