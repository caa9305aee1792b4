#include "lib/codes/decode_kernels.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <random>

#include <Eigen/QR>
#include <Eigen/SVD>

#include "polyguard/base/check.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"

namespace polyguard::internal {
namespace {
// Four doubles as one value (GCC/Clang vector extension): the kernel below
// is written in it so that every target compiles the same broadcast-and-FMA
// form (left to the vectoriser, small changes to the loop made it shuffle
// across w and run twice as slowly). Loads and stores go through memcpy
// (no alignment assumed); no function takes or returns one (an ABI warning
// without AVX).
typedef double Lanes4 __attribute__((vector_size(4 * sizeof(double))));

// out(l, w0 + w) = sum_r cols[r][l] * m(r, w0 + w) for w < WB: 4 entries at a
// time with WB accumulators each, kept in registers. Also adds the sum of
// every value's square to *sumsq when given.
// With probes > 0 (w0 = 0 then) the first `probes` columns are not stored:
// zsq[l] gets the sum of their squares, and column w >= probes goes to out
// column w - probes. *out_sum, when given, gets the sum of every output
// (finite exactly when every output is, barring an overflow of the sum).
// entry_sq[l], when given, gets the sum over r of cols[r][l]^2. With rest,
// stored column o >= out_cols goes to rest column o - out_cols instead.
// Columns of out are out_stride apart, those of rest rest_stride (0: length).
template <int WB>
void FusedBlock(const double* const* cols, int r_count, int64_t length, const double* m, int m_cols,
                int w0, double* out, double* sumsq, int probes = 0, double* zsq = nullptr,
                double* out_sum = nullptr, double* entry_sq = nullptr, int out_cols = 0,
                double* rest = nullptr, int64_t out_stride = 0, int64_t rest_stride = 0) {
  if (out_stride == 0) out_stride = length;
  if (rest_stride == 0) rest_stride = length;
  // Where stored column o (w0 + w - probes) goes.
  auto column = [&](int o) {
    return rest != nullptr && o >= out_cols ? rest + (o - out_cols) * rest_stride
                                            : out + o * out_stride;
  };
  constexpr int kLanes = 4;
  Lanes4 sq = {}, total = {};
  int64_t l0 = 0;
  for (; l0 + kLanes <= length; l0 += kLanes) {
    Lanes4 acc[WB];
    for (int w = 0; w < WB; ++w) acc[w] = Lanes4{};
    Lanes4 esq = {};
    for (int r = 0; r < r_count; ++r) {
      Lanes4 y;
      std::memcpy(&y, cols[r] + l0, sizeof y);
      const double* mr = m + static_cast<int64_t>(r) * m_cols + w0;
      for (int w = 0; w < WB; ++w) acc[w] += y * mr[w];
      esq += y * y;
    }
    sq += esq;
    if (entry_sq != nullptr) std::memcpy(entry_sq + l0, &esq, sizeof esq);
    if (probes > 0) {
      Lanes4 z = {};
      for (int w = 0; w < WB; ++w) {
        if (w < probes)
          z += acc[w] * acc[w];
        else
          std::memcpy(column(w - probes) + l0, &acc[w], sizeof acc[w]);
      }
      std::memcpy(zsq + l0, &z, sizeof z);
    } else {
      for (int w = 0; w < WB; ++w) std::memcpy(column(w0 + w) + l0, &acc[w], sizeof acc[w]);
    }
    if (out_sum != nullptr)
      for (int w = 0; w < WB; ++w) total += acc[w];
  }
  double sq_tail = 0.0, total_tail = 0.0;
  for (; l0 < length; ++l0) {
    double z = 0.0;
    for (int w = 0; w < WB; ++w) {
      double a = 0.0;
      for (int r = 0; r < r_count; ++r)
        a += cols[r][l0] * m[static_cast<int64_t>(r) * m_cols + w0 + w];
      total_tail += a;
      if (w < probes) {
        z += a * a;
      } else {
        column(w0 + w - probes)[l0] = a;
      }
    }
    if (probes > 0) zsq[l0] = z;
    double esq = 0.0;
    for (int r = 0; r < r_count; ++r) esq += cols[r][l0] * cols[r][l0];
    sq_tail += esq;
    if (entry_sq != nullptr) entry_sq[l0] = esq;
  }
  if (sumsq != nullptr) *sumsq += (sq[0] + sq[1]) + (sq[2] + sq[3]) + sq_tail;
  if (out_sum != nullptr) *out_sum += (total[0] + total[1]) + (total[2] + total[3]) + total_tail;
}

// FusedBlock<wb> for a width known only at run time (1..12).
void FusedBlockOfWidth(int wb, const double* const* cols, int r_count, int64_t length,
                       const double* m, int m_cols, int w0, double* out, double* sumsq,
                       int probes = 0, double* zsq = nullptr, double* out_sum = nullptr,
                       double* entry_sq = nullptr, int out_cols = 0, double* rest = nullptr,
                       int64_t out_stride = 0, int64_t rest_stride = 0) {
  switch (wb) {
#define POLYGUARD_FUSED_CASE(N)                                                           \
  case N:                                                                                 \
    FusedBlock<N>(cols, r_count, length, m, m_cols, w0, out, sumsq, probes, zsq, out_sum, \
                  entry_sq, out_cols, rest, out_stride, rest_stride);                     \
    break;
    POLYGUARD_FUSED_CASE(1)
    POLYGUARD_FUSED_CASE(2)
    POLYGUARD_FUSED_CASE(3)
    POLYGUARD_FUSED_CASE(4)
    POLYGUARD_FUSED_CASE(5)
    POLYGUARD_FUSED_CASE(6)
    POLYGUARD_FUSED_CASE(7)
    POLYGUARD_FUSED_CASE(8)
    POLYGUARD_FUSED_CASE(9)
    POLYGUARD_FUSED_CASE(10)
    POLYGUARD_FUSED_CASE(11)
    POLYGUARD_FUSED_CASE(12)
#undef POLYGUARD_FUSED_CASE
  }
}

}  // namespace

std::string PeerList(const std::vector<int>& peers) {
  std::vector<int> sorted = peers;
  std::sort(sorted.begin(), sorted.end());
  return FormatPeers(sorted);
}

double LowerMedian(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const size_t mid = (v.size() - 1) / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
  return v[mid];
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
  return v[mid];
}

double EntryTolerance(const std::vector<const double*>& cols, int64_t l, double tol, double rms) {
  double sq = 0.0;
  for (const double* c : cols) sq += c[l] * c[l];
  const double n = double(std::max<size_t>(cols.size(), 1));
  return std::max(tol * (rms + std::sqrt(sq / n)), DBL_MIN);
}

bool CheckSetAsideChunk(const ChunkOfCheck& chunk, int kept, double tol, double rms, int64_t l0,
                        int64_t n, const std::vector<const double*>& given, double* cs,
                        int64_t* off, double* smallest, int* wrong, double* word_sumsq) {
  POLYGUARD_CHECK(n >= 0 && n <= kSetAsideChunk);
  typedef int64_t Mask4 __attribute__((vector_size(4 * sizeof(int64_t))));
  constexpr int kLanes = 4;
  const double quick = tol * rms, qq = quick * quick;
  const double count = double(std::max(kept, 1));
  // As EntryTolerance, bit for bit: std::sqrt, correctly rounded. (Eigen's
  // vectorised sqrt is not on AVX-512: rsqrt14 and two Newton steps, an ulp
  // off now and then, and NaN for Inf.)
  for (int64_t i = 0; i < n; ++i) {
    cs[i] = std::max(tol * (rms + std::sqrt(chunk.entry_sq[i] / count)), DBL_MIN);
  }
  double limit[kSetAsideChunk];
  const Lanes4 vq = {qq, qq, qq, qq}, vquick = {quick, quick, quick, quick};
  const Lanes4 vmax = {DBL_MAX, DBL_MAX, DBL_MAX, DBL_MAX};
  Mask4 failed = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    Lanes4 z, c;
    std::memcpy(&z, chunk.zsq + i, sizeof z);
    std::memcpy(&c, cs + i, sizeof c);
    // Comparisons are false for NaN: !(a <= b) holds for it.
    const Mask4 loose = ~(z <= vq);
    const Mask4 beyond = ~(z <= c * c) | ~(z <= vmax) | ~(c <= vmax);
    failed |= loose & beyond;
    const Lanes4 lim = vquick < c ? c : vquick;  // std::max(quick, c)
    std::memcpy(limit + i, &lim, sizeof lim);
  }
  int tail_failed = 0;
  for (; i < n; ++i) {
    const double z = chunk.zsq[i], c = cs[i];
    const bool loose = !(z <= qq);
    const bool beyond = !(z <= c * c) || !(z <= DBL_MAX) || !(c <= DBL_MAX);
    tail_failed |= static_cast<int>(loose && beyond);
    limit[i] = std::max(quick, c);
  }
  if (tail_failed || (failed[0] | failed[1] | failed[2] | failed[3])) return false;
  std::fill(off, off + n, 0);
  std::fill(smallest, smallest + n, kHuge);
  for (size_t q = 0; q < given.size(); ++q) {
    const double* g = given[q] + l0;
    const double* d = chunk.rest + static_cast<int64_t>(q) * chunk.rest_stride;
    Mask4 any = {};
    Lanes4 sq = {};
    for (i = 0; i + kLanes <= n; i += kLanes) {
      Lanes4 gv, dv, lim, small;
      Mask4 count_off;
      std::memcpy(&gv, g + i, sizeof gv);
      std::memcpy(&dv, d + i, sizeof dv);
      std::memcpy(&lim, limit + i, sizeof lim);
      std::memcpy(&small, smallest + i, sizeof small);
      std::memcpy(&count_off, off + i, sizeof count_off);
      Lanes4 dev = gv - dv;
      dev = dev < 0.0 ? -dev : dev;
      const Mask4 is_off = ~(dev <= lim);  // NaN: off, and smallest stays
      count_off -= is_off;                 // a true mask is -1
      small = (is_off & (dev < small)) != 0 ? dev : small;
      any |= is_off;
      sq += dv * dv;
      std::memcpy(off + i, &count_off, sizeof count_off);
      std::memcpy(smallest + i, &small, sizeof small);
    }
    double sq_tail = 0.0;
    bool any_tail = false;
    for (; i < n; ++i) {
      const double dev = std::abs(g[i] - d[i]);
      const bool is_off = !(dev <= limit[i]);
      off[i] += is_off;
      any_tail = any_tail || is_off;
      if (is_off && dev < smallest[i]) smallest[i] = dev;
      sq_tail += d[i] * d[i];
    }
    if (any_tail || (any[0] | any[1] | any[2] | any[3])) wrong[q] = 1;
    *word_sumsq += (sq[0] + sq[1]) + (sq[2] + sq[3]) + sq_tail;
  }
  return true;
}

