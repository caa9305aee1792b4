// Real multi-process tests: one forked process per peer, as gloo's own
// multiproc tests do. Each child runs `body(rank)` and exits with its return
// value; the parent waits for all, killing stragglers after a timeout.
#ifndef POLYGUARD_TESTS_RUNTIME_MULTIPROCESS_H_
#define POLYGUARD_TESTS_RUNTIME_MULTIPROCESS_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "polyguard/train/local_peers.h"

namespace polyguard::testing {

// A fresh rendezvous folder under the system temp dir.
inline std::string FreshFolder(const std::string& name) {
  std::random_device rd;
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("polyguard-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
};

// The library's fork launcher (local_peers.h), with every peer killed after
// `timeout`.
inline std::vector<ProcessResult> RunPeers(int peers, const std::function<int(int)>& body,
                                           std::chrono::seconds timeout) {
  LocalPeersOptions o;
  o.peers = peers;
  o.deadline = timeout;
  StatusOr<std::vector<PeerExit>> exits = RunLocalPeers(o, body);
  std::vector<ProcessResult> out(static_cast<size_t>(peers));
  if (!exits.ok()) {
    std::fprintf(stderr, "RunPeers: %s\n", exits.status().ToString().c_str());
    return out;
  }
  for (const PeerExit& e : *exits) out[size_t(e.rank)] = {e.exit_code, e.signal};
  return out;
}

}  // namespace polyguard::testing

#endif  // POLYGUARD_TESTS_RUNTIME_MULTIPROCESS_H_
