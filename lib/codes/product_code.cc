#include "polyguard/codes/product_code.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <type_traits>

namespace polyguard {

StatusOr<std::vector<Matrix>> ProductCode::EncodeShards(const MatrixRef& a) const {
  std::vector<Matrix> shards;
  shards.reserve(static_cast<size_t>(num_peers()));
  for (int r = 0; r < num_peers(); ++r) {
    POLYGUARD_ASSIGN_OR_RETURN(Matrix shard, EncodeShard(a, r));
    shards.push_back(std::move(shard));
  }
  return shards;
}

namespace {
Status NoTraining(const ProductCode& code) {
  return FailedPreconditionError(code.Describe() +
                                 ": cannot train (no transpose product or coded update; the "
                                 "MDS strategy trains with the product-code layout)");
}
}  // namespace

StatusOr<Matrix> ProductCode::EncodeTransposeInput(const MatrixRef&, int) const {
  return NoTraining(*this);
}
StatusOr<DecodedProduct> ProductCode::DecodeTranspose(std::span<const PeerResult>) const {
  return NoTraining(*this);
}
Status ProductCode::UpdateShard(Matrix*, int, const MatrixRef&, const MatrixRef&, double) const {
  return NoTraining(*this);
}
StatusOr<std::vector<int>> ProductCode::CheckProbes(std::span<const PeerResult>) const {
  return NoTraining(*this);
}
StatusOr<std::vector<int>> ProductCode::RepairSources(int, std::span<const int>) const {
  return NoTraining(*this);
}
StatusOr<Matrix> ProductCode::RepairShard(int, std::span<const PeerResult>) const {
  return NoTraining(*this);
}

Status ProductCode::CheckA(const MatrixRef& a) const {
  if (a.rows() != shape_.rows || a.cols() != shape_.inner) {
    return InvalidArgumentError("A is " + std::to_string(a.rows()) + " x " +
                                std::to_string(a.cols()) + ", the code expects " +
                                std::to_string(shape_.rows) + " x " + std::to_string(shape_.inner));
  }
  if (!AllFinite(a)) return InvalidArgumentError("A contains NaN or Inf");
  return Status::Ok();
}

Status ProductCode::CheckB(const MatrixRef& b) const {
  if (b.rows() != shape_.inner || b.cols() != shape_.cols) {
    return InvalidArgumentError("B is " + std::to_string(b.rows()) + " x " +
                                std::to_string(b.cols()) + ", the code expects " +
                                std::to_string(shape_.inner) + " x " + std::to_string(shape_.cols));
  }
  if (!AllFinite(b)) return InvalidArgumentError("B contains NaN or Inf");
  return Status::Ok();
}

Status ProductCode::CheckSparseA(const SparseMatrix& a) const {
  if (a.rows() != shape_.rows || a.cols() != shape_.inner) {
    return InvalidArgumentError("sparse A is " + std::to_string(a.rows()) + " x " +
                                std::to_string(a.cols()) + ", the code expects " +
                                std::to_string(shape_.rows) + " x " + std::to_string(shape_.inner));
  }
  for (Eigen::Index i = 0; i < a.nonZeros(); ++i)
    if (!std::isfinite(a.valuePtr()[i]))
      return InvalidArgumentError("sparse A contains NaN or Inf");
  return Status::Ok();
}

Status ProductCode::CheckSparseB(const SparseMatrix& b) const {
  if (b.rows() != shape_.inner || b.cols() != shape_.cols) {
    return InvalidArgumentError("sparse B is " + std::to_string(b.rows()) + " x " +
                                std::to_string(b.cols()) + ", the code expects " +
                                std::to_string(shape_.inner) + " x " + std::to_string(shape_.cols));
  }
  for (Eigen::Index i = 0; i < b.nonZeros(); ++i)
    if (!std::isfinite(b.valuePtr()[i]))
      return InvalidArgumentError("sparse B contains NaN or Inf");
  return Status::Ok();
}

StatusOr<SparseMatrix> ProductCode::EncodeSparseShard(const SparseMatrix& a, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckSparseA(a));
  POLYGUARD_ASSIGN_OR_RETURN(Matrix shard, EncodeShard(Matrix(a), peer));
  return SparseMatrix(shard.sparseView(1.0, 0.0));
}

