// Helpers of the multi-process benchmarks: P peer processes on this machine,
// each reporting one fixed-size record of figures through a pipe.
#ifndef POLYGUARD_BENCH_COMMON_LOCAL_PEERS_H_
#define POLYGUARD_BENCH_COMMON_LOCAL_PEERS_H_

#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "polyguard/runtime/peer_group.h"
#include "polyguard/train/local_peers.h"

namespace polyguard::bench {

inline double ThreadCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

// What the whole process (every thread: the main one, gloo's I/O thread, the
// peer group's waiters) has used so far, in user and in kernel mode.
struct ProcessCpu {
  double user_ms = 0, sys_ms = 0;
  ProcessCpu operator-(const ProcessCpu& o) const {
    return {user_ms - o.user_ms, sys_ms - o.sys_ms};
  }
};

inline ProcessCpu ProcessCpuMs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ms = [](const timeval& t) { return double(t.tv_sec) * 1e3 + double(t.tv_usec) / 1e3; };
  return {ms(u.ru_utime), ms(u.ru_stime)};
}

// Peer `rank` of `peers` joining the others through the folder `dir`
// (RunLocalPeers's), with the failure timeout given.
inline StatusOr<std::unique_ptr<PeerGroup>> ConnectLocalPeer(int rank, int peers,
                                                             const std::string& dir,
                                                             std::chrono::milliseconds timeout) {
  PeerGroupOptions o;
  o.rank = rank;
  o.size = peers;
  o.rendezvous = "file:" + dir;
  o.timeout = timeout;
  return PeerGroup::Connect(o);
}

// Forks P processes (the library's launcher, local_peers.h) running body(rank, record); a zero
// return means `record` is sent to the parent. Returns every peer's record (in arrival order), or
// nothing when a peer failed. Rendezvous folder: `dir` (fresh, removed after).
template <class Record>
std::optional<std::vector<Record>> RunLocalPeers(
    int peers, const std::function<int(int rank, const std::string& dir, Record* record)>& body) {
  static_assert(std::is_trivially_copyable_v<Record>);
  std::random_device rd;
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("polyguard-bench-" + std::to_string(rd())))
          .string();
  std::filesystem::create_directories(dir);
  int fds[2];
  if (::pipe(fds) != 0) return std::nullopt;
  ::polyguard::LocalPeersOptions o;
  o.peers = peers;
  auto exits = ::polyguard::RunLocalPeers(o, [&](int r) {
    ::close(fds[0]);
    Record record{};
    const int code = body(r, dir, &record);
    if (code == 0 && ::write(fds[1], &record, sizeof record) != sizeof record) return 90;
    return code;
  });
  ::close(fds[1]);
  bool ok = exits.ok();
  if (ok)
    for (const ::polyguard::PeerExit& e : *exits) ok = ok && e.ok();
  std::vector<Record> out;
  Record one{};
  while (::read(fds[0], &one, sizeof one) == sizeof one) out.push_back(one);
  ::close(fds[0]);
  std::filesystem::remove_all(dir);
  if (!ok || static_cast<int>(out.size()) != peers) return std::nullopt;
  return out;
}

}  // namespace polyguard::bench

#endif  // POLYGUARD_BENCH_COMMON_LOCAL_PEERS_H_
