#include "polyguard/fault/fault_injector.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "polyguard/base/random.h"

namespace polyguard {
namespace {
// Distinct streams for the decisions, so that e.g. enabling stragglers does
// not change which soft errors are injected.
constexpr uint64_t kHitStream = 1, kDelayStream = 2;
}  // namespace

std::string_view StepPointName(StepPoint point) {
  switch (point) {
    case StepPoint::kEncode:
      return "encode";
    case StepPoint::kProduct:
      return "product";
    case StepPoint::kSend:
      return "send";
    case StepPoint::kDecode:
      return "decode";
    case StepPoint::kActivation:
      return "activation";
    case StepPoint::kHadamard:
      return "hadamard";
    case StepPoint::kUpdate:
      return "update";
    case StepPoint::kShard:
      return "shard";
  }
  return "unknown";
}

StatusOr<StepPoint> ParseStepPoint(std::string_view name) {
  for (int i = 0; i < kNumStepPoints; ++i) {
    const auto p = static_cast<StepPoint>(i);
    if (name == StepPointName(p)) return p;
  }
  return InvalidArgumentError("unknown step point '" + std::string(name) +
                              "' (expected encode, product, send, decode, activation, "
                              "hadamard, update or shard)");
}

Status ValidateFaultModel(const FaultModel& m, int peers) {
  if (!(m.error_rate >= 0.0 && m.error_rate <= 1.0)) {
    return InvalidArgumentError("fault model: error_rate must be in [0, 1], got " +
                                std::to_string(m.error_rate));
  }
  if (m.entries < 1) {
    return InvalidArgumentError("fault model: entries must be >= 1, got " +
                                std::to_string(m.entries));
  }
  if (!(m.magnitude > 0.0) || !std::isfinite(m.magnitude)) {
    return InvalidArgumentError("fault model: magnitude must be positive and finite");
  }
  if (!(m.straggler_delay_ms >= 0.0) || !std::isfinite(m.straggler_delay_ms)) {
    return InvalidArgumentError("fault model: straggler_delay_ms must be >= 0");
  }
  if (!(m.straggler_fraction >= 0.0 && m.straggler_fraction <= 1.0)) {
    return InvalidArgumentError("fault model: straggler_fraction must be in [0, 1]");
  }
  auto check_peers = [&](const std::vector<int>& ids, const char* field) -> Status {
    for (int p : ids) {
      if (p < 0 || p >= peers) {
        return InvalidArgumentError(std::string("fault model: ") + field + " names peer " +
                                    std::to_string(p) + ", but there are " + std::to_string(peers) +
                                    " peers");
      }
    }
    return Status::Ok();
  };
  POLYGUARD_RETURN_IF_ERROR(check_peers(m.faulty_peers, "faulty_peers"));
  POLYGUARD_RETURN_IF_ERROR(check_peers(m.straggler_peers, "straggler_peers"));
  for (const InjectedFault& f : m.scheduled) {
    if (f.peer < 0 || f.peer >= peers || f.step < 0 || f.layer < 0) {
      return InvalidArgumentError(
          "fault model: scheduled fault at step " + std::to_string(f.step) + ", peer " +
          std::to_string(f.peer) + ", layer " + std::to_string(f.layer) +
          " is out of range (steps and layers from 0, peers below " + std::to_string(peers) + ")");
    }
  }
  if (m.crash_peer >= peers || m.crash_peer < -1) {
    return InvalidArgumentError("fault model: crash_peer " + std::to_string(m.crash_peer) +
                                " out of range");
  }
  return Status::Ok();
}

FaultInjector::FaultInjector(FaultModel model, uint64_t seed, int peer)
    : model_(std::move(model)), seed_(seed), peer_(peer) {
  // Peer ids are checked by ValidateFaultModel, which knows P; here only the
  // values that would make injection meaningless switch it off.
  valid_ = peer >= 0 && model_.error_rate >= 0.0 && model_.error_rate <= 1.0 &&
           model_.entries >= 1 && model_.magnitude > 0.0;
  faulty_ = model_.faulty_peers.empty() ||
            std::find(model_.faulty_peers.begin(), model_.faulty_peers.end(), peer) !=
                model_.faulty_peers.end();
  chosen_straggler_ = std::find(model_.straggler_peers.begin(), model_.straggler_peers.end(),
                                peer) != model_.straggler_peers.end();
  for (StepPoint p : model_.points) point_mask_ |= 1u << static_cast<int>(p);
}

const InjectedFault* FaultInjector::Scheduled(int64_t step, int layer, StepPoint point) const {
  for (const InjectedFault& f : model_.scheduled)
    if (f.step == step && f.peer == peer_ && f.layer == layer && f.point == point) return &f;
  return nullptr;
}

bool FaultInjector::Hits(int64_t step, int layer, StepPoint point) const {
  if (!valid_ || paused_.load()) return false;
  if (Scheduled(step, layer, point) != nullptr) return true;
  if (!faulty_ || model_.error_rate <= 0.0) return false;
  if (!(point_mask_ & (1u << static_cast<int>(point)))) return false;
  Random rng(DeriveSeed(
      seed_, {kHitStream, uint64_t(peer_), uint64_t(step), uint64_t(layer), uint64_t(point)}));
  return rng.Uniform() < model_.error_rate;
}

bool FaultInjector::MaybeCorrupt(int64_t step, int layer, StepPoint point, Matrix* value) {
  if (!Hits(step, layer, point)) return false;
  const InjectedFault* scheduled = Scheduled(step, layer, point);
  const SoftErrorKind kind = scheduled != nullptr ? scheduled->kind : model_.kind;
  // The corruption's randomness is its own stream of the same coordinates.
  Random rng(DeriveSeed(seed_, {kHitStream + 100, uint64_t(peer_), uint64_t(step), uint64_t(layer),
                                uint64_t(point)}));
  ApplySoftErrorToEntries(value, kind, model_.magnitude, model_.entries, &rng);
  std::lock_guard<std::mutex> lock(mu_);
  record_.push_back({step, peer_, layer, point, kind});
  return true;
}

std::chrono::microseconds FaultInjector::StragglerDelay(int64_t step) const {
  if (model_.straggler_delay == FaultModel::Delay::kNone || paused_.load())
    return std::chrono::microseconds(0);
  Random rng(DeriveSeed(seed_, {kDelayStream, uint64_t(peer_), uint64_t(step)}));
  const bool straggles = chosen_straggler_ || (model_.straggler_fraction > 0.0 &&
                                               rng.Uniform() < model_.straggler_fraction);
  if (!straggles) return std::chrono::microseconds(0);
  double ms = model_.straggler_delay_ms;
  if (model_.straggler_delay == FaultModel::Delay::kExponential) {
    ms = -model_.straggler_delay_ms * std::log(1.0 - rng.Uniform());
  }
  return std::chrono::microseconds(static_cast<int64_t>(ms * 1000.0));
}

bool FaultInjector::ShouldCrash(int64_t step, FaultModel::CrashPoint point) const {
  return model_.crash_peer == peer_ && model_.crash_step >= 0 && step >= model_.crash_step &&
         point == model_.crash_point;
}

std::vector<InjectedFault> FaultInjector::record() const {
  std::lock_guard<std::mutex> lock(mu_);
  return record_;
}

int64_t FaultInjector::faults_injected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(record_.size());
}

}  // namespace polyguard
