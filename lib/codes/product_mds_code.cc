#include "polyguard/codes/product_mds_code.h"

#include <algorithm>
#include <string>

#include "polyguard/base/peer_set.h"
#include "polyguard/codes/mds_code.h"

namespace polyguard {

using internal::AddBlock;

int ProductMdsPeers(const ProductMdsOptions& o) {
  return o.row_blocks * o.col_peers + (o.row_peers - o.row_blocks) * o.col_blocks;
}

StatusOr<ProductMdsOptions> DefaultProductMdsLayout(int peers) {
  // P = Q_r (Q_c + 1) + Q_c with one parity row and column; the most data
  // blocks Q_r Q_c (smallest shards), then the squarest grid.
  ProductMdsOptions best;
  int best_blocks = 0;
  for (int qr = 1; qr < peers; ++qr) {
    for (int qc = 1; qc < peers; ++qc) {
      const ProductMdsOptions o{
          .row_peers = qr + 1, .row_blocks = qr, .col_peers = qc + 1, .col_blocks = qc};
      if (ProductMdsPeers(o) != peers) continue;
      if (qr * qc > best_blocks ||
          (qr * qc == best_blocks &&
           std::abs(qr - qc) < std::abs(best.row_blocks - best.col_blocks))) {
        best = o;
        best_blocks = qr * qc;
      }
    }
  }
  if (best_blocks == 0) {
    return InvalidArgumentError(
        "mds: no product-code layout with one parity row and column "
        "fits " +
        std::to_string(peers) + " peers (P = Q_r (Q_c + 1) + Q_c)");
  }
  return best;
}

StatusOr<std::unique_ptr<ProductMdsCode>> ProductMdsCode::Create(ProductShape shape,
                                                                 ProductMdsOptions o) {
  POLYGUARD_RETURN_IF_ERROR(internal::ValidateShape(shape).WithContext("mds"));
  if (o.points == PointKind::kRotation) {
    return InvalidArgumentError(
        "mds: rotation points are for Polynomial codes (genpolydot, n = 1)");
  }
  if (o.row_blocks < 1 || o.row_peers < o.row_blocks || o.col_blocks < 1 ||
      o.col_peers < o.col_blocks || o.row_peers > kMaxPeers || o.col_peers > kMaxPeers) {
    return InvalidArgumentError(
        "mds: the product-code layout needs 1 <= Q_r <= P_r and 1 <= Q_c "
        "<= P_c (<= " +
        std::to_string(kMaxPeers) + "), got P_r=" + std::to_string(o.row_peers) +
        " Q_r=" + std::to_string(o.row_blocks) + " P_c=" + std::to_string(o.col_peers) +
        " Q_c=" + std::to_string(o.col_blocks));
  }
  const int peers = ProductMdsPeers(o);
  if (peers > kMaxPeers)
    return InvalidArgumentError("mds: the layout needs more than " + std::to_string(kMaxPeers) +
                                " peers");
  auto code = std::unique_ptr<ProductMdsCode>(new ProductMdsCode(shape, o));
  const SystematicMds rows = MakeSystematicMds(o.points, o.row_peers, o.row_blocks);
  const SystematicMds cols = MakeSystematicMds(o.points, o.col_peers, o.col_blocks);
  code->g_r_ = rows.generator;
  code->g_c_ = cols.generator;
  std::vector<int> wanted_r(size_t(o.row_blocks)), wanted_c(size_t(o.col_blocks));
  for (int a = 0; a < o.row_blocks; ++a) wanted_r[size_t(a)] = a;
  for (int b = 0; b < o.col_blocks; ++b) wanted_c[size_t(b)] = b;
  POLYGUARD_ASSIGN_OR_RETURN(
      code->row_decoder_,
      ErrorsAndErasuresDecoder::Create(rows.points, rows.generator, wanted_r, o.decoder));
  POLYGUARD_ASSIGN_OR_RETURN(
      code->col_decoder_,
      ErrorsAndErasuresDecoder::Create(cols.points, cols.generator, wanted_c, o.decoder));
  return code;
}

ProductMdsCode::ProductMdsCode(ProductShape shape, ProductMdsOptions o)
    : ProductCode(shape, ProductMdsPeers(o)), o_(o) {
  block_rows_ = internal::BlockSize(shape.rows, o.row_blocks);
  block_inner_ = internal::BlockSize(shape.inner, o.col_blocks);
}

std::string ProductMdsCode::Describe() const {
  return "mds product layout P=" + std::to_string(num_peers()) +
         " P_r=" + std::to_string(o_.row_peers) + " Q_r=" + std::to_string(o_.row_blocks) +
         " P_c=" + std::to_string(o_.col_peers) + " Q_c=" + std::to_string(o_.col_blocks);
}

std::pair<int, int> ProductMdsCode::Position(int peer) const {
  const int top = o_.row_blocks * o_.col_peers;
  if (peer < top) return {peer / o_.col_peers, peer % o_.col_peers};
  const int k = peer - top;
  return {o_.row_blocks + k / o_.col_blocks, k % o_.col_blocks};
}

int ProductMdsCode::PeerAt(int i, int j) const {
  if (i >= 0 && i < o_.row_blocks && j >= 0 && j < o_.col_peers) return i * o_.col_peers + j;
  if (i >= o_.row_blocks && i < o_.row_peers && j >= 0 && j < o_.col_blocks)
    return o_.row_blocks * o_.col_peers + (i - o_.row_blocks) * o_.col_blocks + j;
  return -1;
}

StatusOr<Matrix> ProductMdsCode::EncodeShard(const MatrixRef& a, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckA(a).WithContext("mds shard"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("mds shard"));
  const auto [i, j] = Position(peer);
  Matrix shard = Matrix::Zero(block_rows_, block_inner_);
  for (int ra = 0; ra < o_.row_blocks; ++ra)
    for (int cb = 0; cb < o_.col_blocks; ++cb) {
      const double g = g_r_(i, ra) * g_c_(j, cb);
      if (g != 0.0) AddBlock(&shard, g, a, ra, cb, block_rows_, block_inner_);
    }
  return shard;
}

StatusOr<Matrix> ProductMdsCode::EncodeInput(const MatrixRef& b, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckB(b).WithContext("mds input"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("mds input"));
  const int j = Position(peer).second;
  if (j >= o_.col_blocks) return Matrix(block_inner_, 0);  // idle in the forward product
  return internal::RowBlock(b, j, block_inner_);
}

Matrix ProductMdsCode::PeerProduct(const MatrixRef& shard, const MatrixRef& piece) const {
  if (piece.cols() == 0) return Matrix::Zero(block_rows_, shape().cols);
  return Multiply(shard, piece);
}

Matrix ProductMdsCode::PeerProductFloat32(const Eigen::MatrixXf& shard,
                                          const MatrixRef& piece) const {
  if (piece.cols() == 0) return Matrix::Zero(block_rows_, shape().cols);
  return MultiplyFloat32(shard, piece);
}

StatusOr<Matrix> ProductMdsCode::EncodeTransposeInput(const MatrixRef& d, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(internal::CheckTransposeInput(*this, d).WithContext("mds"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("mds transpose input"));
  const int i = Position(peer).first;
  if (i >= o_.row_blocks) return Matrix(block_rows_, 0);  // idle in the transpose product
  return internal::RowBlock(d, i, block_rows_);
}

Matrix ProductMdsCode::PeerTransposeProduct(const MatrixRef& shard, const MatrixRef& piece) const {
  if (piece.cols() == 0) return Matrix::Zero(block_inner_, shape().cols);
  return Multiply(shard.transpose(), piece);
}

Matrix ProductMdsCode::PeerTransposeProductFloat32(const Eigen::MatrixXf& shard,
                                                   const MatrixRef& piece) const {
  if (piece.cols() == 0) return Matrix::Zero(block_inner_, shape().cols);
  return MultiplyFloat32(shard.transpose(), piece);
}

StatusOr<DecodedProduct> ProductMdsCode::DecodeLines(std::span<const PeerResult> results,
                                                     bool rows) const {
  const int64_t block = rows ? block_rows_ : block_inner_;
  const int64_t cols = shape().cols;
  POLYGUARD_RETURN_IF_ERROR(CheckResults(results, block, cols));
  std::vector<const Matrix*> by_peer(static_cast<size_t>(num_peers()), nullptr);
  for (const PeerResult& r : results) by_peer[size_t(r.peer)] = &r.value;
  // Forward: line i sums peers (i, j < Q_c); transpose: line j sums (i < Q_r, j).
  const int lines = rows ? o_.row_peers : o_.col_peers;
  const int members = rows ? o_.col_blocks : o_.row_blocks;
  std::vector<int> line_ids;
  std::vector<Matrix> sums;
  for (int line = 0; line < lines; ++line) {
    Matrix sum = Matrix::Zero(block, cols);
    bool complete = true;
    for (int k = 0; k < members && complete; ++k) {
      const Matrix* v = by_peer[size_t(rows ? PeerAt(line, k) : PeerAt(k, line))];
      if (v == nullptr)
        complete = false;
      else
        sum += *v;
    }
    if (!complete) continue;
    line_ids.push_back(line);
    sums.push_back(std::move(sum));
  }
  std::vector<const double*> columns;
  for (const Matrix& s : sums) columns.push_back(s.data());
  const ErrorsAndErasuresDecoder& decoder = rows ? *row_decoder_ : *col_decoder_;
  // The least floor only (RoundoffFloor's, for products at subnormal scale):
  // the peers' declarations are not combined into the line sums.
  StatusOr<DecodeOutcome> outcome =
      decoder.Decode(line_ids, columns, block * cols, kLeastRoundoffFloor);
  if (!outcome.ok()) {
    return Status(outcome.status().code(),
                  "mds (" + std::string(rows ? "forward row" : "transpose column") +
                      " sums): " + outcome.status().message());
  }
  const int64_t out_rows = rows ? shape().rows : shape().inner;
  const int blocks = rows ? o_.row_blocks : o_.col_blocks;
  Matrix full(block * blocks, cols);
  for (int a = 0; a < blocks; ++a)
    full.middleRows(a * block, block) = outcome->coefficients.col(a).reshaped(block, cols);
  DecodedProduct out;
  out.product = full.topRows(out_rows);
  internal::TakeVerdict(&*outcome, full.size(), out.product.size(), &out);
  // The code locates a wrong line, not which of its peers was wrong.
  const std::vector<int> wrong_lines = std::move(out.wrong_peers);
  out.wrong_peers.clear();
  for (int line : wrong_lines)
    for (int k = 0; k < members; ++k)
      out.wrong_peers.push_back(rows ? PeerAt(line, k) : PeerAt(k, line));
  std::sort(out.wrong_peers.begin(), out.wrong_peers.end());
  return out;
}

StatusOr<DecodedProduct> ProductMdsCode::Decode(std::span<const PeerResult> results) const {
  return DecodeLines(results, true);
}

StatusOr<DecodedProduct> ProductMdsCode::DecodeTranspose(
    std::span<const PeerResult> results) const {
  return DecodeLines(results, false);
}

Status ProductMdsCode::UpdateShard(Matrix* shard, int peer, const MatrixRef& d, const MatrixRef& x,
                                   double eta) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("mds update"));
  POLYGUARD_RETURN_IF_ERROR(
      internal::CheckUpdate(*this, shard, block_rows_, block_inner_, d, x, eta)
          .WithContext("mds update"));
  const auto [i, j] = Position(peer);
  const int64_t b = d.cols();
  Matrix left = Matrix::Zero(block_rows_, b), right = Matrix::Zero(block_inner_, b);
  for (int a = 0; a < o_.row_blocks; ++a) AddBlock(&left, g_r_(i, a), d, a, 0, block_rows_, b);
  for (int c = 0; c < o_.col_blocks; ++c) AddBlock(&right, g_c_(j, c), x, c, 0, block_inner_, b);
  shard->noalias() -= eta * left * right.transpose();
  return Status::Ok();
}

