#include "polyguard/codes/linear_code_decoder.h"

#include "polyguard/base/peer_set.h"
#include "polyguard/base/precision.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>

#include <Eigen/QR>
#include <Eigen/SVD>

#include "lib/codes/decode_kernels.h"
#include "lib/codes/mislocation.h"

namespace polyguard {

using internal::kHuge;
using internal::kLocateSample;
using internal::kMaxSetsPerEntry;
using internal::PeerList;
using internal::RobustTolerances;

struct LinearCodeDecoder::Plan {
  std::vector<int> rows;  // peers, ascending
  bool singular = false;  // these rows do not determine C
  Matrix parity;          // (R - K) x R, orthonormal rows, parity * G_R = 0
  Matrix pinv;            // K x R
  double gain = 0;        // max_k ||pinv.row(k)||_1 (DecodeOutcome::deviation_bound)
  // Per row: sqrt(1 - h), h the row's leverage in the least-squares fit
  // (the diagonal of G_R G_R^+), floored at 1e-2: how much of honest
  // roundoff a residual keeps (the suspect search's studentized bound).
  Eigen::ArrayXd slack;
  int probes = 0;                  // leading columns of `fused` that are parity probes
  internal::RowMajorMatrix fused;  // R x (probes + K): [probe; pinv]^T
};

namespace {

// Sets of suspects tried by the peer-wide search at most (per inconsistent
// entry by the entry-wise search: kMaxSetsPerEntry).
constexpr int64_t kMaxSuspectSets = 20000;

double Rms(const Matrix& m) { return m.size() > 0 ? m.norm() / std::sqrt(double(m.size())) : 0.0; }

// The least sqrt(1 - leverage) of a kept block on that shortcut: an error
// there shows in the parity check at this fraction of its size or more.
constexpr double kMinKeptSlack = 0.3;

}  // namespace

StatusOr<std::unique_ptr<LinearCodeDecoder>> LinearCodeDecoder::Create(Matrix generator,
                                                                       DecoderOptions options,
                                                                       int rows_per_peer) {
  const Eigen::Index rows = generator.rows(), k = generator.cols();
  if (rows_per_peer < 1 || rows % rows_per_peer != 0) {
    return InvalidArgumentError("linear decoder: rows per peer must be >= 1 and divide the " +
                                std::to_string(rows) + " generator rows, got " +
                                std::to_string(rows_per_peer));
  }
  const Eigen::Index p = rows / rows_per_peer;
  if (p < 1 || p > kMaxPeers || k < 1 || k > rows) {
    return InvalidArgumentError(
        "linear decoder: generator must be (g P) x K with P <= " + std::to_string(kMaxPeers) +
        " and "
        "1 <= K <= g P, got " +
        std::to_string(rows) + " x " + std::to_string(k) +
        " with g = " + std::to_string(rows_per_peer));
  }
  if (!AllFinite(generator))
    return InvalidArgumentError("linear decoder: generator has NaN or Inf");
  POLYGUARD_RETURN_IF_ERROR(ValidateTolerance(options.tolerance, "linear decoder"));
  if (options.max_fits < 1) {
    return InvalidArgumentError("linear decoder: max_fits must be positive, got " +
                                std::to_string(options.max_fits));
  }
  if (!(options.clean_fit > 0.0 && options.clean_fit <= 1.0)) {
    return InvalidArgumentError("linear decoder: clean_fit must be in (0, 1], got " +
                                std::to_string(options.clean_fit));
  }
  return std::unique_ptr<LinearCodeDecoder>(
      new LinearCodeDecoder(std::move(generator), options, rows_per_peer));
}

LinearCodeDecoder::LinearCodeDecoder(Matrix generator, DecoderOptions options, int rows_per_peer)
    : generator_(std::move(generator)),
      options_(options),
      rows_per_peer_(rows_per_peer),
      mislocation_(std::make_unique<internal::MislocationGains>()) {
  mislocation_->Set(generator_, rows_per_peer_, {});  // peers in turn: a circle's points in order
}

LinearCodeDecoder::~LinearCodeDecoder() = default;

std::shared_ptr<const LinearCodeDecoder::Plan> LinearCodeDecoder::GetPlan(
    const std::vector<int>& peers) const {
  const PeerSet mask = PeerSet::Of(peers);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(mask);
    if (it != cache_.end()) return it->second;
  }
  auto plan = std::make_shared<Plan>();
  plan->rows = peers;
  const int g = rows_per_peer_;
  const int r = static_cast<int>(peers.size()) * g;  // generator rows kept
  const int k = static_cast<int>(generator_.cols());
  Matrix gen(r, k);
  for (size_t i = 0; i < peers.size(); ++i)
    gen.middleRows(static_cast<Eigen::Index>(i) * g, g) = generator_.middleRows(peers[i] * g, g);
  Eigen::JacobiSVD<Matrix> svd(gen, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Vector sigma = svd.singularValues();
  // Singular to working precision: the decode would amplify roundoff beyond
  // any tolerance, so these peers do not determine C.
  plan->singular = r < k || !(sigma(k - 1) > 1e-13 * sigma(0));
  if (r < k) {
    std::lock_guard<std::mutex> lock(mu_);
    cache_.emplace(mask, plan);
    return plan;
  }
  plan->pinv = svd.matrixV() * sigma.cwiseInverse().asDiagonal() * svd.matrixU().transpose();
  plan->gain = plan->pinv.cwiseAbs().rowwise().sum().maxCoeff();
  // std::sqrt: the same bits on every CPU (Eigen's vectorised sqrt is an
  // approximation on AVX-512).
  plan->slack =
      (1.0 - svd.matrixU().rowwise().squaredNorm().array()).max(1e-4).unaryExpr([](double v) {
        return std::sqrt(v);
      });
  Eigen::HouseholderQR<Matrix> qr(gen);
  const Matrix q_full = qr.householderQ() * Matrix::Identity(r, r);
  plan->parity = q_full.rightCols(r - k).transpose();
  // The error-free check is the exact parity check (every parity row): no
  // error pattern on at most R - K peers hides in its null space.
  plan->probes = r - k;
  const Matrix& probe = plan->parity;
  plan->fused.resize(r, plan->probes + k);
  plan->fused.leftCols(plan->probes) = probe.transpose();
  plan->fused.rightCols(k) = plan->pinv.transpose();
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(cache_.size()) >= options_.cache_capacity) cache_.clear();
  cache_.emplace(mask, plan);
  return plan;
}

