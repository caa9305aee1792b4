#include "polyguard/codes/errors_and_erasures_decoder.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>
#include <utility>

#include <Eigen/QR>
#include <Eigen/SVD>

#include "lib/codes/decode_kernels.h"
#include "lib/codes/mislocation.h"
#include "polyguard/base/check.h"
#include "polyguard/base/peer_set.h"
#include "polyguard/base/precision.h"
#include "polyguard/codes/evaluation_points.h"

namespace polyguard {

struct ErrorsAndErasuresDecoder::Plan {
  std::vector<int> rows;   // peer ids kept, ascending
  Matrix parity;           // (R - K) x R, orthonormal rows, parity * V = 0
  Matrix wanted_pinv;      // |wanted| x R: rows of the generator's pseudo-inverse
  Matrix chebyshev_pinv;   // K x R: pseudo-inverse of the Chebyshev basis rows
  double wanted_gain = 0;  // max_w ||wanted_pinv.row(w)||_1 (DecodeOutcome::deviation_bound)
  // What an error the checks cannot see moves a wanted coefficient by, per
  // unit of tolerance: an error e at peer j shows in the parity check as
  // e ||h_j|| (h_j its parity column), and off the least-squares code word
  // as e ||h_j||^2, so the fast path's check passes it up to the tolerance
  // over ||h_j|| and the final check up to the tolerance over ||h_j||^2.
  // max_w max_j |wanted_pinv(w, j)| over those. Below wanted_gain for
  // Chebyshev points when every peer answers (0.2 to 0.45 times it for the
  // fast check); far above it for straggler sets that leave a peer barely
  // checked (adversary s14: P = 24, K = 8, 12 answering, ||h_4|| about 2e-5).
  double hidden_gain = 0, fitted_hidden_gain = 0;
  double Gain() const { return std::max(wanted_gain, hidden_gain); }
  double FittedGain() const { return std::max(wanted_gain, fitted_hidden_gain); }
  // R x (R - K + |wanted|), row-major: [parity; wanted_pinv]^T for the fused
  // pass (the exact parity check rides along with the decode).
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> fused;
};

namespace {

using internal::kHuge;
using internal::kLocateSample;
using internal::kMaxSetsPerEntry;
using internal::PeerList;
using internal::RobustTolerances;
using internal::SampledRms;
using internal::SelectColumns;

// A result with a non-finite or absurdly large value is wrong outright: the
// decode of the others (decode_kept), with those named wrong, when more than
// K are left and it stays within the code's radius (UntameWithinRadius: such
// a result an erasure). When that decode corrected something, it must agree
// with the full decode (decode_all, which takes such values as wrong values
// of their entries only), if that one succeeds: set aside whole, the result
// lowers what every entry can correct, and one NaN in one entry let errors
// at t peers of another entry, mimicking an honest peer, fit the reduced
// code as that peer's (adversary s17: verified, 1,450 times deviation_bound
// off), while the full decode takes a NaN as a value of 0, an error beside
// which smaller ones at edge peers can be misplaced (adversary s18). They
// disagreeing is DataLoss. Nothing when the shortcut does not apply.
// Decode and DecodeReference alike.
template <typename DecodeKept, typename DecodeAll>
std::optional<StatusOr<DecodeOutcome>> DecodeAroundUntame(const internal::PeerSplit& untame,
                                                          int total, int k, DecodeKept decode_kept,
                                                          DecodeAll decode_all) {
  if (untame.aside.empty() || static_cast<int>(untame.kept.size()) <= k) return std::nullopt;
  StatusOr<DecodeOutcome> rest = decode_kept();
  if (!rest.ok() || !internal::UntameWithinRadius(untame, rest->wrong_peers.size(), total, k))
    return std::nullopt;
  const bool corrected = !rest->wrong_peers.empty();
  std::vector<int>& wrong = rest->wrong_peers;
  wrong.insert(wrong.end(), untame.aside.begin(), untame.aside.end());
  std::sort(wrong.begin(), wrong.end());
  if (corrected) {
    StatusOr<DecodeOutcome> all = decode_all();
    if (all.ok() && all->wrong_peers != wrong) {
      std::vector<int> suspects = wrong;
      suspects.insert(suspects.end(), all->wrong_peers.begin(), all->wrong_peers.end());
      std::sort(suspects.begin(), suspects.end());
      suspects.erase(std::unique(suspects.begin(), suspects.end()), suspects.end());
      return StatusOr<DecodeOutcome>(DataLossError(
          "decode: errors not told apart (with the non-finite or absurd results set aside "
          "whole, and without); suspect peers: " +
          PeerList(suspects)));
    }
  }
  return StatusOr<DecodeOutcome>(std::move(*rest));
}

}  // namespace

std::string FormatPeers(std::span<const int> peers) {
  std::string out;
  for (size_t i = 0; i < peers.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(peers[i]);
  }
  return out.empty() ? "none" : out;
}

StatusOr<std::unique_ptr<ErrorsAndErasuresDecoder>> ErrorsAndErasuresDecoder::Create(
    std::vector<double> points, Matrix generator, std::vector<int> wanted, DecoderOptions options) {
  const int p = static_cast<int>(points.size());
  if (p < 1 || p > kMaxPeers) {
    return InvalidArgumentError("decoder: number of peers must be in [1, " +
                                std::to_string(kMaxPeers) + "], got " + std::to_string(p));
  }
  if (generator.rows() != p || generator.cols() < 1 || generator.cols() > p) {
    return InvalidArgumentError(
        "decoder: generator must be P x K with 1 <= K <= P = " + std::to_string(p) + ", got " +
        std::to_string(generator.rows()) + " x " + std::to_string(generator.cols()));
  }
  for (int w : wanted) {
    if (w < 0 || w >= generator.cols()) {
      return InvalidArgumentError("decoder: wanted coefficient " + std::to_string(w) +
                                  " out of range [0, " + std::to_string(generator.cols()) + ")");
    }
  }
  POLYGUARD_RETURN_IF_ERROR(ValidateTolerance(options.tolerance, "decoder"));
  if (options.max_fits < 1) {
    return InvalidArgumentError("decoder: max_fits must be positive, got " +
                                std::to_string(options.max_fits));
  }
  if (!(options.clean_fit > 0.0 && options.clean_fit <= 1.0)) {
    return InvalidArgumentError("decoder: clean_fit must be in (0, 1], got " +
                                std::to_string(options.clean_fit));
  }
  std::vector<double> sorted = points;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (!std::isfinite(sorted[i]) || std::abs(sorted[i]) > 1.0 ||
        (i > 0 && sorted[i] == sorted[i - 1])) {
      return InvalidArgumentError("decoder: evaluation points must be distinct and in [-1, 1]");
    }
  }
  return std::unique_ptr<ErrorsAndErasuresDecoder>(new ErrorsAndErasuresDecoder(
      std::move(points), std::move(generator), std::move(wanted), options));
}