StatusOr<std::vector<int>> ProductMdsCode::CheckProbes(std::span<const PeerResult> probes) const {
  const int64_t length = probes.empty() ? 0 : probes[0].value.rows();
  POLYGUARD_RETURN_IF_ERROR(CheckResults(probes, length, 1));
  std::vector<const Matrix*> by_peer(static_cast<size_t>(num_peers()), nullptr);
  for (const PeerResult& r : probes) by_peer[size_t(r.peer)] = &r.value;
  std::vector<int> wrong;
  std::vector<int> bad_rows, bad_cols;
  // Lines with too few probes left to check anything (stragglers).
  std::vector<int> unchecked_rows, unchecked_cols;
  // One line: a row of the top block (coded by G_c) or a data column (G_r).
  auto check = [&](bool row, int index) -> Status {
    const int count = row ? o_.col_peers : o_.row_peers;
    std::vector<int> ids;
    std::vector<const double*> columns;
    for (int k = 0; k < count; ++k) {
      const int peer = row ? PeerAt(index, k) : PeerAt(k, index);
      if (by_peer[size_t(peer)] == nullptr) continue;
      ids.push_back(k);
      columns.push_back(by_peer[size_t(peer)]->data());
    }
    const ErrorsAndErasuresDecoder& decoder = row ? *col_decoder_ : *row_decoder_;
    if (static_cast<int>(ids.size()) <= decoder.recovery_threshold()) {
      (row ? unchecked_rows : unchecked_cols).push_back(index);
      return Status::Ok();
    }
    StatusOr<DecodeOutcome> outcome = decoder.Decode(ids, columns, length, kLeastRoundoffFloor);
    if (outcome.ok()) {
      for (int k : outcome->wrong_peers) wrong.push_back(row ? PeerAt(index, k) : PeerAt(k, index));
    } else if (outcome.status().code() == StatusCode::kDataLoss) {
      (row ? bad_rows : bad_cols).push_back(index);  // inconsistent, not located
    } else {
      return outcome.status();
    }
    return Status::Ok();
  };
  for (int i = 0; i < o_.row_blocks; ++i) POLYGUARD_RETURN_IF_ERROR(check(true, i));
  for (int j = 0; j < o_.col_blocks; ++j) POLYGUARD_RETURN_IF_ERROR(check(false, j));
  // A line that is inconsistent but could not say which peer: a data peer
  // sits on a bad row and a bad column; a parity peer only on one line, and
  // is named when it is its line's only parity peer.
  // A line holding a peer its other line located is explained by it.
  std::vector<bool> row_used(bad_rows.size(), false), col_used(bad_cols.size(), false);
  for (int w : wrong) {
    const auto [wi, wj] = Position(w);
    for (size_t r = 0; r < bad_rows.size(); ++r) row_used[r] = row_used[r] || bad_rows[r] == wi;
    for (size_t c = 0; c < bad_cols.size(); ++c) col_used[c] = col_used[c] || bad_cols[c] == wj;
  }
  std::vector<int> unexplained_rows, unexplained_cols;
  for (size_t r = 0; r < bad_rows.size(); ++r)
    if (!row_used[r]) unexplained_rows.push_back(bad_rows[r]);
  for (size_t c = 0; c < bad_cols.size(); ++c)
    if (!col_used[c]) unexplained_cols.push_back(bad_cols[c]);
  bad_rows = unexplained_rows;
  bad_cols = unexplained_cols;
  row_used.assign(bad_rows.size(), false);
  col_used.assign(bad_cols.size(), false);
  for (size_t r = 0; r < bad_rows.size(); ++r)
    for (size_t c = 0; c < bad_cols.size(); ++c) {
      wrong.push_back(PeerAt(bad_rows[r], bad_cols[c]));
      row_used[r] = col_used[c] = true;
    }
  // The parity peer is the culprit only by elimination: when its line has
  // one parity peer and every data peer on the line was cleared by its other
  // line. A data peer whose other line had no redundancy left is unchecked
  // (blaming the parity peer then named an honest one and left the
  // corrupted shard as the source of its repair).
  for (size_t r = 0; r < bad_rows.size(); ++r) {
    if (row_used[r]) continue;
    if (o_.col_peers - o_.col_blocks != 1 || !unchecked_cols.empty()) {
      return DataLossError("mds scrub: row " + std::to_string(bad_rows[r]) +
                           " of shards is inconsistent and the culprit cannot be told");
    }
    wrong.push_back(PeerAt(bad_rows[r], o_.col_blocks));
  }
  for (size_t c = 0; c < bad_cols.size(); ++c) {
    if (col_used[c]) continue;
    if (o_.row_peers - o_.row_blocks != 1 || !unchecked_rows.empty()) {
      return DataLossError("mds scrub: column " + std::to_string(bad_cols[c]) +
                           " of shards is inconsistent and the culprit cannot be told");
    }
    wrong.push_back(PeerAt(o_.row_blocks, bad_cols[c]));
  }
  std::sort(wrong.begin(), wrong.end());
  wrong.erase(std::unique(wrong.begin(), wrong.end()), wrong.end());
  return wrong;
}

