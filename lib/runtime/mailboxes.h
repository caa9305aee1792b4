// Mailboxes: the transport of a peer group's gathers. Each piece is one gloo
// message into a receive buffer registered ahead (a bound buffer), instead of
// the three messages of gloo's unbound buffers (send ready, receive ready,
// data), each a system call and a wake-up on both sides; and no thread is
// started or woken per exchange beyond one receiver per source peer.
//
// Two connections join each pair of peers, one per direction (two gloo
// contexts: Directions). On each, one side only sends: its end stays in
// gloo's asynchronous mode, where gloo's I/O thread finishes a write the
// socket could not take at once, so a peer that stopped reading holds up no
// sender. The other side only receives, in gloo's sync mode: its receiver
// thread reads the socket itself, woken by the kernel when a message comes,
// with no I/O thread and condition variable in between (one wake-up a
// message instead of two: about 0.6 of the wall time of a gather on 8 local
// peers, bench/runtime/transport_bench.cc).
//
// Per source peer, a receiver thread keeps kSlots receive buffers registered
// for the source's next kSlots messages (gloo slot = the message's sequence
// number on that connection, so no message can overwrite another) and files
// each piece that arrives in the inbox under its exchange; the gathering
// thread waits on the inbox. A message is a header (kind, nonce, exchange,
// length), the piece, and a trailer repeating the nonce:
// a piece that gloo wrote in full just before the connection failed is still
// taken (gloo reports the failure first).
//
// gloo ends a bound wait at its pair's timeout by closing the connection, so
// every peer sends a heartbeat (a header alone) on each connection that
// carried nothing for a while: a live peer's connection never times out, and
// a peer silent for a whole timeout (stopped, or its machine gone) is lost.
// Leaving (Close) sends a goodbye on every connection, so that the others
// see this peer gone at once and their receivers for it end.
//
// A piece longer than capacity() doubles travels as several messages.
// Cost per piece and destination: one message of 56 bytes more than the
// piece (per capacity() doubles), one copy of the piece at the sender and
// one at the receiver (out of the registered buffer). Memory: kSlots
// buffers of capacity() doubles per source.
#ifndef POLYGUARD_LIB_RUNTIME_MAILBOXES_H_
#define POLYGUARD_LIB_RUNTIME_MAILBOXES_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <gloo/rendezvous/context.h>
#include <gloo/transport/buffer.h>

#include "polyguard/base/matrix.h"

namespace polyguard::internal {

class Mailboxes {
 public:
  // Receive buffers kept registered per source: a source may run this many
  // messages ahead of its receiver thread before gloo's I/O thread has to
  // poll for the next buffer (a peer descheduled on a busy machine).
  static constexpr int kSlots = 16;
  // Sends waited for together (see in_flight()).
  static constexpr int kCompleteBatch = 64;
  // At most kHeldExchanges exchanges held in the inbox: pieces of exchanges
  // nobody gathers (a peer that skipped them) must not pile up, so the oldest
  // goes (EndGather).
  static constexpr size_t kHeldExchanges = 4096;
  static constexpr size_t kDiscardedRemembered = size_t(1) << 16;

  // A peer whose connection is gone, and why.
  struct Gone {
    std::string reason;
    bool timed_out = false;  // silent for the connection's timeout
  };

  // The connections of one group: `up` carries the messages from each peer
  // to the peers of higher rank, `down` those to lower ranks. Both contexts
  // connected, over the same members.
  struct Directions {
    std::shared_ptr<gloo::rendezvous::Context> up, down;
  };
  // Starts the receivers and the heartbeat timer for `members` (ascending,
  // `rank` among them) over `connections` (gloo_rank: the contexts' rank of
  // each peer, -1 if absent), whose timeout is `connection_timeout`. Puts
  // the receiving end of each connection in gloo's sync mode (gloo throws
  // if a pair is not connected).
  Mailboxes(Directions connections, int rank, const std::vector<int>& members,
            const std::vector<int>& gloo_rank, std::chrono::milliseconds connection_timeout);
  ~Mailboxes();  // Close(), then waits for the receivers to end
  Mailboxes(const Mailboxes&) = delete;
  Mailboxes& operator=(const Mailboxes&) = delete;