ErrorsAndErasuresDecoder::ErrorsAndErasuresDecoder(std::vector<double> points, Matrix generator,
                                                   std::vector<int> wanted, DecoderOptions options)
    : points_(std::move(points)),
      generator_(std::move(generator)),
      wanted_(std::move(wanted)),
      options_(options) {
  chebyshev_ = ChebyshevBasis(points_, static_cast<int>(generator_.cols()));
  // The generator's rows in the points' order: crowding is between neighbours.
  std::vector<int> by_point(points_.size());
  std::iota(by_point.begin(), by_point.end(), 0);
  std::sort(by_point.begin(), by_point.end(), [&](int a, int b) {
    return points_[static_cast<size_t>(a)] < points_[static_cast<size_t>(b)];
  });
  Matrix sorted(generator_.rows(), generator_.cols());
  for (size_t i = 0; i < by_point.size(); ++i)
    sorted.row(static_cast<Eigen::Index>(i)) = generator_.row(by_point[i]);
  mislocation_ = std::make_unique<internal::MislocationGains>();
  mislocation_->Set(std::move(sorted), 1, wanted_);
}

ErrorsAndErasuresDecoder::~ErrorsAndErasuresDecoder() = default;

std::shared_ptr<const ErrorsAndErasuresDecoder::Plan> ErrorsAndErasuresDecoder::GetPlan(
    const PeerSet& kept) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(kept);
    if (it != cache_.end()) return it->second;
  }
  auto plan = std::make_shared<Plan>();
  plan->rows = kept.Peers();
  const int r = static_cast<int>(plan->rows.size());
  const int k = recovery_threshold();
  POLYGUARD_CHECK(r >= k);
  Matrix cheb(r, k), gen(r, k);
  for (int i = 0; i < r; ++i) {
    cheb.row(i) = chebyshev_.row(plan->rows[static_cast<size_t>(i)]);
    gen.row(i) = generator_.row(plan->rows[static_cast<size_t>(i)]);
  }
  Eigen::HouseholderQR<Matrix> qr(cheb);
  const Matrix q_full = qr.householderQ() * Matrix::Identity(r, r);
  plan->parity = q_full.rightCols(r - k).transpose();
  const Matrix r_factor = qr.matrixQR().topRows(k).triangularView<Eigen::Upper>();
  plan->chebyshev_pinv =
      r_factor.triangularView<Eigen::Upper>().solve(q_full.leftCols(k).transpose());

  Eigen::JacobiSVD<Matrix> svd(gen, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Matrix pinv =
      svd.matrixV() * svd.singularValues().cwiseInverse().asDiagonal() * svd.matrixU().transpose();
  plan->wanted_pinv.resize(static_cast<Eigen::Index>(wanted_.size()), r);
  for (size_t w = 0; w < wanted_.size(); ++w)
    plan->wanted_pinv.row(static_cast<Eigen::Index>(w)) = pinv.row(wanted_[w]);
  if (!wanted_.empty()) plan->wanted_gain = plan->wanted_pinv.cwiseAbs().rowwise().sum().maxCoeff();
  if (!wanted_.empty() && r > k) {
    for (int j = 0; j < r; ++j) {
      const double h = plan->parity.col(j).norm();
      const double moves = plan->wanted_pinv.col(j).cwiseAbs().maxCoeff();
      plan->hidden_gain = std::max(plan->hidden_gain, moves / h);
      plan->fitted_hidden_gain = std::max(plan->fitted_hidden_gain, moves / (h * h));
    }
  }

  // The error-free check is the exact parity check: every parity row, so no
  // error pattern on at most R - K peers can hide in its null space.
  plan->fused.resize(r, plan->parity.rows() + plan->wanted_pinv.rows());
  plan->fused.leftCols(plan->parity.rows()) = plan->parity.transpose();
  plan->fused.rightCols(plan->wanted_pinv.rows()) = plan->wanted_pinv.transpose();
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(cache_.size()) >= options_.cache_capacity) cache_.clear();
  cache_.emplace(kept, plan);
  return plan;
}

