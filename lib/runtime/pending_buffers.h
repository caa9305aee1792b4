// Buffer lifetime: gloo reads a send buffer and writes a receive buffer
// asynchronously, possibly after the exchange that posted it has returned (a
// straggler's piece arriving after the deadline, a send whose receiver has
// not asked yet). Such a buffer is kept, with its memory, until its operation
// is known complete, and only then freed; those of a dead peer stay until the
// group is destroyed.
#ifndef POLYGUARD_LIB_RUNTIME_PENDING_BUFFERS_H_
#define POLYGUARD_LIB_RUNTIME_PENDING_BUFFERS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include <gloo/transport/unbound_buffer.h>

#include "lib/runtime/waiter_threads.h"
#include "polyguard/base/matrix.h"

namespace polyguard::internal {

// Receive buffers are overwritten by gloo: zeroing them first cost a pass
// over every piece of every exchange.
template <class T>
struct UninitializedAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <class U>
  UninitializedAllocator(const UninitializedAllocator<U>&) {}
  template <class U>
  void construct(U* p) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using Memory = std::vector<double, UninitializedAllocator<double>>;

// One gloo buffer whose operation may still complete, with its memory.
struct PendingBuffer {
  std::shared_ptr<Memory> memory;  // sends: one copy per exchange for all of them
  Matrix piece;                    // gather receives: handed to the caller once complete
  std::unique_ptr<gloo::transport::UnboundBuffer> buffer;
  int sends = 0;  // sends posted from this buffer and not yet confirmed
  int peer = -1;  // the other end
  uint64_t exchange = 0;
  bool done = false;  // its operation completed: safe to free
};

// The buffers of one peer group, and what is known about their completion.
class PendingBuffers {
 public:
  // For a group of `peers` peers.
  explicit PendingBuffers(int peers)
      : waiters_(peers - 1), peers_(peers), last_heard_(static_cast<size_t>(peers), 0) {}

  // Numbers a new exchange (from 1).
  uint64_t BeginExchange() { return ++exchanges_; }

  // Keeps `buffer`; the reference is valid until the next Add or FreeDone.
  PendingBuffer& Add(PendingBuffer buffer);
  std::vector<PendingBuffer>& buffers() { return buffers_; }
  int64_t size() const { return static_cast<int64_t>(buffers_.size()); }

  // `peer` delivered its piece of `exchange` to us.
  void Heard(int peer, uint64_t exchange) { last_heard_[static_cast<size_t>(peer)] = exchange; }

  // Frees the buffers whose operation completed in an exchange before the
  // current one. Not those of the current exchange: gloo's I/O thread may
  // still hold a buffer it just completed, and destroying it then spins
  // (sched_yield) until gloo lets go.
  void FreeDone();

  // Waits (aborting at `deadline`) for the posted sends `which(peer,
  // exchange)` selects, and frees the completed ones. False when the deadline
  // cut it short. `gloo_timeout` bounds each wait should the abort fail.
  bool WaitForSends(std::chrono::steady_clock::time_point deadline,
                    std::chrono::milliseconds gloo_timeout,
                    const std::function<bool(int, uint64_t)>& which);

  // Frees the sends of earlier exchanges whose receiver has since delivered a
  // later piece: it posted our receive before that, so they are complete (or
  // about to be). Keeps memory bounded over a long job. Only once
  // kReleaseBatch exchanges' sends are held: each release wakes a waiter
  // thread for its watchdog, which at every exchange was a share of the
  // job's context switches.
  static constexpr int kReleaseBatch = 4;
  void ReleaseDeliveredSends(std::chrono::milliseconds gloo_timeout);

  // Drops every buffer (before the gloo context they belong to).
  void Clear() { buffers_.clear(); }

  // The group's threads for waits that run beside the exchange's own thread
  // (one per other peer).
  WaiterThreads& waiters() { return waiters_; }

 private:
  WaiterThreads waiters_;  // its threads start on first use
  std::vector<PendingBuffer> buffers_;
  int peers_;
  uint64_t exchanges_ = 0;
  std::vector<uint64_t> last_heard_;  // per peer: the latest exchange it delivered to us
};

}  // namespace polyguard::internal

#endif  // POLYGUARD_LIB_RUNTIME_PENDING_BUFFERS_H_
