// Experiment 4 (experiment.proto, Training): training under faults on MNIST,
// test accuracy against steps and time for every strategy. Real peer processes
// on this machine, over gloo TCP on loopback.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <sstream>
#include <thread>

#include "common/local_peers.h"
#include "experiment/code_options.h"
#include "experiment/kinds.h"
#include "experiment/results.h"
#include "polyguard/polyguard.h"

namespace polyguard::experiment {
namespace {

using namespace std::chrono_literals;

constexpr int kMaxEvals = 201;

struct TrainingRecord {
  int evals = 0;
  int64_t eval_step[kMaxEvals] = {};
  double accuracy[kMaxEvals] = {};
  double ms_per_step = 0, cpu_ms_per_step = 0;
  int64_t steps = 0;
  double faults = 0, corrected = 0, repairs = 0, recomputations = 0, rollbacks = 0;
  char error[200] = {};
};

// The experiment's run of one code as a job: the MLP, the code, the faults
// and the data of the spec.
StatusOr<JobSpec> TrainingJob(const proto::Experiment& spec, const polyguard::proto::CodeSpec& pc,
                              int peers) {
  const auto& t = spec.training();
  JobSpec job;
  job.name = "experiment";
  job.peers = peers;
  job.timeout = 120s;
  job.data.dir = t.data_dir().empty() ? "data/mnist" : t.data_dir();
  job.data.seed = spec.seed();
  job.data.train_samples = t.train_samples();
  job.data.test_samples = t.test_samples();
  auto images = ReadIdxDims(MnistFiles(job.data)[0]);
  if (!images.ok()) return images.status().WithContext("run scripts/fetch-mnist");
  int width = 1;
  for (size_t i = 1; i < images->size(); ++i) width *= static_cast<int>((*images)[i]);
  SequentialOptions& mo = job.model;
  for (int h : t.hidden()) {
    mo.layers.push_back({width, h, Activation::kRelu});
    width = h;
  }
  mo.layers.push_back({width, 10, Activation::kIdentity});
  mo.batch = t.batch();
  mo.seed = spec.seed();
  POLYGUARD_ASSIGN_OR_RETURN(mo.code, CodeOptions(pc, peers, {1, 1, 1}));
  job.faults.error_rate = t.error_rate();
  if (!t.points().empty()) {
    job.faults.points.clear();
    for (const std::string& p : t.points()) job.faults.points.push_back(ParseStepPoint(p).value());
  }
  job.fault_seed = DeriveSeed(spec.seed(), {17});
  job.trainer.sgd = {.learning_rate = t.learning_rate() > 0 ? t.learning_rate() : 0.05,
                     .momentum = t.momentum(),
                     .weight_decay = 0.0};
  if (t.scrub_interval() > 0) job.trainer.scrub_interval = t.scrub_interval();
  job.steps = t.steps();
  return job;
}

int TrainingPeer(const proto::Experiment& spec, const polyguard::proto::CodeSpec& pc, int peers,
                 int rank, const std::string& dir, TrainingRecord* out) {
  auto fail = [&](const Status& s) {
    std::snprintf(out->error, sizeof out->error, "%s", s.ToString().c_str());
    return 0;  // report the error as the record
  };
  auto job = TrainingJob(spec, pc, peers);
  if (!job.ok()) return fail(job.status());
  JobHooks hooks;
  hooks.on_evaluation = [&](int64_t step, int64_t correct, int64_t tested) {
    if (out->evals >= kMaxEvals) return;
    out->eval_step[out->evals] = step;
    out->accuracy[out->evals] = double(correct) / double(std::max<int64_t>(tested, 1));
    ++out->evals;
  };
  const JobOutcome r = RunJobPeer(*job,
                                  {.rank = rank,
                                   .rendezvous = "file:" + dir,
                                   .evaluate_every = spec.training().eval_every(),
                                   .evaluate_without_faults = true},
                                  hooks);
  // A peer that is gone fails the whole run, not just its record.
  const StatusCode code = r.status.code();
  if (code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded) return 4;
  if (!r.status.ok()) fail(r.status);
  const double steps = double(std::max<int64_t>(r.steps_run, 1));
  out->ms_per_step = 1e3 * r.step_wall_seconds / steps;
  out->cpu_ms_per_step = 1e3 * r.step_cpu_seconds / steps;
  out->steps = r.counters.steps;
  out->faults = double(r.counters.faults_injected);
  out->corrected = double(r.counters.results_corrected);
  out->repairs = double(r.counters.shard_repairs);
  out->recomputations = double(r.counters.recomputations);
  out->rollbacks = double(r.counters.rollbacks);
  return 0;
}

}  // namespace

Status ValidateTraining(const proto::Experiment& spec, const std::string& file) {
  const auto& t = spec.training();
  if (t.codes().empty()) return Bad(file, "training.codes", "at least one code");
  for (int i = 0; i < t.codes_size(); ++i)
    POLYGUARD_RETURN_IF_ERROR(
        CheckCode(file, "training.codes[" + std::to_string(i) + "]", t.codes(i)));
  if (t.batch() < 1 || t.steps() < 1 || t.eval_every() < 1)
    return Bad(file, "training", "batch, steps and eval_every must be >= 1");
  if (t.steps() / t.eval_every() > 200)
    return Bad(file, "training.eval_every", "at most 200 evaluations per run");
  if (!(t.error_rate() >= 0.0 && t.error_rate() <= 1.0))
    return Bad(file, "training.error_rate", "in [0, 1]");
  for (const std::string& p : t.points())
    if (!ParseStepPoint(p).ok())
      return Bad(file, "training.points", "unknown step point '" + p + "'");
  return Status::Ok();
}

StatusOr<std::string> RunTraining(const proto::Experiment& spec, const std::string& dir,
                                  bool* plotted) {
  const auto& t = spec.training();
  POLYGUARD_ASSIGN_OR_RETURN(
      ResultTable table,
      ResultTable::Open(
          dir + "/" + spec.name() + ".csv",
          {"point", "code", "describe", "peers", "step", "test_accuracy", "ms_per_step",
           "cpu_ms_per_step", "faults_injected", "wrong_results_corrected", "shard_repairs",
           "recomputations", "rollbacks", "status"}));
  Progress progress(spec.name(), t.codes_size());
  PlotSpec acc{.title = spec.title(), .xlabel = "training step", .ylabel = "test accuracy"};
  PlotSpec timed{.title = spec.title(),
                 .xlabel = "training time (s, wall, P processes on this machine)",
                 .ylabel = "test accuracy"};
  std::ostringstream md;
  md << "| code | final test accuracy | ms per step (wall) | CPU ms per step (peer 0) | faults "
        "injected (peer 0) | wrong results corrected (peer 0) | shard repairs | rollbacks | "
        "status |\n|---|---|---|---|---|---|---|---|---|\n";
  for (int ci = 0; ci < t.codes_size(); ++ci) {
    const polyguard::proto::CodeSpec& pc = t.codes(ci);
    const std::string label = CodeLabel(pc);
    const int peers = pc.peers() > 0 ? pc.peers() : 8;
    const std::string done_key = label + ";done";
    if (!table.Has(done_key)) {
      auto records = bench::RunLocalPeers<TrainingRecord>(
          peers, [&](int rank, const std::string& rdv, TrainingRecord* r) {
            return TrainingPeer(spec, pc, peers, rank, rdv, r);
          });
      if (!records) {
        return UnavailableError("training run '" + label + "': a peer process failed (see stderr)");
      }
      const TrainingRecord& r = records->front();
      const std::string status = r.error[0] ? r.error : "ok";
      std::string describe = label;
      if (auto o = CodeOptions(pc, peers, {1, 1, 1}); o.ok())
        if (auto code = MakeProductCode(*o); code.ok()) describe = (*code)->Describe();
      for (int i = 0; i < r.evals; ++i) {
        POLYGUARD_RETURN_IF_ERROR(table.Append(
            {label + ";step=" + std::to_string(r.eval_step[i]), label, describe,
             std::to_string(peers), std::to_string(r.eval_step[i]), Num(r.accuracy[i]),
             Num(r.ms_per_step), Num(r.cpu_ms_per_step), Num(r.faults), Num(r.corrected),
             Num(r.repairs), Num(r.recomputations), Num(r.rollbacks), status}));
      }
      // Written last: a run counts as done only with all its rows.
      std::string last_step = r.evals > 0 ? std::to_string(r.eval_step[r.evals - 1]) : "0";
      POLYGUARD_RETURN_IF_ERROR(
          table.Append({done_key, label, describe, std::to_string(peers), last_step,
                        Num(r.evals > 0 ? r.accuracy[r.evals - 1] : 0.0), Num(r.ms_per_step),
                        Num(r.cpu_ms_per_step), Num(r.faults), Num(r.corrected), Num(r.repairs),
                        Num(r.recomputations), Num(r.rollbacks), status}));
      progress.Done(label, false);
    } else {
      progress.Done(label, true);
    }
    Series s{.title = label};
    for (const auto& row : table.rows())
      if (row[1] == label && row[0] != done_key)
        s.points.emplace_back(std::stod(row[4]), std::stod(row[5]));
    std::sort(s.points.begin(), s.points.end());
    acc.series.push_back(s);
    Series st{.title = label};
    const double ms = table.GetNumber(done_key, "ms_per_step");
    for (const auto& [step, a] : s.points) st.points.emplace_back(step * ms / 1000.0, a);
    timed.series.push_back(st);
    md << "| " << label << " | " << table.Get(done_key, "test_accuracy") << " | "
       << table.Get(done_key, "ms_per_step") << " | " << table.Get(done_key, "cpu_ms_per_step")
       << " | " << table.Get(done_key, "faults_injected") << " | "
       << table.Get(done_key, "wrong_results_corrected") << " | "
       << table.Get(done_key, "shard_repairs") << " | " << table.Get(done_key, "rollbacks") << " | "
       << table.Get(done_key, "status") << " |\n";
  }
  acc.extra = "set yrange [0:1]\n";
  timed.extra = acc.extra;
  Status st = Plot(dir, spec.name(), acc);
  if (st.ok()) st = Plot(dir, spec.name() + "-time", timed);
  *plotted = st.ok();
  if (!st.ok()) std::fprintf(stderr, "%s\n", st.ToString().c_str());
  md << "\nMNIST (" << (t.train_samples() > 0 ? std::to_string(t.train_samples()) : "all")
     << " training, " << (t.test_samples() > 0 ? std::to_string(t.test_samples()) : "all")
     << " test digits), batch " << t.batch() << ", " << t.steps() << " steps, faults at rate "
     << t.error_rate() << " per peer per step point"
     << (t.points().empty() ? std::string(" (all points)")
                            : " (" + t.points(0) + (t.points_size() > 1 ? ", ..." : "") + ")")
     << ". Wall time is P processes sharing this machine's cores.\n";
  return md.str();
}

}  // namespace polyguard::experiment