StatusOr<std::vector<int>> ErrorsAndErasuresDecoder::IndexPeers(std::span<const int> peers,
                                                                size_t columns) const {
  const int total = static_cast<int>(peers.size());
  if (columns != peers.size()) {
    return InvalidArgumentError("decode: " + std::to_string(columns) + " result columns for " +
                                std::to_string(total) + " peers");
  }
  return internal::IndexPeers(peers, num_peers(), recovery_threshold());
}

StatusOr<DecodeOutcome> ErrorsAndErasuresDecoder::Decode(std::span<const int> peers,
                                                         const MatrixRef& results,
                                                         double scale_floor) const {
  if (results.cols() != static_cast<Eigen::Index>(peers.size())) {
    return InvalidArgumentError("decode: " + std::to_string(results.cols()) +
                                " result columns for " + std::to_string(peers.size()) + " peers");
  }
  std::vector<const double*> columns;
  Matrix owned;
  if (results.outerStride() == results.rows() || results.cols() <= 1) {
    for (Eigen::Index j = 0; j < results.cols(); ++j) columns.push_back(results.col(j).data());
  } else {
    owned = results;
    for (Eigen::Index j = 0; j < owned.cols(); ++j) columns.push_back(owned.col(j).data());
  }
  return Decode(peers, columns, results.rows(), scale_floor);
}

StatusOr<DecodeOutcome> ErrorsAndErasuresDecoder::Decode(std::span<const int> peers,
                                                         std::span<const double* const> columns,
                                                         int64_t length, double scale_floor) const {
  const int k = recovery_threshold();
  const int total = static_cast<int>(peers.size());
  if (length < 0) return InvalidArgumentError("decode: negative result length");
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<int> col_of, IndexPeers(peers, columns.size()));
  // Fast path: one pass over the results, in ascending peer order (the plan's).
  std::vector<int> sorted_peers;
  std::vector<const double*> sorted_cols;
  for (int p = 0; p < num_peers(); ++p) {
    const int j = col_of[static_cast<size_t>(p)];
    if (j < 0) continue;
    sorted_peers.push_back(p);
    sorted_cols.push_back(columns[static_cast<size_t>(j)]);
  }
  auto plan = GetPlan(PeerSet::Of(sorted_peers));
  const int probes = static_cast<int>(plan->parity.rows());
  const Eigen::Index w = static_cast<Eigen::Index>(wanted_.size());
  // The fast path's pass: per entry the squared norm of its check (zsq) and
  // the wanted coefficients, with the sum of every result value's square
  // (the resolution's scale). zsq is reused across calls: a fresh
  // multi-megabyte buffer per decode costs more in page faults than the
  // arithmetic; the coefficients are returned.
  thread_local Vector zsq;
  Matrix coefficients;
  double sumsq = 0.0;
  bool finite = true;
  if (plan->fused.cols() <= internal::kFusedCheckColumns) {
    finite =
        internal::FusedCheck(sorted_cols, length, plan->fused, probes, &zsq, &coefficients, &sumsq);
  } else {
    // Many combinations: GEMM on cache-sized chunks reads the results once.
    zsq.resize(length);
    coefficients.resize(length, w);
    internal::ChunkedProduct(
        sorted_cols, length, plan->fused,
        [&](int64_t l0, const Matrix& chunk) {
          const Eigen::Index n = chunk.rows();
          // A NaN or Inf in any result reaches every combination of its entry.
          finite = finite && std::isfinite(chunk.sum());
          zsq.segment(l0, n) = chunk.leftCols(probes).rowwise().squaredNorm();
          coefficients.middleRows(l0, n) = chunk.rightCols(w);
          return true;
        },
        &sumsq);
  }
  const double rms = internal::ScaleWithFloor(SampledRms(sorted_cols, length), scale_floor);
  // Squares of the check under- or overflow far from 1: such results take
  // the slow path, which scales them first. Results that are exactly zero
  // pass here (every check is 0): the slow path found every entry
  // inconsistent at a zero tolerance and fitted each one (0.7 s a decode in
  // the bundled demo, at every peer, after each failed decode).
  const bool tame_scale = rms > internal::kTinyScale && rms < internal::kHugeScale;
  if ((tame_scale ||
       (rms <= internal::kTinyScale && sumsq == 0.0 && internal::AllZero(sorted_cols, length))) &&
      finite) {
    const double tol = options_.tolerance;
    bool consistent = true;
    // Inconsistent entries met, with their tolerances: a sample of at most
    // kLocateSample spread over the entries (the whole-peer shortcut below).
    std::vector<std::pair<int64_t, double>> dirty;
    if (probes > 0) {
      const double quick = tol * rms, qq = quick * quick;
      const double* z2 = zsq.data();
      // The common case: every entry passes against the global scale alone.
      int64_t suspects = 0;
      for (int64_t l = 0; l < length; ++l) suspects += !(z2[l] <= qq);
      if (suspects > 0) {
        auto check = [&](int64_t l) {
          const double cs = internal::EntryTolerance(sorted_cols, l, tol, rms);
          const double z = std::sqrt(zsq(l));
          // Huge values overflow the squares: never consistent.
          if (!(z <= cs) || !std::isfinite(cs) || !std::isfinite(z))
            dirty.push_back({l, std::isfinite(cs) ? cs : 0.0});
        };
        // Evenly spread over the suspects first (dense errors make every
        // entry one), then, if none of those is inconsistent, the rest up to
        // the first. Counted, not listed: a list of every entry cost a
        // tenth of a decode with a wrong peer.
        const int64_t stride = std::max<int64_t>(1, suspects / int64_t{kLocateSample});
        // (A countdown, not i % stride: a division per entry cost a tenth
        // of such a decode.)
        for (int64_t l = 0, next = 0; l < length && dirty.size() < kLocateSample; ++l) {
          if (z2[l] <= qq) continue;
          if (next-- == 0) {
            check(l);
            next = stride - 1;
          }
        }
        for (int64_t l = 0, next = 0; l < length && dirty.empty(); ++l) {
          if (z2[l] <= qq) continue;
          if (next-- == 0)
            next = stride - 1;
          else
            check(l);
        }
        consistent = dirty.empty();
      }
    }
    if (!consistent) {
      std::optional<DecodeOutcome> out =
          DecodeWithoutLocated(sorted_peers, sorted_cols, length, *plan, dirty, scale_floor);
      if (out) return std::move(*out);
    }
    if (consistent) {
      DecodeOutcome out;
      out.coefficients = std::move(coefficients);
      out.verified = total > k;
      // Entry l passed at tol (rms + its RMS over peers); a result may be
      // up to its 2-norm over peers, whose RMS over entries is this.
      const double spread = length > 0 ? std::sqrt(sumsq / double(length)) : 0.0;
      // The declared floor in full: the check counts it only up to its cap,
      // but honest roundoff beyond the cap is still roundoff the product has.
      // Up to t wrong results the check cannot see move the product as far
      // as the others' deviation (both code words within it) allows without them.
      const double scale = tol * (std::max(rms, scale_floor) + spread);
      out.roundoff_bound = scale * plan->Gain();
      out.deviation_bound = std::max(
          out.roundoff_bound,
          scale * mislocation_->EntryGain((total - k) / 2, num_peers() - total, 0, 0.0, 0.0));
      return out;
    }
  }
  // A result with a non-finite or absurdly large value is wrong outright
  // (the full decode says so too): decode the others, which the fast path
  // can, and name it. One pass over each result finds them.
  // Errors: the full errors-and-erasures decode, on one copy of the results
  // in peer order.
  auto decode_all = [&] {
    Matrix original(length, total);
    for (int j = 0; j < total; ++j)
      original.col(j) = Eigen::Map<const Vector>(sorted_cols[static_cast<size_t>(j)], length);
    return DecodeOwned(sorted_peers, std::move(original), scale_floor);
  };
  const internal::PeerSplit untame = internal::SplitUntame(sorted_peers, sorted_cols, 1, length);
  std::optional<StatusOr<DecodeOutcome>> around = DecodeAroundUntame(
      untame, total, k, [&] { return Decode(untame.kept, untame.kept_cols, length, scale_floor); },
      decode_all);
  if (around) return std::move(*around);
  return decode_all();
}

