// The one allocator of exchange tags: every exchange polyguard itself makes
// (coded products, the trainer's agreement, scrub, repair and guard, the
// resume agreement, the trainer binary's final tally) gets its ExchangeTag
// here, so two different exchanges never share a tag.
//
// A tag names one exchange of one peer group (PeerGroup matches messages by
// tag). Layout, (step, layer, op):
//   kForward, kTranspose     (step, layer, 0 | 1)            layer in [0, 2^20)
//   kForwardWide, ...Wide    (step, layer, 2 | 3)            layer in [0, 2^20)
//   kAgree                   (step, 2^20, 0)
//   kScrub, kRepair, kFix,   (step, 2^20, k * 2^10 + layer)  k = 1, 2, 3, 5;
//   kRebuild                                                 layer in [0, 2^10)
//   kWelcome                 (step, 2^20, 6 * 2^10)
//   kSnapshotScrub           (step, 2^20 + 1, 2^10 + layer)  layer in [0, 2^10)
//   kResumeAgree             (0, 2^22, 0)
//   kEvaluationTally         (2^30, 2^21, 0)
// The layer field keeps the groups apart (model layers stay below 2^20, the
// others use ids no model layer has) and within a group the op field keeps
// the operations apart, so distinct (op, step, layer) within the ranges give
// distinct tags. The step is copied unchanged: any step >= 0 is accepted
// (rounds and snapshot numbers count from 1). The values equal those used
// before this allocator existed, so peers of older builds still match.
//
// Tags built by hand (ExchangeTag{.step = s}) are for callers with a peer
// group of their own (tests, benchmarks); they may equal a tag from here.
#ifndef POLYGUARD_RUNTIME_EXCHANGE_TAGS_H_
#define POLYGUARD_RUNTIME_EXCHANGE_TAGS_H_

#include <cstdint>

#include "polyguard/base/status.h"
#include "polyguard/runtime/peer_group.h"

namespace polyguard {

enum class ExchangeOp {
  kForward,    // a layer's forward product (CodedProduct::Forward); step = round
  kTranspose,  // a layer's transpose product (CodedProduct::Transpose); step = round
  kAgree,      // the trainer's agreement round; step = round, layer unused (0)
  kScrub,      // every layer's scrub probes, layer 0; step = round
  kRepair,     // regenerating a layer's corrupted shards after a scrub; step = round
  kFix,        // the guard: a layer's stale copies replaced; step = round
  // Every layer's probes in Trainer::SnapshotNow (layer 0), which spends no round:
  // step = the snapshot's own number.
  kSnapshotScrub,
  kResumeAgree,      // the resume agreement before the first round; step, layer unused (0)
  kEvaluationTally,  // the trainer binary's counters after training; step, layer unused (0)
  // Rejoining (Trainer, survive_crashes): the job's state handed to
  // replacements (step 0) and their report that they rebuilt (step 1), and a
  // layer's shards rebuilt for them (step 0). The first exchanges of a
  // generation.
  kWelcome,
  kRebuild,
  // A float32 product computed again in float64 (CodedProduct: its decode
  // could not resolve it); step = round.
  kForwardWide,
  kTransposeWide,
};

// The ranges of `layer` (documented above).
inline constexpr int kMaxProductLayers = 1 << 20;  // kForward, kTranspose, ...Wide
inline constexpr int kMaxControlLayers = 1 << 10;  // kScrub, kRepair, kFix, kRebuild, ...

// The tag of exchange `op` at `step` for model layer `layer`. InvalidArgument
// when step < 0, layer is outside its range, or an op that takes no step or
// layer is given a non-zero one (so a caller cannot believe it made two
// exchanges distinct when it did not).
StatusOr<ExchangeTag> MakeExchangeTag(ExchangeOp op, int64_t step = 0, int layer = 0);

}  // namespace polyguard

#endif  // POLYGUARD_RUNTIME_EXCHANGE_TAGS_H_
