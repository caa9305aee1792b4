// FaultInjector: the fault seam of the library. Every step point of a peer
// (encode, local product, send, decode, activation, Hadamard product, update,
// stored shard) asks its injector whether to corrupt what it just computed.
//
// The probabilistic model: each point at each peer is hit independently with
// probability `error_rate` per step. A hit applies one SoftErrorKind (dense,
// k entries, k bit flips, NaN). Stragglers get fixed or exponentially
// distributed delays; a peer can be told to crash at a given step.
//
// Every decision is a pure function of (seed, peer, step, layer, point), so a
// run replays exactly; every injected fault is recorded so that tests and
// experiments can compare what was injected with what was located.
//
// Thread safety: one injector per peer. Methods are safe to call from several
// threads (the record is guarded by a mutex).
#ifndef POLYGUARD_FAULT_FAULT_INJECTOR_H_
#define POLYGUARD_FAULT_FAULT_INJECTOR_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

#include "polyguard/base/matrix.h"
#include "polyguard/base/status.h"
#include "polyguard/fault/soft_error.h"

namespace polyguard {

enum class StepPoint {
  kEncode = 0,
  kProduct,
  kSend,
  kDecode,
  kActivation,
  kHadamard,
  kUpdate,
  kShard,
};
inline constexpr int kNumStepPoints = 8;
std::string_view StepPointName(StepPoint point);
StatusOr<StepPoint> ParseStepPoint(std::string_view name);

// One fault: what the injector records, and what FaultModel::scheduled names.
struct InjectedFault {
  int64_t step = 0;
  int peer = 0;
  int layer = 0;
  StepPoint point = StepPoint::kEncode;
  SoftErrorKind kind = SoftErrorKind::kDense;
  friend bool operator==(const InjectedFault&, const InjectedFault&) = default;
};

struct FaultModel {
  // Probability that a given point at a given peer is hit in one step, [0, 1].
  double error_rate = 0.0;
  // Which points may be hit (default: all).
  std::vector<StepPoint> points = {StepPoint::kEncode, StepPoint::kProduct,    StepPoint::kSend,
                                   StepPoint::kDecode, StepPoint::kActivation, StepPoint::kHadamard,
                                   StepPoint::kUpdate, StepPoint::kShard};
  SoftErrorKind kind = SoftErrorKind::kDense;
  int entries = 1;         // k, for the entry and bitflip kinds (>= 1)
  double magnitude = 1.0;  // relative to the RMS of the corrupted value (> 0)
  // Only these peers are ever hit (empty: all peers).
  std::vector<int> faulty_peers;

  enum class Delay { kNone, kFixed, kExponential };
  Delay straggler_delay = Delay::kNone;
  double straggler_delay_ms = 0.0;   // the fixed delay, or the mean (>= 0)
  std::vector<int> straggler_peers;  // chosen stragglers
  double straggler_fraction = 0.0;   // or: each peer straggles w.p. this per step

  int crash_peer = -1;      // this peer exits ...
  int64_t crash_step = -1;  // ... in this step (a round) or the first after it that has ...
  // ... the point: its forward product (any step), its scrub (before its
  // probes go out), or a shard repair it sends to or receives (the trainer's).
  enum class CrashPoint { kProduct, kScrub, kRepair };
  CrashPoint crash_point = CrashPoint::kProduct;

  // Hits named exactly, besides the random ones (e.g. to replay a recorded
  // incident, or to build one pattern in a test): (step, peer, layer, point)
  // is hit with the fault's kind (entries and magnitude as above), whatever
  // error_rate, points and faulty_peers say. `step` is what the caller asks
  // Hits with: a trainer's round (its attempt count; the step number until
  // the first recomputation, rollback or explicit scrub).
  std::vector<InjectedFault> scheduled;
};

// The fault layer of the copies of model layer l that a trainer's guard
// sends (StepPoint::kSend): kCopiesFaultLayer + l, apart from the layers'
// own products (layers below it).
inline constexpr int kCopiesFaultLayer = 1 << 20;

// Checks ranges and peer ids (peers = P). The message names the field.
Status ValidateFaultModel(const FaultModel& model, int peers);

class FaultInjector {
 public:
  // The exit code of a peer that crashes on purpose (FaultModel::crash_step).
  static constexpr int kCrashExitCode = 86;

  // A model that was not validated is validated here; an invalid one injects
  // nothing (check with ValidateFaultModel first).
  FaultInjector(FaultModel model, uint64_t seed, int peer);

  // Whether (step, layer, point) is hit at this peer; a pure function.
  bool Hits(int64_t step, int layer, StepPoint point) const;
  // Corrupts `value` if it is hit, records the fault, and returns true.
  bool MaybeCorrupt(int64_t step, int layer, StepPoint point, Matrix* value);

  // This peer's delay before sending in `step` (zero when not a straggler).
  std::chrono::microseconds StragglerDelay(int64_t step) const;
  // Whether this peer must crash at `point` of `step` (FaultModel::crash_step).
  bool ShouldCrash(int64_t step,
                   FaultModel::CrashPoint point = FaultModel::CrashPoint::kProduct) const;

  // While paused nothing is injected and nobody straggles (e.g. while a
  // trainer measures test accuracy); every decision stays a pure function of
  // its coordinates, so pausing shifts nothing after it.
  void set_paused(bool paused) { paused_.store(paused); }
  bool paused() const { return paused_.load(); }

  std::vector<InjectedFault> record() const;
  int64_t faults_injected() const;
  int peer() const { return peer_; }
  const FaultModel& model() const { return model_; }

 private:
  // The scheduled fault at these coordinates of this peer, if any.
  const InjectedFault* Scheduled(int64_t step, int layer, StepPoint point) const;

  FaultModel model_;
  uint64_t seed_;
  int peer_;
  bool valid_ = true;
  bool faulty_ = true;
  bool chosen_straggler_ = false;
  uint32_t point_mask_ = 0;
  std::atomic<bool> paused_{false};
  mutable std::mutex mu_;
  std::vector<InjectedFault> record_;
};

}  // namespace polyguard

#endif  // POLYGUARD_FAULT_FAULT_INJECTOR_H_