std::optional<DecodeOutcome> ErrorsAndErasuresDecoder::DecodeWithoutLocated(
    const std::vector<int>& peers, const std::vector<const double*>& cols, int64_t length,
    const Plan& plan, const std::vector<std::pair<int64_t, double>>& dirty,
    double scale_floor) const {
  const int k = recovery_threshold();
  const int total = static_cast<int>(peers.size());
  const int probes = static_cast<int>(plan.parity.rows());
  if (dirty.empty() || probes == 0) return std::nullopt;
  Matrix dmat(static_cast<Eigen::Index>(dirty.size()), probes);
  for (size_t i = 0; i < dirty.size(); ++i) {
    if (!(dirty[i].second > 0.0)) return std::nullopt;
    dmat.row(static_cast<Eigen::Index>(i)) =
        internal::CombineEntry(cols, dirty[i].first, plan.fused, probes).transpose() /
        dirty[i].second;
  }
  if (!AllFinite(dmat)) return std::nullopt;
  std::vector<double> tolerances, magnitudes;
  for (const auto& [entry, cs] : dirty) {
    tolerances.push_back(cs);
    magnitudes.push_back(internal::RobustMagnitude(cols, entry, (total - k) / 2));
  }
  const std::vector<double> own_share =
      internal::OwnShares(tolerances, magnitudes, options_.tolerance);
  std::vector<Eigen::Index> unexplained;
  std::vector<int> flag = internal::LocateBySpan(std::move(dmat), plan.parity, 1,
                                                 options_.clean_fit, &unexplained, &own_share);
  const int kept_count = total - static_cast<int>(flag.size());
  if (flag.empty() || kept_count <= k || !unexplained.empty()) return std::nullopt;
  std::sort(flag.begin(), flag.end());
  const internal::PeerSplit split = internal::SplitAt(peers, cols, 1, flag);
  const std::vector<int>& kept_ids = split.kept;
  const std::vector<int>& flagged_ids = split.aside;
  const std::vector<const double*>& kept_cols = split.kept_cols;
  const std::vector<const double*>& flagged_cols = split.aside_cols;
  std::vector<double> flagged_points;
  for (int id : flagged_ids) flagged_points.push_back(points_[static_cast<size_t>(id)]);
  const auto kept_plan = GetPlan(PeerSet::Of(kept_ids));
  const int kp = static_cast<int>(kept_plan->parity.rows());
  const int w = static_cast<int>(wanted_.size());
  const int f = static_cast<int>(flagged_ids.size());
  // [parity | wanted | the code word at each set-aside peer], from the kept
  // results in one pass: the check's squares, the coefficients (the decode's
  // own, not copied), the code word at the set-aside peers, and each entry's
  // sum of squares for its tolerance.
  internal::RowMajorMatrix m(kept_count, kp + w + f);
  m.leftCols(kp + w) = kept_plan->fused;
  m.rightCols(f) = (ChebyshevBasis(flagged_points, k) * kept_plan->chebyshev_pinv).transpose();
  // The kept results must pass the fast path's check, entry by entry; a
  // set-aside peer is wrong where it is off the code word by more.
  // The scale from the kept results alone: the set-aside ones may be huge.
  const double rms = internal::ScaleWithFloor(internal::SampledRms(kept_cols, length), scale_floor);
  if (!(rms > internal::kTinyScale && rms < internal::kHugeScale)) return std::nullopt;
  const double tol = options_.tolerance;
  std::vector<int> wrong(static_cast<size_t>(f), 0);
  // What the product can be off by, per unit of the entries' tolerance,
  // had the set-aside values not been the wrong ones (mislocation.h): the
  // worst entry's. An entry with `c` values off gains `located`, or
  // `mislocated` when its smallest is within `threshold` tolerances: per
  // count, whether any entry has it and whether any is within (EntryGains,
  // called per entry, made such a decode 5 to 10% slower at P = 8).
  const int t_all = (total - k) / 2;
  const int missing = num_peers() - total;
  std::vector<int> has(static_cast<size_t>(f) + 1, 0), within(static_cast<size_t>(f) + 1, 0);
  std::vector<internal::MislocationGains::OffGains> gains(static_cast<size_t>(f) + 1);
  // The decoded code word's squares at the set-aside peers: an honest peer
  // set aside can hold an entry's largest value, and roundoff at its scale
  // (adversary s19: a code word 5e3 times larger at one crowded edge peer,
  // with noise at that scale, 1,064 times the bound when left out of it).
  double aside_sumsq = 0.0;
  // The check of the kept results and of each set-aside peer against the
  // code word decoded there, a chunk at a time while the pass's outputs for
  // it are in L1 (stored whole and read again, they cost a third of such a
  // decode; a loop over entries and peers with a branch per value, a
  // quarter).
  double cs[internal::kSetAsideChunk], smallest[internal::kSetAsideChunk];
  int64_t off[internal::kSetAsideChunk];
  auto check = [&](int64_t l0, int64_t n, const internal::ChunkOfCheck& chunk) {
    if (!internal::CheckSetAsideChunk(chunk, kept_count, tol, rms, l0, n, flagged_cols, cs, off,
                                      smallest, wrong.data(), &aside_sumsq))
      return false;
    for (int64_t i = 0; i < n; ++i) {
      if (off[i] == 0) continue;
      const size_t c = static_cast<size_t>(off[i]);
      if (!has[c]) {
        has[c] = 1;
        gains[c] = mislocation_->ForOff(t_all, missing, static_cast<int>(off[i]));
      }
      if (!(smallest[i] > cs[i] * gains[c].threshold)) within[c] = 1;
    }
    return true;
  };
  Matrix coefficients;
  double sumsq = 0.0;
  if (m.cols() <= internal::kFusedCheckColumns) {
    // [parity | wanted | the code word at each set-aside peer], from the
    // kept results in one pass: the coefficients are the decode's own.
    if (!internal::FusedCheckChunks(kept_cols, length, m, kp, w, &coefficients, &sumsq, check))
      return std::nullopt;
  } else {
    // Many combinations: GEMM on cache-sized chunks, stored whole, then
    // checked a chunk at a time. Per-thread buffers: fresh ones of this
    // size cost page faults per decode.
    struct Scratch {
      Vector zsq, entry_sq;
      Matrix aside;
    };
    thread_local Scratch scratch;
    Scratch& b = scratch;
    b.zsq.resize(length);
    coefficients.resize(length, w);
    b.aside.resize(length, f);
    internal::ChunkedProduct(
        kept_cols, length, m,
        [&](int64_t l0, const Matrix& chunk) {
          const Eigen::Index n = chunk.rows();
          b.zsq.segment(l0, n) = chunk.leftCols(kp).rowwise().squaredNorm();
          coefficients.middleRows(l0, n) = chunk.middleCols(kp, w);
          b.aside.middleRows(l0, n) = chunk.rightCols(f);
          return true;
        },
        &sumsq);
    b.entry_sq.setZero(length);
    for (const double* c : kept_cols)
      b.entry_sq.array() += Eigen::Map<const Vector>(c, length).array().square();
    for (int64_t l0 = 0; l0 < length; l0 += internal::kSetAsideChunk) {
      const int64_t n = std::min(internal::kSetAsideChunk, length - l0);
      if (!check(l0, n, {b.zsq.data() + l0, b.entry_sq.data() + l0, b.aside.data() + l0, length}))
        return std::nullopt;
    }
  }
  double mislocation = mislocation_->EntryGain(t_all, missing, 0, 0.0, 0.0);
  for (int c = 1; c <= f; ++c) {
    const size_t i = static_cast<size_t>(c);
    if (has[i])
      mislocation = std::max(mislocation, within[i] ? gains[i].mislocated : gains[i].located);
  }
  // With K + 1 kept, an entry where every set-aside peer is off was checked
  // by a single spare result (DecodeOutcome::one_spare_correction).
  const bool one_spare = kept_count == k + 1 && has[static_cast<size_t>(f)];
  DecodeOutcome out;
  out.coefficients = std::move(coefficients);
  out.verified = true;
  for (int q = 0; q < f; ++q)
    if (wrong[static_cast<size_t>(q)])
      out.wrong_peers.push_back(flagged_ids[static_cast<size_t>(q)]);
  out.one_spare_correction = one_spare;
  const double spread = length > 0 ? std::sqrt((sumsq + aside_sumsq) / double(length)) : 0.0;
  const double scale = tol * (std::max(rms, scale_floor) + spread);
  out.roundoff_bound = scale * kept_plan->Gain();
  out.deviation_bound = std::max(out.roundoff_bound, scale * mislocation);
  return out;
}

