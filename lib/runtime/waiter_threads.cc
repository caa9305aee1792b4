#include "lib/runtime/waiter_threads.h"

#include <algorithm>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "polyguard/base/check.h"

namespace polyguard::internal {

WaiterThreads::WaiterThreads(int threads) : threads_(std::max(threads, 1)) {}

WaiterThreads::~WaiterThreads() {
  Wait();
  if (pool_) pool_->join();
}

void WaiterThreads::Start(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // More tasks than threads would queue one behind a wait that may last
    // until the failure timeout.
    POLYGUARD_CHECK(running_ < threads_);
    ++running_;
  }
  if (!pool_) pool_ = std::make_unique<boost::asio::thread_pool>(static_cast<size_t>(threads_));
  boost::asio::post(*pool_, [this, task = std::move(task)] {
    task();
    std::lock_guard<std::mutex> lock(mu_);
    if (--running_ == 0) idle_.notify_all();
  });
}

void WaiterThreads::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [&] { return running_ == 0; });
}

}  // namespace polyguard::internal
