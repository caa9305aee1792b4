// The only file that calls gloo. Every gloo exception is caught here and
// becomes a Status.
#include "polyguard/runtime/peer_group.h"

#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/hash_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/redis_store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include "polyguard/base/random.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"  // FormatPeers

namespace polyguard {
namespace {
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
  void construct(U* p) { ::new (static_cast<void*>(p)) U; }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) { ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...); }
};
using Memory = std::vector<double, UninitializedAllocator<double>>;
}  // namespace

struct PeerGroup::Impl {
  // A buffer whose gloo operation may still complete, with its memory. gloo
  // may write into (or read from) it late, so it lives until its operation is
  // known to be complete (then it is freed) or the group is destroyed.
  struct Pending {
    std::shared_ptr<Memory> memory;  // sends: one copy per exchange for all of them
    Matrix piece;                    // receives: handed to the caller once complete
    std::unique_ptr<gloo::transport::UnboundBuffer> buffer;
    int sends = 0;        // sends posted from this buffer and not yet confirmed
    int peer = -1;        // the other end
    uint64_t exchange = 0;
    bool done = false;    // its operation completed: safe to free
  };

  std::shared_ptr<gloo::rendezvous::Store> base_store;
  std::unique_ptr<gloo::rendezvous::PrefixStore> store;
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::rendezvous::Context> context;
  std::vector<Pending> pending;
  uint64_t exchanges = 0;
  std::vector<uint64_t> last_heard;  // per peer: the latest exchange it delivered to us

  void FreeDone() {
    std::erase_if(pending, [](const Pending& p) { return p.done; });
  }

  ~Impl() {
    pending.clear();  // buffers before the context they belong to
    context.reset();
  }
};

