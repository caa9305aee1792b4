// The gather every collective is built on: this peer's piece goes to every
// other peer, and pieces come back until `need` have arrived (its own
// included), the deadline passes, or too many peers are gone. Two ways to
// wait (GatherLocked picks one):
//  - WaitForEveryPiece: every piece is needed and the deadline is the failure
//    timeout. One wait after another on this thread; gloo's own timeout ends
//    a silent peer's (and leaves the group unusable, as any gloo timeout).
//  - WaitForEnoughPieces: fewer pieces, or an earlier deadline. One wait
//    per source, each on one of the group's waiter threads; at the deadline,
//    or once enough have arrived, the waits still running are aborted, which
//    keeps every connection usable.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>

#include "lib/runtime/gloo_errors.h"
#include "lib/runtime/peer_group_impl.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"  // FormatPeers
#include "polyguard/runtime/peer_group.h"

namespace polyguard {
namespace {

using internal::PendingBuffer;
using internal::PendingBuffers;

// One gather's posted sends and receives.
struct PostedGather {
  std::vector<int> others;            // every peer but this one, ascending
  std::vector<PendingBuffer*> recvs;  // recvs[i]: the receive from others[i]
  std::vector<int> unreachable;       // peers whose send or receive could not be posted

  bool Reachable(int q) const {
    return std::find(unreachable.begin(), unreachable.end(), q) == unreachable.end();
  }
  size_t IndexOf(int q) const {
    return static_cast<size_t>(std::find(others.begin(), others.end(), q) - others.begin());
  }
};

// A peer whose piece did not come, and why.
struct Failure {
  int peer = -1;
  std::string reason;
  bool timed_out = false;  // a gloo timeout: gloo closed every connection
};

struct Waited {
  std::vector<int> arrived;  // in arrival order
  std::vector<Failure> failed;
};

Failure FailureOf(int peer, const std::exception& e) {
  return {peer, e.what(), internal::ClassifyGlooError(e.what()) == internal::GlooError::kTimeout};
}

// Posts this peer's piece (`len` >= 1 numbers: gloo buffers may not be
// empty, so an empty piece travels as one number) to every other peer, and a
// receive from each. One buffer per peer and direction: a connection that
// closes (a crashed peer, or one that finished and left) poisons only its own
// buffers. Throws only for failures beyond one connection.
PostedGather PostGather(gloo::rendezvous::Context& context, PendingBuffers& pending,
                        std::span<const double> mine, size_t len, uint64_t slot, uint64_t exchange,
                        int rank, const std::vector<int>& members,
                        const std::vector<int>& gloo_rank, int64_t* bytes_sent) {
  const size_t bytes = len * sizeof(double);
  PostedGather posted;
  for (int p : members)
    if (p != rank) posted.others.push_back(p);
  auto memory = std::make_shared<internal::Memory>(len);
  (*memory)[0] = 0.0;  // an empty piece still travels as one number
  if (!mine.empty()) std::memcpy(memory->data(), mine.data(), sizeof(double) * mine.size());
  for (int p : posted.others) {
    PendingBuffer send;
    send.memory = memory;
    send.peer = p;
    send.exchange = exchange;
    send.buffer = context.createUnboundBuffer(memory->data(), bytes);
    try {
      send.buffer->send(gloo_rank[size_t(p)], slot);
      send.sends = 1;
      *bytes_sent += static_cast<int64_t>(bytes);
    } catch (const std::exception&) {
      posted.unreachable.push_back(p);
    }
    pending.Add(std::move(send));
  }
  for (int q : posted.others) {
    PendingBuffer recv;
    recv.piece.resize(static_cast<Eigen::Index>(len), 1);
    recv.peer = q;
    recv.exchange = exchange;
    recv.buffer = context.createUnboundBuffer(recv.piece.data(), bytes);
    try {
      recv.buffer->recv(gloo_rank[size_t(q)], slot);
    } catch (const std::exception&) {
      // That connection is gone (posting on a failed pair throws); its
      // wait fails at once.
      if (posted.Reachable(q)) posted.unreachable.push_back(q);
    }
    pending.Add(std::move(recv));
  }
  // The receives are the last buffers added.
  const size_t first = pending.buffers().size() - posted.others.size();
  for (size_t i = 0; i < posted.others.size(); ++i)
    posted.recvs.push_back(&pending.buffers()[first + i]);
  return posted;
}

// Waits for each piece in turn until `deadline` (live peers send before they
// wait, so a gone peer does not hide the others). A gone peer fails its wait
// at once; a silent one at gloo's timeout.
Waited WaitForEveryPiece(const PostedGather& posted,
                         std::chrono::steady_clock::time_point deadline) {
  Waited w;
  for (size_t i = 0; i < posted.others.size(); ++i) {
    const int q = posted.others[i];
    if (!posted.Reachable(q)) {
      w.failed.push_back({q, "connection gone"});
      continue;
    }
    try {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (posted.recvs[i]->buffer->waitRecv(nullptr,
                                            std::max(left, std::chrono::milliseconds(1)))) {
        w.arrived.push_back(q);
        continue;
      }
      // Nobody aborts these waits: returning empty-handed means the time ran out.
      w.failed.push_back({q, "no piece within the timeout", /*timed_out=*/true});
    } catch (const std::exception& e) {
      w.failed.push_back(FailureOf(q, e));
    }
  }
  return w;
}

// Waits for each source on a thread of `waiters` until `need` pieces are in
// (own included), every wait has ended, too many peers are gone for `need`,
// or `deadline`; then aborts the waits still running. `gloo_timeout`, a
// little later than any deadline, only catches a wait nobody aborted.
Waited WaitForEnoughPieces(const PostedGather& posted, int need, int present,
                           std::chrono::steady_clock::time_point deadline,
                           std::chrono::milliseconds gloo_timeout,
                           internal::WaiterThreads& waiters) {
  std::mutex mu;
  std::condition_variable cv;
  Waited w;
  int finished = 0;
  // Whether the gather can end (mu held): enough pieces, every wait over, or
  // too many peers gone (a failed send or receive, counted once) for `need`.
  auto can_end = [&] {
    if (int(w.arrived.size()) + 1 >= need || finished == int(posted.others.size())) return true;
    std::vector<int> gone = posted.unreachable;
    for (const Failure& f : w.failed) gone.push_back(f.peer);
    std::sort(gone.begin(), gone.end());
    return present - int(std::unique(gone.begin(), gone.end()) - gone.begin()) < need;
  };
  for (size_t i = 0; i < posted.others.size(); ++i) {
    const int q = posted.others[i];
    const bool reachable = posted.Reachable(q);
    waiters.Start([&, i, q, reachable] {
      bool ok = false;
      Failure failure{q, reachable ? "" : "connection gone"};
      if (reachable) {
        try {
          ok = posted.recvs[i]->buffer->waitRecv(nullptr, gloo_timeout);
        } catch (const std::exception& e) {
          failure = FailureOf(q, e);
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      if (ok) w.arrived.push_back(q);
      if (!failure.reason.empty()) w.failed.push_back(std::move(failure));
      ++finished;
      // Wakes the gathering thread only when it can end: one wake-up a
      // gather instead of one a piece.
      if (can_end()) cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_until(lock, deadline, can_end);
  }
  for (PendingBuffer* r : posted.recvs) r->buffer->abortWaitRecv();
  waiters.Wait();
  return w;
}

// A completed receive's memory, as an n x 1 matrix (no copy). gloo holds the
// buffer no longer, so the memory can change hands.
Matrix TakePiece(PendingBuffer* recv, int64_t n) {
  Matrix piece = std::move(recv->piece);
  if (piece.rows() != n) piece.conservativeResize(n, 1);  // empty pieces travel as one number
  return piece;
}

}  // namespace

StatusOr<GatherResult> PeerGroup::GatherLocked(std::span<const double> mine, int need,
                                               std::chrono::steady_clock::time_point deadline,
                                               uint64_t slot, const std::string& what) {
  if (broken_) return UnavailableError(what + ": peer group failed earlier: " + broken_reason_);
  const int present = static_cast<int>(members_.size());
  if (need > present) {
    std::vector<int> all(static_cast<size_t>(size_));
    for (int p = 0; p < size_; ++p) all[size_t(p)] = p;
    return UnavailableError(what + ": need " + std::to_string(need) + " pieces but " +
                            AbsentAmong(all));
  }
  // No exchange waits longer than the failure timeout.
  const auto failure_deadline = std::chrono::steady_clock::now() + timeout_;
  // Waiting for everyone until the failure timeout needs no waiter threads.
  const bool wait_for_every = need >= present && deadline >= failure_deadline;
  deadline = std::min(deadline, failure_deadline);
  const int64_t n = static_cast<int64_t>(mine.size());
  GatherResult out;
  out.pieces.resize(static_cast<size_t>(size_));
  out.pieces[size_t(rank_)] = Eigen::Map<const Vector>(mine.data(), n);
  out.peers.push_back(rank_);
  if (size_ == 1 || need <= 1) return out;

  PendingBuffers& pending = impl_->pending;
  const uint64_t exchange = pending.BeginExchange();
  pending.ReleaseDeliveredSends(internal::GlooTimeout(timeout_));
  const size_t len = static_cast<size_t>(std::max<int64_t>(n, 1));
  PostedGather posted;
  try {
    posted = PostGather(*impl_->context, pending, mine, len, slot, exchange, rank_, members_,
                        impl_->gloo_rank, &bytes_sent_);
  } catch (const std::exception& e) {
    broken_ = true;
    broken_reason_ = e.what();
    return internal::GlooErrorStatus(what, e);
  }

  const Waited waited =
      wait_for_every ? WaitForEveryPiece(posted, deadline)
                     : WaitForEnoughPieces(posted, need, present, deadline,
                                           internal::GlooTimeout(timeout_), pending.waiters());
  for (int q : waited.arrived) {
    PendingBuffer* recv = posted.recvs[posted.IndexOf(q)];
    out.pieces[size_t(q)] = TakePiece(recv, n);
    out.peers.push_back(q);
    bytes_received_ += static_cast<int64_t>(len * sizeof(double));
    recv->done = true;  // completed: gloo holds it no longer
    pending.Heard(q, exchange);
  }
  pending.FreeDone();
  std::sort(out.peers.begin(), out.peers.end());
  if (int(out.peers.size()) >= need) return out;

  // Short of `need`: either the deadline passed (whatever arrived is the
  // answer) or too many peers are gone.
  std::vector<int> gone;
  for (const Failure& f : waited.failed) {
    gone.push_back(f.peer);
    NoteLost(f.peer, /*closed=*/!f.timed_out);
    if (f.timed_out) {
      broken_ = true;  // gloo closed every connection
      broken_reason_ = f.reason;
    }
  }
  std::sort(gone.begin(), gone.end());
  gone.erase(std::unique(gone.begin(), gone.end()), gone.end());
  if (present - int(gone.size()) >= need) return out;
  const std::string reason = waited.failed.empty() ? "" : waited.failed.front().reason;
  return UnavailableError(
      what + ": need " +
      (wait_for_every ? std::string("every piece") : std::to_string(need) + " pieces") +
      " but peers " + FormatPeers(gone) + " are gone" +
      (reason.empty() ? std::string() : " (" + reason + ")"));
}

}  // namespace polyguard
