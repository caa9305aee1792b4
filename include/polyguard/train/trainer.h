// Trainer: the decentralised training step with protection of stored state
// (docs/architecture.md, "One training step" and "Lessons from the prototype").
// Every peer runs the same Trainer on its own Sequential; no peer is special.
//
// One step (every call of Step):
//  1. Forward and backward through the coded model (every decode locates and
//     corrects wrong results; an uncorrectable one is noted, and the peer keeps
//     taking part in the step's exchanges).
//  2. Agreement: every peer sends a few numbers — whether a decode failed, its
//     loss, and fingerprints of the decoded values each layer's update will
//     use ([x; 1] and dS) — to every peer. All peers get the same numbers and
//     so take the same decision, even a peer whose own decode went wrong:
//       - a failed decode anywhere, or a layer with no majority fingerprint:
//         recompute the whole step from its batch (a product retry cannot
//         clear a peer's corrupted local copy), after a scrub;
//       - peers whose fingerprints disagree with the majority's get the
//         majority's copies point to point before the update (the guard:
//         otherwise they would corrupt their own shards, the main source of
//         shard corruption). A receiver checks what it got against the
//         root's agreed fingerprints bit for bit and never applies copies
//         corrupted on the way: a peer whose own copies were within
//         tolerance (straggler mode's alignment) updates from those; one
//         whose own were off (always a minority) skips that layer's update,
//         and its next agreement retries the step after a scrub, which
//         repairs the layer's shard;
//       - after max_retries recomputations, every peer rolls back to the last
//         verified snapshot and the step to run next is the one after it.
//  3. The coded update of every layer.
//  4. Scrub every scrub_interval steps, and at once when a peer is located
//     wrong in two consecutive steps (a corrupted shard repeats): every peer
//     multiplies its shard and velocity by the same random probe, the results
//     go through the code's check, and each named shard is regenerated from
//     the code's repair sources point to point. A corruption the code cannot
//     repair rolls back.
//  5. A snapshot of the shards and velocities (in memory) after a scrub that
//     found them all consistent, at most every snapshot_interval steps.
//
// The agreement and scrub are full exchanges (every peer waits for every
// other): with wait_for < P a straggler's results are not awaited within the
// step's products, but each step still ends together. Peers then decode
// from different results, and every peer updates from the root's copies,
// bit for bit (those that differ are sent; costs up to one copy of each
// layer's input and output gradient per peer and step).
//
// Rounds: every attempt of a step is one exchange round (tags, fault
// injection), counted identically at every peer, so a recomputed step sees
// fresh faults; with no retries the round equals the step. A FaultModel's
// crash_step is a round.
//
// Thread safety: one call at a time.
#ifndef POLYGUARD_TRAIN_TRAINER_H_
#define POLYGUARD_TRAIN_TRAINER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "polyguard/base/precision.h"
#include "polyguard/nn/sequential.h"