namespace {

enum Phase : uint64_t { kData = 1, kSizes = 2, kDirect = 3 };

uint64_t SlotOf(const ExchangeTag& tag, uint64_t phase) {
  return DeriveSeed(0x9100, {uint64_t(tag.step), uint64_t(tag.layer), uint64_t(tag.op), phase});
}

std::string Describe(const char* op, const ExchangeTag& tag) {
  return std::string(op) + " (step " + std::to_string(tag.step) + ", layer " +
         std::to_string(tag.layer) + ", op " + std::to_string(tag.op) + ")";
}

// In-process stores, shared by name between the threads of this process.
std::shared_ptr<gloo::rendezvous::Store> InprocStore(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<gloo::rendezvous::Store>> stores;
  std::lock_guard<std::mutex> lock(mu);
  auto& s = stores[name];
  if (!s) s = std::make_shared<gloo::rendezvous::HashStore>();
  return s;
}

StatusOr<std::shared_ptr<gloo::rendezvous::Store>> MakeStore(const std::string& url) {
  if (url.empty()) return InvalidArgumentError("rendezvous: empty; expected file:DIR, redis://HOST:PORT or inproc:NAME");
  if (url.rfind("inproc:", 0) == 0) return InprocStore(url.substr(7));
  if (url.rfind("redis://", 0) == 0) {
    const std::string rest = url.substr(8);
    const auto colon = rest.rfind(':');
    std::string host = rest;
    int port = 6379;
    if (colon != std::string::npos) {
      host = rest.substr(0, colon);
      try {
        size_t used = 0;
        port = std::stoi(rest.substr(colon + 1), &used);
        if (used != rest.size() - colon - 1 || port < 1 || port > 65535) throw std::invalid_argument("");
      } catch (const std::exception&) {
        return InvalidArgumentError("rendezvous '" + url + "': bad port");
      }
    }
    if (host.empty()) return InvalidArgumentError("rendezvous '" + url + "': missing host");
    try {
      return std::shared_ptr<gloo::rendezvous::Store>(
          std::make_shared<gloo::rendezvous::RedisStore>(host, port));
    } catch (const std::exception& e) {
      return UnavailableError("rendezvous '" + url + "': cannot reach Redis: " + e.what());
    }
  }
  std::string dir = url.rfind("file:", 0) == 0 ? url.substr(5) : url;
  if (dir.empty() || dir[0] != '/') {
    return InvalidArgumentError("rendezvous '" + url +
                                "': expected file:/abs/dir, redis://HOST:PORT or inproc:NAME");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return UnavailableError("rendezvous folder '" + dir + "': " + ec.message());
  try {
    return std::shared_ptr<gloo::rendezvous::Store>(
        std::make_shared<gloo::rendezvous::FileStore>(dir));
  } catch (const std::exception& e) {
    return UnavailableError("rendezvous folder '" + dir + "': " + e.what());
  }
}

Status FromGloo(const std::string& what, const std::exception& e) {
  const std::string msg = e.what();
  if (msg.find("Timed out") != std::string::npos || msg.find("timed out") != std::string::npos) {
    return DeadlineExceededError(what + ": " + msg);
  }
  return UnavailableError(what + ": " + msg);
}

}  // namespace

StatusOr<std::unique_ptr<PeerGroup>> PeerGroup::Connect(const PeerGroupOptions& o) {
  if (o.size < 1 || o.rank < 0 || o.rank >= o.size) {
    return InvalidArgumentError("peer group: rank " + std::to_string(o.rank) +
                                " out of range for " + std::to_string(o.size) + " peers");
  }
  if (o.timeout.count() <= 0) return InvalidArgumentError("peer group: timeout must be > 0");
  if (o.job_id.empty()) return InvalidArgumentError("peer group: empty job id");
  // gloo writes to sockets without MSG_NOSIGNAL: a peer that disappears
  // would kill this process with SIGPIPE instead of becoming an error. Ignore
  // SIGPIPE unless the application installed its own handler.
  {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      ::signal(SIGPIPE, SIG_IGN);
    }
  }
  auto impl = std::make_unique<Impl>();
  POLYGUARD_ASSIGN_OR_RETURN(impl->base_store, MakeStore(o.rendezvous));
  const std::string what = "connect rank " + std::to_string(o.rank) + " of " +
                           std::to_string(o.size) + " via " + o.rendezvous;
  try {
    impl->store = std::make_unique<gloo::rendezvous::PrefixStore>(o.job_id, *impl->base_store);
    gloo::transport::tcp::attr attr;
    attr.hostname = o.hostname;
    impl->device = gloo::transport::tcp::CreateDevice(attr);
    impl->context = std::make_shared<gloo::rendezvous::Context>(o.rank, o.size);
    impl->context->setTimeout(o.timeout);
    impl->context->connectFullMesh(*impl->store, impl->device);
  } catch (const std::exception& e) {
    return FromGloo(what, e);
  }
  return std::unique_ptr<PeerGroup>(new PeerGroup(o.rank, o.size, o.timeout, std::move(impl)));
}

PeerGroup::PeerGroup(int rank, int size, std::chrono::milliseconds timeout,
                     std::unique_ptr<Impl> impl)
    : rank_(rank), size_(size), timeout_(timeout), impl_(std::move(impl)) {}

PeerGroup::~PeerGroup() { (void)Flush(timeout_); }

int64_t PeerGroup::pending_buffers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(impl_->pending.size());
}

Status PeerGroup::Flush(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  if (broken_ || !impl_ || !impl_->context) return Status::Ok();
  if (!WaitForSends(std::chrono::steady_clock::now() + timeout,
                    [](int, uint64_t) { return true; })) {
    return DeadlineExceededError("flush: pieces not taken within " +
                                 std::to_string(timeout.count()) + " ms");
  }
  return Status::Ok();
}

