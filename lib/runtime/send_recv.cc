// Point-to-point exchanges: only the pieces asked for travel (e.g. rebuilding
// one shard from K others).
#include <cstdint>
#include <exception>
#include <string>

#include "lib/runtime/gloo_errors.h"
#include "lib/runtime/peer_group_impl.h"
#include "polyguard/runtime/peer_group.h"

namespace polyguard {

using internal::PendingBuffer;

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
  const uint64_t slot = internal::SlotOf(tag, internal::kDirect);
  internal::PendingBuffers& pending = impl_->pending;
  const uint64_t exchange = pending.BeginExchange();
  std::vector<std::vector<double>> out(static_cast<size_t>(size_));
  std::vector<size_t> recv_index(static_cast<size_t>(size_), SIZE_MAX);
  try {
    for (int p = 0; p < size_; ++p) {
      const auto& data = to[static_cast<size_t>(p)];
      if (p == rank_ || data.empty()) continue;
      PendingBuffer send;
      send.memory = std::make_shared<internal::Memory>(data.begin(), data.end());
      send.peer = p;
      send.exchange = exchange;
      send.buffer =
          impl_->context->createUnboundBuffer(send.memory->data(), data.size() * sizeof(double));
      send.buffer->send(impl_->gloo_rank[size_t(p)], slot);
      send.sends = 1;
      bytes_sent_ += static_cast<int64_t>(data.size() * sizeof(double));
      pending.Add(std::move(send));
    }
    for (int q = 0; q < size_; ++q) {
      const int64_t len = from_lengths[static_cast<size_t>(q)];
      if (q == rank_ || len <= 0) continue;
      PendingBuffer recv;
      recv.memory = std::make_shared<internal::Memory>(static_cast<size_t>(len));
      recv.peer = q;
      recv.exchange = exchange;
      recv.buffer =
          impl_->context->createUnboundBuffer(recv.memory->data(), size_t(len) * sizeof(double));
      recv.buffer->recv(impl_->gloo_rank[size_t(q)], slot);
      recv_index[static_cast<size_t>(q)] = static_cast<size_t>(pending.size());
      pending.Add(std::move(recv));
    }
    for (int q = 0; q < size_; ++q) {
      const size_t i = recv_index[static_cast<size_t>(q)];
      if (i == SIZE_MAX) continue;
      PendingBuffer& recv = pending.buffers()[i];
      bool ok = false;
      try {
        ok = recv.buffer->waitRecv(nullptr, timeout_);
      } catch (const std::exception& e) {
        broken_ = true;
        broken_reason_ = e.what();
        NoteLost(q, internal::ClassifyGlooError(e.what()) != internal::GlooError::kTimeout);
        return UnavailableError(what + ": peer " + std::to_string(q) + " is gone (" + e.what() +
                                ")");
      }
      if (!ok) {
        NoteLost(q, /*closed=*/false);
        return DeadlineExceededError(what + ": nothing from peer " + std::to_string(q) +
                                     " within " + std::to_string(timeout_.count()) + " ms");
      }
      out[static_cast<size_t>(q)].assign(recv.memory->begin(), recv.memory->end());
      bytes_received_ += static_cast<int64_t>(recv.memory->size() * sizeof(double));
      recv.done = true;
      pending.Heard(q, exchange);
    }
  } catch (const std::exception& e) {
    broken_ = true;
    broken_reason_ = e.what();
    return internal::GlooErrorStatus(what, e);
  }
  pending.FreeDone();
  return out;
}

}  // namespace polyguard