namespace polyguard {

struct TrainerOptions {
  SgdOptions sgd;
  int64_t scrub_interval = 10;     // steps between scrubs; 0: only when triggered
  int64_t snapshot_interval = 10;  // steps between snapshots (>= 1)
  int max_retries = 3;             // recomputations of a step before a rollback
  int max_rollbacks = 20;          // rollbacks without progress before giving up
  bool guard = true;               // compare decoded copies before the update
  uint64_t seed = 1;               // scrub probes
  // The guard's tolerance when peers decode from different results
  // (wait_for < P): two copies agree when they could differ by this much
  // relative to their size in every entry — the decoder's own tolerance
  // (DecoderOptions); a float32 layer's at least its code's RoundoffTolerance.
  // With wait_for = 0 every peer decodes the same results and copies must be
  // equal bit for bit.
  double fingerprint_tolerance = kFloat64Tolerance;
  // A crashed peer is an erasure (docs/architecture.md, "Surviving a crash"):
  // when an exchange fails because peers are gone, the survivors agree on
  // whom they lost (PeerGroup::AgreeOnLost), check that every layer's
  // thresholds and error budget still hold with the peers left (else
  // DataLoss naming the layer), re-form the group without them, return to the
  // start of the earliest step any of them was in, and go on. Costs two
  // copies of every shard and velocity (and of the periodic snapshot) per
  // peer, taken at the start of every step. Off: a lost peer stops the job.
  // While peers are missing, every agreement also looks for replacements
  // waiting to join (PeerGroup::JoinRequests: two store lookups per missing
  // peer, no exchange of its own) and the next step starts by admitting
  // them (Rejoin).
  bool survive_crashes = false;
};

Status ValidateTrainerOptions(const TrainerOptions& options);
// Copies of every layer's shard and velocity a trainer with these options
// keeps beside the live ones, at most (the `weight_copies` of
// EstimatePeerBytes): the periodic snapshot and SnapshotNow's, and with
// survive_crashes the undo copies of this step and the previous one.
int TrainerWeightCopies(const TrainerOptions& options);

// Two kinds of numbers. Job-wide ones come out of the agreement round and
// are the same at every peer: read them from any one (steps, wrong_results,
// results_corrected, uncorrectable steps, recomputations, scrubs, shard
// repairs, rollbacks). Per-peer views are this peer's own (faults_injected,
// results_located_by_this_peer, results_not_awaited, unverified_decodes,
// copies_replaced): sum faults_injected over peers for the job's faults
// (each is recorded once, by the peer that injected it).
struct TrainingCounters {
  int64_t steps = 0;            // steps completed (replays after a rollback count again)
  int64_t faults_injected = 0;  // by this peer's injector
  // Distinct wrong results the step's decodes located: a (layer, forward or
  // backward decode, peer) counts once however many peers located it.
  int64_t wrong_results = 0;
  int64_t results_corrected = 0;             // ... in steps whose decodes all succeeded
  int64_t results_located_by_this_peer = 0;  // per decode of this peer
  // This peer's decodes that checked nothing (exactly K results, or a
  // strategy without redundancy): unprotected.
  int64_t unverified_decodes = 0;
  int64_t results_not_awaited = 0;  // stragglers' results decoded without
  // This peer's float32 products computed again in float64 because their
  // decode could not resolve them (CodedProduct); the same at every peer.
  int64_t products_widened = 0;
  int64_t uncorrectable_steps = 0;  // attempts with a decode that failed somewhere
  int64_t recomputations = 0;       // whole-step retries
  int64_t copies_replaced = 0;      // this peer's decoded copies fixed by the guard
  // With wait_for < P: this peer's copies that agreed within the guard's
  // tolerance but not bit for bit, and were replaced by the root's so that
  // every peer applies the same update (see Agree).
  int64_t copies_aligned = 0;
  // Copies a source sent this peer that did not match the root's agreed
  // fingerprints: never applied (see step 2 above).
  int64_t copies_refused = 0;
  int64_t scrubs = 0;
  int64_t shard_repairs = 0;  // shards regenerated (any peer's)
  int64_t rollbacks = 0;
  // Crashes survived (survive_crashes): peers lost, the group's generation,
  // the peers present, steps completed with fewer than P peers.
  int64_t peers_lost = 0;
  int64_t generation = 0;
  int64_t peers_present = 0;
  int64_t degraded_steps = 0;
  // Replacements admitted (Rejoin), and the bytes sent to rebuild them;
  // this peer's seconds spent admitting, handing over and rebuilding.
  int64_t rejoins = 0;
  int64_t rebuild_bytes = 0;
  double rebuild_seconds = 0;
};
std::string FormatCounters(const TrainingCounters& counters);

struct StepResult {
  double loss = 0.0;      // the majority's loss of this step
  double accuracy = 0.0;  // the majority's fraction of correct predictions
  int64_t next_step = 0;  // step + 1, or the step after the snapshot after a rollback
  bool rolled_back = false;
};

class Trainer {
 public:
  // `group`, `model` and `faults` (may be null) must outlive the trainer.
  // Takes the first snapshot (step 0: the initial weights).
  static StatusOr<std::unique_ptr<Trainer>> Create(PeerGroup* group, Sequential* model,
                                                   FaultInjector* faults, TrainerOptions options);

