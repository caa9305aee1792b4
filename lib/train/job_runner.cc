#include "polyguard/train/job_runner.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <utility>
#include <vector>

#include "polyguard/runtime/exchange_tags.h"
#include "polyguard/train/checkpoint.h"

namespace polyguard {
namespace {

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Resumes every peer from its checkpoint (or none) and returns the step all
// agreed on; sets *refused for checkpoints that do not fit the job.
StatusOr<int64_t> AgreeOnStart(const JobPeerOptions& o, const CheckpointIdentity& identity,
                               int64_t total, PeerStack& stack, bool* refused) {
  int64_t resume_step = 0;
  Status loaded = Status::Ok();
  const std::string ckpt = o.resume ? CheckpointPath(*o.checkpoint_dir, o.rank) : "";
  if (o.resume) {
    auto state = ReadCheckpoint(ckpt, identity);
    loaded = state.ok() ? stack.trainer->Resume(*state) : state.status();
    resume_step = loaded.ok() ? state->step : -1;
  }
  // Every peer takes part even when its own load failed: all stop at once
  // with the reason, instead of after the timeout as "peer 1 is gone".
  auto agreed = AgreeOnResumeStep(stack.group.get(), resume_step, total);
  POLYGUARD_RETURN_IF_ERROR(loaded);
  if (!agreed.ok()) {
    *refused = agreed.status().code() == StatusCode::kInvalidArgument;
    return agreed.status();
  }
  if (o.resume) {
    if (Status s = CheckResumeFits(ckpt, *agreed, total); !s.ok()) {
      *refused = true;
      return s;
    }
  }
  return *agreed;
}

}  // namespace

StatusOr<int64_t> EvaluateDataset(Trainer* trainer, const Dataset& test, int batch,
                                  FaultInjector* faults) {
  struct Pause {
    FaultInjector* f;
    bool was;
    ~Pause() {
      if (f) f->set_paused(was);
    }
  } pause{faults, faults ? faults->paused() : false};
  if (faults) faults->set_paused(true);
  int64_t correct = 0;
  Matrix xb(test.features(), batch);
  std::vector<int> yb(size_t(batch), 0);
  for (int64_t begin = 0; begin < test.size(); begin += batch) {
    const int count = static_cast<int>(std::min<int64_t>(batch, test.size() - begin));
    xb.setZero();
    test.CopySamples(begin, count, &xb);
    std::fill(yb.begin(), yb.end(), 0);
    std::copy_n(test.labels.begin() + begin, count, yb.begin());
    POLYGUARD_ASSIGN_OR_RETURN(int c, trainer->Evaluate(xb, yb, count));
    correct += c;
  }
  return correct;
}

JobOutcome RunJobPeer(const JobSpec& spec, const JobPeerOptions& o, const JobHooks& hooks) {
  const auto called = std::chrono::steady_clock::now();
  JobOutcome out;
  Trainer* trainer = nullptr;
  PeerGroup* group = nullptr;
  // A replacement takes part once its rejoin succeeded. Before that its
  // failure is its own (e.g. a member died while it rebuilt): marking it
  // ended would tell the job's other replacements that the job ended.
  bool took_part = !o.rejoin;
  auto fail = [&](Status s) {
    out.status = std::move(s);
    if (trainer != nullptr) {
      out.counters = trainer->counters();
      out.peer_losses = trainer->peer_losses();
      out.peer_rejoins = trainer->peer_rejoins();
    }
    if (group != nullptr && took_part) group->MarkEnded();
    return out;
  };
  if (o.resume && !o.checkpoint_dir) {
    out.refused = true;
    return fail(InvalidArgumentError("job runner: resume needs a checkpoint dir"));
  }
  if (o.rejoin && (o.resume || !spec.trainer.survive_crashes || o.rejoin_wait.count() < 0)) {
    out.refused = true;
    return fail(InvalidArgumentError(
        o.resume ? "job runner: a replacement (rejoin) takes its state from the running peers, "
                   "not from checkpoints (resume)"
                 : (!spec.trainer.survive_crashes
                        ? "job runner: rejoin needs a job that survives crashes "
                          "(survive_crashes: true in " +
                              (spec.source.empty() ? std::string("the spec") : spec.source) + ")"
                        : std::string("job runner: rejoin_wait must be >= 0"))));
  }
  if (o.evaluate_every < 0) {
    out.refused = true;
    return fail(InvalidArgumentError("job runner: evaluate_every must be >= 0, got " +
                                     std::to_string(o.evaluate_every)));
  }
  auto data = JobData::Load(spec);
  if (!data.ok()) return fail(data.status());
  const int64_t total = (*data)->total_steps();
  out.total_steps = total;

  PeerStackOptions so;
  so.group = {.rank = o.rank,
              .size = spec.peers,
              .rendezvous = o.rendezvous,
              .job_id = spec.name,
              .hostname = o.hostname,
              .timeout = spec.timeout,
              .identity = JobIdentity(spec)};
  so.model = spec.model;
  so.trainer = spec.trainer;
  so.faults = spec.faults;
  so.fault_seed = spec.fault_seed;
  if (o.rejoin) {
    so.faults->crash_peer = -1;  // the predecessor's crash is not repeated
    so.join_wait = o.rejoin_wait.count() > 0 ? o.rejoin_wait : 10 * spec.timeout;
  }
  auto stack = BuildPeerStack(so);
  if (!stack.ok()) {
    out.job_ended_before_rejoin = o.rejoin && stack.status().code() == StatusCode::kNotFound;
    out.refused = o.rejoin && stack.status().code() == StatusCode::kFailedPrecondition;
    return fail(stack.status());
  }
  trainer = stack->trainer.get();
  if (hooks.on_recompute) trainer->set_on_recompute(hooks.on_recompute);
  group = stack->group.get();
  const ProductCode& first = stack->model->layer(0).code();
  // The precision is part of what a checkpoint was trained with.
  // (Appended: GCC 12's -Wrestrict misfires on " " + std::string here.)
  out.code = first.Describe();
  if (first.precision() != Precision::kFloat64)
    out.code.append(" ").append(PrecisionName(first.precision()));
  if (hooks.on_start) {
    if (Status s = hooks.on_start(*stack); !s.ok()) return fail(s);
  }

  const CheckpointIdentity identity{spec.name, out.code, spec.peers, o.rank};
  StatusOr<int64_t> agreed = 0;  // the last step completed
  if (o.rejoin) {
    auto next = trainer->Rejoin(hooks.on_layer_rebuilt);
    agreed = next.ok() ? StatusOr<int64_t>(*next - 1) : next.status();
  } else {
    agreed = AgreeOnStart(o, identity, total, *stack, &out.refused);
  }
  if (!agreed.ok()) return fail(agreed.status());
  took_part = true;
  if (o.rejoin) out.rejoin_seconds = SecondsSince(called);
  if (o.resume && *agreed == total) {
    // Nothing to train; rewriting the checkpoints could only change them.
    out.nothing_to_train = true;
    out.first_step = total + 1;
    return out;
  }
  out.first_step = *agreed + 1;
  if (o.checkpoint_dir) {
    std::error_code ec;
    std::filesystem::create_directories(*o.checkpoint_dir, ec);
    if (ec) {
      return fail(
          InvalidArgumentError("--checkpoint-dir " + *o.checkpoint_dir + ": " + ec.message()));
    }
  }
  const std::string ckpt = o.checkpoint_dir ? CheckpointPath(*o.checkpoint_dir, o.rank) : "";
  FaultInjector* pause = o.evaluate_without_faults ? stack->faults.get() : nullptr;
  auto evaluate = [&](int64_t step) -> Status {
    POLYGUARD_ASSIGN_OR_RETURN(out.correct,
                               EvaluateDataset(trainer, (*data)->test(), spec.model.batch, pause));
    out.tested = (*data)->test().size();
    if (hooks.on_evaluation) hooks.on_evaluation(step, out.correct, out.tested);
    return Status::Ok();
  };
  if (o.evaluate_every > 0 && !o.rejoin) {
    if (Status s = evaluate(*agreed); !s.ok()) return fail(s);
  }

  const auto start = std::chrono::steady_clock::now();
  int64_t last_checkpoint = o.rejoin ? trainer->last_snapshot_step() : *agreed;
  int64_t last_evaluation = -1;
  std::optional<int64_t> written;  // the step of this peer's checkpoint on disk, if any
  if (o.resume) written = *agreed;
  Matrix x;
  std::vector<int> labels;
  for (int64_t step = out.first_step; step <= total;) {
    (*data)->Batch(step, &x, &labels);
    const auto step_start = std::chrono::steady_clock::now();
    const double cpu_start = ThreadCpuSeconds();
    auto r = trainer->Step(step, x, labels);
    const StepTiming timing{SecondsSince(step_start), ThreadCpuSeconds() - cpu_start};
    out.step_cpu_seconds += timing.cpu_seconds;
    out.step_wall_seconds += timing.wall_seconds;
    ++out.steps_run;
    if (!r.ok()) {
      if (r.status().code() != StatusCode::kDataLoss || !written) return fail(r.status());
      // Where the user can go on from (e.g. after a threshold no longer holds).
      return fail(Status(r.status().code(),
                         r.status().message() + "; the last checkpoint: " + ckpt + " at step " +
                             std::to_string(*written) + " (--resume continues from it)"));
    }
    if (r->rolled_back && hooks.on_rollback) hooks.on_rollback(step, *r, *trainer);
    if (!r->rolled_back) {
      if (hooks.on_step) hooks.on_step(step, total, *r, timing, *trainer);
      if (o.evaluate_every > 0 && step % o.evaluate_every == 0) {
        if (Status s = evaluate(step); !s.ok()) return fail(s);
        last_evaluation = step;
      }
    }
    const int64_t snap = trainer->last_snapshot_step();
    if (o.checkpoint_dir && spec.checkpoint_interval > 0 &&
        snap - last_checkpoint >= spec.checkpoint_interval) {
      if (Status s = WriteCheckpoint(ckpt, identity, trainer->LastSnapshot()); !s.ok())
        return fail(s);
      last_checkpoint = snap;
      written = trainer->LastSnapshot().step;
    }
    step = r->next_step;
  }
  out.seconds = SecondsSince(start);
  if (o.checkpoint_dir) {
    auto snapped = trainer->SnapshotNow(total);
    if (!snapped.ok()) return fail(snapped.status());
    if (Status s = WriteCheckpoint(ckpt, identity, trainer->LastSnapshot()); !s.ok())
      return fail(s);
  }
  if (last_evaluation != total) {
    if (Status s = evaluate(total); !s.ok()) return fail(s);
  }
  // The per-peer views summed over the peers present: each fault and
  // replaced copy is recorded by one peer; wrong results and corrections
  // were agreed.
  out.counters = trainer->counters();
  out.peer_losses = trainer->peer_losses();
  out.peer_rejoins = trainer->peer_rejoins();
  const std::vector<double> mine = {
      double(out.counters.faults_injected), double(out.counters.unverified_decodes),
      double(out.counters.copies_replaced), double(out.counters.copies_aligned),
      double(out.counters.copies_refused)};
  auto all = stack->group->AllGather(mine, MakeExchangeTag(ExchangeOp::kEvaluationTally).value());
  if (!all.ok()) return fail(all.status());
  Vector sum = Vector::Zero(all->rows());
  for (int q : stack->group->members()) sum += all->col(q);  // a lost peer's column is NaN
  out.job_faults_injected = int64_t(sum(0));
  out.job_unverified_decodes = int64_t(sum(1));
  out.job_copies_replaced = int64_t(sum(2));
  out.job_copies_aligned = int64_t(sum(3));
  out.job_copies_refused = int64_t(sum(4));
  group->MarkEnded();  // a replacement still waiting to join gives up
  return out;
}

}  // namespace polyguard
