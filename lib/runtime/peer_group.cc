// The only file that calls gloo. Every gloo exception is caught here and
// becomes a Status.
#include "polyguard/runtime/peer_group.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
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

struct PeerGroup::Impl {
  // A buffer whose gloo operation may still complete, with its memory. Kept
  // until the group is destroyed: gloo may write into (or read from) it late.
  struct Pending {
    std::vector<double> memory;
    std::unique_ptr<gloo::transport::UnboundBuffer> buffer;
    int sends = 0;  // sends posted from this buffer and not yet confirmed
  };

  std::shared_ptr<gloo::rendezvous::Store> base_store;
  std::unique_ptr<gloo::rendezvous::PrefixStore> store;
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::rendezvous::Context> context;
  std::vector<Pending> pending;

  ~Impl() {
    pending.clear();  // buffers before the context they belong to
    context.reset();
  }
};

namespace {

enum Phase : uint64_t { kData = 1, kSizes = 2 };

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

Status PeerGroup::Flush(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  if (broken_ || !impl_ || !impl_->context) return Status::Ok();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // As in GatherLocked: abort at the deadline instead of a gloo timeout, which
  // would close every connection.
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
  Status status;
  try {
    for (Impl::Pending& p : impl_->pending) {
      while (p.sends > 0) {
        {
          std::lock_guard<std::mutex> l(mu);
          if (expired) break;
          waiting = p.buffer.get();
        }
        const bool ok = p.buffer->waitSend(nullptr, timeout_);
        {
          std::lock_guard<std::mutex> l(mu);
          waiting = nullptr;
        }
        if (!ok) break;
        --p.sends;
      }
      if (p.sends > 0) {
        status = DeadlineExceededError("flush: pieces not taken within " +
                                       std::to_string(timeout.count()) + " ms");
        break;
      }
    }
  } catch (const std::exception& e) {
    status = FromGloo("flush", e);  // a receiver is gone: nothing left to wait for
  }
  {
    std::lock_guard<std::mutex> l(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  return status;
}

StatusOr<GatherResult> PeerGroup::GatherLocked(std::span<const double> mine, int need,
                                               std::chrono::steady_clock::time_point deadline,
                                               uint64_t slot, const std::string& what) {
  if (broken_) return UnavailableError(what + ": peer group failed earlier: " + broken_reason_);
  const int64_t n = static_cast<int64_t>(mine.size());
  GatherResult out;
  out.values.resize(n, size_);
  if (n > 0) out.values.col(rank_) = Eigen::Map<const Vector>(mine.data(), n);
  out.peers.push_back(rank_);
  if (size_ == 1 || need <= 1) return out;

  // gloo buffers may not be empty: pieces travel with at least one number.
  const size_t len = static_cast<size_t>(std::max<int64_t>(n, 1));
  std::vector<int> others, unreachable;
  for (int p = 0; p < size_; ++p)
    if (p != rank_) others.push_back(p);

  try {
    Impl::Pending send;
    send.memory.assign(len, 0.0);
    if (n > 0) std::memcpy(send.memory.data(), mine.data(), sizeof(double) * size_t(n));
    send.buffer = impl_->context->createUnboundBuffer(send.memory.data(), len * sizeof(double));
    for (int p : others) {
      try {
        send.buffer->send(p, slot);
        ++send.sends;
        bytes_sent_ += static_cast<int64_t>(len * sizeof(double));
      } catch (const std::exception&) {
        unreachable.push_back(p);  // that connection is gone; others may do
      }
    }
    impl_->pending.push_back(std::move(send));

    const size_t first = impl_->pending.size();
    for (size_t i = 0; i < others.size(); ++i) {
      Impl::Pending recv;
      recv.memory.assign(len, 0.0);
      recv.buffer = impl_->context->createUnboundBuffer(recv.memory.data(), len * sizeof(double));
      recv.buffer->recv(others, slot);
      impl_->pending.push_back(std::move(recv));
    }

    // The deadline is enforced by aborting the wait in progress, which (unlike
    // a gloo timeout) leaves the connections usable.
    std::mutex mu;
    std::condition_variable cv;
    bool done = false, expired = false;
    gloo::transport::UnboundBuffer* waiting = nullptr;
    std::thread watchdog([&] {
      std::unique_lock<std::mutex> lock(mu);
      if (!cv.wait_until(lock, deadline, [&] { return done; })) {
        expired = true;
        if (waiting != nullptr) waiting->abortWaitRecv();
      }
    });
    auto stop_watchdog = [&] {
      {
        std::lock_guard<std::mutex> lock(mu);
        done = true;
      }
      cv.notify_all();
      watchdog.join();
    };
    try {
      for (size_t i = 0; i < others.size() && int(out.peers.size()) < need; ++i) {
        Impl::Pending& r = impl_->pending[first + i];
        {
          std::lock_guard<std::mutex> lock(mu);
          if (expired) break;
          waiting = r.buffer.get();
        }
        int src = -1;
        const bool ok = r.buffer->waitRecv(&src, timeout_);
        {
          std::lock_guard<std::mutex> lock(mu);
          waiting = nullptr;
        }
        if (!ok) break;  // deadline
        if (src >= 0 && src < size_ && src != rank_) {
          if (n > 0) out.values.col(src) = Eigen::Map<const Vector>(r.memory.data(), n);
          out.peers.push_back(src);
        }
      }
    } catch (...) {
      stop_watchdog();
      throw;
    }
    stop_watchdog();
  } catch (const std::exception& e) {
    broken_ = true;
    broken_reason_ = e.what();
    return FromGloo(what, e);
  }
  std::sort(out.peers.begin(), out.peers.end());
  if (int(out.peers.size()) < need && !unreachable.empty() &&
      size_ - int(unreachable.size()) < need) {
    return UnavailableError(what + ": need " + std::to_string(need) + " pieces but peers " +
                            FormatPeers(unreachable) + " are unreachable");
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
  return std::move(g.values);
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
  const int64_t longest = static_cast<int64_t>(sizes.values.maxCoeff());
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
    const auto len = static_cast<int64_t>(sizes.values(0, p));
    out[static_cast<size_t>(p)].assign(data.values.col(p).data(), data.values.col(p).data() + len);
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

}  // namespace polyguard