namespace {
void Add(PeerSplit* split, bool aside, int peer, const double* const* cols, int g) {
  (aside ? split->aside : split->kept).push_back(peer);
  auto& to = aside ? split->aside_cols : split->kept_cols;
  to.insert(to.end(), cols, cols + g);
}
}  // namespace

PeerSplit SplitAt(const std::vector<int>& peers, const std::vector<const double*>& cols, int g,
                  const std::vector<int>& aside) {
  PeerSplit split;
  for (size_t j = 0, a = 0; j < peers.size(); ++j) {
    const bool set_aside = a < aside.size() && aside[a] == static_cast<int>(j);
    Add(&split, set_aside, peers[j], cols.data() + j * size_t(g), g);
    if (set_aside) ++a;
  }
  return split;
}

PeerSplit SplitUntame(const std::vector<int>& peers, const std::vector<const double*>& cols, int g,
                      int64_t length) {
  PeerSplit split;
  // Absurd relative to the results' typical magnitude: an absolute cutoff
  // set aside every honest result of data beyond 1e150, and K + 1 liars
  // sending zeros then decoded as verified.
  const double huge = std::ldexp(kHuge, TypicalExponent(cols, length, g));
  for (size_t j = 0; j < peers.size(); ++j) {
    const double* const* mine = cols.data() + j * size_t(g);
    bool tame = true;
    for (int b = 0; b < g && tame; ++b)
      tame = (Eigen::Map<const Vector>(mine[b], length).array().abs() <= huge).all();
    Add(&split, !tame, peers[j], mine, g);
    if (tame) continue;
    bool finite = true;
    for (int b = 0; b < g && finite; ++b)
      finite = AllFinite(Eigen::Map<const Vector>(mine[b], length));
    split.finite_aside += finite ? 1 : 0;
  }
  return split;
}

bool UntameWithinRadius(const PeerSplit& untame, size_t wrong_kept, int total, int k) {
  const int64_t errors = untame.finite_aside + static_cast<int64_t>(wrong_kept);
  const int64_t erasures = static_cast<int64_t>(untame.aside.size()) - untame.finite_aside;
  return 2 * errors + erasures <= total - k;
}

double ScaleWithFloor(double g, double floor) {
  return floor > g && std::isfinite(floor) ? floor : g;
}

Vector RobustTolerances(const Matrix& yt, double tol, int skip, double* global, double floor) {
  const Eigen::Index l = yt.rows(), c = yt.cols();
  Vector e = Vector::Zero(l);
  // e_l: the m-th largest |value| of entry l (the (skip + 1)-th, or the
  // smallest when there are fewer values).
  const Eigen::Index m = std::clamp<Eigen::Index>(skip + 1, 1, std::max<Eigen::Index>(c, 1));
  if (c > 0 && m <= 8) {
    // The m largest of every entry, kept in order column by column: m
    // max/min passes per column over all entries at once (a per-entry
    // selection reads each entry's values with a stride of L).
    Eigen::ArrayXXd top = Eigen::ArrayXXd::Zero(l, m);
    Eigen::ArrayXd v(l), hi(l);
    for (Eigen::Index j = 0; j < c; ++j) {
      v = yt.col(j).array().abs();
      for (Eigen::Index k = 0; k < m; ++k) {
        hi = top.col(k).max(v);
        v = top.col(k).min(v);
        top.col(k) = hi;
      }
    }
    e = top.col(m - 1).matrix();
  } else if (c > 0) {
    const RowMajorMatrix a = yt.cwiseAbs();  // each entry's values side by side
    std::vector<double> v(static_cast<size_t>(c));
    for (Eigen::Index i = 0; i < l; ++i) {
      std::copy(a.row(i).data(), a.row(i).data() + c, v.begin());
      std::nth_element(v.begin(), v.begin() + (c - m), v.end());
      e(i) = v[static_cast<size_t>(c - m)];
    }
  }
  // stableNorm: the slow path's frame can put honest values near 1e-200 (when
  // most results are absurdly large), where their squares underflow to 0
  // and a verified decode reported a deviation_bound of 0 (adversary s20 F2).
  const double g =
      ScaleWithFloor(l > 0 ? e.stableNorm() / std::sqrt(static_cast<double>(l)) : 0.0, floor);
  if (global) *global = g;
  return ((e.array() + g) * tol).max(DBL_MIN).matrix();
}

