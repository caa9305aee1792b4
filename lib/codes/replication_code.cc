#include "polyguard/codes/replication_code.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "polyguard/base/peer_set.h"
#include "polyguard/base/precision.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard {

StatusOr<std::unique_ptr<ReplicationCode>> ReplicationCode::Create(ProductShape shape,
                                                                   ReplicationOptions o) {
  POLYGUARD_RETURN_IF_ERROR(internal::ValidateShape(shape).WithContext("replication"));
  if (o.replicas < 1) {
    return InvalidArgumentError("replication: replicas must be >= 1, got " +
                                std::to_string(o.replicas));
  }
  if (o.peers < 1 || o.peers > kMaxPeers || o.peers % o.replicas != 0) {
    return InvalidArgumentError(
        "replication: peers must be a multiple of replicas = " + std::to_string(o.replicas) +
        " in [1, " + std::to_string(kMaxPeers) + "], got " + std::to_string(o.peers));
  }
  POLYGUARD_RETURN_IF_ERROR(ValidateTolerance(o.tolerance, "replication"));
  return std::unique_ptr<ReplicationCode>(new ReplicationCode(shape, o));
}

ReplicationCode::ReplicationCode(ProductShape shape, ReplicationOptions o)
    : ProductCode(shape, o.peers), options_(o) {
  groups_ = o.peers / o.replicas;
  block_rows_ = internal::BlockSize(shape.rows, groups_);
}

std::string ReplicationCode::Describe() const {
  return "replication P=" + std::to_string(num_peers()) + " r=" + std::to_string(options_.replicas);
}

StatusOr<Matrix> ReplicationCode::EncodeShard(const MatrixRef& a, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckA(a).WithContext("replication shard"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("replication shard"));
  return internal::RowBlock(a, peer % groups_, block_rows_);
}

StatusOr<Matrix> ReplicationCode::EncodeInput(const MatrixRef& b, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckB(b).WithContext("replication input"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("replication input"));
  return Matrix(b);
}

StatusOr<Matrix> ReplicationCode::Vote(std::span<const PeerResult* const> copies,
                                       const std::string& what, std::vector<int>* wrong,
                                       bool* verified, double* bound) const {
  *bound = 0.0;
  if (copies.empty()) return UnavailableError("replication: no copy of " + what + " arrived");
  // Non-finite copies are wrong outright.
  std::vector<const PeerResult*> finite;
  for (const PeerResult* r : copies) {
    if (AllFinite(r->value))
      finite.push_back(r);
    else
      wrong->push_back(r->peer);
  }
  auto suspects = [&] {
    std::vector<int> sus;
    for (const PeerResult* r : copies) sus.push_back(r->peer);
    return FormatPeers(sus);
  };
  if (finite.empty()) {
    return DataLossError("replication: every copy of " + what +
                         " is non-finite; suspect peers: " + suspects());
  }
  const size_t n = finite.size();
  // The comparison's absolute scale: the lower median of the copies' RMS
  // values, so that a wrong copy cannot widen it (an RMS over every copy let
  // one huge value make any two copies agree). Everything in quarters: no
  // RMS, difference or bound can overflow (an overflowed difference against
  // an overflowed bound, inf <= inf, agreed).
  std::vector<double> quarter_rms;
  for (const PeerResult* r : finite) {
    const double values = double(std::max<Eigen::Index>(r->value.size(), 1));
    quarter_rms.push_back((r->value * (0.25 / std::sqrt(values))).blueNorm());
  }
  std::sort(quarter_rms.begin(), quarter_rms.end());
  const double q_rms = quarter_rms[(n - 1) / 2];
  auto agree = [&](const Matrix& x, const Matrix& y) {
    const auto qx = x.array() * 0.25, qy = y.array() * 0.25;
    return ((qx - qy).abs() <= options_.tolerance * (qx.abs() + qy.abs() + q_rms)).all();
  };
  // Largest group of mutually agreeing copies (agreement is transitive for
  // honest copies up to roundoff, so group by the first member).
  std::vector<int> group(n, -1);
  std::vector<size_t> sizes;
  for (size_t i = 0; i < n; ++i) {
    if (group[i] != -1) continue;
    group[i] = static_cast<int>(sizes.size());
    size_t size = 1;
    for (size_t j = i + 1; j < n; ++j)
      if (group[j] == -1 && agree(finite[i]->value, finite[j]->value)) {
        group[j] = group[i];
        ++size;
      }
    sizes.push_back(size);
  }
  const size_t best =
      static_cast<size_t>(std::max_element(sizes.begin(), sizes.end()) - sizes.begin());
  const size_t ties = static_cast<size_t>(std::count(sizes.begin(), sizes.end(), sizes[best]));
  if (n == 1) {
    *verified = false;  // a single finite copy: nothing to compare with
  } else if (sizes[best] < 2 || ties > 1) {
    return DataLossError("replication: copies of " + what +
                         " disagree with no majority; suspect peers: " + suspects());
  }
  std::vector<const Matrix*> chosen;
  for (size_t i = 0; i < n; ++i) {
    if (group[i] != static_cast<int>(best))
      wrong->push_back(finite[i]->peer);
    else
      chosen.push_back(&finite[i]->value);
  }
  if (chosen.size() == 1) return *chosen.front();
  // Entry by entry the median of the agreeing copies, and how far it can be
  // from an honest one of them: each copy x is within tol (|x| + |f| + s)
  // of the first f, the median between them, an honest copy too.
  const Matrix& first = *chosen.front();
  Matrix median(first.rows(), first.cols());
  Eigen::ArrayXXd quarter_largest = first.array().abs() * 0.25;
  std::vector<double> v(chosen.size());
  for (Eigen::Index e = 0; e < first.size(); ++e) {
    for (size_t c = 0; c < chosen.size(); ++c) v[c] = chosen[c]->data()[e];
    std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
    median.data()[e] = v[v.size() / 2];
  }
  for (const Matrix* x : chosen) quarter_largest = quarter_largest.max(x->array().abs() * 0.25);
  const Eigen::ArrayXXd quarter_entry =
      2.0 * options_.tolerance * (quarter_largest + first.array().abs() * 0.25 + q_rms);
  const double values = double(std::max<Eigen::Index>(first.size(), 1));
  *bound = 4.0 * (quarter_entry.matrix() / std::sqrt(values)).blueNorm();
  return median;
}