StatusOr<DecodeOutcome> LinearCodeDecoder::Decode(std::span<const int> peers,
                                                  const MatrixRef& results,
                                                  double scale_floor) const {
  if (results.cols() != static_cast<Eigen::Index>(peers.size()) * rows_per_peer_) {
    return InvalidArgumentError("decode: " + std::to_string(results.cols()) +
                                " result columns for " + std::to_string(peers.size()) + " peers");
  }
  // Columns of a Ref are contiguous; only a strided one needs a copy.
  Matrix owned;
  const bool strided = results.outerStride() != results.rows() && results.cols() > 1;
  if (strided) owned = results;
  std::vector<const double*> columns;
  for (Eigen::Index j = 0; j < results.cols(); ++j)
    columns.push_back(strided ? owned.col(j).data() : results.col(j).data());
  return Decode(peers, columns, results.rows(), scale_floor);
}

StatusOr<DecodeOutcome> LinearCodeDecoder::Decode(std::span<const int> peers,
                                                  std::span<const double* const> columns,
                                                  int64_t length, double scale_floor) const {
  Matrix coefficients;
  auto sink = [&](int64_t l0, const MatrixRef& chunk) {
    if (coefficients.rows() != length) coefficients.resize(length, generator_.cols());
    coefficients.middleRows(l0, chunk.rows()) = chunk;
  };
  POLYGUARD_ASSIGN_OR_RETURN(DecodeOutcome out, Decode(peers, columns, length, sink, scale_floor));
  if (coefficients.rows() != length) coefficients.resize(length, generator_.cols());
  out.coefficients = std::move(coefficients);
  return out;
}