  // Runs `step` (>= 1) on the batch x (inputs x B) with labels (B classes).
  // Errors: InvalidArgument (shapes, labels), Unavailable / DeadlineExceeded
  // (a peer is gone: the message names it), DataLoss (training cannot make
  // progress: max_rollbacks in a row), FailedPrecondition (non-finite values
  // that no strategy protection caught: training diverged).
  // With survive_crashes, a lost peer is survived (see TrainerOptions); the
  // step then reports rolled_back with the step to run next when this peer
  // was a step ahead of another survivor. DataLoss names the layer whose
  // threshold no longer holds.
  StatusOr<StepResult> Step(int64_t step, const MatrixRef& x, std::span<const int> labels);
  // Called at every whole-step retry (TrainingCounters::recomputations), on
  // the calling thread, before the retry: `attempt` counts from 1 for the
  // first retry of `step`; `decode_failed` when a decode failed somewhere
  // (else a peer's copy or the agreement asked for it). A retried step can
  // take long without completing, so a quiet front end says so here.
  using RecomputeFn = std::function<void(int64_t step, int attempt, bool decode_failed)>;
  void set_on_recompute(RecomputeFn fn) { on_recompute_ = std::move(fn); }

  // Trains steps 1..steps; batch(step, x, labels) supplies each step's batch
  // (called again for replayed steps), on_step sees each completed step.
  using BatchFn = std::function<Status(int64_t step, Matrix* x, std::vector<int>* labels)>;
  using StepFn = std::function<void(int64_t step, const StepResult& result)>;
  Status Train(int64_t steps, const BatchFn& batch, const StepFn& on_step = nullptr);

  // Checks every layer's shards now (and repairs what it can). Returns the
  // peers found corrupted in any layer. Collective: every peer calls it.
  StatusOr<std::vector<int>> Scrub();

  // Classifies x (inputs x B, the model's batch) with the current weights:
  // the number of correct predictions among the first `count` columns (the
  // rest may be padding). A forward pass only; an uncorrectable decode is
  // recomputed, after a scrub, up to (max_retries + 1) (max_rollbacks + 1)
  // attempts in all (what a training step gets before the job gives up).
  // Collective: every peer calls it.
  // It spends no training round (its exchanges and fault decisions are
  // numbered apart), so the steps after it are those of a run that never
  // evaluated, but for roundoff: a decode of it that locates a corrupted
  // stored shard has the shard repaired at once (training's next scrub would
  // have repaired it later, from other values). Faults injected during it
  // (pause the injector to rule them out) can make it fail with DataLoss:
  // it cannot roll back.
  StatusOr<int> Evaluate(const MatrixRef& x, std::span<const int> labels, int count);

  // Checks every shard and, when all are consistent, takes a snapshot of
  // the state after `step` for LastSnapshot (e.g. before writing a
  // checkpoint). Returns whether it did (damage is left to the training's
  // own scrubs). Collective. It changes nothing that decides the steps after
  // it: it spends no exchange round (its scrub has exchanges of its own) and
  // repairs nothing, and rollbacks still return to the last periodic
  // snapshot. So training after it, here or resumed from its snapshot,
  // replays a run that never called it.
  StatusOr<bool> SnapshotNow(int64_t step);

  // The last verified snapshot (what a checkpoint stores) and resuming from
  // one: the model's shards and velocities are replaced, training continues
  // at state.step + 1 with the same exchange rounds, fault decisions, scrubs
  // and rollbacks as an uninterrupted run. InvalidArgument when the shapes
  // do not match.
  struct State {
    int64_t step = 0;
    int64_t round = 0;
    std::vector<Matrix> shards, velocities;  // per layer
    // What decides the next steps' scrubs and when to give up: the peers
    // located wrong in `step` (a repeat next step triggers a scrub), the
    // rollbacks in a row and the furthest step that needed one.
    std::vector<int> previous_wrong;
    std::vector<bool> stale_layers;
    int rollbacks_in_a_row = 0;
    int64_t rollback_step = 0;
    // Where a rollback returns to, and the step the next periodic snapshot
    // counts from, when that is not this state: a SnapshotNow snapshot
    // carries the last periodic one's step and weights. Empty: this state.
    int64_t periodic_step = 0;
    std::vector<Matrix> periodic_shards, periodic_velocities;
  };
  // SnapshotNow's snapshot (with the periodic one's step and weights) if it
  // is newer than the last periodic one, else the periodic one.
  State LastSnapshot() const;
  Status Resume(const State& state);