  // The most doubles one message carries: kSlots buffers per source take
  // about 16 MiB in all (131,072 / (P - 1) doubles each), at most 128 KiB.
  int64_t capacity() const { return capacity_; }

  // Sends `piece` of `exchange` to every peer in `to`.
  // Returns the peers it could not reach.
  std::vector<int> Send(uint64_t exchange, std::span<const double> piece,
                        const std::vector<int>& to);

  // What a gather has received of one exchange.
  struct Received {
    std::map<int, Matrix> pieces;  // by peer
    std::map<int, Gone> gone;      // peers among `from` whose connection is gone
  };
  // Waits until `done(received)` holds or `deadline` passes, taking the
  // pieces of `exchange` from the peers `from` as they arrive (each peer's
  // first piece of the exchange not yet taken). `done` may hold only once
  // `wanted` pieces are in or a peer is gone: the waiting thread is woken
  // only then (one wake-up a gather instead of one a piece). `done` runs
  // under the mailboxes' lock: keep it cheap.
  template <typename Done>
  void Wait(uint64_t exchange, const std::vector<int>& from, int wanted,
            std::chrono::steady_clock::time_point deadline, Received* received, Done done);
  // The gather of `exchange` ended without the pieces of `missing`: when they
  // come they are dropped (a later exchange with the same tag gets its own).
  // Returns whether the inbox discarded pieces (or pieces to drop) of
  // `exchange` to stay within kHeldExchanges: the gather may then have taken
  // a later exchange's piece, and must fail instead. Remembered for the last
  // kDiscardedRemembered exchanges discarded.
  [[nodiscard]] bool EndGather(uint64_t exchange, const std::vector<int>& missing);

  // Waits until every message sent is written to its connection (the
  // receiver's thread reads it from there, whatever this peer does next) or
  // that connection failed: at most about the connection's timeout, and only
  // when a receiver stopped reading (gloo writes at once otherwise).
  void Flush();
  // Messages gloo may still be writing (diagnostics). Sending never waits
  // for them: a thread of the mailboxes does, so a peer that stopped reading
  // (a stopped process) holds up no exchange, only the memory of what is
  // sent to it until its connection's timeout closes that connection.
  int64_t in_flight() const;
  // Exchanges the inbox holds pieces of, or pieces to drop of.
  int64_t held_exchanges() const;

  // Leaves: goodbye to every peer, heartbeats stop, receivers end as soon
  // as their peer says anything (or goes). Does not wait. Idempotent.
  void Leave();
  // Leave(), then Flush().
  void Close();

 private:
  struct Source;       // one receiver thread's state
  struct Destination;  // what is being sent to one peer

  void Receive(Source* source);
  void Heartbeats();
  // A message's words (send_mu_ held: numbers it).
  std::shared_ptr<std::vector<uint64_t>> Message(uint64_t kind, uint64_t exchange,
                                                 std::span<const double> chunk, uint64_t offset,
                                                 uint64_t total);
  // send_mu_ held: `memory` to `d` (false: its connection is gone).
  bool SendLocked(Destination* d, const std::shared_ptr<std::vector<uint64_t>>& memory);
  // Files a piece (or drops it, if its gather was abandoned); mu_ held.
  // True when the waiting thread should be woken.
  bool FileLocked(int peer, uint64_t exchange, Matrix piece);
  bool TakeLocked(uint64_t exchange, int peer, Matrix* piece);

  Directions connections_;
  int rank_;
  int64_t capacity_;
  std::chrono::milliseconds heartbeat_every_;