Matrix SyndromesInTolerances(const Matrix& raw, const Vector& cs) {
  Matrix st = raw;
  st.array().colwise() /= cs.array();
  const Vector largest = st.cwiseAbs().rowwise().maxCoeff();
  if ((largest.array() <= kLargeSyndrome).all()) return st;
  for (Eigen::Index i = 0; i < st.rows(); ++i) {
    if (largest(i) <= kLargeSyndrome) continue;
    const double m = raw.row(i).cwiseAbs().maxCoeff();
    if (m > 0.0 && std::isfinite(m)) st.row(i) = raw.row(i) * (kLargeSyndrome / m);
  }
  return st;
}

Status CheckAgreement(const std::vector<int>& kept_off, const std::vector<int>& aside_off, int kept,
                      int finite, int k, const std::vector<int>& suspects, bool* one_spare) {
  const int t_kept = (kept - k) / 2, t_all = (finite - k) / 2;
  *one_spare = false;
  for (size_t l = 0; l < kept_off.size(); ++l) {
    const int off = kept_off[l] + aside_off[l];
    if (off > 0 && finite - off - k <= 1) *one_spare = true;
    if (kept_off[l] <= t_kept || off <= t_all) continue;
    return DataLossError("decode: the decoded product does not verify (entry " + std::to_string(l) +
                         ": " + std::to_string(kept_off[l]) + " of " + std::to_string(kept) +
                         " kept and " + std::to_string(aside_off[l]) + " of " +
                         std::to_string(finite - kept) +
                         " set-aside results disagree); suspect peers: " + PeerList(suspects));
  }
  return Status::Ok();
}

int TypicalExponent(const Matrix& m, int g) {
  std::vector<const double*> cols;
  for (Eigen::Index j = 0; j < m.cols(); ++j) cols.push_back(m.col(j).data());
  return TypicalExponent(cols, m.rows(), g);
}

int TypicalExponent(const std::vector<const double*>& cols, int64_t length, int g) {
  // The median over peers (g columns each) of each peer's median nonzero
  // |value|: a median over all values let a minority of peers sending dense
  // tiny (or huge) code words, against honest results that are mostly zero,
  // set the scale, and then every honest value looked absurd; so did a
  // median over columns, where an honest peer's zero blocks dropped out.
  // Each column is sampled evenly (about 4096 values in all, at least 64 a
  // column): only the exponent's rough size matters (scaling by a power of
  // two is exact), and a full selection cost a pass over every result on
  // each slow decode.
  const int64_t per_column =
      std::max<int64_t>(64, 4096 / std::max<int64_t>(1, int64_t(cols.size())));
  const int64_t stride = std::max<int64_t>(1, length / per_column);
  std::vector<double> medians, v;
  for (size_t first = 0; first < cols.size(); first += size_t(g)) {
    v.clear();
    for (size_t c = first; c < std::min(cols.size(), first + size_t(g)); ++c) {
      for (int64_t i = 0; i < length; i += stride) {
        const double a = std::abs(cols[c][i]);
        if (a > 0.0 && std::isfinite(a)) v.push_back(a);
      }
    }
    if (!v.empty()) medians.push_back(Median(v));
  }
  if (medians.empty()) return 0;
  return std::clamp(std::ilogb(Median(std::move(medians))), -1000, 1000);
}

int64_t Binomial(int n, int k) {
  if (k < 0 || k > n) return 0;
  double b = 1.0;
  for (int i = 1; i <= k; ++i) b = b * (n - k + i) / i;
  // Saturated: callers compare it with budgets, and llround of a double
  // beyond an int64 is unspecified (C(100, 40) is 1.4e28).
  if (!(b < 9.2e18)) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(std::llround(b));
}

bool NextCombination(std::vector<int>* idx, int n) {
  const int t = static_cast<int>(idx->size());
  int i = t - 1;
  while (i >= 0 && (*idx)[static_cast<size_t>(i)] == n - t + i) --i;
  if (i < 0) return false;
  ++(*idx)[static_cast<size_t>(i)];
  for (int j = i + 1; j < t; ++j)
    (*idx)[static_cast<size_t>(j)] = (*idx)[static_cast<size_t>(j - 1)] + 1;
  return true;
}

Status BudgetSpentError(int64_t budget, int64_t entries_done, int64_t entries,
                        const std::vector<int>& suspects) {
  return DataLossError("decode: the entry-by-entry search spent its budget of " +
                       std::to_string(budget) + " fits after " + std::to_string(entries_done) +
                       " of " + std::to_string(entries) +
                       " inconsistent entries; suspect peers: " + PeerList(suspects));
}

std::vector<int> LocatorGuess(const Matrix& basis, const Vector& y, int k, int t) {
  const Eigen::Index r = y.size();
  const double scale = y.cwiseAbs().maxCoeff();
  if (t <= 0 || !std::isfinite(scale) || !(scale > 0.0) || basis.rows() != r ||
      basis.cols() < k + t || r < k + 2 * t)
    return {};
  const Vector ys = y / scale;
  // From t down: with fewer errors than the degree the null space has more
  // dimensions (no gap); with more, there is no null vector (no gap).
  for (int d = t; d >= 1; --d) {
    // Unknowns: Q's K + d Chebyshev coefficients, then E's d + 1.
    Matrix m(r, k + 2 * d + 1);
    m.leftCols(k + d) = basis.leftCols(k + d);
    for (int j = 0; j <= d; ++j) m.col(k + d + j) = -ys.cwiseProduct(basis.col(j));
    const Eigen::JacobiSVD<Matrix> svd(m, Eigen::ComputeFullV);
    // With R = K + 2d the last singular value is an implicit 0.
    const Vector& sv = svd.singularValues();
    const Eigen::Index n = m.cols();
    if (sv.size() < n - 1) continue;
    const double last = sv.size() < n ? 0.0 : sv(n - 1), next = sv(n - 2);
    if (!(next >= kLocatorGap * last && next >= 1e3 * DBL_EPSILON * sv(0))) continue;
    const Vector e = basis.leftCols(d + 1) * svd.matrixV().col(n - 1).tail(d + 1);
    std::vector<int> order(static_cast<size_t>(r));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + d, order.end(),
                      [&](int a, int b) { return std::abs(e(a)) < std::abs(e(b)); });
    order.resize(static_cast<size_t>(d));
    std::sort(order.begin(), order.end());
    return order;
  }
  return {};
}