  // (faults_injected and results_not_awaited are read at the call.)
  TrainingCounters counters() const;
  // Every loss survived (survive_crashes): the step the survivors returned
  // to, the peers lost and the generation formed without them.
  struct PeerLoss {
    int64_t step = 0;
    std::vector<int> peers;
    int64_t generation = 0;
    double seconds = 0;  // agreeing, checking, re-forming and realigning
  };
  const std::vector<PeerLoss>& peer_losses() const { return peer_losses_; }
  // Every replacement admitted: the step the group re-formed before, the
  // peers admitted, the generation formed with them, the time this peer
  // spent admitting, handing over and rebuilding, the bytes moved, and the
  // old members whose shards the probe check before the rebuild found wrong
  // and repaired.
  struct PeerRejoin {
    int64_t step = 0;
    std::vector<int> peers;
    int64_t generation = 0;
    double seconds = 0;
    int64_t bytes = 0;
    std::vector<int> repaired;
  };
  const std::vector<PeerRejoin>& peer_rejoins() const { return peer_rejoins_; }

  // A replacement's side of a rejoin (survive_crashes; the group comes from
  // PeerGroup::Join, the model from the same spec, as built). Collective
  // with the members' admission at the start of their step: takes the job's
  // state from them (step, rounds, scrub and rollback decisions, snapshot
  // steps, the job-wide counters and the loss and rejoin history), checks
  // the members' shards with the scrub's probe (this peer's as an erasure;
  // a wrong one is repaired), then rebuilds this peer's shard and velocity
  // of every layer, and those of its snapshots, from the code's repair
  // sources (the snapshots point to point, each piece with a checksum)
  // before it takes part. Returns the step to run
  // next. `on_layer` sees each layer rebuilt (e.g. to crash there in a
  // test). Errors: FailedPrecondition without survive_crashes; DataLoss
  // when a piece fails its checksum or a shard cannot be repaired (the
  // members then lose this peer again); Unavailable when a member fails.
  // Cost: (shard size x 4, or x 6 with a SnapshotNow snapshot) per repair
  // source per layer, received; a probe exchange per layer.
  StatusOr<int64_t> Rejoin(const std::function<void(int layer)>& on_layer = nullptr);

  // The step rollbacks return to: the last periodic snapshot's.
  int64_t last_snapshot_step() const { return snapshot_->step; }
  // The last exchange round used (rounds key tags and fault decisions). To
  // resume from another run's state without repeating this run's rounds,
  // pass a state whose round is at least this.
  int64_t round() const { return round_; }

 private:
  struct Decision;

