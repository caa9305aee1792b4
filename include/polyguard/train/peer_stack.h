// One peer's stack, built in the one order every peer uses: its peer group
// (Connect), its fault seam, its coded model and its trainer. Shared by
// polyguard-train, the benchmarks, the install consumer and the tests, so
// that a new piece of the stack is wired in one place.
//
// Errors: the first failing step's Status (Connect, Sequential::Create,
// Trainer::Create), unchanged. Cost: that of the four steps.
#ifndef POLYGUARD_TRAIN_PEER_STACK_H_
#define POLYGUARD_TRAIN_PEER_STACK_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "polyguard/base/status.h"
#include "polyguard/fault/fault_injector.h"
#include "polyguard/nn/sequential.h"
#include "polyguard/runtime/peer_group.h"
#include "polyguard/train/trainer.h"

namespace polyguard {

struct PeerStackOptions {
  PeerGroupOptions group;  // rank, size, rendezvous, job id, timeout
  SequentialOptions model;
  TrainerOptions trainer;
  std::optional<FaultModel> faults;  // nullopt: no fault seam at all
  uint64_t fault_seed = 1;
  // A replacement rejoining a running job: the group comes from
  // PeerGroup::Join (waiting this long) instead of Connect.
  std::optional<std::chrono::milliseconds> join_wait;
};

// Members are destroyed in reverse order: the trainer before the model it
// trains, the group last.
struct PeerStack {
  std::unique_ptr<PeerGroup> group;
  std::unique_ptr<FaultInjector> faults;  // null without a fault model
  std::unique_ptr<Sequential> model;
  std::unique_ptr<Trainer> trainer;
};

StatusOr<PeerStack> BuildPeerStack(const PeerStackOptions& options);

}  // namespace polyguard

#endif  // POLYGUARD_TRAIN_PEER_STACK_H_