StatusOr<SparseMatrix> ProductCode::EncodeSparseInput(const SparseMatrix& b, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckSparseB(b));
  POLYGUARD_ASSIGN_OR_RETURN(Matrix piece, EncodeInput(Matrix(b), peer));
  return SparseMatrix(piece.sparseView(1.0, 0.0));
}

Status ProductCode::CheckPeer(int peer) const {
  if (peer < 0 || peer >= peers_) {
    return InvalidArgumentError("peer " + std::to_string(peer) + " out of range [0, " +
                                std::to_string(peers_) + ")");
  }
  return Status::Ok();
}

Status ProductCode::CheckResults(std::span<const PeerResult> results, int64_t rows,
                                 int64_t cols) const {
  std::vector<bool> seen(static_cast<size_t>(peers_), false);
  for (const PeerResult& r : results) {
    if (r.peer < 0 || r.peer >= peers_) {
      return InvalidArgumentError("result from unknown peer " + std::to_string(r.peer) +
                                  " (code has " + std::to_string(peers_) + " peers)");
    }
    if (seen[static_cast<size_t>(r.peer)]) {
      return InvalidArgumentError("two results from peer " + std::to_string(r.peer));
    }
    seen[static_cast<size_t>(r.peer)] = true;
    if (r.value.rows() != rows || r.value.cols() != cols) {
      return InvalidArgumentError("result of peer " + std::to_string(r.peer) + " is " +
                                  std::to_string(r.value.rows()) + " x " +
                                  std::to_string(r.value.cols()) + ", expected " +
                                  std::to_string(rows) + " x " + std::to_string(cols));
    }
  }
  return Status::Ok();
}

namespace {
// The mean of sum_k |a_ik| |b_kj| over rows x cols entries, over sqrt(inner),
// from the inner-length sums of |A| over its rows and of |B| over its columns
// (times 2^-a_exponent and 2^-b_exponent). Each side is scaled to at most 1
// first and the two largest sums enter as mantissa and exponent: the sums of
// data near 1e152 overflowed their dot product, and an infinite declaration
// let the checks loosen to their cap (adversary s9); A near 1e307 against B
// near 1e-307 overflowed the largest sum itself (adversary s11).
double ScaleOf(const Vector& a_sums, int a_exponent, const Vector& b_sums, int b_exponent,
               double rows, double cols) {
  const double n = rows * cols * std::sqrt(double(std::max<Eigen::Index>(a_sums.size(), 1)));
  if (!(n > 0.0) || a_sums.size() == 0) return 0.0;
  const double ma = a_sums.maxCoeff(), mb = b_sums.maxCoeff();
  if (!(ma > 0.0 && mb > 0.0)) return std::isnan(ma + mb) ? ma + mb : 0.0;
  if (std::isinf(ma + mb)) return ma + mb;
  int ea = 0, eb = 0;
  const double fa = std::frexp(ma, &ea), fb = std::frexp(mb, &eb);
  return std::ldexp((a_sums / ma).dot(b_sums / mb) / n * fa * fb,
                    ea + eb + a_exponent + b_exponent);
}
// `sums` of m's |values|, scaled by 2^-*exponent when they overflowed but m
// is finite (sums_of(m) gives them; a second pass, only then).
template <typename M, typename SumsOf>
Vector FiniteSums(const M& m, SumsOf sums_of, int* exponent) {
  Vector sums = sums_of(m);
  *exponent = 0;
  if (AllFinite(sums)) return sums;
  double largest = 0.0;
  if constexpr (std::is_same_v<M, SparseMatrix>) {
    for (Eigen::Index k = 0; k < m.nonZeros(); ++k)
      largest = std::max(largest, std::abs(m.valuePtr()[k]));
  } else {
    largest = m.cwiseAbs().maxCoeff();
  }
  if (!std::isfinite(largest)) return sums;  // NaN or inf data: the declaration says so
  *exponent = std::ilogb(largest) + 1;
  using Copy = std::conditional_t<std::is_same_v<M, SparseMatrix>, SparseMatrix, Matrix>;
  const Copy scaled = m * std::ldexp(1.0, -*exponent);
  return sums_of(scaled);
}
Vector SparseColumnSums(const SparseMatrix& m) {
  Vector sums = Vector::Zero(m.cols());
  for (Eigen::Index k = 0; k < m.outerSize(); ++k)
    for (SparseMatrix::InnerIterator it(m, k); it; ++it) sums(it.col()) += std::abs(it.value());
  return sums;
}
Vector SparseRowSums(const SparseMatrix& m) {
  Vector sums = Vector::Zero(m.rows());
  for (Eigen::Index k = 0; k < m.outerSize(); ++k)
    for (SparseMatrix::InnerIterator it(m, k); it; ++it) sums(it.row()) += std::abs(it.value());
  return sums;
}
Vector RowSums(const MatrixRef& m) { return m.cwiseAbs().rowwise().sum(); }
}  // namespace