StatusOr<DecodeOutcome> ErrorsAndErasuresDecoder::DecodeReference(std::span<const int> peers,
                                                                  const MatrixRef& results,
                                                                  double scale_floor) const {
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<int> col_of,
                             IndexPeers(peers, static_cast<size_t>(results.cols())));
  std::vector<int> answered;
  for (int p = 0; p < num_peers(); ++p)
    if (col_of[static_cast<size_t>(p)] >= 0) answered.push_back(p);
  // Results in peer order.
  Matrix original(results.rows(), static_cast<Eigen::Index>(answered.size()));
  for (size_t i = 0; i < answered.size(); ++i)
    original.col(static_cast<Eigen::Index>(i)) =
        results.col(col_of[static_cast<size_t>(answered[i])]);
  // As Decode: a result with a non-finite or absurdly large value is wrong
  // outright, so first an erasure (the others decoded, it named), within
  // the code's radius (UntameWithinRadius); else one more wrong result.
  std::vector<const double*> cols;
  for (Eigen::Index j = 0; j < original.cols(); ++j) cols.push_back(original.col(j).data());
  const internal::PeerSplit untame =
      internal::SplitUntame(answered, cols, 1, static_cast<int64_t>(original.rows()));
  std::optional<StatusOr<DecodeOutcome>> around = DecodeAroundUntame(
      untame, static_cast<int>(answered.size()), recovery_threshold(),
      [&] {
        Matrix rest(original.rows(), static_cast<Eigen::Index>(untame.kept.size()));
        for (size_t j = 0; j < untame.kept_cols.size(); ++j)
          rest.col(static_cast<Eigen::Index>(j)) =
              Eigen::Map<const Vector>(untame.kept_cols[j], original.rows());
        return DecodeOwned(untame.kept, std::move(rest), scale_floor);
      },
      [&] { return DecodeOwned(answered, original, scale_floor); });
  if (around) return std::move(*around);
  return DecodeOwned(answered, std::move(original), scale_floor);
}