bool PeerGroup::WaitForSends(std::chrono::steady_clock::time_point deadline,
                             const std::function<bool(int, uint64_t)>& which) {
  // Aborted at the deadline instead of a gloo timeout, which would close
  // every connection.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false, expired = false;
  gloo::transport::UnboundBuffer* waiting = nullptr;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> l(mu);
    if (!cv.wait_until(l, deadline, [&] { return done; })) {
      expired = true;
      if (waiting != nullptr) waiting->abortWaitSend();
    }
  });
  bool all = true;
  for (Impl::Pending& p : impl_->pending) {
    if (p.sends == 0 || !which(p.peer, p.exchange)) continue;
    {
      std::lock_guard<std::mutex> l(mu);
      if (expired) {
        all = false;
        break;
      }
      waiting = p.buffer.get();
    }
    bool ok = false;
    bool failed = false;
    try {
      ok = p.buffer->waitSend(nullptr, timeout_ + std::chrono::milliseconds(2000));
    } catch (const std::exception&) {
      failed = true;  // that receiver is gone: nothing left to wait for
    }
    {
      std::lock_guard<std::mutex> l(mu);
      waiting = nullptr;
    }
    if (failed) {
      p.sends = 0;  // kept: gloo may still hold it after the failure
      continue;
    }
    if (!ok) {
      all = false;
      break;
    }
    p.sends = 0;
    p.done = true;
  }
  {
    std::lock_guard<std::mutex> l(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  impl_->FreeDone();
  return all;
}

namespace {
// A completed receive's memory, as an n x 1 matrix (no copy). gloo holds the
// buffer no longer, so the memory can change hands.
Matrix TakePiece(PeerGroup::Impl::Pending* recv, int64_t n) {
  Matrix piece = std::move(recv->piece);
  if (piece.rows() != n) piece.conservativeResize(n, 1);  // empty pieces travel as one number
  return piece;
}
}  // namespace

StatusOr<GatherResult> PeerGroup::GatherLocked(std::span<const double> mine, int need,
                                               std::chrono::steady_clock::time_point deadline,
                                               uint64_t slot, const std::string& what) {
  if (broken_) return UnavailableError(what + ": peer group failed earlier: " + broken_reason_);
  // No exchange waits longer than the failure timeout.
  const auto failure_deadline = std::chrono::steady_clock::now() + timeout_;
  // Waiting for everyone until the failure timeout needs no waiter threads.
  const bool wait_for_all = need >= size_ && deadline >= failure_deadline;
  deadline = std::min(deadline, failure_deadline);
  const int64_t n = static_cast<int64_t>(mine.size());
  GatherResult out;
  out.pieces.resize(static_cast<size_t>(size_));
  out.pieces[size_t(rank_)] = Eigen::Map<const Vector>(mine.data(), n);
  out.peers.push_back(rank_);
  if (size_ == 1 || need <= 1) return out;

  // gloo buffers may not be empty: pieces travel with at least one number.
  // One buffer per peer and direction: a connection that closes (a crashed
  // peer, or one that finished and left) poisons only its own buffers.
  // Sends of earlier exchanges whose receiver has since delivered a later
  // piece: it posted our receive before that, so they are complete (or about
  // to be). Freeing them keeps memory bounded over a long job.
  const uint64_t exchange = ++impl_->exchanges;
  if (impl_->last_heard.empty()) impl_->last_heard.assign(static_cast<size_t>(size_), 0);
  WaitForSends(std::chrono::steady_clock::now() + std::chrono::milliseconds(200),
               [&](int peer, uint64_t sent_in) {
                 return impl_->last_heard[static_cast<size_t>(peer)] > sent_in;
               });

  const size_t len = static_cast<size_t>(std::max<int64_t>(n, 1));
  const size_t bytes = len * sizeof(double);
  std::vector<int> others;
  for (int p = 0; p < size_; ++p)
    if (p != rank_) others.push_back(p);
  std::vector<int> unreachable;
  std::vector<Impl::Pending*> recvs(others.size(), nullptr);
  try {
    auto memory = std::make_shared<Memory>(len);
    (*memory)[0] = 0.0;  // an empty piece still travels as one number
    if (n > 0) std::memcpy(memory->data(), mine.data(), sizeof(double) * size_t(n));
    for (int p : others) {
      Impl::Pending send;
      send.memory = memory;
      send.peer = p;
      send.exchange = exchange;
      send.buffer = impl_->context->createUnboundBuffer(memory->data(), bytes);
      try {
        send.buffer->send(p, slot);
        send.sends = 1;
        bytes_sent_ += static_cast<int64_t>(bytes);
      } catch (const std::exception&) {
        unreachable.push_back(p);
      }
      impl_->pending.push_back(std::move(send));
    }
    for (size_t i = 0; i < others.size(); ++i) {
      Impl::Pending recv;
      recv.piece.resize(static_cast<Eigen::Index>(len), 1);
      recv.peer = others[i];
      recv.exchange = exchange;
      recv.buffer = impl_->context->createUnboundBuffer(recv.piece.data(), bytes);
      try {
        recv.buffer->recv(others[i], slot);
      } catch (const std::exception&) {
        // That connection is gone (posting on a failed pair throws); its
        // waiter below fails at once.
        if (std::find(unreachable.begin(), unreachable.end(), others[i]) == unreachable.end())
          unreachable.push_back(others[i]);
      }
      impl_->pending.push_back(std::move(recv));
    }
  } catch (const std::exception& e) {
    broken_ = true;
    broken_reason_ = e.what();
    return FromGloo(what, e);
  }
  for (size_t i = 0; i < others.size(); ++i)
    recvs[i] = &impl_->pending[impl_->pending.size() - others.size() + i];

  if (wait_for_all) {
    // Every piece is needed and the deadline is the failure timeout: wait for
    // each in turn (live peers send before they wait, so a gone peer does not
    // hide the others). A gone peer fails its wait at once; a silent one at
    // gloo's timeout, which (as for any failure) leaves the group unusable.
    std::vector<int> gone;
    std::string reason;
    for (size_t i = 0; i < others.size(); ++i) {
      const int q = others[i];
      std::string error;
      if (std::find(unreachable.begin(), unreachable.end(), q) != unreachable.end()) {
        error = "connection gone";
      } else {
        try {
          const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
              deadline - std::chrono::steady_clock::now());
          if (recvs[i]->buffer->waitRecv(nullptr, std::max(left, std::chrono::milliseconds(1)))) {
            out.pieces[size_t(q)] = TakePiece(recvs[i], n);
            out.peers.push_back(q);
            recvs[i]->done = true;
            impl_->last_heard[static_cast<size_t>(q)] = exchange;
            bytes_received_ += static_cast<int64_t>(bytes);
            continue;
          }
          error = "no piece within the timeout";
        } catch (const std::exception& e) {
          error = e.what();
        }
        if (error.find("imed out") != std::string::npos || error.find("timeout") != std::string::npos) {
          broken_ = true;  // gloo closed every connection
          broken_reason_ = error;
        }
      }
      gone.push_back(q);
      if (reason.empty()) reason = error;
    }
    impl_->FreeDone();
    if (!gone.empty()) {
      return UnavailableError(what + ": need every piece but peers " + FormatPeers(gone) +
                              " are gone (" + reason + ")");
    }
    std::sort(out.peers.begin(), out.peers.end());
    return out;
  }

  // One waiter per source. The deadline (and an early finish) abort the
  // waits still in progress, which unlike a gloo timeout leaves every
  // connection usable; gloo's own timeout, a little later, only catches a
  // wait nobody aborted.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> arrived;
  std::vector<std::pair<int, std::string>> failed;
  int finished = 0;
  const auto gloo_timeout = timeout_ + std::chrono::milliseconds(2000);
  std::vector<std::thread> waiters;
  for (size_t i = 0; i < others.size(); ++i) {
    const bool posted =
        std::find(unreachable.begin(), unreachable.end(), others[i]) == unreachable.end();
    waiters.emplace_back([&, i, posted] {
      bool ok = false;
      std::string error = posted ? "" : "connection gone";
      if (posted) {
        try {
          ok = recvs[i]->buffer->waitRecv(nullptr, gloo_timeout);
        } catch (const std::exception& e) {
          error = e.what();
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      if (ok) arrived.push_back(others[i]);
      if (!error.empty()) failed.emplace_back(others[i], error);
      ++finished;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    // Peers known gone: a failed send or a failed receive (counted once).
    auto gone_count = [&] {
      std::vector<int> gone = unreachable;
      for (const auto& f : failed) gone.push_back(f.first);
      std::sort(gone.begin(), gone.end());
      return static_cast<int>(std::unique(gone.begin(), gone.end()) - gone.begin());
    };
    cv.wait_until(lock, deadline, [&] {
      return int(arrived.size()) + 1 >= need || finished == int(others.size()) ||
             size_ - gone_count() < need;
    });
  }
  for (Impl::Pending* r : recvs) r->buffer->abortWaitRecv();
  for (std::thread& t : waiters) t.join();

  for (int q : arrived) {
    const size_t i = static_cast<size_t>(std::find(others.begin(), others.end(), q) - others.begin());
    out.pieces[size_t(q)] = TakePiece(recvs[i], n);
    out.peers.push_back(q);
    bytes_received_ += static_cast<int64_t>(bytes);
    recvs[i]->done = true;  // completed: gloo holds it no longer
    impl_->last_heard[static_cast<size_t>(q)] = exchange;
  }
  impl_->FreeDone();
  std::sort(out.peers.begin(), out.peers.end());
  if (int(out.peers.size()) < need) {
    std::vector<int> gone = unreachable;
    std::string reason;
    for (const auto& [q, msg] : failed) {
      gone.push_back(q);
      if (reason.empty()) reason = msg;
      if (msg.find("Timed out") != std::string::npos) {
        broken_ = true;  // gloo closed every connection
        broken_reason_ = msg;
      }
    }
    std::sort(gone.begin(), gone.end());
    gone.erase(std::unique(gone.begin(), gone.end()), gone.end());
    if (size_ - int(gone.size()) < need) {
      return UnavailableError(what + ": need " + std::to_string(need) + " pieces but peers " +
                              FormatPeers(gone) + " are gone" +
                              (reason.empty() ? std::string() : " (" + reason + ")"));
    }
  }
  return out;
}

StatusOr<GatherResult> PeerGroup::GatherAtLeast(std::span<const double> mine, int need,
                                                std::chrono::steady_clock::time_point deadline,
                                                ExchangeTag tag) {
  if (need < 1 || need > size_) {
    return InvalidArgumentError("gather: need must be in [1, " + std::to_string(size_) +
                                "], got " + std::to_string(need));
  }
  std::lock_guard<std::mutex> lock(mu_);
  return GatherLocked(mine, need, deadline, SlotOf(tag, kData), Describe("gather", tag));
}

StatusOr<Matrix> PeerGroup::AllGather(std::span<const double> mine, ExchangeTag tag) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what = Describe("all-gather", tag);
  POLYGUARD_ASSIGN_OR_RETURN(
      GatherResult g,
      GatherLocked(mine, size_, std::chrono::steady_clock::now() + timeout_,
                   SlotOf(tag, kData), what));
  if (int(g.peers.size()) < size_) {
    std::vector<int> missing;
    for (int p = 0; p < size_; ++p)
      if (!std::binary_search(g.peers.begin(), g.peers.end(), p)) missing.push_back(p);
    return DeadlineExceededError(what + ": no piece from peers " + FormatPeers(missing) +
                                 " within " + std::to_string(timeout_.count()) + " ms");
  }
  Matrix values(mine.size(), size_);
  for (int p = 0; p < size_; ++p) values.col(p) = g.pieces[size_t(p)];
  return values;
}

StatusOr<std::vector<std::vector<double>>> PeerGroup::AllGatherV(std::span<const double> mine,
                                                                 ExchangeTag tag) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what = Describe("all-gather-v", tag);
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  const double my_size = static_cast<double>(mine.size());
  POLYGUARD_ASSIGN_OR_RETURN(GatherResult sizes,
                             GatherLocked(std::span<const double>(&my_size, 1), size_, deadline,
                                          SlotOf(tag, kSizes), what));
  if (int(sizes.peers.size()) < size_) {
    return DeadlineExceededError(what + ": sizes did not arrive within " +
                                 std::to_string(timeout_.count()) + " ms");
  }
  int64_t longest = 0;
  for (const Matrix& s : sizes.pieces) longest = std::max(longest, static_cast<int64_t>(s(0, 0)));
  std::vector<double> padded(static_cast<size_t>(longest), 0.0);
  std::copy(mine.begin(), mine.end(), padded.begin());
  POLYGUARD_ASSIGN_OR_RETURN(GatherResult data,
                             GatherLocked(padded, size_, deadline, SlotOf(tag, kData), what));
  if (int(data.peers.size()) < size_) {
    return DeadlineExceededError(what + ": data did not arrive within " +
                                 std::to_string(timeout_.count()) + " ms");
  }
  std::vector<std::vector<double>> out(static_cast<size_t>(size_));
  for (int p = 0; p < size_; ++p) {
    const auto len = static_cast<int64_t>(sizes.pieces[size_t(p)](0, 0));
    const double* values = data.pieces[size_t(p)].data();
    out[static_cast<size_t>(p)].assign(values, values + len);
  }
  return out;
}

Status PeerGroup::Broadcast(int root, std::vector<double>* data, ExchangeTag tag) {
  if (root < 0 || root >= size_) {
    return InvalidArgumentError("broadcast: root " + std::to_string(root) + " out of range");
  }
  // Non-roots contribute nothing; a small price for one code path.
  std::span<const double> mine;
  if (rank_ == root) mine = *data;
  POLYGUARD_ASSIGN_OR_RETURN(auto all, AllGatherV(mine, tag));
  if (rank_ != root) *data = std::move(all[static_cast<size_t>(root)]);
  return Status::Ok();
}

StatusOr<std::vector<std::vector<double>>> PeerGroup::SendRecv(
    const std::vector<std::vector<double>>& to, const std::vector<int64_t>& from_lengths,
    ExchangeTag tag) {
  const std::string what = Describe("send-recv", tag);
  if (int(to.size()) != size_ || int(from_lengths.size()) != size_) {
    return InvalidArgumentError(what + ": needs one entry per peer (" + std::to_string(size_) +
                                ")");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (broken_) return UnavailableError(what + ": peer group failed earlier: " + broken_reason_);
  const uint64_t slot = SlotOf(tag, kDirect);
  const uint64_t exchange = ++impl_->exchanges;
  if (impl_->last_heard.empty()) impl_->last_heard.assign(static_cast<size_t>(size_), 0);
  std::vector<std::vector<double>> out(static_cast<size_t>(size_));
  std::vector<size_t> recv_index(static_cast<size_t>(size_), SIZE_MAX);
  try {
    for (int p = 0; p < size_; ++p) {
      const auto& data = to[static_cast<size_t>(p)];
      if (p == rank_ || data.empty()) continue;
      Impl::Pending send;
      send.memory = std::make_shared<Memory>(data.begin(), data.end());
      send.peer = p;
      send.exchange = exchange;
      send.buffer = impl_->context->createUnboundBuffer(send.memory->data(),
                                                        data.size() * sizeof(double));
      send.buffer->send(p, slot);
      send.sends = 1;
      bytes_sent_ += static_cast<int64_t>(data.size() * sizeof(double));
      impl_->pending.push_back(std::move(send));
    }
    for (int q = 0; q < size_; ++q) {
      const int64_t len = from_lengths[static_cast<size_t>(q)];
      if (q == rank_ || len <= 0) continue;
      Impl::Pending recv;
      recv.memory = std::make_shared<Memory>(static_cast<size_t>(len));
      recv.peer = q;
      recv.exchange = exchange;
      recv.buffer = impl_->context->createUnboundBuffer(recv.memory->data(),
                                                        size_t(len) * sizeof(double));
      recv.buffer->recv(q, slot);
      recv_index[static_cast<size_t>(q)] = impl_->pending.size();
      impl_->pending.push_back(std::move(recv));
    }
    for (int q = 0; q < size_; ++q) {
      const size_t i = recv_index[static_cast<size_t>(q)];
      if (i == SIZE_MAX) continue;
      Impl::Pending& recv = impl_->pending[i];
      bool ok = false;
      try {
        ok = recv.buffer->waitRecv(nullptr, timeout_);
      } catch (const std::exception& e) {
        broken_ = true;
        broken_reason_ = e.what();
        return UnavailableError(what + ": peer " + std::to_string(q) + " is gone (" + e.what() +
                                ")");
      }
      if (!ok) {
        return DeadlineExceededError(what + ": nothing from peer " + std::to_string(q) +
                                     " within " + std::to_string(timeout_.count()) + " ms");
      }
      out[static_cast<size_t>(q)].assign(recv.memory->begin(), recv.memory->end());
      bytes_received_ += static_cast<int64_t>(recv.memory->size() * sizeof(double));
      recv.done = true;
      impl_->last_heard[static_cast<size_t>(q)] = exchange;
    }
  } catch (const std::exception& e) {
    broken_ = true;
    broken_reason_ = e.what();
    return FromGloo(what, e);
  }
  impl_->FreeDone();
  return out;
}

}  // namespace polyguard