  // Inbox: per exchange, the pieces not yet taken (in arrival order; a
  // flat list: a map of queues cost three allocations a piece) and, per
  // peer, pieces to drop. A box is erased once empty, so the inbox holds
  // the exchanges in progress, not the last 4096.
  struct Box {
    std::vector<std::pair<int, Matrix>> pieces;
    std::map<int, int> drop;
    uint64_t made = 0;  // when the box was made: its key in inbox_order_
  };
  using BoxAt = std::map<uint64_t, Box>::iterator;
  // mu_ held: the box of `exchange`, made if there is none (then the oldest
  // box goes if there are too many; never the one made).
  BoxAt BoxLocked(uint64_t exchange);
  // mu_ held: erases the box if it holds nothing; true if it did.
  bool EraseIfEmptyLocked(BoxAt box);
  mutable std::mutex mu_;
  std::condition_variable arrived_;
  std::map<uint64_t, Box> inbox_;
  // The boxes in the order they were made (a tag used again gets a new box
  // once its last one is erased: each box is one entry here, however often
  // its exchange comes back).
  std::map<uint64_t, uint64_t> inbox_order_;  // made -> exchange
  uint64_t boxes_made_ = 0;
  std::set<uint64_t> discarded_;          // see EndGather
  std::deque<uint64_t> discarded_order_;  // oldest first
  std::map<int, Gone> gone_;
  // The exchange a thread waits for, and how many more of its pieces wake it.
  bool waiting_ = false;
  uint64_t waiting_for_ = 0;
  int wake_after_ = 0;

  mutable std::mutex send_mu_;  // Destinations, and the order of messages on each connection
  std::vector<std::unique_ptr<Destination>> destinations_;
  std::vector<std::unique_ptr<Source>> sources_;
  bool closed_ = false;    // under send_mu_
  uint64_t messages_ = 0;  // under send_mu_
  std::atomic<bool> closing_{false};

  struct InFlight;
  void CompleteSends();
  mutable std::mutex flight_mu_;  // after send_mu_ when both are held
  std::condition_variable flight_cv_;
  std::deque<InFlight> in_flight_;  // oldest first
  int64_t writing_ = 0;             // taken from in_flight_, being waited for
  int flush_waiters_ = 0;
  bool stop_completer_ = false;
  std::thread completer_;

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  bool stop_timer_ = false;
  std::thread timer_;
};

template <typename Done>
void Mailboxes::Wait(uint64_t exchange, const std::vector<int>& from, int wanted,
                     std::chrono::steady_clock::time_point deadline, Received* received,
                     Done done) {
  std::unique_lock<std::mutex> lock(mu_);
  auto take = [&](bool gone_too) {
    for (int q : from) {
      if (received->pieces.count(q) != 0 || received->gone.count(q) != 0) continue;
      Matrix piece;
      if (TakeLocked(exchange, q, &piece)) {
        received->pieces.emplace(q, std::move(piece));
      } else if (auto g = gone_.find(q); gone_too && g != gone_.end()) {
        received->gone.emplace(q, g->second);
      }
    }
  };
  waiting_ = true;
  waiting_for_ = exchange;
  for (;;) {
    take(/*gone_too=*/true);
    if (done(*received)) break;
    wake_after_ = std::max(1, wanted - static_cast<int>(received->pieces.size()));
    if (arrived_.wait_until(lock, deadline) == std::cv_status::timeout) {
      take(/*gone_too=*/false);  // one last look: a piece may have come with the deadline
      break;
    }
  }
  waiting_ = false;
}

// Leaves now (goodbye to every peer) and destroys `mail` on a thread of its
// own: a receiver waiting for a stopped peer, or a send to it, may take up
// to its connection's timeout to end. Such threads are joined at exit.
void RetireInBackground(std::unique_ptr<Mailboxes> mail);

}  // namespace polyguard::internal

#endif  // POLYGUARD_LIB_RUNTIME_MAILBOXES_H_