StatusOr<DecodeOutcome> ErrorsAndErasuresDecoder::DecodeOwned(const std::vector<int>& answered,
                                                              Matrix original,
                                                              double scale_floor) const {
  const int k = recovery_threshold();
  const int total = static_cast<int>(answered.size());
  // A working copy in which a non-finite or absurdly large value is 0: just
  // a wrong value of its entry (the final check compares the originals, where
  // it always disagrees); the results themselves when there is none. Both
  // scaled by a power of two (exact) that brings the results' typical
  // magnitude near 1, so that no tolerance or square under- or overflows.
  const int exponent = internal::TypicalExponent(original);
  original *= std::ldexp(1.0, -exponent);
  const double floor = std::ldexp(scale_floor, -exponent);
  Matrix zeroed;
  const bool tame = (original.array().abs() <= kHuge).all();  // false for NaN
  if (!tame) zeroed = original.unaryExpr([](double v) { return std::abs(v) <= kHuge ? v : 0.0; });
  const Matrix& work = tame ? original : zeroed;
  if (total == k) {
    // No redundancy: decode, but nothing can be verified.
    if (!AllFinite(original)) {
      return DataLossError("decode: non-finite results and no redundancy (" +
                           std::to_string(total) + " results, threshold K = " + std::to_string(k) +
                           ")");
    }
    DecodeOutcome out;
    const auto plan = GetPlan(PeerSet::Of(answered));
    out.coefficients = work * plan->wanted_pinv.transpose();
    out.coefficients *= std::ldexp(1.0, exponent);
    // As the fast path's: rms + the RMS over entries of each one's 2-norm.
    const double raw = work.size() > 0 ? work.norm() / std::sqrt(double(work.size())) : 0.0;
    const double rms = std::max(raw, floor);  // nothing checked: the floor in full
    const double spread = raw * std::sqrt(double(total));
    out.deviation_bound =
        std::ldexp(options_.tolerance * (rms + spread) * plan->wanted_gain, exponent);
    out.roundoff_bound = out.deviation_bound;
    return out;
  }
  // First with the subspace locator (errors in whole peers), then, if that
  // went astray, entry by entry over every result.
  // One budget for the entry search of both attempts (decode_kernels.h).
  int64_t budget = options_.max_fits;
  StatusOr<DecodeOutcome> out = Attempt(answered, original, work, /*locate=*/true, floor, &budget);
  if (!out.ok() && out.status().code() == StatusCode::kDataLoss && options_.entry_fallback) {
    StatusOr<DecodeOutcome> second =
        Attempt(answered, original, work, /*locate=*/false, floor, &budget);
    if (second.ok()) out = std::move(second);
  }
  if (out.ok()) {
    out->coefficients *= std::ldexp(1.0, exponent);
    out->deviation_bound = std::ldexp(out->deviation_bound, exponent);
    out->roundoff_bound = std::ldexp(out->roundoff_bound, exponent);
  }
  return out;
}