StatusOr<DecodeOutcome> LinearCodeDecoder::Decode(std::span<const int> peers,
                                                  std::span<const double* const> columns,
                                                  int64_t length, const CoefficientSink& sink,
                                                  double scale_floor) const {
  const int k = recovery_threshold();
  const int g = rows_per_peer_;
  const int total = static_cast<int>(peers.size());
  if (length < 0) return InvalidArgumentError("decode: negative result length");
  if (columns.size() != peers.size() * static_cast<size_t>(g)) {
    return InvalidArgumentError("decode: " + std::to_string(columns.size()) +
                                " result columns for " + std::to_string(total) + " peers of " +
                                std::to_string(g) + " blocks");
  }
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<int> col_of, internal::IndexPeers(peers, num_peers(), k));
  std::vector<int> sorted_peers;
  std::vector<const double*> sorted_cols;
  for (int p = 0; p < num_peers(); ++p) {
    const int j = col_of[static_cast<size_t>(p)];
    if (j < 0) continue;
    sorted_peers.push_back(p);
    for (int b = 0; b < g; ++b) sorted_cols.push_back(columns[static_cast<size_t>(j * g + b)]);
  }
  auto plan = GetPlan(sorted_peers);
  const int col_count = static_cast<int>(sorted_cols.size());
  const double rms =
      internal::ScaleWithFloor(internal::SampledRms(sorted_cols, length), scale_floor);
  // Far from 1 the squares of the check under- or overflow: the slow path
  // scales the results first. Results that are exactly zero pass (every
  // check is 0; errors_and_erasures_decoder.cc).
  const bool tame_scale = rms > internal::kTinyScale && rms < internal::kHugeScale;
  if (!plan->singular &&
      (tame_scale || (rms <= internal::kTinyScale && internal::AllZero(sorted_cols, length)))) {
    const double tol = options_.tolerance;
    const int probes = plan->probes;
    // Whether entry l, its check's squared norm zsq, passes. An inconsistent
    // entry's syndrome over its tolerance (from probe_row) joins `dirty`, the
    // sample (at most kLocateSample) for the whole-peer shortcut. A value
    // too large to square (no finite tolerance or check) sets `untame`
    // instead: the slow path sets such a result aside.
    std::vector<Vector> dirty;
    std::vector<double> dirty_tolerances, dirty_magnitudes;
    bool untame = false;
    const double quick = tol * rms;
    auto passes = [&](int64_t l, double zsq, const auto& probe_row) {
      if (zsq <= quick * quick) return true;
      const double cs = internal::EntryTolerance(sorted_cols, l, tol, rms);
      if (!std::isfinite(cs) || !std::isfinite(zsq)) {
        untame = true;
        return false;
      }
      if (std::sqrt(zsq) <= cs) return true;
      dirty.push_back(probe_row() / cs);
      dirty_tolerances.push_back(cs);
      // Only the one-row-per-peer locator weighs rows by their shares.
      dirty_magnitudes.push_back(
          g == 1 ? internal::RobustMagnitude(sorted_cols, l,
                                             (static_cast<int>(sorted_peers.size()) - k) / 2)
                 : 0.0);
      return false;
    };
    // Rows [l0, l0 + chunk.rows()) of [probes | coefficients]: consistent
    // when every entry passes; the first inconsistent chunk stops the pass.
    auto consistent = [&](int64_t l0, const Matrix& chunk) {
      if (!AllFinite(chunk)) return false;
      for (Eigen::Index i = 0; i < chunk.rows() && probes > 0; ++i) {
        const double zsq = chunk.row(i).head(probes).squaredNorm();
        if (!passes(l0 + i, zsq, [&] { return Vector(chunk.row(i).head(probes).transpose()); }) &&
            (untame || dirty.size() >= kLocateSample)) {
          break;
        }
      }
      return dirty.empty() && !untame;
    };
    bool clean;
    double sumsq = 0.0;  // of every result value: the resolution's scale
    if (plan->fused.cols() > 8) {
      // Many coefficients: GEMM on chunks, each checked and handed over
      // while in cache. An inconsistent chunk stops the pass; the slow path
      // below then overwrites whatever was handed over.
      clean = internal::ChunkedProduct(
          sorted_cols, length, plan->fused,
          [&](int64_t l0, const Matrix& chunk) {
            if (!consistent(l0, chunk)) return false;
            sink(l0, chunk.rightCols(generator_.cols()));
            return true;
          },
          &sumsq);
    } else {
      // Per entry the squared norm of its check and the coefficients, in one
      // pass; the probes of an inconsistent entry are computed again.
      thread_local Vector zsq;
      thread_local Matrix wanted;
      clean = internal::FusedCheck(sorted_cols, length, plan->fused, probes, &zsq, &wanted, &sumsq);
      if (clean && probes > 0 && (zsq.array() > quick * quick).any()) {
        for (int64_t l = 0; l < length; ++l) {
          if (!passes(
                  l, zsq(l),
                  [&] { return internal::CombineEntry(sorted_cols, l, plan->fused, probes); }) &&
              (untame || dirty.size() >= kLocateSample)) {
            break;
          }
        }
        clean = dirty.empty() && !untame;
      }
      if (clean) sink(0, wanted);
    }
    if (!clean && !dirty.empty() && !untame) {
      std::optional<DecodeOutcome> out = DecodeWithoutLocated(
          sorted_peers, sorted_cols, length, *plan, dirty,
          internal::OwnShares(dirty_tolerances, dirty_magnitudes, tol), scale_floor, sink);
      if (out) return std::move(*out);
    }
    if (clean) {
      DecodeOutcome out;
      out.verified = col_count > generator_.cols();
      // Entry l passed at tol (rms + its RMS over the results); a value may
      // be up to its 2-norm over them, whose RMS over entries is this.
      const double spread = length > 0 ? std::sqrt(sumsq / double(length)) : 0.0;
      // The declared floor in full: the check counts it only up to its cap,
      // but honest roundoff beyond the cap is still roundoff the product has.
      // Up to t wrong peers the check cannot see move the product as far as
      // the others' deviation (both code words within it) allows without them.
      const double scale = tol * (std::max(rms, scale_floor) + spread);
      out.roundoff_bound = scale * plan->gain;
      out.deviation_bound = std::max(
          out.roundoff_bound,
          scale * mislocation_->EntryGain((total - k) / 2, num_peers() - total, 0, 0.0, 0.0));
      return out;
    }
  }
  // A result with a non-finite or absurdly large value is wrong outright
  // (the full decode says so too): decode the others, which the fast path
  // can, and name it. One pass over each result finds them.
  const internal::PeerSplit untame = internal::SplitUntame(sorted_peers, sorted_cols, g, length);
  if (!untame.aside.empty() && static_cast<int>(untame.kept.size()) > k) {
    StatusOr<DecodeOutcome> rest = Decode(untame.kept, untame.kept_cols, length, sink, scale_floor);
    if (rest.ok() && internal::UntameWithinRadius(untame, rest->wrong_peers.size(), total, k)) {
      std::vector<int>& wrong = rest->wrong_peers;
      wrong.insert(wrong.end(), untame.aside.begin(), untame.aside.end());
      std::sort(wrong.begin(), wrong.end());
      return rest;
    }
  }
  Matrix results(length, col_count);
  for (int j = 0; j < col_count; ++j)
    results.col(j) = Eigen::Map<const Vector>(sorted_cols[static_cast<size_t>(j)], length);
  POLYGUARD_ASSIGN_OR_RETURN(DecodeOutcome out, DecodeSlow(sorted_peers, results, scale_floor));
  sink(0, out.coefficients);
  out.coefficients = Matrix();
  return out;
}

