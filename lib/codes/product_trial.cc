#include "polyguard/codes/product_trial.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace polyguard {

StatusOr<CleanProduct> ComputeCleanProduct(const ProductCode& code, const MatrixRef& a,
                                           const MatrixRef& b, std::span<const int> peers) {
  std::vector<int> all;
  if (peers.empty()) {
    all.resize(size_t(code.num_peers()));
    std::iota(all.begin(), all.end(), 0);
    peers = all;
  }
  CleanProduct c;
  c.expected = a * b;
  for (int p : peers) {
    POLYGUARD_ASSIGN_OR_RETURN(Matrix shard, code.EncodeShard(a, p));
    POLYGUARD_ASSIGN_OR_RETURN(Matrix piece, code.EncodeInput(b, p));
    c.results.push_back({p, code.PeerProduct(shard, piece)});
  }
  c.scale = TypicalResultScale(c.results);
  return c;
}

double ExactProductTolerance(const ProductCode& code) {
  if (code.precision() == Precision::kFloat64) return 1e-6;
  const int64_t n = std::max<int64_t>({code.shape().rows, code.shape().inner, 1});
  return 1e3 * UnitRoundoff(code.precision()) * std::sqrt(double(n));
}

double TypicalResultScale(std::span<const PeerResult> results) {
  std::vector<double> rms;
  for (const PeerResult& r : results) {
    rms.push_back(r.value.norm() / std::sqrt(double(std::max<Eigen::Index>(r.value.size(), 1))));
  }
  if (rms.empty()) return 1.0;
  std::nth_element(rms.begin(), rms.begin() + rms.size() / 2, rms.end());
  return rms[rms.size() / 2];
}

}  // namespace polyguard