StatusOr<std::vector<int>> ProductMdsCode::RepairSources(int target,
                                                         std::span<const int> healthy) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(target).WithContext("mds repair"));
  const auto [i, j] = Position(target);
  auto is_healthy = [&](int p) {
    return std::find(healthy.begin(), healthy.end(), p) != healthy.end();
  };
  if (i < o_.row_blocks) {  // its row of the top block
    std::vector<int> s;
    for (int k = 0; k < o_.col_peers && int(s.size()) < o_.col_blocks; ++k)
      if (k != j && is_healthy(PeerAt(i, k))) s.push_back(PeerAt(i, k));
    if (int(s.size()) == o_.col_blocks) return s;
  }
  if (j < o_.col_blocks) {  // its data column
    std::vector<int> s;
    for (int k = 0; k < o_.row_peers && int(s.size()) < o_.row_blocks; ++k)
      if (k != i && is_healthy(PeerAt(k, j))) s.push_back(PeerAt(k, j));
    if (int(s.size()) == o_.row_blocks) return s;
  }
  return FailedPreconditionError("mds repair of peer " + std::to_string(target) +
                                 ": too few healthy shards in its row and column");
}

StatusOr<Matrix> ProductMdsCode::RepairShard(int target,
                                             std::span<const PeerResult> sources) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(target).WithContext("mds repair"));
  if (sources.empty()) return InvalidArgumentError("mds repair: no sources");
  POLYGUARD_RETURN_IF_ERROR(
      CheckResults(sources, sources[0].value.rows(), sources[0].value.cols()));
  const auto [i, j] = Position(target);
  bool same_row = true, same_col = true;
  for (const PeerResult& s : sources) {
    const auto [si, sj] = Position(s.peer);
    same_row = same_row && si == i && sj != j;
    same_col = same_col && sj == j && si != i;
  }
  // target = g_t^T (G_S)^-1 [sources]: the line code's interpolation.
  const Matrix& g = same_row ? g_c_ : g_r_;
  const int need = same_row ? o_.col_blocks : o_.row_blocks;
  if ((!same_row && !same_col) || static_cast<int>(sources.size()) != need) {
    return InvalidArgumentError("mds repair of peer " + std::to_string(target) + ": needs " +
                                std::to_string(need) + " other peers of its row or column");
  }
  Matrix gs(need, g.cols());
  for (int k = 0; k < need; ++k) {
    const auto [si, sj] = Position(sources[size_t(k)].peer);
    gs.row(k) = g.row(same_row ? sj : si);
  }
  const Vector gt = g.row(same_row ? j : i).transpose();
  const Vector weights = gs.transpose().colPivHouseholderQr().solve(gt);
  Matrix out = Matrix::Zero(sources[0].value.rows(), sources[0].value.cols());
  for (int k = 0; k < need; ++k) out.noalias() += weights(k) * sources[size_t(k)].value;
  return out;
}

Status UseDefaultProductMdsLayout(ProductCodeOptions* o) {
  if (o->strategy != Strategy::kMds || o->row_blocks != 0) return Status::Ok();
  POLYGUARD_ASSIGN_OR_RETURN(ProductMdsOptions layout, DefaultProductMdsLayout(o->peers));
  o->row_peers = layout.row_peers;
  o->row_blocks = layout.row_blocks;
  o->col_peers = layout.col_peers;
  o->col_blocks = layout.col_blocks;
  return Status::Ok();
}

}  // namespace polyguard