namespace {
template <typename M>
ShardAbsSums AbsSumsInOnePass(const M& shard) {
  // One pass, four columns at a time: Eigen's rowwise sum strides across the
  // storage, and adding each column into the row sums alone costs twice a
  // column sum (the row sums go through L1 once per column).
  ShardAbsSums sums{Vector(shard.cols()), Vector::Zero(shard.rows())};
  Eigen::Index j = 0;
  for (; j + 4 <= shard.cols(); j += 4) {
    const auto c0 = shard.col(j).template cast<double>().array().abs();
    const auto c1 = shard.col(j + 1).template cast<double>().array().abs();
    const auto c2 = shard.col(j + 2).template cast<double>().array().abs();
    const auto c3 = shard.col(j + 3).template cast<double>().array().abs();
    sums.columns.segment<4>(j) << c0.sum(), c1.sum(), c2.sum(), c3.sum();
    sums.rows.array() += c0 + c1 + c2 + c3;
  }
  for (; j < shard.cols(); ++j) {
    const auto column = shard.col(j).template cast<double>().array().abs();
    sums.columns(j) = column.sum();
    sums.rows.array() += column;
  }
  return sums;
}
}  // namespace

ShardAbsSums AbsSumsOf(const MatrixRef& shard) {
  ShardAbsSums sums = AbsSumsInOnePass(shard);
  if (AllFinite(sums.columns) && AllFinite(sums.rows)) return sums;
  const double largest = shard.size() > 0 ? shard.cwiseAbs().maxCoeff() : 0.0;
  if (!std::isfinite(largest)) return sums;  // NaN or inf data: the declaration says so
  const int exponent = std::ilogb(largest) + 1;
  sums = AbsSumsInOnePass(Matrix(shard * std::ldexp(1.0, -exponent)));
  sums.exponent = exponent;
  return sums;
}

ShardAbsSums AbsSumsOfFloat32(const Eigen::MatrixXf& shard) { return AbsSumsInOnePass(shard); }

double RoundoffScale(const ShardAbsSums& shard, const MatrixRef& piece, bool transpose) {
  int eb = 0;
  const Vector b = FiniteSums(piece, RowSums, &eb);
  // Forward: shard (rows x inner) * piece; transpose: shard^T (cols x rows) * piece.
  const Vector& a = transpose ? shard.rows : shard.columns;
  const double result_rows = double(transpose ? shard.columns.size() : shard.rows.size());
  return a.size() == b.size() ? ScaleOf(a, shard.exponent, b, eb, result_rows, double(piece.cols()))
                              : 0.0;
}

double RoundoffScale(const MatrixRef& shard, const MatrixRef& piece, bool transpose) {
  return RoundoffScale(AbsSumsOf(shard), piece, transpose);
}

