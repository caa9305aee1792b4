#include "lib/runtime/pending_buffers.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>

namespace polyguard::internal {

PendingBuffer& PendingBuffers::Add(PendingBuffer buffer) {
  buffers_.push_back(std::move(buffer));
  return buffers_.back();
}

void PendingBuffers::FreeDone() {
  std::erase_if(buffers_,
                [&](const PendingBuffer& p) { return p.done && p.exchange < exchanges_; });
}

bool PendingBuffers::WaitForSends(std::chrono::steady_clock::time_point deadline,
                                  std::chrono::milliseconds gloo_timeout,
                                  const std::function<bool(int, uint64_t)>& which) {
  const bool any = std::any_of(buffers_.begin(), buffers_.end(), [&](const PendingBuffer& p) {
    return p.sends > 0 && which(p.peer, p.exchange);
  });
  if (!any) return true;
  // A watchdog aborts the wait in progress at the deadline: a gloo timeout
  // instead would close every connection.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false, expired = false;
  gloo::transport::UnboundBuffer* waiting = nullptr;
  waiters_.Start([&] {
    std::unique_lock<std::mutex> l(mu);
    if (!cv.wait_until(l, deadline, [&] { return done; })) {
      expired = true;
      if (waiting != nullptr) waiting->abortWaitSend();
    }
  });
  bool all = true;
  for (PendingBuffer& p : buffers_) {
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
      ok = p.buffer->waitSend(nullptr, gloo_timeout);
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
  waiters_.Wait();
  FreeDone();
  return all;
}

void PendingBuffers::ReleaseDeliveredSends(std::chrono::milliseconds gloo_timeout) {
  const auto held = std::count_if(buffers_.begin(), buffers_.end(),
                                  [](const PendingBuffer& p) { return p.sends > 0; });
  if (held < static_cast<std::ptrdiff_t>(kReleaseBatch) * (peers_ - 1)) {
    FreeDone();  // the receives completed in earlier exchanges
    return;
  }
  WaitForSends(
      std::chrono::steady_clock::now() + std::chrono::milliseconds(200), gloo_timeout,
      [&](int peer, uint64_t sent_in) { return last_heard_[static_cast<size_t>(peer)] > sent_in; });
}

}  // namespace polyguard::internal
