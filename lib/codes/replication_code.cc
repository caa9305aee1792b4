#include "polyguard/codes/replication_code.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace polyguard {

StatusOr<std::unique_ptr<ReplicationCode>> ReplicationCode::Create(ProductShape shape,
                                                                   ReplicationOptions o) {
  POLYGUARD_RETURN_IF_ERROR(internal::ValidateShape(shape).WithContext("replication"));
  if (o.replicas < 1) {
    return InvalidArgumentError("replication: replicas must be >= 1, got " +
                                std::to_string(o.replicas));
  }
  if (o.peers < 1 || o.peers > 64 || o.peers % o.replicas != 0) {
    return InvalidArgumentError("replication: peers must be a multiple of replicas = " +
                                std::to_string(o.replicas) + " in [1, 64], got " +
                                std::to_string(o.peers));
  }
  if (!(o.tolerance > 0.0 && o.tolerance < 1.0)) {
    return InvalidArgumentError("replication: tolerance must be in (0, 1)");
  }
  return std::unique_ptr<ReplicationCode>(new ReplicationCode(shape, o));
}

ReplicationCode::ReplicationCode(ProductShape shape, ReplicationOptions o)
    : ProductCode(shape, o.peers), options_(o) {
  groups_ = o.peers / o.replicas;
  block_rows_ = internal::BlockSize(shape.rows, groups_);
}

std::string ReplicationCode::Describe() const {
  return "replication P=" + std::to_string(num_peers()) + " r=" +
         std::to_string(options_.replicas);
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

StatusOr<DecodedProduct> ReplicationCode::Decode(std::span<const PeerResult> results) const {
  POLYGUARD_RETURN_IF_ERROR(CheckResults(results, block_rows_, shape().cols));
  std::vector<std::vector<const PeerResult*>> copies(static_cast<size_t>(groups_));
  for (const PeerResult& r : results) copies[static_cast<size_t>(r.peer % groups_)].push_back(&r);
  DecodedProduct out;
  out.verified = true;
  Matrix full(block_rows_ * groups_, shape().cols);
  for (int b = 0; b < groups_; ++b) {
    auto& c = copies[static_cast<size_t>(b)];
    // Non-finite copies are wrong outright.
    std::vector<const PeerResult*> finite;
    for (const PeerResult* r : c) {
      if (r->value.allFinite()) finite.push_back(r);
      else out.wrong_peers.push_back(r->peer);
    }
    if (c.empty()) {
      return UnavailableError("replication: no copy of block " + std::to_string(b) +
                              " arrived (held by peers " + std::to_string(b) + " + k*" +
                              std::to_string(groups_) + ")");
    }
    if (finite.empty()) {
      std::vector<int> sus;
      for (const PeerResult* r : c) sus.push_back(r->peer);
      return DataLossError("replication: every copy of block " + std::to_string(b) +
                           " is non-finite; suspect peers: " + FormatPeers(sus));
    }
    const size_t n = finite.size();
    double sq = 0.0;
    for (const PeerResult* r : finite) sq += r->value.squaredNorm();
    const double rms = std::sqrt(sq / (double(n) * double(std::max<Eigen::Index>(finite[0]->value.size(), 1))));
    auto agree = [&](const Matrix& x, const Matrix& y) {
      return ((x - y).array().abs() <=
              options_.tolerance * (x.array().abs() + y.array().abs() + rms))
          .all();
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
    const size_t best = static_cast<size_t>(std::max_element(sizes.begin(), sizes.end()) - sizes.begin());
    const size_t ties = static_cast<size_t>(std::count(sizes.begin(), sizes.end(), sizes[best]));
    if (n == 1) {
      out.verified = false;  // a single finite copy: nothing to compare with
    } else if (sizes[best] < 2 || ties > 1) {
      std::vector<int> sus;
      for (const PeerResult* r : c) sus.push_back(r->peer);
      return DataLossError("replication: copies of block " + std::to_string(b) +
                           " disagree with no majority; suspect peers: " + FormatPeers(sus));
    }
    for (size_t i = 0; i < n; ++i) {
      if (group[i] != static_cast<int>(best)) out.wrong_peers.push_back(finite[i]->peer);
    }
    for (size_t i = 0; i < n; ++i) {
      if (group[i] == static_cast<int>(best)) {
        full.middleRows(b * block_rows_, block_rows_) = finite[i]->value;
        break;
      }
    }
  }
  std::sort(out.wrong_peers.begin(), out.wrong_peers.end());
  out.product = full.topRows(shape().rows);
  return out;
}

}  // namespace polyguard