double RoundoffScale(const SparseMatrix& shard, const SparseMatrix& piece) {
  int ea = 0, eb = 0;
  const Vector a = FiniteSums(shard, SparseColumnSums, &ea);
  const Vector b = FiniteSums(piece, SparseRowSums, &eb);
  return a.size() == b.size() ? ScaleOf(a, ea, b, eb, double(shard.rows()), double(piece.cols()))
                              : 0.0;
}

double RoundoffScale(const SparseMatrix& shard, const MatrixRef& piece) {
  int ea = 0, eb = 0;
  const Vector a = FiniteSums(shard, SparseColumnSums, &ea);
  const Vector b = FiniteSums(piece, RowSums, &eb);
  return a.size() == b.size() ? ScaleOf(a, ea, b, eb, double(shard.rows()), double(piece.cols()))
                              : 0.0;
}

double RoundoffFloor(std::span<const PeerResult> results, int threshold) {
  if (results.empty()) return kLeastRoundoffFloor;
  std::vector<double> v;
  v.reserve(results.size());
  for (const PeerResult& p : results)
    v.push_back(std::isnan(p.roundoff_scale) ? HUGE_VAL : std::max(p.roundoff_scale, 0.0));
  std::sort(v.begin(), v.end(), std::greater<double>());
  const size_t t = size_t(std::max<int64_t>(0, (int64_t(v.size()) - threshold) / 2));
  const double top = v[std::min(t, v.size() - 1)];
  return std::max(std::min(top, kRoundoffFloorOverMedian * v[v.size() / 2]), kLeastRoundoffFloor);
}

bool Resolves(const ProductCode& code, const DecodedProduct& decoded) {
  if (code.precision() != Precision::kFloat32 || decoded.product.size() == 0) return true;
  if (decoded.one_spare_correction) return false;
  const ProductShape& s = code.shape();
  const double rho = UnitRoundoff(Precision::kFloat32) *
                     std::sqrt(double(std::max<int64_t>({s.rows, s.inner, 1})));
  // The plain norm's squares overflow for entries past 1e154 (an infinite
  // RMS accepted an infinite bound; adversary s9) and underflow below
  // 1e-154: blueNorm then (it scales; 1.5% of a float32 peer's CPU if
  // always used).
  double norm = decoded.product.norm();
  if (!(norm > 1e-140 && norm < 1e140)) norm = decoded.product.blueNorm();
  const double rms = norm / std::sqrt(double(decoded.product.size()));
  return std::isfinite(decoded.roundoff_bound) && std::isfinite(rms) &&
         decoded.roundoff_bound <= kFloat32ResolutionLimitInRoundoffs * rho * rms;
}

