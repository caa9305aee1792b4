// The threads a peer group waits on: an exchange that needs only some of the
// other peers' pieces waits on each of them at once, and a deadline aborts a
// wait from another thread. Started once per group and reused: a thread
// started per exchange cost more kernel time than the exchange itself
// (clone, stack mapping, signal masks, and the wake-ups of a new thread).
#ifndef POLYGUARD_LIB_RUNTIME_WAITER_THREADS_H_
#define POLYGUARD_LIB_RUNTIME_WAITER_THREADS_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

namespace boost::asio {
class thread_pool;
}

namespace polyguard::internal {

class WaiterThreads {
 public:
  // At most `threads` tasks run at once (a group needs one per other peer).
  explicit WaiterThreads(int threads);
  ~WaiterThreads();  // waits for the running tasks, then stops the threads

  // Runs `task` on a thread of its own among the first `threads` started
  // since the last Wait(). The threads start on first use.
  void Start(std::function<void()> task);

  // Blocks until every task started has returned.
  void Wait();

 private:
  int threads_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::mutex mu_;
  std::condition_variable idle_;
  int running_ = 0;
};

}  // namespace polyguard::internal

#endif  // POLYGUARD_LIB_RUNTIME_WAITER_THREADS_H_
