#include "polyguard/codes/abft_code.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <string>

#include "polyguard/base/peer_set.h"
#include "polyguard/base/precision.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard {

namespace {

// Whether a checksum disagrees with the values it covers: either side is not
// finite, or their difference exceeds the tolerance times the magnitudes
// involved. Computed on the values scaled by a power of two (exact) that
// brings the largest near 1: unscaled, a wrong value near DBL_MAX made both
// the difference and the bound overflow, and inf <= inf passed; and the
// DBL_MIN floor (for all-zero rows) swamped subnormal data's tolerance.
template <typename Values>
bool Disagrees(const Values& values, double check, double tolerance) {
  if (!std::isfinite(check) || !AllFinite(values)) return true;
  const double largest =
      std::max(values.size() > 0 ? double(values.cwiseAbs().maxCoeff()) : 0.0, std::abs(check));
  if (largest == 0.0) return false;
  // Two factors: 2^e alone overflows for subnormal data (e up to 1074).
  const auto [s1, s2] = PowerOfTwoFactors(-std::ilogb(largest));
  const double sum = (values.array() * s1 * s2).sum();
  const double scale = (values.array().abs() * s1 * s2).sum();
  const double c = check * s1 * s2;
  return !(std::abs(sum - c) <= tolerance * (scale + std::abs(c)) + DBL_MIN);
}

}  // namespace

StatusOr<std::unique_ptr<AbftCode>> AbftCode::Create(ProductShape shape, AbftOptions o) {
  POLYGUARD_RETURN_IF_ERROR(internal::ValidateShape(shape).WithContext("abft"));
  if (o.peers < 1 || o.peers > kMaxPeers) {
    return InvalidArgumentError("abft: peers must be in [1, " + std::to_string(kMaxPeers) +
                                "], got " + std::to_string(o.peers));
  }
  POLYGUARD_RETURN_IF_ERROR(ValidateTolerance(o.tolerance, "abft"));
  return std::unique_ptr<AbftCode>(new AbftCode(shape, o));
}

AbftCode::AbftCode(ProductShape shape, AbftOptions o) : ProductCode(shape, o.peers), options_(o) {
  block_rows_ = internal::BlockSize(shape.rows, o.peers);
}

std::string AbftCode::Describe() const { return "abft P=" + std::to_string(num_peers()); }

StatusOr<Matrix> AbftCode::EncodeShard(const MatrixRef& a, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckA(a).WithContext("abft shard"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("abft shard"));
  Matrix shard(block_rows_ + 1, a.cols() + 1);
  shard.topLeftCorner(block_rows_, a.cols()) = internal::RowBlock(a, peer, block_rows_);
  shard.col(a.cols()).head(block_rows_) =
      shard.topLeftCorner(block_rows_, a.cols()).rowwise().sum();
  shard.row(block_rows_) = shard.topRows(block_rows_).colwise().sum();
  return shard;
}

StatusOr<Matrix> AbftCode::EncodeInput(const MatrixRef& b, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckB(b).WithContext("abft input"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("abft input"));
  Matrix piece(b.rows(), b.cols() + 1);
  piece.leftCols(b.cols()) = b;
  piece.col(b.cols()) = b.rowwise().sum();
  return piece;
}

