// The one fork launcher: P peer processes on this machine, each running
// body(rank) and exiting with its return value, reaped by the caller. Used by
// polyguard-train's local mode, the multi-process tests and the benchmarks.
//
// Contract: every forked process is reaped before RunLocalPeers returns, and
// none outlives `deadline`: at the deadline, `grace_after_failure` after the
// first peer fails and `grace_after_success` after the first one succeeds,
// the ones still running are killed with SIGKILL (and reported with signal =
// SIGKILL and killed = true). The body runs in a forked copy of a
// possibly multi-threaded process: it may only rely on the calling thread's
// state (as after any fork) and should exec or build its own objects.
// Cost: one fork per peer; the caller sleeps in poll(2) on the peers' pidfds
// until one ends or a deadline comes.
#ifndef POLYGUARD_TRAIN_LOCAL_PEERS_H_
#define POLYGUARD_TRAIN_LOCAL_PEERS_H_

#include <chrono>
#include <functional>
#include <optional>
#include <vector>

#include "polyguard/base/status.h"

namespace polyguard {

struct PeerExit {
  int rank = 0;
  int incarnation = 0;  // 0: the first process of this rank; n: its n-th replacement
  int exit_code = -1;   // -1 when ended by a signal
  int signal = 0;       // the signal that ended it, 0 when it exited
  bool killed = false;  // by the launcher: a deadline or a grace ran out
  bool ok() const { return signal == 0 && exit_code == 0; }
};

struct LocalPeersOptions {
  int peers = 1;
  // Kill the peers still running this long after the first failure
  // (nullopt: wait for all; the job's own failure timeout ends them).
  std::optional<std::chrono::milliseconds> grace_after_failure;
  // Kill the peers still running this long after the first one ended
  // successfully (a job's peers end together; one still running long after
  // is stuck, e.g. a stopped replacement).
  std::optional<std::chrono::milliseconds> grace_after_success;
  // Kill every peer still running after this long (nullopt: no limit).
  std::optional<std::chrono::milliseconds> deadline;
  // Peers get SIGKILL when the launcher dies (PR_SET_PDEATHSIG). Only for a
  // launcher that forks from its main thread: the signal follows the
  // forking *thread*.
  bool die_with_launcher = false;
  // Called in the launcher as each peer ends, in the order they end.
  std::function<void(const PeerExit&)> on_exit;
  // Replacements: when restart_when(exit) is true for a process that ended
  // (after on_exit), a new process runs restart_body(rank) for its rank,
  // and the returned exit becomes the replacement's. A failure's grace
  // (grace_after_failure) does not start for an exit that is restarted.
  std::function<bool(const PeerExit&)> restart_when;
  std::function<int(int rank)> restart_body;
};

// Forks options.peers processes running body(rank) (an exception becomes exit
// code 98). Returns every peer's exit (its last process's), indexed by rank. Internal when fork
// fails (the peers already started are killed and reaped).
StatusOr<std::vector<PeerExit>> RunLocalPeers(const LocalPeersOptions& options,
                                              const std::function<int(int rank)>& body);

}  // namespace polyguard

#endif  // POLYGUARD_TRAIN_LOCAL_PEERS_H_
