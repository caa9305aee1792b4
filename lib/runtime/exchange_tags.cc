#include "polyguard/runtime/exchange_tags.h"

#include <string>

namespace polyguard {
namespace {

// Layer ids of the exchanges that are not a model layer's products.
constexpr int kControlLayer = kMaxProductLayers;       // the trainer's, per round
constexpr int kSnapshotLayer = kMaxProductLayers + 1;  // SnapshotNow's scrubs
constexpr int kTallyLayer = 1 << 21;
constexpr int kResumeLayer = 1 << 22;
constexpr int64_t kTallyStep = int64_t{1} << 30;
// Op ids of the per-layer control exchanges: kind * 2^10 + layer.
constexpr int kScrubOps = 1 * kMaxControlLayers;
constexpr int kRepairOps = 2 * kMaxControlLayers;
constexpr int kFixOps = 3 * kMaxControlLayers;
constexpr int kRebuildOps = 5 * kMaxControlLayers;
constexpr int kWelcomeOp = 6 * kMaxControlLayers;

const char* Name(ExchangeOp op) {
  switch (op) {
    case ExchangeOp::kForward:
      return "forward";
    case ExchangeOp::kTranspose:
      return "transpose";
    case ExchangeOp::kAgree:
      return "agree";
    case ExchangeOp::kScrub:
      return "scrub";
    case ExchangeOp::kRepair:
      return "repair";
    case ExchangeOp::kFix:
      return "fix";
    case ExchangeOp::kSnapshotScrub:
      return "snapshot scrub";
    case ExchangeOp::kResumeAgree:
      return "resume agreement";
    case ExchangeOp::kEvaluationTally:
      return "evaluation tally";
    case ExchangeOp::kWelcome:
      return "welcome";
    case ExchangeOp::kRebuild:
      return "rebuild";
    case ExchangeOp::kForwardWide:
      return "forward in float64";
    case ExchangeOp::kTransposeWide:
      return "transpose in float64";
  }
  return "unknown";
}

Status CheckLayer(ExchangeOp op, int layer, int limit) {
  if (layer >= 0 && layer < limit) return Status::Ok();
  return InvalidArgumentError(std::string("exchange tag (") + Name(op) + "): layer " +
                              std::to_string(layer) + " outside [0, " + std::to_string(limit) +
                              ")");
}

Status CheckUnused(ExchangeOp op, int64_t step, int layer, bool step_used) {
  if ((step_used || step == 0) && layer == 0) return Status::Ok();
  return InvalidArgumentError(std::string("exchange tag (") + Name(op) + "): takes no " +
                              (layer != 0 ? "layer" : "step") + ", got " +
                              std::to_string(layer != 0 ? int64_t{layer} : step));
}

}  // namespace

StatusOr<ExchangeTag> MakeExchangeTag(ExchangeOp op, int64_t step, int layer) {
  if (step < 0) {
    return InvalidArgumentError(std::string("exchange tag (") + Name(op) + "): step " +
                                std::to_string(step) + " < 0");
  }
  switch (op) {
    case ExchangeOp::kForward:
    case ExchangeOp::kTranspose:
      POLYGUARD_RETURN_IF_ERROR(CheckLayer(op, layer, kMaxProductLayers));
      return ExchangeTag{step, layer, op == ExchangeOp::kForward ? 0 : 1};
    case ExchangeOp::kForwardWide:
    case ExchangeOp::kTransposeWide:
      POLYGUARD_RETURN_IF_ERROR(CheckLayer(op, layer, kMaxProductLayers));
      return ExchangeTag{step, layer, op == ExchangeOp::kForwardWide ? 2 : 3};
    case ExchangeOp::kAgree:
      POLYGUARD_RETURN_IF_ERROR(CheckUnused(op, step, layer, /*step_used=*/true));
      return ExchangeTag{step, kControlLayer, 0};
    case ExchangeOp::kScrub:
      POLYGUARD_RETURN_IF_ERROR(CheckLayer(op, layer, kMaxControlLayers));
      return ExchangeTag{step, kControlLayer, kScrubOps + layer};
    case ExchangeOp::kRepair:
      POLYGUARD_RETURN_IF_ERROR(CheckLayer(op, layer, kMaxControlLayers));
      return ExchangeTag{step, kControlLayer, kRepairOps + layer};
    case ExchangeOp::kFix:
      POLYGUARD_RETURN_IF_ERROR(CheckLayer(op, layer, kMaxControlLayers));
      return ExchangeTag{step, kControlLayer, kFixOps + layer};
    case ExchangeOp::kWelcome:
      POLYGUARD_RETURN_IF_ERROR(CheckUnused(op, step, layer, /*step_used=*/true));
      return ExchangeTag{step, kControlLayer, kWelcomeOp};
    case ExchangeOp::kRebuild:
      POLYGUARD_RETURN_IF_ERROR(CheckLayer(op, layer, kMaxControlLayers));
      return ExchangeTag{step, kControlLayer, kRebuildOps + layer};
    case ExchangeOp::kSnapshotScrub:
      POLYGUARD_RETURN_IF_ERROR(CheckLayer(op, layer, kMaxControlLayers));
      return ExchangeTag{step, kSnapshotLayer, kScrubOps + layer};
    case ExchangeOp::kResumeAgree:
      POLYGUARD_RETURN_IF_ERROR(CheckUnused(op, step, layer, /*step_used=*/false));
      return ExchangeTag{0, kResumeLayer, 0};
    case ExchangeOp::kEvaluationTally:
      POLYGUARD_RETURN_IF_ERROR(CheckUnused(op, step, layer, /*step_used=*/false));
      return ExchangeTag{kTallyStep, kTallyLayer, 0};
  }
  return InvalidArgumentError("exchange tag: unknown op " + std::to_string(static_cast<int>(op)));
}

}  // namespace polyguard