std::optional<DecodeOutcome> LinearCodeDecoder::DecodeWithoutLocated(
    const std::vector<int>& peers, const std::vector<const double*>& cols, int64_t length,
    const Plan& plan, const std::vector<Vector>& dirty, const std::vector<double>& own_share,
    double scale_floor, const CoefficientSink& sink) const {
  const int g = rows_per_peer_;
  const int k = recovery_threshold();
  const int kc = static_cast<int>(generator_.cols());
  const int total = static_cast<int>(peers.size());
  if (dirty.empty() || plan.probes == 0) return std::nullopt;
  Matrix dmat(static_cast<Eigen::Index>(dirty.size()), plan.probes);
  for (size_t i = 0; i < dirty.size(); ++i) dmat.row(static_cast<Eigen::Index>(i)) = dirty[i];
  std::vector<Eigen::Index> unexplained;
  std::vector<int> flag = internal::LocateBySpan(std::move(dmat), plan.parity, g,
                                                 options_.clean_fit, &unexplained, &own_share);
  const int kept_count = total - static_cast<int>(flag.size());
  if (flag.empty() || kept_count < k || !unexplained.empty()) return std::nullopt;
  std::sort(flag.begin(), flag.end());
  const internal::PeerSplit split = internal::SplitAt(peers, cols, g, flag);
  const std::vector<int>& kept_ids = split.kept;
  const std::vector<int>& flagged_ids = split.aside;
  const std::vector<const double*>& kept_cols = split.kept_cols;
  const std::vector<const double*>& flagged_cols = split.aside_cols;
  const auto kept_plan = GetPlan(kept_ids);
  // Every kept block must be well covered by the kept parity checks: a
  // block outside them (sparse generators have such subsets) or nearly so
  // (high leverage) could carry an error the check cannot see.
  if (kept_plan->singular || kept_plan->probes == 0 ||
      !(kept_plan->slack.minCoeff() >= kMinKeptSlack)) {
    return std::nullopt;
  }
  const int kp = kept_plan->probes;
  const int fg = static_cast<int>(flagged_cols.size());
  Matrix gen_flagged(fg, kc);
  for (size_t i = 0; i < flagged_ids.size(); ++i)
    gen_flagged.middleRows(static_cast<Eigen::Index>(i) * g, g) =
        generator_.middleRows(flagged_ids[i] * g, g);
  // [parity | coefficients | the code word at each set-aside block], from
  // the kept results in one pass; each chunk checked while in cache.
  internal::RowMajorMatrix m(kept_plan->fused.rows(), kp + kc + fg);
  m.leftCols(kp + kc) = kept_plan->fused;
  m.rightCols(fg) = (gen_flagged * kept_plan->pinv).transpose();
  // The scale from the kept results alone: the set-aside ones may be huge.
  const double rms = internal::ScaleWithFloor(internal::SampledRms(kept_cols, length), scale_floor);
  if (!(rms > internal::kTinyScale && rms < internal::kHugeScale)) return std::nullopt;
  const double tol = options_.tolerance, quick = tol * rms;
  std::vector<char> wrong(flagged_ids.size(), 0);
  // With K + 1 kept, an entry where every set-aside peer is off was checked
  // by a single spare result (DecodeOutcome::one_spare_correction): each
  // peer is then checked in every entry until one such entry is found, not
  // only up to its first miss.
  bool count_off = kept_count == k + 1;
  bool one_spare = false;
  // Each set-aside peer's largest deviation in the entry, 0 where it agrees.
  std::vector<double> off_here(flagged_ids.size(), 0.0);
  // What the product can be off by, per unit of the entries' tolerance,
  // had the set-aside values not been the wrong ones (mislocation.h): the
  // worst entry's. Entries with off values of each count share the gains.
  const int t_all = (total - k) / 2;
  internal::EntryGains entry_gain(*mislocation_, t_all, num_peers() - total);
  double mislocation = mislocation_->EntryGain(t_all, num_peers() - total, 0, 0.0, 0.0);
  // The decoded code word's squares at the set-aside peers: an honest peer
  // set aside can hold an entry's largest value, and roundoff at its scale
  // (adversary s19).
  double aside_sumsq = 0.0;
  double sumsq = 0.0;
  const bool clean = internal::ChunkedProduct(
      kept_cols, length, m,
      [&](int64_t l0, const Matrix& chunk) {
        if (!AllFinite(chunk.leftCols(kp + kc))) return false;
        for (Eigen::Index i = 0; i < chunk.rows(); ++i) {
          const int64_t l = l0 + i;
          double cs = -1.0;
          auto tolerance = [&] {
            if (cs < 0.0) cs = internal::EntryTolerance(kept_cols, l, tol, rms);
            return cs;
          };
          const double zsq = chunk.row(i).head(kp).squaredNorm();
          // A value too large to square (no finite tolerance) is wrong.
          if (!(zsq <= quick * quick) &&
              (!(std::sqrt(zsq) <= tolerance()) || !std::isfinite(tolerance()))) {
            return false;
          }
          std::fill(off_here.begin(), off_here.end(), 0.0);
          aside_sumsq += chunk.row(i).segment(kp + kc, fg).squaredNorm();
          for (int col = 0; col < fg; ++col) {
            const double dev =
                std::abs(flagged_cols[static_cast<size_t>(col)][l] - chunk(i, kp + kc + col));
            if (dev <= quick || dev <= tolerance()) continue;
            wrong[static_cast<size_t>(col / g)] = 1;
            double& worst = off_here[static_cast<size_t>(col / g)];
            worst = std::max(worst, dev);
          }
          int off = 0;
          double smallest = internal::kHuge;
          for (double dev : off_here) {
            if (dev == 0.0) continue;
            ++off;
            smallest = std::min(smallest, dev);
          }
          if (off > 0) mislocation = std::max(mislocation, entry_gain(off, smallest, tolerance()));
          if (count_off && off == static_cast<int>(off_here.size())) {
            one_spare = true;
            count_off = false;
          }
        }
        sink(l0, chunk.middleCols(kp, kc));
        return true;
      },
      &sumsq);
  if (!clean) return std::nullopt;
  DecodeOutcome out;
  out.verified = true;
  for (size_t i = 0; i < flagged_ids.size(); ++i)
    if (wrong[i]) out.wrong_peers.push_back(flagged_ids[i]);
  out.one_spare_correction = one_spare;
  const double spread = length > 0 ? std::sqrt((sumsq + aside_sumsq) / double(length)) : 0.0;
  const double scale = tol * (std::max(rms, scale_floor) + spread);
  out.roundoff_bound = scale * kept_plan->gain;
  out.deviation_bound = std::max(out.roundoff_bound, scale * mislocation);
  return out;
}

