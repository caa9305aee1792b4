// Helpers shared by the codes tests: run a ProductCode end to end on random
// data with stragglers and injected errors.
#ifndef POLYGUARD_TESTS_CODES_CODE_TEST_UTIL_H_
#define POLYGUARD_TESTS_CODES_CODE_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "polyguard/base/random.h"
#include "polyguard/codes/product_code.h"
#include "polyguard/codes/product_trial.h"
#include "polyguard/fault/soft_error.h"

namespace polyguard::testing {

using ErrorKind = SoftErrorKind;

inline void InjectError(Matrix* value, ErrorKind kind, double magnitude, Random* rng,
                        Eigen::Index entry = -1, double scale = 0.0) {
  ApplySoftError(value, kind, magnitude, rng, scale, entry);
}

// Options that build every strategy of `s` on `peers` peers: Generalized
// PolyDot m = n = 2, the 1-D MDS code with 6 data blocks, 3 replicas, a
// low-weight code of 2 x 2 blocks.
inline ProductCodeOptions StrategyOptions(Strategy s, ProductShape shape, int peers = 12) {
  ProductCodeOptions o;
  o.strategy = s;
  o.shape = shape;
  o.peers = peers;
  o.m = 2;
  o.n = 2;
  o.data_blocks = 6;
  o.replicas = 3;
  o.k_a = 2;
  o.k_b = 2;
  return o;
}

inline double RelativeError(const Matrix& got, const Matrix& want) {
  const double denom = std::max(want.norm(), 1e-300);
  return (got - want).norm() / denom;
}

// How many inconsistent entries a decode's search went through before it
// spent its budget, from its DataLoss ("spent its budget of B fits after N
// of M inconsistent entries"); -1 when the status does not say so for this
// budget and entry count.
inline int EntriesBeforeBudgetSpent(const Status& s, int64_t budget, int64_t entries) {
  const std::string m = s.message();
  const std::string spent = "spent its budget of " + std::to_string(budget) + " fits after ";
  const size_t at = m.find(spent);
  if (s.code() != StatusCode::kDataLoss || at == std::string::npos ||
      m.find(" of " + std::to_string(entries) + " inconsistent entries") == std::string::npos) {
    return -1;
  }
  return std::stoi(m.substr(at + spent.size()));
}

// Visits every k-subset of [0, n), ascending.
inline void ForEachSubset(int n, int k, const std::function<void(const std::vector<int>&)>& visit) {
  std::vector<int> idx(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) idx[static_cast<size_t>(i)] = i;
  while (true) {
    visit(idx);
    int i = k - 1;
    while (i >= 0 && idx[static_cast<size_t>(i)] == n - k + i) --i;
    if (i < 0) return;
    ++idx[static_cast<size_t>(i)];
    for (int j = i + 1; j < k; ++j)
      idx[static_cast<size_t>(j)] = idx[static_cast<size_t>(j - 1)] + 1;
  }
}

struct ProductRun {
  Matrix a, b, expected;
  std::vector<PeerResult> results;  // answering peers only, in random order
  std::vector<int> wrong;           // sorted peers given an error
  std::vector<int> missing;         // sorted stragglers
};

// The most wrong results the decoder promises to correct with R results,
// threshold K and results of L numbers: R - K - 1 when the error vectors can
// be generic (L >= e), else floor((R - K)/2).
inline int MaxCorrectable(int r, int k, int64_t l) {
  return std::max((r - k) / 2, static_cast<int>(std::min<int64_t>(l, r - k - 1)));
}

// Encodes random A and B, lets `stragglers` random peers not answer, gives
// `errors` random answering peers an error. Single-entry errors of different
// peers land in different entries when there are enough entries (so that the
// error vectors are generic).
inline ProductRun RunProduct(const ProductCode& code, Random* rng, int stragglers, int errors,
                             ErrorKind kind, double magnitude) {
  ProductRun run;
  const ProductShape s = code.shape();
  run.a = rng->NormalMatrix(s.rows, s.inner);
  run.b = rng->NormalMatrix(s.inner, s.cols);
  run.expected = run.a * run.b;
  std::vector<int> order = rng->Sample(code.num_peers(), code.num_peers());
  run.missing.assign(order.begin(), order.begin() + stragglers);
  std::vector<int> answering(order.begin() + stragglers, order.end());
  run.wrong.assign(answering.begin(), answering.begin() + errors);
  std::vector<int> entries;
  CleanProduct clean = ComputeCleanProduct(code, run.a, run.b, answering).value();
  run.results = std::move(clean.results);
  const double scale = clean.scale;
  for (PeerResult& res : run.results) {
    if (entries.empty()) entries = rng->Sample(int(res.value.size()), int(res.value.size()));
    auto it = std::find(run.wrong.begin(), run.wrong.end(), res.peer);
    if (it != run.wrong.end()) {
      const size_t i = static_cast<size_t>(it - run.wrong.begin());
      const Eigen::Index entry = i < entries.size() ? entries[i] : -1;
      InjectError(&res.value, kind, magnitude, rng, entry, scale);
    }
  }
  std::sort(run.wrong.begin(), run.wrong.end());
  std::sort(run.missing.begin(), run.missing.end());
  return run;
}

}  // namespace polyguard::testing

#endif  // POLYGUARD_TESTS_CODES_CODE_TEST_UTIL_H_
