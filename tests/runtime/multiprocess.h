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

namespace polyguard::testing {

// A fresh rendezvous folder under the system temp dir.
inline std::string FreshFolder(const std::string& name) {
  std::random_device rd;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("polyguard-" + name + "-" + std::to_string(::getpid()) + "-" +
                    std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

struct ProcessResult {
  int exit_code = -1;   // -1 when killed by a signal
  int signal = 0;
};

inline std::vector<ProcessResult> RunPeers(int peers, const std::function<int(int)>& body,
                                           std::chrono::seconds timeout) {
  std::fflush(nullptr);
  std::vector<pid_t> pids;
  for (int r = 0; r < peers; ++r) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      int code = 99;
      try {
        code = body(r);
      } catch (...) {
        code = 98;
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    pids.push_back(pid);
  }
  std::vector<ProcessResult> out(static_cast<size_t>(peers));
  std::vector<bool> done(static_cast<size_t>(peers), false);
  const auto end = std::chrono::steady_clock::now() + timeout;
  int remaining = peers;
  while (remaining > 0 && std::chrono::steady_clock::now() < end) {
    for (int r = 0; r < peers; ++r) {
      if (done[size_t(r)]) continue;
      int status = 0;
      if (::waitpid(pids[size_t(r)], &status, WNOHANG) == pids[size_t(r)]) {
        done[size_t(r)] = true;
        --remaining;
        if (WIFEXITED(status)) out[size_t(r)].exit_code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) out[size_t(r)].signal = WTERMSIG(status);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (int r = 0; r < peers; ++r) {
    if (done[size_t(r)]) continue;
    ::kill(pids[size_t(r)], SIGKILL);
    int status = 0;
    ::waitpid(pids[size_t(r)], &status, 0);
    out[size_t(r)].signal = SIGKILL;
  }
  return out;
}

}  // namespace polyguard::testing

#endif  // POLYGUARD_TESTS_RUNTIME_MULTIPROCESS_H_