EntryFit CorrectEntry(const Matrix& basis, int g, Eigen::Ref<Vector> y, const EntrySearch& search,
                      int64_t* budget, std::vector<int>* wrong, double* taken_ratio) {
  const int t_max = search.t_max;
  const double tol = search.tol, global = search.global, clean_share = search.clean_share;
  const int64_t max_sets = search.max_sets;
  const int r = static_cast<int>(basis.rows()) / g;
  const int k = static_cast<int>(basis.cols());
  // The code word fitted to the values outside a set of peers, and how well
  // the values it was fitted to agree with it.
  struct Fit {
    std::vector<int> aside;   // sorted positions
    Vector pred;              // the code word at every row
    double limit = 0.0;       // the tolerance of its values
    double ratio = INFINITY;  // the largest residual of the kept values over the limit
  };
  auto fit = [&](const std::vector<int>& aside) {
    Fit f;
    f.aside = aside;
    const int rest = (r - static_cast<int>(aside.size())) * g;
    if (rest < k) return f;
    Matrix b(rest, k);
    Vector yr(rest);
    size_t a = 0;
    Eigen::Index row = 0;
    for (int p = 0; p < r; ++p) {
      if (a < aside.size() && aside[a] == p) {
        ++a;
        continue;
      }
      b.middleRows(row, g) = basis.middleRows(static_cast<Eigen::Index>(p) * g, g);
      yr.segment(row, g) = y.segment(static_cast<Eigen::Index>(p) * g, g);
      row += g;
    }
    const Vector coef = b.colPivHouseholderQr().solve(yr);
    f.pred = basis * coef;
    f.limit = std::max(tol * (global + f.pred.cwiseAbs().maxCoeff()), DBL_MIN);
    const double worst = (yr - b * coef).cwiseAbs().maxCoeff();
    if (worst <= f.limit) f.ratio = worst / f.limit;  // NaN stays INFINITY
    return f;
  };
  // Takes a fit: the set-aside values become the code word's, and those off
  // it are wrong.
  auto take = [&](const Fit& f, EntryFit how) {
    for (int p : f.aside) {
      const auto seg = y.segment(static_cast<Eigen::Index>(p) * g, g);
      const auto want = f.pred.segment(static_cast<Eigen::Index>(p) * g, g);
      if (!((seg - want).cwiseAbs().maxCoeff() <= f.limit)) wrong->push_back(p);
    }
    for (int p : f.aside)
      y.segment(static_cast<Eigen::Index>(p) * g, g) =
          f.pred.segment(static_cast<Eigen::Index>(p) * g, g);
    if (taken_ratio) *taken_ratio = f.ratio;
    return how;
  };
  // The best-fitting set that passed above clean_share (the header says why
  // the search goes on past it).
  std::optional<Fit> best;
  auto clean = [&](const std::vector<int>& aside) {
    Fit f = fit(aside);
    if (!(f.ratio <= 1.0)) return false;
    if (f.ratio <= clean_share) {
      take(f, EntryFit::kClean);
      return true;
    }
    if (!search.candidates) return false;
    // Fewer set aside first: with noise near the tolerance no fit is clean,
    // and setting aside more values always fits better (adversary s15: two
    // honest peers set aside instead of the one wrong value).
    if (!best || f.aside.size() < best->aside.size() ||
        (f.aside.size() == best->aside.size() && f.ratio < best->ratio))
      best = std::move(f);
    return false;
  };
  auto settle = [&] { return best ? take(*best, EntryFit::kWithinTolerance) : EntryFit::kNone; };
  // A guess of the error locator is taken only at the decode's noise: where
  // the code is ill-conditioned another set of t peers also fits within
  // clean_share, and the locator may name it (identical errors at 4 edge
  // peers of P = 31, K = 23: verified, 644 times deviation_bound off);
  // a guess that fits only so is left to the search below.
  auto clean_guess = [&](const std::vector<int>& aside) {
    Fit f = fit(aside);
    if (!(f.ratio <= std::min(search.clean_share, search.guess_share))) return false;
    take(f, EntryFit::kClean);
    return true;
  };
  int64_t tried = 0;
  // One fit more, if the decode's budget allows it.
  auto spend = [&] {
    if (*budget <= 0) return false;
    --*budget;
    ++tried;
    return true;
  };
  // Greedy first: set aside the peer farthest from the rest's least-squares
  // fit, refit, and so on: t fits find a few large errors, or several of
  // very different sizes, far sooner than trying every set.
  {
    std::vector<int> aside;
    for (int step = 0; step < t_max; ++step) {
      const int rest = (r - static_cast<int>(aside.size())) * g;
      if (rest <= k) break;
      Matrix b(rest, k);
      Vector yr(rest);
      std::vector<int> rest_peers;
      Eigen::Index row = 0;
      for (int p = 0; p < r; ++p) {
        if (std::find(aside.begin(), aside.end(), p) != aside.end()) continue;
        b.middleRows(row, g) = basis.middleRows(static_cast<Eigen::Index>(p) * g, g);
        yr.segment(row, g) = y.segment(static_cast<Eigen::Index>(p) * g, g);
        rest_peers.push_back(p);
        row += g;
      }
      const Vector res = (yr - b * b.colPivHouseholderQr().solve(yr)).cwiseAbs();
      int worst = -1;
      double worst_res = -1.0;
      for (size_t i = 0; i < rest_peers.size(); ++i) {
        const double v = res.segment(static_cast<Eigen::Index>(i) * g, g).maxCoeff();
        if (v > worst_res) worst_res = v, worst = rest_peers[i];
      }
      if (worst < 0) break;
      aside.push_back(worst);
      std::vector<int> sorted = aside;
      std::sort(sorted.begin(), sorted.end());
      if (!spend()) return settle();
      if (clean(sorted)) return EntryFit::kClean;
    }
  }
  // The error locator's guess; then, with its peers as erasures, a second
  // guess among the rest (small errors beside errors 1e5 times larger fall
  // below the first solve's roundoff), and the peers of both that are off
  // the fit without them all.
  if (search.locator_basis != nullptr && g == 1 && t_max > 0) {
    const Matrix& lb = *search.locator_basis;
    const std::vector<int> guess = LocatorGuess(lb, y, k, t_max);
    if (!guess.empty()) {
      if (!spend()) return settle();
      if (clean_guess(guess)) return EntryFit::kClean;
      std::vector<int> rest;
      for (int p = 0; p < r; ++p)
        if (!std::binary_search(guess.begin(), guess.end(), p)) rest.push_back(p);
      const int t2 = (static_cast<int>(rest.size()) - k) / 2;
      std::vector<int> both = guess;
      if (t2 > 0) {
        Matrix sub_basis(static_cast<Eigen::Index>(rest.size()), k + t2);
        Vector sub_y(static_cast<Eigen::Index>(rest.size()));
        for (size_t i = 0; i < rest.size(); ++i) {
          sub_basis.row(static_cast<Eigen::Index>(i)) = lb.row(rest[i]).head(k + t2);
          sub_y(static_cast<Eigen::Index>(i)) = y(rest[i]);
        }
        for (int i : LocatorGuess(sub_basis, sub_y, k, t2)) both.push_back(rest[size_t(i)]);
        std::sort(both.begin(), both.end());
      }
      if (static_cast<int>(r - both.size()) >= k && spend()) {
        const Fit all = fit(both);
        std::vector<int> off;
        for (int p : both)
          if (!(std::abs(y(p) - all.pred(p)) <= all.limit)) off.push_back(p);
        if (!off.empty() && static_cast<int>(off.size()) <= t_max && off != guess && spend() &&
            clean_guess(off))
          return EntryFit::kClean;
      }
    }
  }
  for (int t = 0; t <= t_max; ++t) {
    // Larger sets than a candidate's would not be taken over it.
    if (best && t > static_cast<int>(best->aside.size())) return settle();
    if (Binomial(r, t) > max_sets - tried) break;
    std::vector<int> idx(static_cast<size_t>(t));
    for (int i = 0; i < t; ++i) idx[static_cast<size_t>(i)] = i;
    do {
      if (!spend()) return settle();
      if (clean(idx)) return EntryFit::kClean;
    } while (NextCombination(&idx, r));
    if (t == t_max) return settle();  // every set tried
  }
  // Too many sets: random samples of just enough peers to fit, each taken
  // when the peers agreeing with its code word leave at most t_max aside
  // (with w wrong peers a sample is all honest with probability about
  // ((r - w) / r)^needed). The generator is seeded by the values, so that
  // equal inputs decode alike at every peer.
  const int needed = (k + g - 1) / g;
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    uint64_t bits;
    const double v = y(i);
    std::memcpy(&bits, &v, sizeof bits);
    seed = (seed ^ bits) * 0x100000001b3ull;
  }
  std::mt19937_64 gen(seed);
  std::vector<int> order(static_cast<size_t>(r));
  std::iota(order.begin(), order.end(), 0);
  while (tried < 2 * max_sets && spend()) {
    for (int i = 0; i < needed; ++i) {
      std::uniform_int_distribution<int> pick(i, r - 1);
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(pick(gen))]);
    }
    Matrix b(static_cast<Eigen::Index>(needed) * g, k);
    Vector ys(static_cast<Eigen::Index>(needed) * g);
    for (int i = 0; i < needed; ++i) {
      const Eigen::Index p = order[static_cast<size_t>(i)];
      b.middleRows(static_cast<Eigen::Index>(i) * g, g) = basis.middleRows(p * g, g);
      ys.segment(static_cast<Eigen::Index>(i) * g, g) = y.segment(p * g, g);
    }
    const Vector pred = basis * b.colPivHouseholderQr().solve(ys);
    const double limit = tol * (global + pred.cwiseAbs().maxCoeff());
    std::vector<int> aside;
    for (int p = 0; p < r && static_cast<int>(aside.size()) <= t_max; ++p) {
      const auto seg = y.segment(static_cast<Eigen::Index>(p) * g, g);
      const auto want = pred.segment(static_cast<Eigen::Index>(p) * g, g);
      if (!((seg - want).cwiseAbs().maxCoeff() <= limit)) aside.push_back(p);
    }
    const size_t most = best ? best->aside.size() : static_cast<size_t>(t_max);
    if (aside.size() <= most && clean(aside)) return EntryFit::kClean;
  }
  return settle();
}