StatusOr<std::vector<std::vector<const PeerResult*>>> ReplicationCode::Copies(
    std::span<const PeerResult> results, int64_t rows, int64_t cols) const {
  POLYGUARD_RETURN_IF_ERROR(CheckResults(results, rows, cols));
  std::vector<std::vector<const PeerResult*>> copies(static_cast<size_t>(groups_));
  for (const PeerResult& r : results) copies[static_cast<size_t>(r.peer % groups_)].push_back(&r);
  return copies;
}

std::string ReplicationCode::BlockName(int b) const {
  return "block " + std::to_string(b) + " (held by peers " + std::to_string(b) + " + k*" +
         std::to_string(groups_) + ")";
}

StatusOr<DecodedProduct> ReplicationCode::Decode(std::span<const PeerResult> results) const {
  POLYGUARD_ASSIGN_OR_RETURN(auto copies, Copies(results, block_rows_, shape().cols));
  DecodedProduct out;
  out.verified = true;
  Matrix full(block_rows_ * groups_, shape().cols);
  for (int b = 0; b < groups_; ++b) {
    double bound = 0.0;
    POLYGUARD_ASSIGN_OR_RETURN(const Matrix value, Vote(copies[size_t(b)], BlockName(b),
                                                        &out.wrong_peers, &out.verified, &bound));
    full.middleRows(b * block_rows_, block_rows_) = value;
    // The RMS over C of blocks' RMS bounds is at most their largest.
    out.deviation_bound = std::max(out.deviation_bound, bound);
  }
  std::sort(out.wrong_peers.begin(), out.wrong_peers.end());
  out.product = full.topRows(shape().rows);
  out.roundoff_bound = out.deviation_bound;  // nothing hides from a copy's or checksum's check
  return out;
}

StatusOr<Matrix> ReplicationCode::EncodeTransposeInput(const MatrixRef& d, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(internal::CheckTransposeInput(*this, d).WithContext("replication"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("replication transpose input"));
  return internal::RowBlock(d, peer % groups_, block_rows_);
}

StatusOr<DecodedProduct> ReplicationCode::DecodeTranspose(
    std::span<const PeerResult> results) const {
  POLYGUARD_ASSIGN_OR_RETURN(auto copies, Copies(results, shape().inner, shape().cols));
  DecodedProduct out;
  out.verified = true;
  out.product = Matrix::Zero(shape().inner, shape().cols);
  for (int b = 0; b < groups_; ++b) {
    double bound = 0.0;
    POLYGUARD_ASSIGN_OR_RETURN(const Matrix value, Vote(copies[size_t(b)], BlockName(b),
                                                        &out.wrong_peers, &out.verified, &bound));
    out.product += value;
    out.deviation_bound += bound;  // a sum of the blocks' products: their deviations add
  }
  std::sort(out.wrong_peers.begin(), out.wrong_peers.end());
  out.roundoff_bound = out.deviation_bound;  // nothing hides from a copy's or checksum's check
  return out;
}

Status ReplicationCode::UpdateShard(Matrix* shard, int peer, const MatrixRef& d, const MatrixRef& x,
                                    double eta) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("replication update"));
  POLYGUARD_RETURN_IF_ERROR(
      internal::CheckUpdate(*this, shard, block_rows_, shape().inner, d, x, eta)
          .WithContext("replication update"));
  shard->noalias() -= eta * internal::RowBlock(d, peer % groups_, block_rows_) * x.transpose();
  return Status::Ok();
}

