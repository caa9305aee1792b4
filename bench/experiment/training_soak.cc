// Experiment 6, the training soak (experiment.proto, TrainingSoak): one
// code trained with faults and without, side by side, and every step's loss
// compared. Each run is P local peer processes; peer 0 writes the loss of
// every step to DIR/losses-RUN.csv, and the comparison reads both files.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/local_peers.h"
#include "experiment/experiments.h"
#include "experiment/results.h"
#include "polyguard/polyguard.h"

namespace polyguard::experiment {
namespace {

using namespace std::chrono_literals;

// A record stays under PIPE_BUF (4096 bytes): the peers write it atomically
// into one pipe.
constexpr int kMaxEvals = 100;
constexpr int64_t kTestBatches = 8;
// Test batches are drawn far from any training step.
constexpr int64_t kTestStep0 = int64_t{1} << 40;

struct SoakRecord {  // 100 evaluations: 1,600 bytes
  int evals = 0;
  int64_t eval_step[kMaxEvals] = {};
  double accuracy[kMaxEvals] = {};
  double ms_per_step = 0;
  int64_t steps = 0;
  double faults = 0, wrong_results = 0, corrected = 0, repairs = 0, recomputations = 0,
         rollbacks = 0, copies_replaced = 0, unverified = 0;
  char error[200] = {};
};
static_assert(sizeof(SoakRecord) <= 4096);

SequentialOptions Model(const proto::Experiment& spec, const ProductCodeOptions& code) {
  const auto& t = spec.training_soak();
  SequentialOptions mo;
  int width = t.features() > 0 ? t.features() : 12;
  for (int h : t.hidden()) {
    mo.layers.push_back({width, h, Activation::kTanh});
    width = h;
  }
  mo.layers.push_back({width, t.classes() > 0 ? t.classes() : 4, Activation::kIdentity});
  mo.batch = t.batch();
  mo.seed = spec.seed();
  mo.code = code;
  return mo;
}

int SoakPeer(const proto::Experiment& spec, int peers, bool faulty, const std::string& losses,
             int rank, const std::string& dir, SoakRecord* out) {
  const auto& t = spec.training_soak();
  auto fail = [&](const Status& s) {
    std::snprintf(out->error, sizeof out->error, "%s", s.ToString().c_str());
    return 0;  // the error is the record
  };
  auto group = PeerGroup::Connect({.rank = rank, .size = peers, .rendezvous = "file:" + dir,
                                   .job_id = "soak", .timeout = 120s});
  if (!group.ok()) return 1;
  auto data = SyntheticClassification::Create(t.features() > 0 ? t.features() : 12,
                                              t.classes() > 0 ? t.classes() : 4, spec.seed());
  if (!data.ok()) return fail(data.status());
  auto code = CodeOptions(t.code(), peers, {1, 1, 1});
  if (!code.ok()) return fail(code.status());
  FaultModel fm;
  fm.error_rate = t.error_rate();
  FaultInjector faults(fm, DeriveSeed(spec.seed(), {0x50a7}), rank);
  FaultInjector* injector = faulty && t.error_rate() > 0 ? &faults : nullptr;
  auto model = Sequential::Create(Model(spec, *code), group->get(), injector);
  if (!model.ok()) return fail(model.status());
  TrainerOptions to;
  to.sgd = {.learning_rate = t.learning_rate() > 0 ? t.learning_rate() : 0.05,
            .momentum = t.momentum() > 0 ? t.momentum() : 0.9, .weight_decay = 1e-4};
  auto trainer = Trainer::Create(group->get(), model->get(), injector, to);
  if (!trainer.ok()) return fail(trainer.status());
  std::vector<double> loss(static_cast<size_t>(t.steps()), NAN);
  Matrix x;
  std::vector<int> labels;
  auto evaluate = [&](int64_t step) -> Status {
    int correct = 0;
    if (injector) injector->set_paused(true);
    for (int64_t i = 0; i < kTestBatches; ++i) {
      (*data)->Batch(kTestStep0 + i, t.batch(), &x, &labels);
      StatusOr<int> c = (*trainer)->Evaluate(x, labels, t.batch());
      if (!c.ok()) return c.status();
      correct += *c;
    }
    if (injector) injector->set_paused(false);
    if (out->evals < kMaxEvals) {
      out->eval_step[out->evals] = step;
      out->accuracy[out->evals] = double(correct) / double(kTestBatches * t.batch());
      ++out->evals;
    }
    return Status::Ok();
  };
  double wall_ms = 0;
  int64_t done = 0;
  for (int64_t step = 1; step <= t.steps();) {
    (*data)->Batch(step, t.batch(), &x, &labels);
    const auto w0 = std::chrono::steady_clock::now();
    auto r = (*trainer)->Step(step, x, labels);
    wall_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count();
    ++done;
    if (!r.ok()) {
      fail(r.status());
      break;
    }
    if (!r->rolled_back) {
      loss[size_t(step - 1)] = r->loss;
      if (step % t.eval_every() == 0) {
        if (Status s = evaluate(step); !s.ok()) {
          fail(s);
          break;
        }
      }
    }
    step = r->next_step;
  }
  if (rank == 0) {
    std::ofstream f(losses);
    f.precision(17);
    for (size_t i = 0; i < loss.size(); ++i) f << i + 1 << "," << loss[i] << "\n";
    if (!f) return fail(InternalError(losses + ": cannot write"));
  }
  const TrainingCounters c = (*trainer)->counters();
  out->ms_per_step = wall_ms / double(std::max<int64_t>(done, 1));
  out->steps = c.steps;
  out->faults = double(c.faults_injected);
  out->wrong_results = double(c.wrong_results);
  out->corrected = double(c.results_corrected);
  out->repairs = double(c.shard_repairs);
  out->recomputations = double(c.recomputations);
  out->rollbacks = double(c.rollbacks);
  out->copies_replaced = double(c.copies_replaced);
  out->unverified = double(c.unverified_decodes);
  return 0;
}

StatusOr<std::vector<double>> ReadLosses(const std::string& path) {
  std::ifstream f(path);
  if (!f) return NotFoundError(path + ": missing (rerun the experiment)");
  std::vector<double> out;
  std::string line;
  while (std::getline(f, line)) {
    const size_t comma = line.find(',');
    if (comma == std::string::npos) return DataLossError(path + ": bad line '" + line + "'");
    out.push_back(std::strtod(line.c_str() + comma + 1, nullptr));
  }
  return out;
}

}  // namespace

StatusOr<std::string> RunTrainingSoak(const proto::Experiment& spec, const std::string& dir,
                                      bool* plotted) {
  const auto& t = spec.training_soak();
  const int peers = t.code().peers() > 0 ? t.code().peers() : 8;
  const double tolerance = t.tolerance() > 0 ? t.tolerance() : 1e-6;
  POLYGUARD_ASSIGN_OR_RETURN(
      ResultTable table,
      ResultTable::Open(dir + "/" + spec.name() + ".csv",
                        {"run", "steps", "evals", "final_accuracy", "ms_per_step", "faults",
                         "wrong_results", "corrected", "shard_repairs", "recomputations",
                         "rollbacks", "copies_replaced", "unverified_decodes", "status"}));
  Progress progress(spec.name(), 2);
  PlotSpec plot{.title = spec.title(), .xlabel = "training step", .ylabel = "test accuracy"};
  for (const bool faulty : {false, true}) {
    const std::string run = faulty ? "faults" : "fault-free";
    const std::string losses = dir + "/losses-" + run + ".csv";
    if (!table.Has(run)) {
      auto records = bench::RunLocalPeers<SoakRecord>(
          peers, [&](int rank, const std::string& rdv, SoakRecord* r) {
            return SoakPeer(spec, peers, faulty, losses, rank, rdv, r);
          });
      if (!records) return UnavailableError("soak run '" + run + "': a peer process failed");
      const SoakRecord& r = records->front();
      POLYGUARD_RETURN_IF_ERROR(table.Append(
          {run, std::to_string(r.steps), std::to_string(r.evals),
           Num(r.evals > 0 ? r.accuracy[r.evals - 1] : 0.0), Num(r.ms_per_step), Num(r.faults),
           Num(r.wrong_results), Num(r.corrected), Num(r.repairs), Num(r.recomputations),
           Num(r.rollbacks), Num(r.copies_replaced), Num(r.unverified),
           r.error[0] ? std::string(r.error) : "ok"}));
      progress.Done(run, false);
    } else {
      progress.Done(run, true);
    }
  }
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<double> clean, ReadLosses(dir + "/losses-fault-free.csv"));
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<double> faulty, ReadLosses(dir + "/losses-faults.csv"));
  int64_t differing = 0, missing = 0;
  double worst = 0.0;
  Series sc{.title = "fault-free"}, sf{.title = "faults"};
  for (size_t i = 0; i < std::min(clean.size(), faulty.size()); ++i) {
    if (!std::isfinite(clean[i]) || !std::isfinite(faulty[i])) {
      ++missing;
      continue;
    }
    const double d = std::abs(faulty[i] - clean[i]) / std::max(std::abs(clean[i]), 1e-300);
    worst = std::max(worst, d);
    if (d > tolerance) ++differing;
    if ((i + 1) % size_t(t.eval_every()) == 0) {
      sc.points.emplace_back(double(i + 1), clean[i]);
      sf.points.emplace_back(double(i + 1), faulty[i]);
    }
  }
  plot.ylabel = "training loss";
  plot.series = {sc, sf};
  const Status st = Plot(dir, spec.name(), plot);
  *plotted = st.ok();
  std::ostringstream md;
  md << "| run | steps | final test accuracy | ms per step | faults injected (peer 0) | wrong "
        "results (job) | corrected | shard repairs | recomputations | rollbacks | status |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const std::string run : {"fault-free", "faults"}) {
    md << "| " << run << " | " << table.Get(run, "steps") << " | "
       << table.Get(run, "final_accuracy") << " | " << table.Get(run, "ms_per_step") << " | "
       << table.Get(run, "faults") << " | " << table.Get(run, "wrong_results") << " | "
       << table.Get(run, "corrected") << " | " << table.Get(run, "shard_repairs") << " | "
       << table.Get(run, "recomputations") << " | " << table.Get(run, "rollbacks") << " | "
       << table.Get(run, "status") << " |\n";
  }
  char worst_s[32];
  std::snprintf(worst_s, sizeof worst_s, "%.1e", worst);
  md << "\n" << std::min(clean.size(), faulty.size()) << " steps compared: **" << differing
     << " steps whose loss differs from the fault-free run by more than " << tolerance
     << "** (a step that used a wrong value undetected), " << missing
     << " steps missing; largest relative difference " << worst_s << ". " << peers
     << " peers, faults at rate " << t.error_rate()
     << " per peer per step point (all points), batch " << t.batch() << ".\n";
  return md.str();
}

}  // namespace polyguard::experiment
