#include "polyguard/train/local_peers.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

namespace polyguard {
namespace {

void KillAndReap(const std::vector<pid_t>& pids, std::vector<PeerExit>* exits,
                 std::vector<bool>* done) {
  for (size_t r = 0; r < pids.size(); ++r)
    if (!(*done)[r]) ::kill(pids[r], SIGKILL);
  for (size_t r = 0; r < pids.size(); ++r) {
    if ((*done)[r]) continue;
    int status = 0;
    ::waitpid(pids[r], &status, 0);
    (*done)[r] = true;
    (*exits)[r].exit_code = -1;
    (*exits)[r].signal = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    (*exits)[r].killed = true;
  }
}

// Blocks until a peer not yet `done` may have exited, or `until`. Polls the
// peers' pidfds (no wake-ups while they run); sleeps 5 ms on a kernel without
// them.
void AwaitExit(const std::vector<pid_t>& pids, const std::vector<bool>& done,
               std::optional<std::chrono::steady_clock::time_point> until) {
  std::vector<pollfd> fds;
  bool all_open = true;
  for (size_t r = 0; r < pids.size() && all_open; ++r) {
    if (done[r]) continue;
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pids[r], 0));
    if (fd < 0)
      all_open = false;
    else
      fds.push_back({.fd = fd, .events = POLLIN, .revents = 0});
  }
  if (all_open) {
    int timeout_ms = -1;
    if (until) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(*until - std::chrono::steady_clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
    }
    ::poll(fds.data(), fds.size(), timeout_ms);
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (const pollfd& f : fds) ::close(f.fd);
}

}  // namespace

StatusOr<std::vector<PeerExit>> RunLocalPeers(const LocalPeersOptions& o,
                                              const std::function<int(int rank)>& body) {
  if (o.peers < 1)
    return InvalidArgumentError("local peers: need >= 1, got " + std::to_string(o.peers));
  const pid_t launcher = ::getpid();
  std::vector<pid_t> pids;
  std::vector<PeerExit> exits(static_cast<size_t>(o.peers));
  // A process running run(rank); its pid, or -1 with errno set.
  auto spawn = [&](int r, const std::function<int(int rank)>& run) {
    std::fflush(nullptr);  // the children must not repeat buffered output
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (o.die_with_launcher) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != launcher) ::_exit(97);  // the launcher died before prctl
      }
      int code = 99;
      try {
        code = run(r);
      } catch (...) {
        code = 98;
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
    return pid;
  };
  for (int r = 0; r < o.peers; ++r) {
    exits[size_t(r)].rank = r;
    const pid_t pid = spawn(r, body);
    if (pid < 0) {
      const int err = errno;
      std::vector<bool> done(pids.size(), false);
      exits.resize(pids.size());
      KillAndReap(pids, &exits, &done);
      return InternalError("local peers: fork of peer " + std::to_string(r) +
                           " failed: " + std::strerror(err));
    }
    pids.push_back(pid);
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::optional<Clock::time_point> kill_at;
  if (o.deadline) kill_at = start + *o.deadline;
  std::vector<bool> done(pids.size(), false);
  size_t remaining = pids.size();
  while (remaining > 0) {
    bool reaped = false;
    for (size_t r = 0; r < pids.size(); ++r) {
      if (done[r]) continue;
      int status = 0;
      if (::waitpid(pids[r], &status, WNOHANG) != pids[r]) continue;
      done[r] = true;
      --remaining;
      reaped = true;
      PeerExit& e = exits[r];
      if (WIFEXITED(status)) e.exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
      if (o.on_exit) o.on_exit(e);
      if (o.restart_when && o.restart_body && o.restart_when(e)) {
        const pid_t pid = spawn(int(r), o.restart_body);
        if (pid > 0) {
          pids[r] = pid;
          done[r] = false;
          ++remaining;
          e = PeerExit{.rank = int(r), .incarnation = e.incarnation + 1};
          continue;
        }
      }
      const auto& grace = e.ok() ? o.grace_after_success : o.grace_after_failure;
      if (grace) {
        const auto at = Clock::now() + *grace;
        if (!kill_at || at < *kill_at) kill_at = at;
      }
    }
    if (remaining > 0 && kill_at && Clock::now() >= *kill_at) {
      std::vector<bool> before = done;
      KillAndReap(pids, &exits, &done);
      for (size_t r = 0; r < pids.size(); ++r)
        if (!before[r] && o.on_exit) o.on_exit(exits[r]);
      remaining = 0;
    }
    if (remaining > 0 && !reaped) AwaitExit(pids, done, kill_at);
  }
  return exits;
}

}  // namespace polyguard
