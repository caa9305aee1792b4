#include "experiment/analytic.h"

#include <algorithm>
#include <cmath>

namespace polyguard::experiment {

double BinomialCoefficient(int n, int k) {
  if (k < 0 || k > n) return 0.0;
  return std::exp(std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0));
}

double BinomialPmf(int n, int k, double p) {
  if (k < 0 || k > n) return 0.0;
  if (p <= 0.0) return k == 0 ? 1.0 : 0.0;
  if (p >= 1.0) return k == n ? 1.0 : 0.0;
  return std::exp(std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) +
                  k * std::log(p) + (n - k) * std::log1p(-p));
}

CleanProduct MakeCleanProduct(const ProductCode& code, Random* rng) {
  const ProductShape s = code.shape();
  const Matrix a = rng->NormalMatrix(s.rows, s.inner), b = rng->NormalMatrix(s.inner, s.cols);
  CleanProduct c = ComputeCleanProduct(code, a, b).value();  // the code's own shape
  c.scale = std::max(c.scale, 1e-300);
  return c;
}

Outcome DecodeWithErrors(const ProductCode& code, const CleanProduct& clean,
                         const std::vector<int>& answering, const std::vector<int>& wrong,
                         ErrorMode mode, Random* rng) {
  std::vector<PeerResult> results;
  const Eigen::Index size = clean.results.front().value.size();
  const Eigen::Index entry = size > 0 ? rng->UniformInt(0, size - 1) : 0;
  for (int p : answering) {
    PeerResult r = clean.results[static_cast<size_t>(p)];
    if (std::find(wrong.begin(), wrong.end(), p) != wrong.end() && size > 0) {
      if (mode == ErrorMode::kDense) {
        r.value += clean.scale * rng->NormalMatrix(r.value.rows(), r.value.cols());
      } else {
        double e = rng->Normal();
        if (std::abs(e) < 0.1) e = e < 0 ? -0.1 : 0.1;  // far above roundoff
        r.value.data()[entry] += clean.scale * e;
      }
    }
    results.push_back(std::move(r));
  }
  auto decoded = code.Decode(results);
  if (!decoded.ok()) return Outcome::kDetected;
  const double rel =
      (decoded->product - clean.expected).norm() / std::max(clean.expected.norm(), 1e-300);
  return rel <= ExactProductTolerance(code) ? Outcome::kCorrected : Outcome::kSilent;
}

std::vector<double> MeasuredFailureByCount(const ProductCode& code, int patterns, Random* rng) {
  const int p = code.num_peers();
  std::vector<int> all(static_cast<size_t>(p));
  for (int i = 0; i < p; ++i) all[static_cast<size_t>(i)] = i;
  std::vector<double> f(static_cast<size_t>(p + 1), 0.0);
  for (int k = 0; k <= p; ++k) {
    const CleanProduct clean = MakeCleanProduct(code, rng);
    int failed = 0, tried = 0;
    auto one = [&](const std::vector<int>& wrong) {
      ++tried;
      if (DecodeWithErrors(code, clean, all, wrong, ErrorMode::kDense, rng) != Outcome::kCorrected)
        ++failed;
    };
    if (BinomialCoefficient(p, k) <= patterns) {
      std::vector<int> idx(static_cast<size_t>(k));
      for (int i = 0; i < k; ++i) idx[static_cast<size_t>(i)] = i;
      while (true) {
        one(idx);
        int i = k - 1;
        while (i >= 0 && idx[static_cast<size_t>(i)] == p - k + i) --i;
        if (i < 0) break;
        ++idx[static_cast<size_t>(i)];
        for (int j = i + 1; j < k; ++j)
          idx[static_cast<size_t>(j)] = idx[static_cast<size_t>(j - 1)] + 1;
      }
    } else {
      for (int t = 0; t < patterns; ++t) one(rng->Sample(p, k));
    }
    f[static_cast<size_t>(k)] = double(failed) / double(tried);
  }
  return f;
}

double FailureProbability(const std::vector<double>& f, double eps) {
  const int p = static_cast<int>(f.size()) - 1;
  double total = 0.0;
  for (int k = 0; k <= p; ++k) total += BinomialPmf(p, k, eps) * f[static_cast<size_t>(k)];
  return std::min(total, 1.0);
}

double TolerableEps(const std::vector<double>& f, double target) {
  double lo = std::log(1e-9), hi = std::log(0.5);
  if (FailureProbability(f, std::exp(lo)) > target) return 0.0;
  if (FailureProbability(f, std::exp(hi)) <= target) return 0.5;
  for (int it = 0; it < 80; ++it) {
    const double mid = 0.5 * (lo + hi);
    (FailureProbability(f, std::exp(mid)) <= target ? lo : hi) = mid;
  }
  return std::exp(lo);
}

}  // namespace polyguard::experiment