StatusOr<std::vector<int>> ReplicationCode::CheckProbes(std::span<const PeerResult> probes) const {
  const int64_t length = probes.empty() ? 0 : probes[0].value.rows();
  POLYGUARD_ASSIGN_OR_RETURN(auto copies, Copies(probes, length, 1));
  std::vector<int> wrong;
  bool verified = true;
  for (int b = 0; b < groups_; ++b) {
    if (copies[size_t(b)].empty()) continue;
    double bound = 0.0;
    POLYGUARD_RETURN_IF_ERROR(
        Vote(copies[size_t(b)], BlockName(b), &wrong, &verified, &bound).status());
  }
  std::sort(wrong.begin(), wrong.end());
  return wrong;
}

StatusOr<std::vector<int>> ReplicationCode::RepairSources(int target,
                                                          std::span<const int> healthy) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(target).WithContext("replication repair"));
  for (int p : healthy)
    if (p != target && p >= 0 && p < num_peers() && p % groups_ == target % groups_)
      return std::vector<int>{p};
  return FailedPreconditionError("replication repair of peer " + std::to_string(target) +
                                 ": no healthy replica of " + BlockName(target % groups_));
}

StatusOr<Matrix> ReplicationCode::RepairShard(int target,
                                              std::span<const PeerResult> sources) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(target).WithContext("replication repair"));
  if (sources.size() != 1 || sources[0].peer % groups_ != target % groups_ ||
      sources[0].peer == target) {
    return InvalidArgumentError("replication repair of peer " + std::to_string(target) +
                                ": needs one other replica of " + BlockName(target % groups_));
  }
  return sources[0].value;
}

namespace {
double Choose(int n, int k) {
  if (k < 0 || k > n) return 0.0;
  return std::exp(std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0));
}
}  // namespace

StrategyEntry ReplicationStrategyEntry() {
  StrategyEntry e;
  e.name = std::string(Strategy::kReplication.name());
  e.parameters = "replicas";
  e.can = {.trains = true, .corrects_errors = true};
  e.make = [](const ProductCodeOptions& o) -> StatusOr<std::unique_ptr<ProductCode>> {
    ReplicationOptions p{
        .peers = o.peers, .replicas = o.replicas, .tolerance = o.decoder.tolerance};
    POLYGUARD_ASSIGN_OR_RETURN(auto code, ReplicationCode::Create(o.shape, p));
    return std::unique_ptr<ProductCode>(std::move(code));
  };
  // r = P / groups copies a group; a group survives with at most r - 2 wrong
  // copies, so the step fails unless every group does: count the k-subsets
  // that leave every group a majority of >= 2 agreeing copies.
  e.failure_by_count = [](const ProductCode& code) -> FailureByWrongCount {
    const int p = code.num_peers();
    const int r = p - code.recovery_threshold() + 1;
    const int groups = p / r;
    std::vector<double> per_group(static_cast<size_t>(r + 1), 0.0);
    for (int j = 0; j <= r - 2; ++j) per_group[static_cast<size_t>(j)] = Choose(r, j);
    std::vector<double> ok(1, 1.0);  // polynomial coefficients
    for (int g = 0; g < groups; ++g) {
      std::vector<double> next(ok.size() + static_cast<size_t>(r), 0.0);
      for (size_t a = 0; a < ok.size(); ++a)
        for (size_t b = 0; b < per_group.size(); ++b) next[a + b] += ok[a] * per_group[b];
      ok = std::move(next);
    }
    std::vector<double> f(static_cast<size_t>(p + 1), 0.0);
    for (int k = 0; k <= p; ++k) {
      const double good = static_cast<size_t>(k) < ok.size() ? ok[static_cast<size_t>(k)] : 0.0;
      f[static_cast<size_t>(k)] = std::clamp(1.0 - good / Choose(p, k), 0.0, 1.0);
    }
    return f;
  };
  return e;
}

}  // namespace polyguard
