// The one harness for tests that need a real peer group: P peers as threads
// of this process (rendezvous "inproc:NAME") or as forked processes
// (rendezvous in a fresh folder, "file:DIR"; the library's launcher,
// local_peers.h). Each peer connects, runs body(rank, group) and reports
// whether it succeeded; a peer that cannot connect fails with the reason.
// Thread peers keep their groups until every peer's body has returned: a
// group torn down early would fail a peer that is still connecting.
#ifndef POLYGUARD_TESTS_RUNTIME_PEERS_H_
#define POLYGUARD_TESTS_RUNTIME_PEERS_H_

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "polyguard/runtime/peer_group.h"
#include "runtime/multiprocess.h"

namespace polyguard::testing {

enum class PeerMode { kThreads, kProcesses };

inline std::string PeerModeName(const ::testing::TestParamInfo<PeerMode>& info) {
  return info.param == PeerMode::kThreads ? "Threads" : "Processes";
}

// Runs body on `size` peers; returns, per rank, whether it connected and its
// body returned true. `options` gives everything but rank, size and
// rendezvous (its timeout is the peers' failure timeout).
inline std::vector<bool> RunPeerGroup(PeerMode mode, int size, const std::string& name,
                                      const std::function<bool(int rank, PeerGroup&)>& body,
                                      PeerGroupOptions options = {}) {
  std::vector<bool> ok(static_cast<size_t>(size), false);
  auto connect = [&](int rank, const std::string& rendezvous) {
    PeerGroupOptions o = options;
    o.rank = rank;
    o.size = size;
    o.rendezvous = rendezvous;
    if (o.job_id.empty()) o.job_id = name;
    return PeerGroup::Connect(o);
  };
  if (mode == PeerMode::kThreads) {
    // One byte per thread: vector<bool> packs bits, and threads writing
    // neighbouring bits race.
    std::vector<char> passed(static_cast<size_t>(size), 0);
    std::latch finished(size);
    std::vector<std::thread> threads;
    for (int r = 0; r < size; ++r) {
      threads.emplace_back([&, r] {
        auto group = connect(r, "inproc:" + name);
        if (!group.ok()) {
          ADD_FAILURE() << "peer " << r << ": " << group.status();
          finished.count_down();
          return;
        }
        passed[size_t(r)] = body(r, **group) ? 1 : 0;
        finished.arrive_and_wait();
      });
    }
    for (auto& t : threads) t.join();
    for (int r = 0; r < size; ++r) ok[size_t(r)] = passed[size_t(r)] != 0;
    return ok;
  }
  const std::string dir = FreshFolder(name);
  const std::vector<ProcessResult> results = RunPeers(
      size,
      [&](int rank) {
        auto group = connect(rank, "file:" + dir);
        if (!group.ok()) {
          std::fprintf(stderr, "peer %d: %s\n", rank, group.status().ToString().c_str());
          return 2;
        }
        return body(rank, **group) ? 0 : 1;
      },
      std::chrono::duration_cast<std::chrono::seconds>(options.timeout) + std::chrono::seconds(60));
  for (int r = 0; r < size; ++r) {
    ok[size_t(r)] = results[size_t(r)].exit_code == 0;
    if (!ok[size_t(r)]) {
      ADD_FAILURE() << "peer process " << r << ": exit code " << results[size_t(r)].exit_code
                    << ", signal " << results[size_t(r)].signal;
    }
  }
  std::filesystem::remove_all(dir);
  return ok;
}

}  // namespace polyguard::testing

#endif  // POLYGUARD_TESTS_RUNTIME_PEERS_H_
