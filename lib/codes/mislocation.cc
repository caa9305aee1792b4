#include "lib/codes/mislocation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <Eigen/QR>

#include "lib/codes/decode_kernels.h"

namespace polyguard::internal {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kClimbRounds = 8;

// The gains of a decode from `rest` for the `left_out` rows: from a QR
// (R^-1 Q^T), a fraction of an SVD's cost; infinite when singular to
// working precision.
DropGains GainsOf(const Matrix& rest, const Matrix& left_out, const std::vector<int>& wanted) {
  const Eigen::Index k = rest.cols();
  if (rest.rows() < k) return {kInf, kInf};
  Eigen::HouseholderQR<Matrix> qr(rest);
  const auto diag = qr.matrixQR().diagonal().cwiseAbs();
  if (!(diag.minCoeff() > std::numeric_limits<double>::epsilon() * diag.maxCoeff()))
    return {kInf, kInf};
  const Matrix q = qr.householderQ() * Matrix::Identity(rest.rows(), k);
  const Matrix pinv = qr.matrixQR().topRows(k).triangularView<Eigen::Upper>().solve(q.transpose());
  DropGains g;
  if (wanted.empty()) g.decode = pinv.cwiseAbs().rowwise().sum().maxCoeff();
  for (int w : wanted) g.decode = std::max(g.decode, pinv.row(w).cwiseAbs().sum());
  if (left_out.rows() > 0) g.reach = (left_out * pinv).cwiseAbs().rowwise().sum().maxCoeff();
  if (!std::isfinite(g.decode)) g.decode = kInf;
  if (!std::isfinite(g.reach)) g.reach = kInf;
  return g;
}

}  // namespace

DropGains GainsWithout(const Matrix& rows, int rows_per_peer, const std::vector<int>& wanted,
                       int drop) {
  const int g = rows_per_peer;
  const int r = static_cast<int>(rows.rows()) / g;
  if (drop <= 0) return GainsOf(rows, Matrix(0, rows.cols()), wanted);
  if (drop >= r) return {kInf, kInf};
  auto without = [&](const std::vector<int>& out) {  // ascending
    Matrix rest(static_cast<Eigen::Index>(r - drop) * g, rows.cols());
    Matrix left(static_cast<Eigen::Index>(drop) * g, rows.cols());
    Eigen::Index at = 0, left_at = 0;
    size_t o = 0;
    for (int p = 0; p < r; ++p) {
      const auto block = rows.middleRows(static_cast<Eigen::Index>(p) * g, g);
      if (o < out.size() && out[o] == p) {
        left.middleRows(left_at, g) = block;
        left_at += g;
        ++o;
      } else {
        rest.middleRows(at, g) = block;
        at += g;
      }
    }
    return GainsOf(rest, left, wanted);
  };
  DropGains worst;
  std::vector<int> idx(static_cast<size_t>(drop));
  if (Binomial(r, drop) <= kExhaustiveDropSets) {
    std::iota(idx.begin(), idx.end(), 0);
    do {
      const DropGains gains = without(idx);
      worst.decode = std::max(worst.decode, gains.decode);
      worst.reach = std::max(worst.reach, gains.reach);
    } while (NextCombination(&idx, r) && std::isfinite(worst.decode) && std::isfinite(worst.reach));
    return worst;
  }
  // The splits between the two ends and the runs inside, then from the
  // worst of them for each gain, moves to neighbouring positions.
  std::vector<std::vector<int>> sets;
  for (int front = 0; front <= drop; ++front) {
    for (int i = 0; i < front; ++i) idx[static_cast<size_t>(i)] = i;
    for (int i = front; i < drop; ++i) idx[static_cast<size_t>(i)] = r - drop + i;
    sets.push_back(idx);
  }
  for (int start = 1; start + drop < r; ++start) {
    std::iota(idx.begin(), idx.end(), start);
    sets.push_back(idx);
  }
  std::vector<int> worst_decode, worst_reach;
  for (const std::vector<int>& set : sets) {
    const DropGains gains = without(set);
    if (worst_decode.empty() || gains.decode > worst.decode) {
      worst.decode = gains.decode;
      worst_decode = set;
    }
    if (worst_reach.empty() || gains.reach > worst.reach) {
      worst.reach = gains.reach;
      worst_reach = set;
    }
  }
  // Moves of one left-out peer to a neighbouring position, while one makes
  // the gain worse, at most kClimbRounds times per gain.
  auto climb = [&](std::vector<int> set, double DropGains::*gain) {
    double best = worst.*gain;
    for (int round = 0; round < kClimbRounds && std::isfinite(best); ++round) {
      bool better = false;
      for (size_t i = 0; i < set.size() && !better; ++i) {
        for (int p : {set[i] - 1, set[i] + 1}) {
          if (p < 0 || p >= r || std::binary_search(set.begin(), set.end(), p)) continue;
          std::vector<int> next = set;
          next[i] = p;
          std::sort(next.begin(), next.end());
          const DropGains gains = without(next);
          worst.decode = std::max(worst.decode, gains.decode);
          worst.reach = std::max(worst.reach, gains.reach);
          if (gains.*gain > best) {
            best = gains.*gain;
            set = std::move(next);
            better = true;
            break;
          }
        }
      }
      if (!better) break;
    }
  };
  climb(worst_decode, &DropGains::decode);
  climb(worst_reach, &DropGains::reach);
  worst.decode *= kSearchMargin;
  worst.reach *= kSearchMargin;
  return worst;
}

DropGains MislocationGains::operator()(int drop) const {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t d = static_cast<size_t>(std::max(drop, 0));
  if (gains_.size() <= d) gains_.resize(d + 1);
  if (!gains_[d].first) gains_[d] = {true, GainsWithout(rows_, rows_per_peer_, wanted_, drop)};
  return gains_[d].second;
}

MislocationGains::OffGains MislocationGains::ForOff(int t, int missing, int off) const {
  OffGains g;
  if (t <= 0) return g;  // nothing hides: the plain resolution stands
  g.located = 2.0 * (*this)(missing + t).decode;
  if (off <= 0) {
    g.mislocated = g.located;
    return g;
  }
  const DropGains wider = (*this)(missing + std::min(off, t) + t);
  g.mislocated = 2.0 * wider.decode;
  g.threshold = 1.0 + 2.0 * wider.reach;
  return g;
}

double MislocationBound(const MislocationGains& gains, int t, int missing, const Vector& cs,
                        const std::vector<int>& kept_off, const std::vector<int>& aside_off,
                        const Vector& smallest) {
  const Eigen::Index length = cs.size();
  if (length == 0) return 0.0;
  EntryGains entry_gain(gains, t, missing);
  Vector dev(length);
  for (Eigen::Index l = 0; l < length; ++l) {
    const int off = kept_off[static_cast<size_t>(l)] + aside_off[static_cast<size_t>(l)];
    dev(l) = cs(l) * entry_gain(off, smallest(l), cs(l));
  }
  // stableNorm: tolerances near 1e-200 (the slow path's frame beside absurd
  // results) have squares that underflow to 0 (adversary s20 F2).
  return dev.stableNorm() / std::sqrt(double(length));
}

}  // namespace polyguard::internal
