// Point-to-point exchanges: only the pieces asked for travel (e.g. rebuilding
// one shard from K others), over the group's mailboxes like every gather.
#include <cstdint>
#include <string>

#include "lib/runtime/peer_group_impl.h"
#include "polyguard/runtime/peer_group.h"

namespace polyguard {

StatusOr<std::vector<std::vector<double>>> PeerGroup::SendRecv(
    const std::vector<std::vector<double>>& to, const std::vector<int64_t>& from_lengths,
    ExchangeTag tag) {
  const std::string what = internal::DescribeExchange("send-recv", tag);
  if (int(to.size()) != size_ || int(from_lengths.size()) != size_) {
    return InvalidArgumentError(what + ": needs one entry per peer (" + std::to_string(size_) +
                                ")");
  }
  std::vector<int> involved;
  for (int p = 0; p < size_; ++p) {
    if (p != rank_ && (!to[size_t(p)].empty() || from_lengths[size_t(p)] > 0))
      involved.push_back(p);
  }
  if (const std::string absent = AbsentAmong(involved); !absent.empty()) {
    return UnavailableError(what + ": " + absent);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (broken_) return UnavailableError(what + ": peer group failed earlier: " + broken_reason_);
  internal::Mailboxes& mail = *impl_->mail;
  const uint64_t slot = internal::SlotOf(tag, internal::kDirect);
  for (int p = 0; p < size_; ++p) {
    const auto& data = to[static_cast<size_t>(p)];
    if (p == rank_ || data.empty()) continue;
    if (!mail.Send(slot, data, {p}).empty()) {
      NoteLost(p, /*closed=*/true);
      return UnavailableError(what + ": peer " + std::to_string(p) + " is gone (connection gone)");
    }
    bytes_sent_ += static_cast<int64_t>(data.size() * sizeof(double));
  }
  std::vector<int> from;
  for (int q = 0; q < size_; ++q)
    if (q != rank_ && from_lengths[static_cast<size_t>(q)] > 0) from.push_back(q);
  internal::Mailboxes::Received got;
  mail.Wait(slot, from, static_cast<int>(from.size()), std::chrono::steady_clock::now() + timeout_,
            &got, [&](const internal::Mailboxes::Received& r) {
              return !r.gone.empty() || r.pieces.size() == from.size();
            });
  std::vector<int> missing;
  for (int q : from)
    if (got.pieces.count(q) == 0) missing.push_back(q);
  if (mail.EndGather(slot, missing)) return internal::DiscardedError(what);
  std::vector<std::vector<double>> out(static_cast<size_t>(size_));
  for (int q : from) {
    auto piece = got.pieces.find(q);
    if (piece == got.pieces.end()) {
      if (auto g = got.gone.find(q); g != got.gone.end()) {
        NoteLost(q, /*closed=*/!g->second.timed_out);
        return UnavailableError(what + ": peer " + std::to_string(q) + " is gone (" +
                                g->second.reason + ")");
      }
      NoteLost(q, /*closed=*/false);
      return DeadlineExceededError(what + ": nothing from peer " + std::to_string(q) + " within " +
                                   std::to_string(timeout_.count()) + " ms");
    }
    const Matrix& values = piece->second;
    if (values.size() != from_lengths[static_cast<size_t>(q)]) {
      return InvalidArgumentError(what + ": peer " + std::to_string(q) + " sent " +
                                  std::to_string(values.size()) + " numbers, expected " +
                                  std::to_string(from_lengths[static_cast<size_t>(q)]));
    }
    out[static_cast<size_t>(q)].assign(values.data(), values.data() + values.size());
    bytes_received_ += static_cast<int64_t>(values.size() * sizeof(double));
  }
  return out;
}

}  // namespace polyguard