StatusOr<DecodeOutcome> ErrorsAndErasuresDecoder::Attempt(const std::vector<int>& answered,
                                                          const Matrix& original,
                                                          const Matrix& work, bool locate,
                                                          double floor, int64_t* budget) const {
  const int k = recovery_threshold();
  const int total = static_cast<int>(answered.size());
  const int t_all = (total - k) / 2;
  const double tol = options_.tolerance;
  // Locate and set aside wrong peers, then correct what is left entry by
  // entry. Every tolerance comes from the results still kept, never from
  // those set aside, and only from values a wrong one cannot inflate (up to
  // t_all wrong values in an entry).
  std::vector<int> kept_pos(static_cast<size_t>(total));  // positions in `answered`
  std::iota(kept_pos.begin(), kept_pos.end(), 0);
  std::vector<int> peeled_pos;
  auto ids = [&](const std::vector<int>& pos) {
    std::vector<int> out;
    for (int i : pos) out.push_back(answered[static_cast<size_t>(i)]);
    return out;
  };
  std::shared_ptr<const Plan> plan;
  // The kept results: `work` itself until a peer is set aside (no copy).
  Matrix kept_storage;
  const Matrix* kept = &work;
  double global = 0.0;
  std::vector<Eigen::Index> dirty;
  // Rows the peeled peers did not explain: corrected entry by entry even when
  // consistent with the peers kept (LocateBySpan).
  std::vector<Eigen::Index> forced;
  while (true) {
    const int r = static_cast<int>(kept_pos.size());
    if (r <= k) {
      return DataLossError("decode: errors beyond what the code corrects (" +
                           std::to_string(total) + " results, threshold K = " + std::to_string(k) +
                           "); suspect peers: " + PeerList(ids(peeled_pos)));
    }
    plan = GetPlan(PeerSet::Of(ids(kept_pos)));
    const Vector cs = RobustTolerances(*kept, tol, t_all, &global, floor);
    const Matrix st = internal::SyndromesInTolerances(*kept * plan->parity.transpose(), cs);
    dirty.clear();
    for (Eigen::Index i = 0; i < st.rows(); ++i)
      if (!(st.row(i).norm() <= 1.0)) dirty.push_back(i);
    if (dirty.empty() || !locate) break;
    Matrix dmat(static_cast<Eigen::Index>(dirty.size()), r - k);
    std::vector<double> tolerances;
    for (size_t i = 0; i < dirty.size(); ++i) {
      dmat.row(static_cast<Eigen::Index>(i)) = st.row(dirty[i]);
      tolerances.push_back(cs(dirty[i]));
    }
    const std::vector<double> own_share = internal::OwnSharesOfRobust(tolerances, tol, global);
    std::vector<Eigen::Index> unexplained;  // in dmat
    std::vector<int> flag =
        internal::LocateBySpan(std::move(dmat), plan->parity, 1, options_.clean_fit, &unexplained,
                               &own_share);  // in kept
    if (flag.empty()) break;
    for (Eigen::Index i : unexplained) forced.push_back(dirty[static_cast<size_t>(i)]);
    std::sort(flag.begin(), flag.end());
    std::vector<int> next, keep_cols;
    size_t fi = 0;
    for (int j = 0; j < r; ++j) {
      if (fi < flag.size() && flag[fi] == j) {
        peeled_pos.push_back(kept_pos[static_cast<size_t>(j)]);
        ++fi;
      } else {
        next.push_back(kept_pos[static_cast<size_t>(j)]);
        keep_cols.push_back(j);
      }
    }
    Matrix next_kept = SelectColumns(*kept, keep_cols);
    kept_storage = std::move(next_kept);
    kept = &kept_storage;
    kept_pos = std::move(next);
  }
  std::sort(peeled_pos.begin(), peeled_pos.end());
  if (!forced.empty()) {
    dirty.insert(dirty.end(), forced.begin(), forced.end());
    std::sort(dirty.begin(), dirty.end());
    dirty.erase(std::unique(dirty.begin(), dirty.end()), dirty.end());
  }
  const int r = static_cast<int>(kept_pos.size());
  // Corrected entries go to a copy; without any, the kept results are it.
  Matrix corrected_storage;
  const Matrix* corrected = kept;
  if (!dirty.empty()) {
    corrected_storage = *kept;
    corrected = &corrected_storage;
    if (!options_.entry_fallback) {
      return DataLossError("decode: errors not separable (" + std::to_string(dirty.size()) +
                           " inconsistent entries); suspect peers: " + PeerList(ids(peeled_pos)));
    }
    // Each inconsistent entry on its own: first with the set-aside peers as
    // erasures, then with every result (a set-aside peer may be right in
    // this entry, and an erasure costs the entry half an error's worth).
    std::vector<std::vector<int>> tries(peeled_pos.empty() ? 1 : 2);  // positions in `answered`
    tries[0] = kept_pos;
    if (!peeled_pos.empty()) {
      tries[1].resize(static_cast<size_t>(total));
      std::iota(tries[1].begin(), tries[1].end(), 0);
    }
    std::vector<internal::EntryTry> entry_tries;
    for (const std::vector<int>& pos : tries) {
      std::vector<double> pts;
      for (int i : pos)
        pts.push_back(points_[static_cast<size_t>(answered[static_cast<size_t>(i)])]);
      const int t = (static_cast<int>(pos.size()) - k) / 2;
      entry_tries.push_back({ChebyshevBasis(pts, k), ChebyshevBasis(pts, k + t)});
    }
    auto values = [&](size_t ti, Eigen::Index row) {
      const std::vector<int>& pos = tries[ti];
      Vector y(static_cast<Eigen::Index>(pos.size()));
      for (size_t i = 0; i < pos.size(); ++i) y(static_cast<Eigen::Index>(i)) = work(row, pos[i]);
      return y;
    };
    // A try's corrected values, back to the kept results' columns.
    auto write = [&](size_t ti, Eigen::Index row, const Vector& y) {
      const std::vector<int>& pos = tries[ti];
      for (size_t i = 0, j = 0; i < pos.size() && j < kept_pos.size(); ++i) {
        if (pos[i] != kept_pos[j]) continue;
        corrected_storage(row, static_cast<Eigen::Index>(j)) = y(static_cast<Eigen::Index>(i));
        ++j;
      }
    };
    const internal::EntrySearch search =
        internal::EntrySearch::Of(tol, options_.clean_fit, global, kMaxSetsPerEntry);
    const internal::EntriesOutcome entries = internal::CorrectEntries(
        entry_tries, 1, k, kept->rows(), dirty, values, write, search, budget);
    if (entries.outcome == internal::EntriesOutcome::kBudgetSpent)
      return internal::BudgetSpentError(options_.max_fits, entries.done,
                                        static_cast<int64_t>(dirty.size()), ids(peeled_pos));
    if (entries.outcome == internal::EntriesOutcome::kBeyond) {
      return DataLossError("decode: errors beyond what the code corrects (" +
                           std::to_string(total) + " results, threshold K = " + std::to_string(k) +
                           ", entry " + std::to_string(entries.row) + " has more than " +
                           std::to_string((total - k) / 2) +
                           " wrong values); suspect peers: " + PeerList(ids(peeled_pos)));
    }
  }

  // Final check, at the scale of the decoded code word itself, against the
  // results as they arrived.
  const Matrix cheb_coef = *corrected * plan->chebyshev_pinv.transpose();  // L x K
  std::vector<double> pts;
  for (int p : answered) pts.push_back(points_[static_cast<size_t>(p)]);
  const Matrix codeword = cheb_coef * ChebyshevBasis(pts, k).transpose();  // L x R
  double scale = 0.0;
  const Vector cs = RobustTolerances(codeword, tol, 0, &scale, floor);
  DecodeOutcome out;
  out.roundoff_bound = 2.0 * tol * std::max(scale, floor) * plan->FittedGain();
  out.deviation_bound = out.roundoff_bound;
  std::vector<int> kept_off(static_cast<size_t>(original.rows()), 0);
  std::vector<int> aside_off(static_cast<size_t>(original.rows()), 0);
  Vector smallest = Vector::Constant(original.rows(), kHuge);  // least deviation off, by entry
  for (int i = 0; i < total; ++i) {
    auto& off = std::binary_search(kept_pos.begin(), kept_pos.end(), i) ? kept_off : aside_off;
    const auto dev = (original.col(i) - codeword.col(i)).cwiseAbs();
    bool wrong = false;
    for (Eigen::Index l = 0; l < dev.size(); ++l) {
      if (dev(l) <= cs(l)) continue;
      wrong = true;
      ++off[static_cast<size_t>(l)];
      smallest(l) = std::min(smallest(l), dev(l));  // NaN: kHuge stays (wrong in any case)
    }
    if (wrong) out.wrong_peers.push_back(answered[static_cast<size_t>(i)]);
  }
  POLYGUARD_RETURN_IF_ERROR(internal::CheckAgreement(kept_off, aside_off, r, total, k,
                                                     out.wrong_peers, &out.one_spare_correction));
  out.coefficients = *corrected * plan->wanted_pinv.transpose();
  out.verified = true;
  out.deviation_bound = std::max(
      out.deviation_bound, internal::MislocationBound(*mislocation_, t_all, num_peers() - total, cs,
                                                      kept_off, aside_off, smallest));
  return out;
}

}  // namespace polyguard