EntriesOutcome CorrectEntries(const std::vector<EntryTry>& tries, int g, int k, int64_t length,
                              const std::vector<Eigen::Index>& rows,
                              const std::function<Vector(size_t, Eigen::Index)>& values,
                              const std::function<void(size_t, Eigen::Index, const Vector&)>& write,
                              EntrySearch search, int64_t* budget) {
  EntriesOutcome out;
  auto t_max_of = [&](size_t i) { return (static_cast<int>(tries[i].basis.rows()) / g - k) / 2; };
  // The search of try i.
  auto search_of = [&](size_t i, EntrySearch s) {
    s.t_max = t_max_of(i);
    s.locator_basis = tries[i].locator.size() > 0 ? &tries[i].locator : nullptr;
    return s;
  };
  struct Taken {
    size_t try_index = 0;
    double ratio = INFINITY;  // what the fit left, over its tolerance
  };
  std::vector<Taken> taken(rows.size());
  std::vector<double> residuals;
  std::vector<int> unused;
  // The consistent entries' own residuals (nothing set aside), evenly spaced.
  {
    EntrySearch plain = search;
    plain.t_max = 0;
    plain.locator_basis = nullptr;
    const int64_t stride = std::max<int64_t>(1, length / kNoiseSamples);
    int sampled = 0;
    for (int64_t l = 0; l < length && sampled < kNoiseSamples; l += stride) {
      if (std::binary_search(rows.begin(), rows.end(), static_cast<Eigen::Index>(l))) continue;
      Vector y = values(0, static_cast<Eigen::Index>(l));
      double ratio = INFINITY;
      if (CorrectEntry(tries[0].basis, g, y, plain, budget, &unused, &ratio) != EntryFit::kNone)
        residuals.push_back(ratio);
      ++sampled;
    }
  }
  // Below this a fit is at the roundoff of its own least squares.
  const double fit_roundoff = DBL_EPSILON / search.tol;
  // The consistent entries' noise, when there are enough of them: errors
  // cannot raise it (adversary s17: 36 entries of 4,096 mimicking an honest
  // peer made the median over the corrected entries theirs).
  const bool measured = residuals.size() >= kNoiseSamples / 4;
  const double clean_noise = measured ? std::max(LowerMedian(residuals), fit_roundoff) : 0.0;
  // The error locator's guesses are taken within kEntrySeparation times it,
  // and never above an eighth of clean_share: with noise near the
  // tolerance a wrong guess that leaves an edge peer barely checked passes
  // as well as the true set (adversary s18: float32 settings, noise of 0.1
  // of the tolerance, 4 errors at edge peers of P = 26, K = 18: an honest
  // peer named, 9,420 times deviation_bound off), and the set search is
  // left to decide as before.
  search.guess_share = std::min(kEntrySeparation * (measured ? clean_noise : fit_roundoff),
                                search.clean_share / kEntrySeparation);
  for (size_t di = 0; di < rows.size(); ++di) {
    const Eigen::Index row = rows[di];
    std::optional<std::pair<Taken, Vector>> candidate;
    bool done = false;
    for (size_t ti = 0; ti < tries.size() && !done; ++ti) {
      Vector y = values(ti, row);
      double ratio = INFINITY;
      const EntryFit fit =
          CorrectEntry(tries[ti].basis, g, y, search_of(ti, search), budget, &unused, &ratio);
      if (fit == EntryFit::kClean) {
        write(ti, row, y);
        taken[di] = {ti, ratio};
        done = true;
      } else if (fit == EntryFit::kWithinTolerance && !candidate) {
        candidate.emplace(Taken{ti, ratio}, std::move(y));
      }
    }
    if (!done && candidate) {
      write(candidate->first.try_index, row, candidate->second);
      taken[di] = candidate->first;
      done = true;
    }
    if (!done) {
      out.outcome = *budget <= 0 ? EntriesOutcome::kBudgetSpent : EntriesOutcome::kBeyond;
      out.done = static_cast<int64_t>(di);
      out.row = row;
      return out;
    }
    residuals.push_back(taken[di].ratio);
  }
  if (residuals.empty()) return out;
  const double noise = measured ? clean_noise : std::max(LowerMedian(residuals), fit_roundoff);
  for (size_t di = 0; di < rows.size() && *budget > 0; ++di) {
    const Taken& first = taken[di];
    if (!(first.ratio > kEntrySeparation * noise)) continue;
    EntrySearch again = search;
    // Relative to the first fit only: the true set's fit carries the
    // entry's own roundoff, which can be above the decode's typical
    // (adversary s17: one honest value 0.01 of the tolerance off kept it).
    again.clean_share = std::min(first.ratio / kEntrySeparation, search.clean_share);
    again.candidates = false;
    // Every result first: the peers peeled may be what made the first fit
    // (an honest peer the errors mimic), and with them as erasures too few
    // checks are left for a better fit to mean anything.
    for (size_t ti = tries.size(); ti-- > 0;) {
      Vector y = values(ti, rows[di]);
      if (CorrectEntry(tries[ti].basis, g, y, search_of(ti, again), budget, &unused) ==
          EntryFit::kClean) {
        write(ti, rows[di], y);
        break;
      }
    }
  }
  return out;
}

