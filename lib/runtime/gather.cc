// The gather every collective is built on: this peer's piece goes to every
// other peer, and pieces come back until `need` have arrived (its own
// included), the deadline passes, or too many peers are gone. Pieces travel
// through the group's mailboxes (mailboxes.h): the gathering thread only
// sends and then waits on the inbox its receivers fill, so a deadline or a
// peer gone ends the wait at once and leaves every connection usable.
#include <algorithm>
#include <string>

#include "lib/runtime/peer_group_impl.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"  // FormatPeers
#include "polyguard/runtime/peer_group.h"

namespace polyguard {

StatusOr<GatherResult> PeerGroup::GatherLocked(std::span<const double> mine, int need,
                                               std::chrono::steady_clock::time_point deadline,
                                               uint64_t slot, const std::string& what,
                                               bool any_length) {
  if (broken_) return UnavailableError(what + ": peer group failed earlier: " + broken_reason_);
  const int present = static_cast<int>(members_.size());
  if (need > present) {
    // Still take part (a refusal that sent nothing put the tag out of step
    // at the others: adversary s27).
    (void)GatherLocked(mine, 1, std::chrono::steady_clock::now(), slot, what, any_length);
    std::vector<int> all(static_cast<size_t>(size_));
    for (int p = 0; p < size_; ++p) all[size_t(p)] = p;
    return UnavailableError(what + ": need " + std::to_string(need) + " pieces but " +
                            AbsentAmong(all));
  }
  // No exchange waits longer than the failure timeout.
  const auto failure_deadline = std::chrono::steady_clock::now() + timeout_;
  deadline = std::min(deadline, failure_deadline);
  const int64_t n = static_cast<int64_t>(mine.size());
  GatherResult out;
  out.pieces.resize(static_cast<size_t>(size_));
  out.pieces[size_t(rank_)] = Eigen::Map<const Vector>(mine.data(), n);
  out.peers.push_back(rank_);
  if (size_ == 1) return out;  // need <= 1 still sends: the others may need this piece

  internal::Mailboxes& mail = *impl_->mail;
  std::vector<int> others;
  for (int p : members_)
    if (p != rank_) others.push_back(p);
  const std::vector<int> unreachable = mail.Send(slot, mine, others);
  const int64_t bytes = static_cast<int64_t>(mine.size() * sizeof(double));
  bytes_sent_ += bytes * static_cast<int64_t>(others.size() - unreachable.size());
  // A peer that could not be sent to may still have delivered its piece
  // (one that finished and said goodbye first): gone only if that is not in.
  internal::Mailboxes::Received got;
  auto gone_count = [&](const internal::Mailboxes::Received& r) {
    int count = static_cast<int>(r.gone.size());
    for (int q : unreachable) count += r.gone.count(q) == 0 && r.pieces.count(q) == 0 ? 1 : 0;
    return count;
  };
  mail.Wait(slot, others, need - 1, deadline, &got, [&](const internal::Mailboxes::Received& r) {
    // A piece of another length counts as its peer gone (below).
    int arrived = 0, gone = gone_count(r);
    for (const auto& [q, piece] : r.pieces) (any_length || piece.size() == n ? arrived : gone) += 1;
    return arrived + 1 >= need || arrived + gone == static_cast<int>(others.size()) ||
           present - gone < need;
  });
  for (int q : unreachable)
    if (got.pieces.count(q) == 0) got.gone.emplace(q, internal::Mailboxes::Gone{"connection gone"});
  // A piece of another length is not this exchange's (a peer of another job
  // spec): that peer counts as gone.
  for (auto p = got.pieces.begin(); p != got.pieces.end();) {
    if (any_length || p->second.size() == n) {
      ++p;
      continue;
    }
    got.gone.emplace(p->first, internal::Mailboxes::Gone{
                                   "sent " + std::to_string(p->second.size()) + " numbers where " +
                                   std::to_string(n) + " were expected"});
    p = got.pieces.erase(p);
  }
  std::vector<int> missing;
  for (int q : others) {
    auto p = got.pieces.find(q);
    if (p == got.pieces.end()) {
      if (got.gone.count(q) == 0) missing.push_back(q);
      continue;
    }
    bytes_received_ += static_cast<int64_t>(p->second.size() * sizeof(double));
    out.pieces[size_t(q)] = std::move(p->second);
    out.peers.push_back(q);
  }
  if (mail.EndGather(slot, missing)) return internal::DiscardedError(what);
  std::sort(out.peers.begin(), out.peers.end());
  if (int(out.peers.size()) >= need) return out;
  // Short of `need`: either the deadline passed (whatever arrived is the
  // answer) or too many peers are gone.
  std::vector<int> gone;
  std::string reason;
  for (const auto& [q, g] : got.gone) {
    if (got.pieces.count(q) != 0) continue;
    gone.push_back(q);
    NoteLost(q, /*closed=*/!g.timed_out);
    if (reason.empty()) reason = g.reason;
  }
  if (present - int(gone.size()) >= need) return out;
  const bool every = need >= present;
  return UnavailableError(what + ": need " +
                          (every ? std::string("every piece") : std::to_string(need) + " pieces") +
                          " but peers " + FormatPeers(gone) + " are gone" +
                          (reason.empty() ? std::string() : " (" + reason + ")"));
}

}  // namespace polyguard