StatusOr<bool> AbftCode::CheckAndCorrect(Matrix* res, int peer, Eigen::Index br,
                                         Eigen::Index bc) const {
  auto data = res->topLeftCorner(br, bc);
  auto disagree = [this](const auto& values, double check) {
    return Disagrees(values, check, options_.tolerance);
  };
  auto row_bad = [&](Eigen::Index i) { return disagree(data.row(i), (*res)(i, bc)); };
  auto col_bad = [&](Eigen::Index j) { return disagree(data.col(j), (*res)(br, j)); };
  std::vector<Eigen::Index> bad_rows, bad_cols;
  for (Eigen::Index i = 0; i < br; ++i)
    if (row_bad(i)) bad_rows.push_back(i);
  for (Eigen::Index j = 0; j < bc; ++j)
    if (col_bad(j)) bad_cols.push_back(j);
  if (bad_rows.empty() || bad_cols.empty()) {
    // At most a checksum entry itself is wrong; the data agree with the rest.
    // The corner (the sum of all) is checked against both checksum vectors.
    const double corner = (*res)(br, bc);
    const bool corner_bad =
        disagree(res->row(br).head(bc), corner) && disagree(res->col(bc).head(br), corner);
    if (bad_rows.size() <= 1 && bad_cols.size() <= 1)
      return !bad_rows.empty() || !bad_cols.empty() || corner_bad;
  } else if (bad_rows.size() == 1 && bad_cols.size() == 1) {
    const Eigen::Index i = bad_rows[0], j = bad_cols[0];
    // Recompute from the row checksum (works for NaN/Inf too), then confirm
    // with the column checksum.
    double others = 0.0;
    for (Eigen::Index c = 0; c < bc; ++c)
      if (c != j) others += data(i, c);
    data(i, j) = (*res)(i, bc) - others;
    if (!row_bad(i) && !col_bad(j)) return true;
  }
  return DataLossError("abft: peer " + std::to_string(peer) + " has " +
                       std::to_string(bad_rows.size()) + " rows and " +
                       std::to_string(bad_cols.size()) +
                       " columns disagreeing with its checksums (one wrong entry is "
                       "correctable); suspect peers: " +
                       std::to_string(peer));
}

double AbftCode::DeviationBound(const Matrix& result, Eigen::Index rows, Eigen::Index cols) const {
  if (rows == 0 || cols == 0) return 0.0;
  // In quarters: no sum of |values| can overflow before the last step.
  const Eigen::ArrayXXd q = result.array().abs() * 0.25;
  const Eigen::ArrayXd row_scale =
      q.topLeftCorner(rows, cols).rowwise().sum() + q.col(cols).head(rows);
  const Eigen::ArrayXd col_scale =
      (q.topLeftCorner(rows, cols).colwise().sum() + q.row(rows).head(cols)).transpose();
  double sum_sq = 0.0;
  for (Eigen::Index j = 0; j < cols; ++j) {
    const Eigen::ArrayXd entry = row_scale.min(col_scale(j)) / std::sqrt(double(rows * cols));
    sum_sq += entry.square().sum();
  }
  return 4.0 * options_.tolerance * std::sqrt(sum_sq);
}

StatusOr<DecodedProduct> AbftCode::Decode(std::span<const PeerResult> results) const {
  POLYGUARD_RETURN_IF_ERROR(CheckResults(results, block_rows_ + 1, shape().cols + 1));
  // Without redundancy across peers every result is needed.
  if (static_cast<int>(results.size()) < num_peers()) {
    return UnavailableError("abft: needs all " + std::to_string(num_peers()) +
                            " results (no redundancy across peers), got " +
                            std::to_string(results.size()));
  }
  DecodedProduct out;
  out.verified = true;
  Matrix full(block_rows_ * num_peers(), shape().cols);
  for (const PeerResult& r : results) {
    Matrix value = r.value;
    POLYGUARD_ASSIGN_OR_RETURN(bool corrected,
                               CheckAndCorrect(&value, r.peer, block_rows_, shape().cols));
    if (corrected) out.wrong_peers.push_back(r.peer);
    full.middleRows(r.peer * block_rows_, block_rows_) =
        value.topLeftCorner(block_rows_, shape().cols);
    // The RMS over C of blocks' RMS bounds is at most their largest.
    out.deviation_bound =
        std::max(out.deviation_bound, DeviationBound(value, block_rows_, shape().cols));
  }
  std::sort(out.wrong_peers.begin(), out.wrong_peers.end());
  out.product = full.topRows(shape().rows);
  out.roundoff_bound = out.deviation_bound;  // nothing hides from a copy's or checksum's check
  return out;
}