// out (length x m_cols, col-major) = [cols] * m, in one pass over the results.
void FusedProduct(const std::vector<const double*>& cols, int64_t length, const RowMajorMatrix& m,
                  Matrix* out, double* sumsq) {
  const int r_count = static_cast<int>(cols.size());
  const int w_total = static_cast<int>(m.cols());
  out->resize(length, w_total);
  if (sumsq != nullptr) *sumsq = 0.0;
  for (int w0 = 0; w0 < w_total;) {
    const int wb = std::min(w_total - w0, 12);
    double* squares = w0 == 0 ? sumsq : nullptr;  // once per value
    FusedBlockOfWidth(wb, cols.data(), r_count, length, m.data(), w_total, w0, out->data(),
                      squares);
    w0 += wb;
  }
}

bool FusedCheck(const std::vector<const double*>& cols, int64_t length, const RowMajorMatrix& m,
                int probes, Vector* zsq, Matrix* wanted, double* sumsq, int wanted_cols,
                Matrix* rest, Vector* entry_sq) {
  const int r_count = static_cast<int>(cols.size());
  const int w_total = static_cast<int>(m.cols());
  const int stored = w_total - probes;
  POLYGUARD_CHECK(probes >= 0 && probes <= w_total && w_total <= kFusedCheckColumns);
  if (wanted_cols < 0 || rest == nullptr) wanted_cols = stored;
  POLYGUARD_CHECK(wanted_cols <= stored);
  zsq->resize(length);
  if (probes == 0) zsq->setZero();
  wanted->resize(length, wanted_cols);
  if (rest != nullptr) rest->resize(length, stored - wanted_cols);
  if (entry_sq != nullptr) entry_sq->resize(length);
  *sumsq = 0.0;
  double out_sum = 0.0;
  FusedBlockOfWidth(w_total, cols.data(), r_count, length, m.data(), w_total, 0, wanted->data(),
                    sumsq, probes, zsq->data(), &out_sum,
                    entry_sq != nullptr ? entry_sq->data() : nullptr, wanted_cols,
                    rest != nullptr ? rest->data() : nullptr);
  return std::isfinite(out_sum);
}

bool FusedCheckChunks(
    const std::vector<const double*>& cols, int64_t length, const RowMajorMatrix& m, int probes,
    int wanted_cols, Matrix* wanted, double* sumsq,
    const std::function<bool(int64_t l0, int64_t n, const ChunkOfCheck& chunk)>& visit) {
  const int r_count = static_cast<int>(cols.size());
  const int w_total = static_cast<int>(m.cols());
  const int rest_cols = w_total - probes - wanted_cols;
  POLYGUARD_CHECK(probes >= 0 && wanted_cols >= 0 && rest_cols >= 0 &&
                  w_total <= kFusedCheckColumns);
  wanted->resize(length, wanted_cols);
  *sumsq = 0.0;
  constexpr int64_t kChunk = kSetAsideChunk;
  alignas(64) double zsq[kChunk], entry_sq[kChunk], rest[kChunk * kFusedCheckColumns];
  if (probes == 0) std::fill(zsq, zsq + kChunk, 0.0);  // FusedBlock writes none then
  std::vector<const double*> at(cols.size());
  for (int64_t l0 = 0; l0 < length; l0 += kChunk) {
    const int64_t n = std::min(kChunk, length - l0);
    for (size_t r = 0; r < cols.size(); ++r) at[r] = cols[r] + l0;
    FusedBlockOfWidth(w_total, at.data(), r_count, n, m.data(), w_total, 0, wanted->data() + l0,
                      sumsq, probes, zsq, nullptr, entry_sq, wanted_cols, rest, length, kChunk);
    if (!visit(l0, n, ChunkOfCheck{zsq, entry_sq, rest, kChunk})) return false;
  }
  return true;
}

Vector CombineEntry(const std::vector<const double*>& cols, int64_t l, const RowMajorMatrix& m,
                    int count) {
  Vector out = Vector::Zero(count);
  for (size_t r = 0; r < cols.size(); ++r)
    for (int w = 0; w < count; ++w) out(w) += cols[r][l] * m(static_cast<Eigen::Index>(r), w);
  return out;
}

bool ChunkedProduct(const std::vector<const double*>& cols, int64_t length, const RowMajorMatrix& m,
                    const std::function<bool(int64_t l0, const Matrix& chunk)>& visit,
                    double* sumsq) {
  if (sumsq != nullptr) *sumsq = 0.0;
  const Eigen::Index r_count = static_cast<Eigen::Index>(cols.size());
  // 1024 rows x R results stay in L2 next to their slice of the output.
  constexpr int64_t kChunk = 1024;
  thread_local Matrix block, chunk;
  for (int64_t l0 = 0; l0 < length; l0 += kChunk) {
    const int64_t rows = std::min(kChunk, length - l0);
    block.resize(rows, r_count);
    for (Eigen::Index j = 0; j < r_count; ++j)
      block.col(j) = Eigen::Map<const Vector>(cols[static_cast<size_t>(j)] + l0, rows);
    chunk.noalias() = block * m;
    if (sumsq != nullptr) *sumsq += block.squaredNorm();
    if (!visit(l0, chunk)) return false;
  }
  return true;
}

// The RMS magnitude of the results, estimated from 8 evenly spaced runs of
// 512 entries of each (contiguous, so cheap to read), median over peers: the
// scale of the tolerances.
double SampledRms(const std::vector<const double*>& cols, int64_t length) {
  if (length == 0) return 0.0;
  constexpr int64_t kRuns = 8, kRun = 512;
  std::vector<double> rms;
  for (const double* c : cols) {
    double sq = 0.0;
    int64_t n = 0;
    if (length <= kRuns * kRun) {
      sq = Eigen::Map<const Vector>(c, length).squaredNorm();
      n = length;
    } else {
      for (int64_t i = 0; i < kRuns; ++i) {
        const int64_t start = i * (length - kRun) / (kRuns - 1);
        sq += Eigen::Map<const Vector>(c + start, kRun).squaredNorm();
        n += kRun;
      }
    }
    rms.push_back(std::sqrt(sq / double(n)));
  }
  return Median(rms);
}

bool AllZero(const std::vector<const double*>& cols, int64_t length) {
  for (const double* c : cols)
    if (!(Eigen::Map<const Vector>(c, length).array() == 0.0).all()) return false;
  return true;
}