StatusOr<DecodeOutcome> LinearCodeDecoder::DecodeSlow(const std::vector<int>& peers,
                                                      const Matrix& results,
                                                      double scale_floor) const {
  // First with the subspace locator and the peer-wide search (errors in
  // whole peers), then, if that went astray, entry by entry over everything.
  // Scaled by a power of two (exact) that brings the results' typical
  // magnitude near 1, so that no tolerance or square under- or overflows.
  const int exponent = internal::TypicalExponent(results, rows_per_peer_);
  const Matrix scaled = results * std::ldexp(1.0, -exponent);
  const double floor = std::ldexp(scale_floor, -exponent);
  // One budget for the entry search of both attempts (decode_kernels.h).
  int64_t budget = options_.max_fits;
  StatusOr<DecodeOutcome> out = Attempt(peers, scaled, /*locate=*/true, floor, &budget);
  if (!out.ok() && out.status().code() == StatusCode::kDataLoss) {
    StatusOr<DecodeOutcome> second = Attempt(peers, scaled, /*locate=*/false, floor, &budget);
    if (second.ok()) out = std::move(second);
  }
  if (out.ok()) {
    out->coefficients *= std::ldexp(1.0, exponent);
    out->deviation_bound = std::ldexp(out->deviation_bound, exponent);
    out->roundoff_bound = std::ldexp(out->roundoff_bound, exponent);
  }
  return out;
}

