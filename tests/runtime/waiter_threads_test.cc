#include "lib/runtime/waiter_threads.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

namespace polyguard::internal {
namespace {

using namespace std::chrono_literals;

// Every task started between two Wait()s runs at once: each waits until all
// of them have started, which would never happen were any queued behind
// another. Later rounds run on the same threads.
TEST(WaiterThreads, RunsEveryTaskAtOnceAndReusesItsThreads) {
  const int n = 7;
  WaiterThreads waiters(n);
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::thread::id> ids;
  for (int round = 0; round < 20; ++round) {
    int started = 0;
    bool all_met = true;
    for (int i = 0; i < n; ++i) {
      waiters.Start([&] {
        std::unique_lock<std::mutex> lock(mu);
        ids.insert(std::this_thread::get_id());
        ++started;
        cv.notify_all();
        if (!cv.wait_for(lock, 10s, [&] { return started == n; })) all_met = false;
      });
    }
    waiters.Wait();
    EXPECT_EQ(started, n);
    EXPECT_TRUE(all_met) << "round " << round << ": a task waited behind another";
  }
  EXPECT_EQ(ids.size(), size_t(n));
}

TEST(WaiterThreads, WaitWithNothingStartedReturns) {
  WaiterThreads waiters(3);
  waiters.Wait();
}

}  // namespace
}  // namespace polyguard::internal