// What is left of `rows` outside the span of the parity columns of the
// peers `set`.
Matrix OffSpan(const Matrix& rows, const Matrix& parity, int g, const std::vector<int>& set) {
  const int red = static_cast<int>(parity.rows());
  Matrix h(red, static_cast<Eigen::Index>(set.size()) * g);
  for (size_t i = 0; i < set.size(); ++i)
    h.middleCols(static_cast<Eigen::Index>(i) * g, g) =
        parity.middleCols(static_cast<Eigen::Index>(set[i]) * g, g);
  const Eigen::HouseholderQR<Matrix> qr(h);
  const Matrix q = qr.householderQ() * Matrix::Identity(red, std::min<Eigen::Index>(red, h.cols()));
  return rows - (rows * q) * q.transpose();
}

// Its Frobenius norm.
double OutsideSpan(const Matrix& rows, const Matrix& parity, int g, const std::vector<int>& set) {
  return OffSpan(rows, parity, g, set).norm();
}

SetSearch LocateBySets(const Matrix& rows, const Matrix& parity, int g, int smallest,
                       double explained, double roundoff) {
  const int red = static_cast<int>(parity.rows());
  const int r = static_cast<int>(parity.cols()) / g;
  // Sets of at most floor(red / 2) peers: what the code corrects whatever
  // the errors (beyond, a set can explain errors it does not contain).
  const int largest = std::min(red / 2, r - 1) / g;
  smallest = std::max(smallest, 1);
  if (smallest > largest) return {SetSearch::kUnexplained, {}};
  struct Tried {
    double off;
    std::vector<int> set;
  };
  std::vector<Tried> tried;
  // Summed with a cap: the sets of up to 31 of 66 peers number 4e19, beyond
  // an int64 (every peer of a 66-peer job threw reserving that many).
  int64_t sets = 0;
  for (int size = smallest; size <= largest && sets <= kMaxLocateSets; ++size)
    sets += std::min(Binomial(r, size), kMaxLocateSets + 1);
  if (sets > kMaxLocateSets) return {SetSearch::kTooMany, {}};
  tried.reserve(static_cast<size_t>(sets));
  for (int size = smallest; size <= largest; ++size) {
    std::vector<int> idx(static_cast<size_t>(size));
    std::iota(idx.begin(), idx.end(), 0);
    do {
      tried.push_back({OutsideSpan(rows, parity, g, idx), idx});
    } while (NextCombination(&idx, r));
  }
  double best = INFINITY;
  for (const Tried& t : tried) best = std::min(best, t.off);
  if (!(best <= explained)) return {SetSearch::kUnexplained, {}};
  // The true set and every set containing it leave only roundoff (within
  // a factor of 2 of the best); the answer is the smallest of those. Every
  // other set no larger must be at least 20 times farther: honest sets came
  // within 0.2% of the true one (adversary s14, P = 16, K = 12), far above
  // roundoff and far below the errors, and a smaller honest set can explain
  // errors at more peers within any fixed allowance where the code is
  // ill-conditioned (adversary s15: one peer for two at P = 40, K = 36).
  const double floor = std::max({best, roundoff, DBL_MIN});
  const Tried* answer = nullptr;
  for (const Tried& t : tried)
    if (t.off <= 2.0 * floor && (answer == nullptr || t.set.size() < answer->set.size()))
      answer = &t;
  for (const Tried& t : tried) {
    if (&t == answer || t.set.size() > answer->set.size()) continue;
    if (t.off < kLocateSeparation * floor) return {SetSearch::kAmbiguous, {}};
  }
  return {SetSearch::kFound, answer->set};
}

// Whether the parity columns of the peers `flag` span most rows of `rows`
// (dirty syndromes in tolerance units): each row's part outside their span
// within `per_row`, or within kLocateSeparation times the typical row's part
// (the lower median; per unit of own share, times the row's, when shares are
// given, over the rows above the least share if any) when that is less, but
// never below `floor`. The relative limit is
// the rows' own noise: errors at t peers can mimic one honest peer to within
// the calibrated roundoff (adversary s16: at P = 20, K = 14 to 0.04 of the
// tolerance at 300 tolerances, beside another peer's error in a second
// entry, and that pair was peeled, the product 5 times deviation_bound off),
// while honest rows share one noise level per unit of their own magnitude.
bool SpanMostRows(const Matrix& rows, const Matrix& parity, int g, const std::vector<int>& flag,
                  double per_row, double floor, const std::vector<double>* own_share,
                  std::vector<Eigen::Index>* unexplained) {
  const Matrix off = OffSpan(rows, parity, g, flag);
  const size_t n = static_cast<size_t>(rows.rows());
  auto share = [&](size_t i) { return own_share ? (*own_share)[i] : 1.0; };
  std::vector<double> norms(n), relative, at_least;
  for (size_t i = 0; i < n; ++i) {
    norms[i] = off.row(static_cast<Eigen::Index>(i)).norm();
    // Rows at the least share have no magnitude of their own (products of
    // zeros beside a wrong value, exact in any precision): their noise says
    // nothing of the others' (80% zero rows set every float32 row's limit
    // to roundoff of the wrong value, and each was fitted on its own:
    // 0.6 s a decode at P = 20, adversary s22).
    (share(i) > kLeastOwnShare ? relative : at_least).push_back(norms[i] / share(i));
  }
  if (norms.empty()) return true;
  if (relative.empty()) relative = std::move(at_least);
  const double typical = kLocateSeparation * LowerMedian(relative);
  unexplained->clear();
  for (size_t i = 0; i < n; ++i)
    if (!(norms[i] <= std::max(std::min(per_row, typical * share(i)), floor)))
      unexplained->push_back(static_cast<Eigen::Index>(i));
  return 2 * unexplained->size() < n;
}

std::vector<double> OwnShares(const std::vector<double>& tolerances,
                              const std::vector<double>& magnitudes, double tol) {
  std::vector<double> out;
  out.reserve(tolerances.size());
  for (size_t i = 0; i < tolerances.size(); ++i) {
    const double cs = tolerances[i];
    out.push_back(cs > 0.0 ? std::clamp(tol * magnitudes[i] / cs, kLeastOwnShare, 1.0) : 1.0);
  }
  return out;
}

std::vector<double> OwnSharesOfRobust(const std::vector<double>& tolerances, double tol,
                                      double global) {
  std::vector<double> magnitudes;
  magnitudes.reserve(tolerances.size());
  for (double cs : tolerances) magnitudes.push_back(std::max(cs / tol - global, 0.0));
  return OwnShares(tolerances, magnitudes, tol);
}

double RobustMagnitude(const std::vector<const double*>& cols, int64_t l, int skip) {
  if (cols.empty()) return 0.0;
  std::vector<double> v;
  v.reserve(cols.size());
  for (const double* c : cols) v.push_back(std::abs(c[l]));
  const size_t m = std::min(static_cast<size_t>(std::max(skip, 0)), v.size() - 1);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(m), v.end(),
                   std::greater<double>());
  return v[m];
}