  Trainer(PeerGroup* group, Sequential* model, FaultInjector* faults, TrainerOptions options)
      : group_(group), model_(model), faults_(faults), options_(options) {}
  // One step's attempts, retries and rollback (Step without crash survival).
  StatusOr<StepResult> Attempt(int64_t step, const MatrixRef& x, const std::vector<int>& labels);
  // What Step restores after a crash: this peer's state at the start of a step.
  struct Undo {
    int64_t step = 0;
    std::vector<Matrix> shards, velocities;
    std::vector<int> previous_wrong;
    std::vector<bool> stale_layers;
    int rollbacks_in_a_row = 0;
    int64_t rollback_step = 0;
    std::shared_ptr<State> snapshot, taken;  // shared with the trainer's (Own)
  };
  Undo CaptureUndo(int64_t step) const;
  void RestoreUndo(const Undo& undo);
  // After `cause` (a lost peer) in `step`: agree, check, re-form, realign.
  // Returns the step every survivor runs next.
  StatusOr<int64_t> SurviveLoss(int64_t step, const Status& cause);
  // DataLoss naming the first layer whose thresholds or error budget fail
  // with only `members` present.
  Status CheckSurvivable(const std::vector<int>& members, const std::vector<int>& lost) const;
  // At the start of a step: admits the replacements the last agreement saw
  // waiting (waiting_joiners_), and hands them the job (Welcome).
  Status AdmitWaiting(int64_t step);
  // Both sides of a rejoin, in the group formed with the joiners: the old
  // members send the state at `step` (they are `old_members`), the joiners
  // (step < 0) take it and rebuild their shards; then every shard is
  // probed. Returns the step to run.
  StatusOr<int64_t> Welcome(int64_t step, std::vector<int> old_members,
                            const std::function<void(int layer)>& on_layer,
                            std::chrono::steady_clock::time_point start);
  std::vector<double> EncodeState(int64_t step, const std::vector<int>& old_members) const;
  // Applies a state from EncodeState; returns its step and old members.
  StatusOr<int64_t> DecodeState(const std::vector<double>& state, std::vector<int>* old_members);
  StatusOr<Decision> Agree(bool failed, double loss, double accuracy, int64_t round);
  // Sets (*refused)[l] when layer l's received copies were refused.
  Status ReplaceStaleCopies(const Decision& decision, int64_t round, std::vector<bool>* refused);
  // Scrub at `round` (its exchanges' tags and its probes; `tag_layer` keeps
  // SnapshotNow's scrubs, numbered by snapshot, apart from the rounds', and
  // they repair nothing); sets *repairable to false when a corruption cannot
  // be repaired (then the caller rolls back).
  StatusOr<std::vector<int>> ScrubAt(int64_t round, int tag_layer, bool* repairable);
  void TakeSnapshot(int64_t step);
  void Restore();

  PeerGroup* group_;
  Sequential* model_;
  FaultInjector* faults_;
  TrainerOptions options_;
  int64_t round_ = 0;
  int64_t snapshot_scrubs_ = 0;    // SnapshotNow's scrubs so far: their exchanges' number
  int64_t evaluation_rounds_ = 0;  // Evaluate's rounds so far (numbered apart)
  // Snapshots are shared, not copied, with the undo records (crash survival
  // captures one at every step): a State behind these pointers is changed
  // only through Own, which copies it first when it is shared.
  static State& Own(std::shared_ptr<State>& state);
  // The periodic snapshot: where rollbacks return to.
  std::shared_ptr<State> snapshot_ = std::make_shared<State>();
  // SnapshotNow's, without its periodic part, until the next periodic one
  // (null: none).
  std::shared_ptr<State> taken_;
  std::vector<int> previous_wrong_;  // peers located wrong in the previous step
  int rollbacks_in_a_row_ = 0;
  // For the message when progress stops: the last attempt's failure, and
  // the last completed step's agreed loss.
  std::string last_failure_;
  double last_loss_ = 0.0;
  int64_t last_loss_step_ = 0;
  int64_t rollback_step_ = 0;  // the furthest step that needed a rollback
  TrainingCounters counters_;
  // Per layer: this peer refused the copies it was sent and skipped the
  // layer's update, so its shard is stale until a scrub repairs it (scrubs
  // treat it as an erasure; the next agreement asks for a scrub and a retry).
  std::vector<bool> stale_layers_;
  std::optional<Undo> undo_, undo_before_;  // the current step's start, the previous one's
  std::vector<PeerLoss> peer_losses_;
  RecomputeFn on_recompute_;
  std::vector<PeerRejoin> peer_rejoins_;
  // A rejoin rebuilt but whose joiners' report has not completed here
  // (Welcome), and the step that records it (counters and peer_rejoins_).
  std::optional<PeerRejoin> pending_rejoin_;
  void CommitRejoin();
  // Replacements the last agreement saw waiting (bit q: peer q), admitted
  // at the start of the next step. The same at every member.
  PeerSet waiting_joiners_;
};

}  // namespace polyguard

#endif  // POLYGUARD_TRAIN_TRAINER_H_