namespace internal {

int64_t BlockSize(int64_t total, int64_t parts) { return (total + parts - 1) / parts; }

void AddBlock(Matrix* out, double coef, const MatrixRef& m, int64_t i, int64_t j, int64_t br,
              int64_t bc) {
  const int64_t r0 = i * br, c0 = j * bc;
  const int64_t nr = std::clamp<int64_t>(m.rows() - r0, 0, br);
  const int64_t nc = std::clamp<int64_t>(m.cols() - c0, 0, bc);
  if (nr > 0 && nc > 0) out->topLeftCorner(nr, nc).noalias() += coef * m.block(r0, c0, nr, nc);
}

void ScatterBlockChunk(Matrix* c, int64_t l0, const MatrixRef& chunk, int row_blocks,
                       int col_blocks, int64_t br, int64_t bc) {
  const int64_t rows = c->rows(), cols = c->cols();
  for (int u = 0; u < row_blocks; ++u) {
    for (int v = 0; v < col_blocks; ++v) {
      const auto coef = chunk.col(u * col_blocks + v);
      int64_t l = l0;
      const int64_t end = l0 + chunk.rows();
      while (l < end) {
        const int64_t bcol = l / br, brow = l % br;
        const int64_t run = std::min(end - l, br - brow);
        const int64_t row = u * br + brow, col = v * bc + bcol;
        const int64_t keep = std::min(run, rows - row);
        if (col < cols && keep > 0) c->col(col).segment(row, keep) = coef.segment(l - l0, keep);
        l += run;
      }
    }
  }
}

Matrix RowBlock(const MatrixRef& m, int64_t i, int64_t block) {
  Matrix out = Matrix::Zero(block, m.cols());
  const int64_t start = i * block;
  const int64_t count = std::clamp<int64_t>(m.rows() - start, 0, block);
  if (count > 0) out.topRows(count) = m.middleRows(start, count);
  return out;
}

Status ValidateShape(const ProductShape& s) {
  if (s.rows < 1 || s.inner < 1 || s.cols < 1) {
    return InvalidArgumentError("shape must have rows, inner and cols >= 1, got " +
                                std::to_string(s.rows) + " x " + std::to_string(s.inner) +
                                " times " + std::to_string(s.inner) + " x " +
                                std::to_string(s.cols));
  }
  return Status::Ok();
}

Status CheckTransposeInput(const ProductCode& code, const MatrixRef& d) {
  if (d.rows() != code.shape().rows || d.cols() != code.shape().cols) {
    return InvalidArgumentError("transpose input D is " + std::to_string(d.rows()) + " x " +
                                std::to_string(d.cols()) + ", expected " +
                                std::to_string(code.shape().rows) + " x " +
                                std::to_string(code.shape().cols));
  }
  if (!AllFinite(d)) return InvalidArgumentError("transpose input D contains NaN or Inf");
  return Status::Ok();
}

Status CheckUpdate(const ProductCode& code, const Matrix* shard, int64_t shard_rows,
                   int64_t shard_cols, const MatrixRef& d, const MatrixRef& x, double eta) {
  if (shard == nullptr || shard->rows() != shard_rows || shard->cols() != shard_cols) {
    return InvalidArgumentError("shard must be " + std::to_string(shard_rows) + " x " +
                                std::to_string(shard_cols));
  }
  const ProductShape& s = code.shape();
  if (d.rows() != s.rows || x.rows() != s.inner || d.cols() != x.cols() || d.cols() < 1) {
    return InvalidArgumentError("D must be " + std::to_string(s.rows) + " x b and X " +
                                std::to_string(s.inner) + " x b with the same b >= 1, got D " +
                                std::to_string(d.rows()) + " x " + std::to_string(d.cols()) +
                                " and X " + std::to_string(x.rows()) + " x " +
                                std::to_string(x.cols()));
  }
  if (!AllFinite(d) || !AllFinite(x) || !std::isfinite(eta)) {
    return InvalidArgumentError("D, X or eta contains NaN or Inf");
  }
  return Status::Ok();
}

double CroppedBound(double bound, int64_t decoded, int64_t kept) {
  if (kept <= 0 || decoded <= kept) return bound;
  return bound * std::sqrt(double(decoded) / double(kept));
}

void TakeVerdict(DecodeOutcome* outcome, int64_t decoded, int64_t kept, DecodedProduct* out) {
  out->wrong_peers = std::move(outcome->wrong_peers);
  out->verified = outcome->verified;
  out->deviation_bound = CroppedBound(outcome->deviation_bound, decoded, kept);
  out->roundoff_bound = CroppedBound(outcome->roundoff_bound, decoded, kept);
  out->one_spare_correction = outcome->one_spare_correction;
}

StatusOr<DecodeOutcome> DecodeResults(const ErrorsAndErasuresDecoder& decoder,
                                      std::span<const PeerResult> results, int64_t length) {
  const double floor = RoundoffFloor(results, decoder.recovery_threshold());
  std::vector<int> peers;
  std::vector<const double*> columns;
  peers.reserve(results.size());
  columns.reserve(results.size());
  for (const PeerResult& r : results) {
    peers.push_back(r.peer);
    columns.push_back(r.value.data());
  }
  return decoder.Decode(peers, columns, length, floor);
}

}  // namespace internal
}  // namespace polyguard
