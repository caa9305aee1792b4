// The collectives built on the gather (gather.cc): every peer sends its piece
// to every other peer once, tagged so that it can only match the same
// exchange at the receiver.
#include <algorithm>
#include <limits>
#include <string>

#include "lib/runtime/peer_group_impl.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"  // FormatPeers
#include "polyguard/runtime/peer_group.h"

namespace polyguard {

using internal::DescribeExchange;
using internal::SlotOf;

StatusOr<GatherResult> PeerGroup::GatherAtLeast(std::span<const double> mine, int need,
                                                std::chrono::steady_clock::time_point deadline,
                                                ExchangeTag tag) {
  if (need < 1 || need > size_) {
    // Still take part: a refused call that sent nothing put this tag out of
    // step at every peer (the others took this peer's next piece as this
    // exchange's, and its next call took their pieces of this one).
    std::lock_guard<std::mutex> lock(mu_);
    (void)GatherLocked(mine, 1, std::chrono::steady_clock::now(), SlotOf(tag, internal::kData),
                       DescribeExchange("gather", tag));
    return InvalidArgumentError("gather: need must be in [1, " + std::to_string(size_) + "], got " +
                                std::to_string(need));
  }
  std::lock_guard<std::mutex> lock(mu_);
  return GatherLocked(mine, need, deadline, SlotOf(tag, internal::kData),
                      DescribeExchange("gather", tag));
}

StatusOr<GatherResult> PeerGroup::GatherEveryMemberLocked(std::span<const double> mine,
                                                          ExchangeTag tag, const std::string& what,
                                                          bool any_length) {
  const int present = static_cast<int>(members_.size());
  POLYGUARD_ASSIGN_OR_RETURN(
      GatherResult g, GatherLocked(mine, present, std::chrono::steady_clock::now() + timeout_,
                                   SlotOf(tag, internal::kData), what, any_length));
  if (int(g.peers.size()) < present) {
    std::vector<int> missing;
    for (int p : members_) {
      if (std::binary_search(g.peers.begin(), g.peers.end(), p)) continue;
      missing.push_back(p);
      NoteLost(p, /*closed=*/false);  // silent for the whole failure timeout
    }
    return DeadlineExceededError(what + ": no piece from peers " + FormatPeers(missing) +
                                 " within " + std::to_string(timeout_.count()) + " ms");
  }
  return g;
}

StatusOr<Matrix> PeerGroup::AllGather(std::span<const double> mine, ExchangeTag tag) {
  std::lock_guard<std::mutex> lock(mu_);
  POLYGUARD_ASSIGN_OR_RETURN(GatherResult g,
                             GatherEveryMemberLocked(mine, tag, DescribeExchange("all-gather", tag),
                                                     /*any_length=*/false));
  // Absent peers' columns are NaN: no vote, no value.
  Matrix values =
      Matrix::Constant(Eigen::Index(mine.size()), size_, std::numeric_limits<double>::quiet_NaN());
  for (int p : members_) values.col(p) = g.pieces[size_t(p)];
  return values;
}

StatusOr<std::vector<std::vector<double>>> PeerGroup::AllGatherV(std::span<const double> mine,
                                                                 ExchangeTag tag) {
  std::lock_guard<std::mutex> lock(mu_);
  // One exchange of pieces of any length (two, sizes and then pieces padded
  // to the longest, put the tag out of step where a peer's sizes ran out of
  // time and another's did not: its data came later to a peer that had
  // stopped, and that peer's next exchange with the tag took it).
  POLYGUARD_ASSIGN_OR_RETURN(
      GatherResult g, GatherEveryMemberLocked(mine, tag, DescribeExchange("all-gather-v", tag),
                                              /*any_length=*/true));
  std::vector<std::vector<double>> out(static_cast<size_t>(size_));  // absent peers: empty
  for (int p : members_) {
    const Matrix& piece = g.pieces[size_t(p)];
    out[static_cast<size_t>(p)].assign(piece.data(), piece.data() + piece.size());
  }
  return out;
}

Status PeerGroup::Broadcast(int root, std::vector<double>* data, ExchangeTag tag) {
  if (root < 0 || root >= size_) {
    // Still take part, as a peer that is not the root: a refused call that
    // sent nothing left this tag out of step (as GatherAtLeast's need).
    (void)AllGatherV({}, tag);
    return InvalidArgumentError("broadcast: root " + std::to_string(root) + " out of range [0, " +
                                std::to_string(size_) + ")");
  }
  if (const std::string absent = AbsentAmong({root}); !absent.empty()) {
    (void)AllGatherV({}, tag);  // take part all the same (as above)
    return UnavailableError("broadcast: root " + absent);
  }
  // Non-roots contribute nothing; a small price for one code path.
  std::span<const double> mine;
  if (rank_ == root) mine = *data;
  POLYGUARD_ASSIGN_OR_RETURN(auto all, AllGatherV(mine, tag));
  if (rank_ != root) *data = std::move(all[static_cast<size_t>(root)]);
  return Status::Ok();
}

}  // namespace polyguard
