// The job runner: one peer of a JobSpec from start to end — its data, its
// stack (BuildPeerStack), resuming from checkpoints, the step loop with
// checkpoints, evaluation and progress, the final checkpoint and test
// accuracy, and the job's fault tally. polyguard-train, the experiment
// harness, the install consumer and the tests run jobs through it; what
// differs between them (printing, metrics, figures) lives in their hooks.
//
// Every peer of the job calls RunJobPeer with the same spec; the peers meet
// at `options.rendezvous` (local peers: a fresh folder or "inproc:NAME"; see
// local_peers.h for starting them as processes).
//
// Contract: a completed run trains steps first..total exactly as a run
// through Trainer::Step in a loop would, bit for bit: the runner adds no
// exchange round to training, and checkpoints (SnapshotNow) change nothing
// that decides later steps. Evaluations before the end (evaluate_every) may
// repair a corrupted shard early and so change later steps by roundoff
// (Trainer::Evaluate). A step's DataLoss (errors beyond the code, or a
// threshold that no longer holds after a crash) names this peer's last
// checkpoint, when there is one. Errors come back in JobOutcome::status, never as an
// exception from the runner itself (hooks must not throw).
// Cost: the training's own, plus one evaluation pass per evaluation.
#ifndef POLYGUARD_TRAIN_JOB_RUNNER_H_
#define POLYGUARD_TRAIN_JOB_RUNNER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "polyguard/train/job_data.h"
#include "polyguard/train/job_spec.h"
#include "polyguard/train/peer_stack.h"
#include "polyguard/train/trainer.h"

namespace polyguard {

struct JobPeerOptions {
  int rank = 0;
  std::string rendezvous;  // file:DIR, redis://HOST:PORT or inproc:NAME
  std::string hostname = "127.0.0.1";
  // Checkpoints: DIR/peer-R.ckpt every spec.checkpoint_interval steps and at
  // the end; with resume, every peer first loads its own and all agree on
  // the step (AgreeOnResumeStep) before any training exchange.
  std::optional<std::string> checkpoint_dir;
  bool resume = false;  // needs checkpoint_dir (else refused: InvalidArgument)
  // Test accuracy at step 0 and every this many steps (0: only at the end);
  // the end is always evaluated.
  int64_t evaluate_every = 0;
  // No injected faults while evaluating: the figure measures the model, not
  // fault-tolerant inference.
  bool evaluate_without_faults = false;
  // A replacement for peer `rank` of the running job (the spec must survive
  // crashes, and be the same: JobIdentity): joins it (PeerGroup::Join, up
  // to rejoin_wait; 0: ten failure timeouts), takes its state and rebuilds
  // its shards (Trainer::Rejoin), and trains from the step the members are
  // at. No step-0 evaluation; checkpoints as any peer's. The spec's crash
  // fields are not repeated. Refused with resume.
  bool rejoin = false;
  std::chrono::milliseconds rejoin_wait{0};
};

struct StepTiming {
  double wall_seconds = 0;  // of Trainer::Step
  double cpu_seconds = 0;   // of the calling thread within it
};

// Called on the calling thread, in order; they see the state after the event.
struct JobHooks {
  // After the stack is built, before resuming: e.g. to serve metrics. An
  // error stops the peer with it.
  std::function<Status(const PeerStack& stack)> on_start;
  // Each completed (not rolled back) step.
  std::function<void(int64_t step, int64_t total, const StepResult& result,
                     const StepTiming& timing, const Trainer& trainer)>
      on_step;
  // Each rollback: `step` did not complete and training goes on at
  // result.next_step (the step after the restored snapshot).
  std::function<void(int64_t step, const StepResult& result, const Trainer& trainer)> on_rollback;
  // Each whole-step retry (Trainer::set_on_recompute), before it runs.
  Trainer::RecomputeFn on_recompute;
  // Each test-set evaluation: correct of tested samples after `step`.
  std::function<void(int64_t step, int64_t correct, int64_t tested)> on_evaluation;
  // A replacement's layers as they are rebuilt (rejoin).
  std::function<void(int layer)> on_layer_rebuilt;
};

struct JobOutcome {
  Status status;  // Ok, or why the peer stopped
  // The status is the caller's mistake (checkpoints that do not fit the job),
  // as a bad option is: polyguard-train exits 2.
  bool refused = false;
  // Resumed at the job's last step: nothing trained, checkpoints untouched.
  bool nothing_to_train = false;
  int64_t first_step = 1, total_steps = 0;
  int64_t steps_run = 0;  // completed Step calls, replays included
  double seconds = 0;     // of the step loop (evaluations and checkpoints included)
  // Within Step only, summed over steps_run: wall time, and the calling
  // thread's CPU time.
  double step_wall_seconds = 0, step_cpu_seconds = 0;
  int64_t correct = 0, tested = 0;  // the final evaluation
  std::string code;                 // the first layer's code, described
  // This peer's (job-wide ones are agreed), also when it stopped early.
  TrainingCounters counters;
  std::vector<Trainer::PeerLoss> peer_losses;  // survived (survive_crashes)
  std::vector<Trainer::PeerRejoin> peer_rejoins;
  // A replacement: the job ended before it was admitted (status NotFound;
  // nothing to do), or the seconds from the call to its first step as a
  // full member.
  bool job_ended_before_rejoin = false;
  double rejoin_seconds = 0;
  // Sums over every peer of the per-peer views (after a completed run).
  int64_t job_faults_injected = 0, job_unverified_decodes = 0, job_copies_replaced = 0,
          job_copies_aligned = 0, job_copies_refused = 0;
};

JobOutcome RunJobPeer(const JobSpec& spec, const JobPeerOptions& options,
                      const JobHooks& hooks = {});

// The number of correct predictions over a test set, in batches of the
// model's batch (the last padded with zeros). Collective: every peer calls it
// on the same set. With `faults` given, it is paused meanwhile.
StatusOr<int64_t> EvaluateDataset(Trainer* trainer, const Dataset& test, int batch,
                                  FaultInjector* faults = nullptr);

}  // namespace polyguard

#endif  // POLYGUARD_TRAIN_JOB_RUNNER_H_