StatusOr<DecodeOutcome> LinearCodeDecoder::Attempt(const std::vector<int>& peers,
                                                   const Matrix& original, bool locate,
                                                   double floor, int64_t* budget) const {
  // original: L x (R g), peer-major (peers ascending), g blocks each. In the
  // working copy a non-finite or absurdly large value is 0: just a wrong
  // value of its entry (the final check compares the originals).
  const Matrix results =
      original.unaryExpr([](double v) { return std::abs(v) <= kHuge ? v : 0.0; });
  const int g = rows_per_peer_;
  const int k = recovery_threshold();
  const int total = static_cast<int>(peers.size());
  const double tol = options_.tolerance;
  auto columns_of = [&](const std::vector<int>& positions) {
    std::vector<int> cols;
    for (int pos : positions)
      for (int b = 0; b < g; ++b) cols.push_back(pos * g + b);
    return cols;
  };
  auto kept_pos_of = [&](const std::vector<int>& ids) {
    std::vector<int> pos;
    for (int p : ids)
      pos.push_back(static_cast<int>(std::find(peers.begin(), peers.end(), p) - peers.begin()));
    return pos;
  };
  std::vector<int> kept = peers, kept_pos(static_cast<size_t>(total)), bad;
  std::iota(kept_pos.begin(), kept_pos.end(), 0);
  const int t_all = (total - k) / 2;
  if (total == k && !AllFinite(original)) {
    return DataLossError("decode: non-finite results and no redundancy (" + std::to_string(total) +
                         " results, threshold K = " + std::to_string(k) + ")");
  }
  Matrix yt = internal::SelectColumns(results, columns_of(kept_pos));
  auto singular_error = [&](const std::vector<int>& rows) {
    return DataLossError("decode: the results of peers " + PeerList(rows) +
                         " do not determine the product (their generator rows are singular)");
  };

  // Locate and set aside wrong peers, then correct what is left entry by
  // entry. Tolerances come from the results still kept, never from those set
  // aside, and only from values a wrong one cannot inflate.
  std::vector<int> peeled;
  // Rows the peeled peers did not explain: corrected entry by entry even when
  // consistent with the peers kept (LocateBySpan).
  std::vector<int> forced;
  std::shared_ptr<const Plan> plan;
  Matrix corrected;
  while (true) {
    const int r = static_cast<int>(kept.size());
    if (r < k || (r == k && !peeled.empty())) {
      return DataLossError("decode: errors beyond what the code corrects (" +
                           std::to_string(total) + " results, threshold K = " + std::to_string(k) +
                           "); suspect peers: " + PeerList(peeled));
    }
    plan = GetPlan(kept);
    if (plan->singular) return singular_error(kept);
    const int red = static_cast<int>(plan->parity.rows());  // redundant rows
    if (red == 0) {
      if (!peeled.empty() || !bad.empty()) {
        std::vector<int> suspects = bad;
        suspects.insert(suspects.end(), peeled.begin(), peeled.end());
        return DataLossError("decode: errors beyond what the code corrects (" +
                             std::to_string(total) + " results, threshold K = " +
                             std::to_string(k) + "); suspect peers: " + PeerList(suspects));
      }
      DecodeOutcome out;  // nothing to check against
      out.coefficients = yt * plan->pinv.transpose();
      const double raw = Rms(yt);
      out.deviation_bound =
          tol * (std::max(raw, floor) + raw * std::sqrt(double(yt.cols()))) * plan->gain;
      out.roundoff_bound = out.deviation_bound;
      return out;
    }
    const int t_max = (r - k) / 2;
    double global = 0.0;
    const Vector cs = RobustTolerances(yt, tol, t_all * g, &global, floor);
    const Matrix st = internal::SyndromesInTolerances(yt * plan->parity.transpose(), cs);
    std::vector<int> dirty = forced;
    for (Eigen::Index i = 0; i < st.rows(); ++i)
      if (!(st.row(i).norm() <= 1.0)) dirty.push_back(static_cast<int>(i));
    std::sort(dirty.begin(), dirty.end());
    dirty.erase(std::unique(dirty.begin(), dirty.end()), dirty.end());
    corrected = yt;
    if (dirty.empty()) break;

    // Subspace test: the wrong peers' parity columns span the syndrome.
    Matrix dmat(static_cast<Eigen::Index>(dirty.size()), red);
    for (size_t i = 0; i < dirty.size(); ++i)
      dmat.row(static_cast<Eigen::Index>(i)) = st.row(dirty[i]);
    std::vector<int> flag;                  // positions in kept
    std::vector<Eigen::Index> unexplained;  // in dmat
    if (locate) {
      std::vector<double> tolerances;
      for (int i : dirty) tolerances.push_back(cs(i));
      const std::vector<double> own_share = internal::OwnSharesOfRobust(tolerances, tol, global);
      flag = internal::LocateBySpan(std::move(dmat), plan->parity, g, options_.clean_fit,
                                    &unexplained, &own_share);
    }
    for (Eigen::Index i : unexplained) forced.push_back(dirty[static_cast<size_t>(i)]);
    Matrix yd(static_cast<Eigen::Index>(dirty.size()), yt.cols());
    for (size_t i = 0; i < dirty.size(); ++i)
      yd.row(static_cast<Eigen::Index>(i)) = yt.row(dirty[i]);
    if (flag.empty()) {
      // Errors not separable by their span, but perhaps in the same few
      // peers: the smallest set of suspects whose removal leaves the dirty
      // entries within tolerance of the rest's own code word, if unique.
      int64_t tried = 0;
      for (int t = 1; t <= t_max && flag.empty() && locate; ++t) {
        // Each set costs a fit over every dirty entry: bound the total work
        // (the entry-by-entry search below handles many dirty entries).
        const int64_t sets = internal::Binomial(r, t);  // saturated
        if (sets > kMaxSuspectSets - tried ||
            tried + sets > 500000 / std::max<int64_t>(1, static_cast<int64_t>(dirty.size()))) {
          break;
        }
        std::vector<std::vector<int>> found;
        std::vector<int> idx(static_cast<size_t>(t));
        for (int i = 0; i < t; ++i) idx[static_cast<size_t>(i)] = i;
        do {
          ++tried;
          std::vector<int> rest_peers, rest_pos;
          size_t w = 0;
          for (int j = 0; j < r; ++j) {
            if (w < idx.size() && idx[w] == j) {
              ++w;
              continue;
            }
            rest_peers.push_back(kept[static_cast<size_t>(j)]);
            rest_pos.push_back(j);
          }
          auto rest_plan = GetPlan(rest_peers);
          if (rest_plan->singular) continue;
          const Matrix yr = internal::SelectColumns(yd, columns_of(rest_pos));
          const Matrix coef = yr * rest_plan->pinv.transpose();  // dirty x K
          Matrix gen_rest(static_cast<Eigen::Index>(rest_peers.size()) * g, generator_.cols());
          for (size_t i = 0; i < rest_peers.size(); ++i)
            gen_rest.middleRows(static_cast<Eigen::Index>(i) * g, g) =
                generator_.middleRows(rest_peers[i] * g, g);
          Matrix gen_kept(static_cast<Eigen::Index>(r) * g, generator_.cols());
          for (int i = 0; i < r; ++i)
            gen_kept.middleRows(static_cast<Eigen::Index>(i) * g, g) =
                generator_.middleRows(kept[static_cast<size_t>(i)] * g, g);
          const Vector lim = RobustTolerances(coef * gen_kept.transpose(), tol, 0, nullptr, floor);
          const Matrix dev = (yr - coef * gen_rest.transpose()).cwiseAbs();
          // Studentized: a kept value's residual is (1 - h) of its own error
          // but sqrt(1 - h) of honest roundoff (h its leverage); against the
          // raw limit an error of limit / (1 - h) hid in a tight fit.
          bool within = true;
          for (Eigen::Index i = 0; i < dev.rows() && within; ++i)
            within = (dev.row(i).array().transpose() <= lim(i) * rest_plan->slack).all();
          if (within) found.push_back(idx);
        } while (internal::NextCombination(&idx, r) && found.size() < 2);
        if (found.size() == 1) flag = found[0];
        if (found.size() > 1) break;  // ambiguous: more errors than can be told apart
      }
    }
    if (!flag.empty()) {
      std::sort(flag.begin(), flag.end());
      std::vector<int> next_kept, keep_pos;
      size_t fi = 0;
      for (int j = 0; j < r; ++j) {
        if (fi < flag.size() && flag[fi] == j) {
          peeled.push_back(kept[static_cast<size_t>(j)]);
          ++fi;
        } else {
          next_kept.push_back(kept[static_cast<size_t>(j)]);
          keep_pos.push_back(j);
        }
      }
      yt = internal::SelectColumns(yt, columns_of(keep_pos));
      kept = std::move(next_kept);
      continue;
    }
    // Entry by entry: up to t_max wrong peers in each inconsistent entry,
    // first with the set-aside peers as erasures, then with every finite
    // result (a set-aside peer may be right in this entry).
    std::vector<int> all_pos = kept_pos_of(kept);
    {
      std::vector<int> aside = kept_pos_of(peeled);
      all_pos.insert(all_pos.end(), aside.begin(), aside.end());
      std::sort(all_pos.begin(), all_pos.end());
    }
    std::vector<std::vector<int>> tries = {kept_pos_of(kept)};
    if (!peeled.empty()) tries.push_back(all_pos);
    std::vector<internal::EntryTry> bases;
    for (const std::vector<int>& pos : tries) {
      const int n = static_cast<int>(pos.size());
      Matrix basis(static_cast<Eigen::Index>(n) * g, generator_.cols());
      for (int i = 0; i < n; ++i) {
        const int p = peers[static_cast<size_t>(pos[static_cast<size_t>(i)])];
        basis.middleRows(static_cast<Eigen::Index>(i) * g, g) = generator_.middleRows(p * g, g);
      }
      bases.push_back({std::move(basis), Matrix()});
    }
    auto values = [&](size_t ti, Eigen::Index row) {
      const std::vector<int>& pos = tries[ti];
      Vector y(static_cast<Eigen::Index>(pos.size()) * g);
      for (size_t i = 0; i < pos.size(); ++i)
        for (int b = 0; b < g; ++b)
          y(static_cast<Eigen::Index>(i) * g + b) = results(row, pos[i] * g + b);
      return y;
    };
    // A try's corrected values, back to the kept peers' columns of `corrected`.
    auto write = [&](size_t ti, Eigen::Index row, const Vector& y) {
      const std::vector<int>& pos = tries[ti];
      for (size_t i = 0, j = 0; i < pos.size() && j < kept.size(); ++i) {
        if (peers[static_cast<size_t>(pos[i])] != kept[j]) continue;
        for (int b = 0; b < g; ++b)
          corrected(row, static_cast<Eigen::Index>(j) * g + b) =
              y(static_cast<Eigen::Index>(i) * g + b);
        ++j;
      }
    };
    const internal::EntrySearch search =
        internal::EntrySearch::Of(tol, options_.clean_fit, global, kMaxSetsPerEntry);
    const std::vector<Eigen::Index> dirty_rows(dirty.begin(), dirty.end());
    const internal::EntriesOutcome entries =
        internal::CorrectEntries(bases, g, k, yt.rows(), dirty_rows, values, write, search, budget);
    if (entries.outcome != internal::EntriesOutcome::kCorrected) {
      std::vector<int> suspects = bad;
      suspects.insert(suspects.end(), peeled.begin(), peeled.end());
      if (entries.outcome == internal::EntriesOutcome::kBudgetSpent)
        return internal::BudgetSpentError(options_.max_fits, entries.done,
                                          static_cast<int64_t>(dirty.size()), suspects);
      return DataLossError("decode: errors beyond what the code corrects (" +
                           std::to_string(total) + " results, threshold K = " + std::to_string(k) +
                           ", entry " + std::to_string(entries.row) + " has more than " +
                           std::to_string((static_cast<int>(tries.back().size()) - k) / 2) +
                           " wrong values); suspect peers: " + PeerList(suspects));
    }
    break;
  }

  // Final check at the scale of the decoded code word: in every entry at
  // most t_max kept peers may disagree with it, so at least K + 1 agree.
  DecodeOutcome out;
  out.coefficients = corrected * plan->pinv.transpose();
  out.verified = true;
  out.wrong_peers = bad;
  std::vector<int> answered = kept;
  answered.insert(answered.end(), peeled.begin(), peeled.end());
  std::sort(answered.begin(), answered.end());
  Matrix gen_finite(static_cast<Eigen::Index>(answered.size()) * g, generator_.cols());
  for (size_t i = 0; i < answered.size(); ++i)
    gen_finite.middleRows(static_cast<Eigen::Index>(i) * g, g) =
        generator_.middleRows(answered[i] * g, g);
  const Matrix codeword = out.coefficients * gen_finite.transpose();  // L x F g
  double scale = 0.0;
  const Vector cs = RobustTolerances(codeword, tol, 0, &scale, floor);
  // Kept values agree within tol (g + e_l): RMS over entries at most 2 tol g.
  out.roundoff_bound = 2.0 * tol * std::max(scale, floor) * plan->gain;
  out.deviation_bound = out.roundoff_bound;
  std::vector<int> kept_off(static_cast<size_t>(original.rows()), 0);
  std::vector<int> aside_off(static_cast<size_t>(original.rows()), 0);
  // The least deviation of a peer off, by entry (a peer's: its largest block's).
  Vector smallest = Vector::Constant(original.rows(), internal::kHuge);
  for (size_t i = 0; i < answered.size(); ++i) {
    const int p = answered[i];
    auto& off = std::binary_search(kept.begin(), kept.end(), p) ? kept_off : aside_off;
    const auto pos = std::find(peers.begin(), peers.end(), p) - peers.begin();
    const Matrix dev =
        (original.middleCols(pos * g, g) - codeword.middleCols(static_cast<Eigen::Index>(i) * g, g))
            .cwiseAbs();
    bool wrong = false;
    for (Eigen::Index l = 0; l < dev.rows(); ++l) {
      if ((dev.row(l).array() <= cs(l)).all()) continue;
      wrong = true;
      ++off[static_cast<size_t>(l)];
      const double worst = dev.row(l).maxCoeff();
      if (worst < smallest(l)) smallest(l) = worst;  // NaN: kHuge stays (wrong in any case)
    }
    if (wrong) out.wrong_peers.push_back(p);
  }
  if (Status s = internal::CheckAgreement(kept_off, aside_off, static_cast<int>(kept.size()),
                                          static_cast<int>(answered.size()), k, out.wrong_peers,
                                          &out.one_spare_correction);
      !s.ok()) {
    return s;
  }
  std::sort(out.wrong_peers.begin(), out.wrong_peers.end());
  out.deviation_bound =
      std::max(out.deviation_bound,
               internal::MislocationBound(*mislocation_, t_all,
                                          num_peers() - static_cast<int>(answered.size()), cs,
                                          kept_off, aside_off, smallest));
  return out;
}

}  // namespace polyguard