std::vector<int> LocateBySpan(Matrix dmat, const Matrix& parity, int g, double clean_share,
                              std::vector<Eigen::Index>* unexplained,
                              const std::vector<double>* own_share) {
  std::vector<int> flag;
  if (unexplained) unexplained->clear();
  const int red = static_cast<int>(parity.rows());
  const int r = static_cast<int>(parity.cols()) / g;
  const double scale = dmat.size() > 0 ? dmat.cwiseAbs().maxCoeff() : 0.0;
  if (!std::isfinite(scale) || scale <= 0.0 || red == 0) return flag;
  dmat /= scale;
  Matrix small = dmat;
  if (dmat.rows() > red) {
    Eigen::HouseholderQR<Matrix> qr(dmat);
    small = qr.matrixQR().topRows(red).triangularView<Eigen::Upper>();
  }
  Eigen::JacobiSVD<Matrix> svd(small, Eigen::ComputeFullV);
  const Vector sigma = svd.singularValues() * scale;
  // Roundoff adds a little to every row: at most kRoundoffPerRow of the
  // tolerance in RMS (float64 about 1e-3, float32 under 0.01: the tolerances
  // are calibrated so, precision.h), which over many dirty rows (a dense
  // error) sums to a singular value of about kRoundoffPerRow sqrt(rows); an
  // error's own is at least sqrt(rows where it is above the tolerance).
  constexpr double kRoundoffPerRow = 0.05;
  const double noise = kRoundoffPerRow * (std::sqrt(double(dmat.rows())) + std::sqrt(double(red)));
  const double floor_abs =
      std::max({0.5, noise, 1e3 * DBL_EPSILON * sigma(0) * std::sqrt(double(r * g))});
  int rank = 0;
  while (rank < sigma.size() && sigma(rank) > floor_abs) ++rank;
  // Each wrong peer adds between 1 and g dimensions (a soft error may hit
  // only some of a peer's blocks, or all of them alike).
  const int wrong_min = (rank + g - 1) / g, wrong_max = std::min(rank, r - 1);
  if (rank == 0 || rank >= red || wrong_min >= r) return flag;
  const Matrix u = svd.matrixV().leftCols(rank);
  // A peer's distance: the sine of the smallest angle between its parity
  // columns' span and the syndrome's (0 when they share any direction).
  std::vector<std::pair<double, int>> dist;
  for (int j = 0; j < r; ++j) {
    const Matrix h = parity.middleCols(j * g, g);
    double d = 1.0;
    if (g == 1) {
      const double hn = h.norm();
      d = hn > 0 ? (h - u * (u.transpose() * h)).norm() / hn : 1.0;
    } else {
      const Eigen::HouseholderQR<Matrix> hq(h);
      const Matrix q = hq.householderQ() * Matrix::Identity(h.rows(), g);
      const Matrix res = q - u * (u.transpose() * q);
      d = Eigen::JacobiSVD<Matrix>(res).singularValues().minCoeff();
    }
    dist.emplace_back(d, j);
  }
  std::sort(dist.begin(), dist.end());
  int wrong = -1;
  for (int w = wrong_min; w <= wrong_max && wrong < 0; ++w)
    if (dist[static_cast<size_t>(w - 1)].first <= 0.05 * dist[static_cast<size_t>(w)].first)
      wrong = w;
  for (int j = 0; j < r; ++j) {
    const auto& [d, pos] = dist[static_cast<size_t>(j)];
    if (wrong > 0 ? j < wrong : d < 1e-9) flag.push_back(pos);
  }
  // Set searches are affordable up to t peers: they decide between the
  // closest peers and the sets of up to t that explain every row.
  // The closest peers, clearly separated, must also leave no more than
  // roundoff in most rows: errors at two peers can have a syndrome within a
  // sine of 2e-3 of a third peer's column (three peers at the end of
  // Chebyshev points), which then stands far apart from every other, and
  // was set aside alone (adversary s15: verified, the honest peer named,
  // the product 12 times deviation_bound off). The rows outside a minority
  // are another peer's errors in single entries, corrected entry by entry.
  // What the rank left out (errors too small beside the largest, peeled in
  // a later round, or roundoff) bounds every row's part outside the span of
  // the right peers.
  const double left_out = std::max(clean_share, rank < sigma.size() ? sigma(rank) : 0.0);
  // Only for one row per peer: with blocks per peer (rotation codes, FCDCC)
  // a peer's error spans 1 to g directions, and the check cleared right
  // peers in 14 of 167 decodes of dense and sparse errors (the decode soak).
  std::vector<Eigen::Index> outside;  // the rows the set last checked leaves
  auto spans_most = [&](const std::vector<int>& set) {
    return g != 1 || SpanMostRows(scale * dmat, parity, g, set, left_out,
                                  1e3 * DBL_EPSILON * sigma(0), own_share, &outside);
  };
  std::vector<Eigen::Index> flag_outside;
  if (wrong > 0) {
    if (spans_most(flag))
      flag_outside = outside;
    else
      flag.clear();
  }
  // Roundoff in the dirty rows sums to about `noise`; the QR's own is
  // relative to the largest singular value.
  const double roundoff = 1e3 * DBL_EPSILON * sigma(0) * std::sqrt(double(r * g));
  // Closest peers whose columns leave no more of the rows than the best
  // subspace of their rank does (twice what the rank left out) are the
  // answer: no set explains the rows better. Only otherwise (a single
  // honest column near the errors of two others) are the sets tried, which
  // costs up to kMaxLocateSets fits (a whole-peer error at P = 16, K = 4
  // took 34 ms instead of 0.7 when they always were).
  bool settled = false;
  if (!flag.empty() && wrong > 0) {
    const double tail = sigma.tail(sigma.size() - rank).norm();
    settled = OutsideSpan(scale * small, parity, g, flag) <= 2.0 * std::max(tail, roundoff);
  }
  if (!settled && (flag.empty() || wrong > 0)) {
    const SetSearch sets =
        LocateBySets(scale * small, parity, g, wrong_min, std::max(noise, roundoff), roundoff);
    // Found: that set. Otherwise the closest peers, if any: other errors
    // in some rows, or errors near the roundoff of much larger ones (which
    // make sets with and without them alike), are theirs to peel in turn.
    // The set found must span most rows too: the rows' own noise can tell
    // a mimicking pattern in one row apart where the calibrated roundoff
    // cannot (adversary s16: P = 24, K = 18, up to 1.2e4 tolerances).
    if (sets.outcome == SetSearch::kFound && spans_most(sets.peers)) {
      flag = sets.peers;
      flag_outside = outside;
    }
  }
  if (unexplained && !flag.empty()) *unexplained = std::move(flag_outside);
  return flag;
}

StatusOr<std::vector<int>> IndexPeers(std::span<const int> peers, int num_peers, int threshold) {
  std::vector<int> col_of(static_cast<size_t>(num_peers), -1);
  for (size_t j = 0; j < peers.size(); ++j) {
    const int p = peers[j];
    if (p < 0 || p >= num_peers) {
      return InvalidArgumentError("decode: result from unknown peer " + std::to_string(p) +
                                  " (code has " + std::to_string(num_peers) + " peers)");
    }
    if (col_of[static_cast<size_t>(p)] != -1) {
      return InvalidArgumentError("decode: two results from peer " + std::to_string(p));
    }
    col_of[static_cast<size_t>(p)] = static_cast<int>(j);
  }
  if (static_cast<int>(peers.size()) < threshold) {
    return UnavailableError("decode: need " + std::to_string(threshold) +
                            " results (threshold K), got " + std::to_string(peers.size()));
  }
  return col_of;
}

Matrix SelectColumns(const Matrix& m, const std::vector<int>& cols) {
  Matrix out(m.rows(), static_cast<Eigen::Index>(cols.size()));
  for (size_t j = 0; j < cols.size(); ++j) out.col(static_cast<Eigen::Index>(j)) = m.col(cols[j]);
  return out;
}

}  // namespace polyguard::internal