StatusOr<Matrix> AbftCode::EncodeTransposeInput(const MatrixRef& d, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(internal::CheckTransposeInput(*this, d).WithContext("abft"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("abft transpose input"));
  Matrix piece(block_rows_, d.cols() + 1);
  piece.leftCols(d.cols()) = internal::RowBlock(d, peer, block_rows_);
  piece.col(d.cols()) = piece.leftCols(d.cols()).rowwise().sum();
  return piece;
}

StatusOr<DecodedProduct> AbftCode::DecodeTranspose(std::span<const PeerResult> results) const {
  const Eigen::Index inner = shape().inner, cols = shape().cols;
  POLYGUARD_RETURN_IF_ERROR(CheckResults(results, inner + 1, cols + 1));
  if (static_cast<int>(results.size()) < num_peers()) {
    return UnavailableError("abft: the transpose needs all " + std::to_string(num_peers()) +
                            " results (no redundancy across peers), got " +
                            std::to_string(results.size()));
  }
  DecodedProduct out;
  out.verified = true;
  out.product = Matrix::Zero(inner, cols);
  for (const PeerResult& r : results) {
    Matrix value = r.value;
    POLYGUARD_ASSIGN_OR_RETURN(bool corrected, CheckAndCorrect(&value, r.peer, inner, cols));
    if (corrected) out.wrong_peers.push_back(r.peer);
    out.product += value.topLeftCorner(inner, cols);
    out.deviation_bound += DeviationBound(value, inner, cols);  // the peers' products add
  }
  std::sort(out.wrong_peers.begin(), out.wrong_peers.end());
  out.roundoff_bound = out.deviation_bound;  // nothing hides from a copy's or checksum's check
  return out;
}

Status AbftCode::UpdateShard(Matrix* shard, int peer, const MatrixRef& d, const MatrixRef& x,
                             double eta) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("abft update"));
  POLYGUARD_RETURN_IF_ERROR(
      internal::CheckUpdate(*this, shard, block_rows_ + 1, shape().inner + 1, d, x, eta)
          .WithContext("abft update"));
  // [D_r; 1^T D_r] [X; 1^T X]^T is the full-checksum form of D_r X^T.
  Matrix left(block_rows_ + 1, d.cols()), right(x.rows() + 1, x.cols());
  left.topRows(block_rows_) = internal::RowBlock(d, peer, block_rows_);
  left.row(block_rows_) = left.topRows(block_rows_).colwise().sum();
  right.topRows(x.rows()) = x;
  right.row(x.rows()) = x.colwise().sum();
  shard->noalias() -= eta * left * right.transpose();
  return Status::Ok();
}

StatusOr<std::vector<int>> AbftCode::CheckProbes(std::span<const PeerResult> probes) const {
  // A probe of a shard stacked with others (e.g. the momentum buffer): each
  // consecutive (block_rows + 1) numbers are one matrix's, whose last is the
  // checksum of the others.
  const Eigen::Index piece = block_rows_ + 1;
  const int64_t length = probes.empty() ? 0 : probes[0].value.rows();
  POLYGUARD_RETURN_IF_ERROR(CheckResults(probes, length, 1));
  if (length % piece != 0) {
    return InvalidArgumentError("abft scrub: probe length " + std::to_string(length) +
                                " is not a multiple of " + std::to_string(piece));
  }
  std::vector<int> wrong;
  for (const PeerResult& r : probes) {
    for (Eigen::Index start = 0; start < length; start += piece) {
      const auto data = r.value.col(0).segment(start, block_rows_);
      if (Disagrees(data, r.value(start + block_rows_, 0), options_.tolerance)) {
        wrong.push_back(r.peer);
        break;
      }
    }
  }
  std::sort(wrong.begin(), wrong.end());
  return wrong;
}

StrategyEntry AbftStrategyEntry() {
  StrategyEntry e;
  e.name = std::string(Strategy::kAbft.name());
  e.parameters = "(none: one block a peer)";
  // Corrects one wrong entry a result; a whole wrong result is only detected.
  e.can = {.trains = true};
  e.make = [](const ProductCodeOptions& o) -> StatusOr<std::unique_ptr<ProductCode>> {
    AbftOptions p{.peers = o.peers, .tolerance = o.decoder.tolerance};
    POLYGUARD_ASSIGN_OR_RETURN(auto code, AbftCode::Create(o.shape, p));
    return std::unique_ptr<ProductCode>(std::move(code));
  };
  return e;
}

}  // namespace polyguard
