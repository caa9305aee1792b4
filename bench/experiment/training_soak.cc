// Experiment 6, the training soak (experiment.proto, TrainingSoak): one
// code trained with faults and without, side by side, and every step's loss
// compared. Each run is P local peer processes; peer 0 writes the loss of
// every step to DIR/losses-RUN.csv, and the comparison reads both files.
//
// Segments. The two runs cannot be compared over a whole long run: after
// wrong results are set aside, the faulty run decodes from a different subset
// of results than the fault-free one, the values differ by roundoff, and SGD
// with momentum amplifies that difference exponentially (chaotic divergence).
// Measured over 20,000 unsegmented steps (8 peers, genpolydot m = n = 2, rate
// 0.01): the largest relative loss difference grew smoothly, about 10x per
// 1000 steps: 1e-12 by step 1000, 5e-10 by 3000, 3e-7 by 5000, 4e-6 by 6000,
// ~1 by 10000, and 13,563 steps "differed" without any wrong value used.
// A whole-trajectory comparison is meaningful for ~4000 steps only.
//
// So both runs are cut into segments of segment_steps steps (default 2000).
// The fault-free run (it runs first) writes every peer's state (shards and
// velocities, a verified snapshot) at each boundary step k S to
// DIR/segments/state-<kS>/peer-R.ckpt; the faulty run, once it has
// completed step k S, compares its own state with that one (the state
// difference of the segment table) and resumes from it. Within a segment the
// runs then differ by roundoff grown over at most S steps (segmented, the
// same 20,000 steps stayed within 5.4e-10 in every segment), far below the
// 1e-6 tolerance, while a wrong value used undetected still shows as a jump
// above it (scaling every peer's velocities by 1.01 once, on purpose, in a
// quick run: 19 steps over 1e-6, up to 7.5e-3, in that segment only). The faulty run keeps its own
// exchange rounds across a resume (fault decisions are keyed by the round),
// so no segment repeats another's faults.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/local_peers.h"
#include "experiment/code_options.h"
#include "experiment/kinds.h"
#include "experiment/results.h"
#include "polyguard/polyguard.h"

namespace polyguard::experiment {
namespace {

using namespace std::chrono_literals;

// A record stays under PIPE_BUF (4096 bytes): the peers write it atomically
// into one pipe.
constexpr int kMaxEvals = 100;
// State differences are kept for the first kMaxBoundaries segment ends.
constexpr int kMaxBoundaries = 100;
constexpr int64_t kTestBatches = 8;
// Test batches are drawn far from any training step.
constexpr int64_t kTestStep0 = int64_t{1} << 40;

struct SoakRecord {  // 100 evaluations, 100 boundaries: about 2,500 bytes
  int rank = 0;
  int evals = 0;
  int64_t eval_step[kMaxEvals] = {};
  double accuracy[kMaxEvals] = {};
  double ms_per_step = 0;
  int64_t steps = 0;
  double faults = 0, wrong_results = 0, corrected = 0, repairs = 0, recomputations = 0,
         rollbacks = 0, copies_replaced = 0, unverified = 0;
  // Faulty run: segment starts at which it resumed from the fault-free state,
  // and its state's relative difference from that state just before (boundary
  // k S is index k - 1; the largest over all boundaries in max_state_diff).
  int64_t resumes = 0;
  double state_diff[kMaxBoundaries] = {};
  double max_state_diff = 0;
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

int64_t SegmentSteps(const proto::TrainingSoak& t) {
  return t.segment_steps() > 0 ? t.segment_steps() : 2000;
}

// Where the fault-free run leaves every peer's state at boundary `step`.
std::string StateDir(const std::string& out_dir, int64_t step) {
  return out_dir + "/segments/state-" + std::to_string(step);
}

// ||a - b|| / ||b|| (0 when both are zero).
double RelativeDifference(const Matrix& a, const Matrix& b) {
  const double d = (a - b).norm(), n = b.norm();
  return d == 0.0 ? 0.0 : d / std::max(n, 1e-300);
}

// `out_dir`: the experiment's output folder (segment states); `dir`: the
// peers' rendezvous folder.
int SoakPeer(const proto::Experiment& spec, int peers, bool faulty, const std::string& losses,
             const std::string& out_dir, int rank, const std::string& dir, SoakRecord* out) {
  const auto& t = spec.training_soak();
  const int64_t segment = SegmentSteps(t);
  out->rank = rank;
  auto fail = [&](const Status& s) {
    std::snprintf(out->error, sizeof out->error, "%s", s.ToString().c_str());
    return 0;  // the error is the record
  };
  auto group = PeerGroup::Connect({.rank = rank,
                                   .size = peers,
                                   .rendezvous = "file:" + dir,
                                   .job_id = "soak",
                                   .timeout = 120s});
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
            .momentum = t.momentum() > 0 ? t.momentum() : 0.9,
            .weight_decay = 1e-4};
  auto trainer = Trainer::Create(group->get(), model->get(), injector, to);
  if (!trainer.ok()) return fail(trainer.status());
  const CheckpointIdentity identity{"soak", (*model)->layer(0).code().Describe(), peers, rank};
  // At boundary `step` (completed, not rolled back): the fault-free run
  // writes its state, the faulty run compares its own with it and adopts it.
  auto boundary = [&](int64_t step) -> Status {
    const std::string path = CheckpointPath(StateDir(out_dir, step), rank);
    if (!faulty) {
      // A verified snapshot at this step, whatever SnapshotNow does with the
      // exchange round (the faulty run does not take the round from it).
      POLYGUARD_ASSIGN_OR_RETURN(bool taken, (*trainer)->SnapshotNow(step));
      Trainer::State state = (*trainer)->LastSnapshot();
      if (!taken || state.step != step) {
        return InternalError("fault-free run: no verified snapshot at step " +
                             std::to_string(step));
      }
      return WriteCheckpoint(path, identity, state);
    }
    POLYGUARD_ASSIGN_OR_RETURN(Trainer::State state, ReadCheckpoint(path, identity));
    if (state.step != step) {
      return DataLossError(path + ": state of step " + std::to_string(state.step) + ", expected " +
                           std::to_string(step) + " (rerun the experiment)");
    }
    double diff = 0.0;
    for (int l = 0; l < (*model)->num_layers() && l < int(state.shards.size()); ++l) {
      diff = std::max(
          {diff, RelativeDifference((*model)->layer(l).shard(), state.shards[size_t(l)]),
           RelativeDifference((*model)->layer(l).velocity(), state.velocities[size_t(l)])});
    }
    if (std::isnan(diff)) diff = INFINITY;  // count it as the worst
    const int64_t k = step / segment;
    if (k >= 1 && k <= kMaxBoundaries) out->state_diff[k - 1] = diff;
    out->max_state_diff = std::max(out->max_state_diff, diff);
    // Continue with this run's own rounds: fault decisions are keyed by the
    // round, and the fault-free run's round at this step is behind this run's
    // when it recomputed steps (reusing rounds would repeat fault draws).
    state.round = std::max(state.round, (*trainer)->round());
    POLYGUARD_RETURN_IF_ERROR((*trainer)->Resume(state));
    ++out->resumes;
    return Status::Ok();
  };
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
    wall_ms +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count();
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
      if (step % segment == 0 && step < t.steps()) {
        if (Status s = boundary(step); !s.ok()) {
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

Status ValidateTrainingSoak(const proto::Experiment& spec, const std::string& file) {
  const auto& t = spec.training_soak();
  POLYGUARD_RETURN_IF_ERROR(CheckCode(file, "training_soak.code", t.code()));
  if (t.batch() < 1 || t.steps() < 1 || t.eval_every() < 1)
    return Bad(file, "training_soak", "batch, steps and eval_every must be >= 1");
  if (t.steps() / t.eval_every() > 100)
    return Bad(file, "training_soak.eval_every", "at most 100 evaluations per run");
  if (t.features() < 0 || t.classes() < 0 || t.features() == 1 || t.classes() == 1)
    return Bad(file, "training_soak", "features and classes must be >= 2 (0: default)");
  for (int h : t.hidden())
    if (h < 1) return Bad(file, "training_soak.hidden", "each width >= 1");
  if (!(t.error_rate() >= 0.0 && t.error_rate() <= 1.0))
    return Bad(file, "training_soak.error_rate", "in [0, 1]");
  if (!(t.tolerance() >= 0.0 && t.tolerance() < 1.0))
    return Bad(file, "training_soak.tolerance", "in [0, 1) (0: the default 1e-6)");
  if (t.segment_steps() < 0)
    return Bad(file, "training_soak.segment_steps", ">= 1 (0: the default 2000)");
  return Status::Ok();
}

StatusOr<std::string> RunTrainingSoak(const proto::Experiment& spec, const std::string& dir,
                                      bool* plotted) {
  const auto& t = spec.training_soak();
  const int peers = t.code().peers() > 0 ? t.code().peers() : 8;
  const double tolerance = t.tolerance() > 0 ? t.tolerance() : 1e-6;
  const int64_t segment = SegmentSteps(t);
  // Columns: steps, evals, accuracy and time are peer 0's; faults,
  // copies_replaced and unverified_decodes are summed over peers (job
  // totals); the other counters are job-wide. resumes and state_difference
  // (the largest, over peers and boundaries) are the faulty run's.
  POLYGUARD_ASSIGN_OR_RETURN(
      ResultTable table,
      ResultTable::Open(
          dir + "/" + spec.name() + ".csv",
          {"run", "steps", "evals", "final_accuracy", "ms_per_step", "faults", "wrong_results",
           "corrected", "shard_repairs", "recomputations", "rollbacks", "copies_replaced",
           "unverified_decodes", "resumes", "state_difference", "status"}));
  const std::string state_diffs = dir + "/segments/state-differences.csv";
  Progress progress(spec.name(), 2);
  PlotSpec plot{.title = spec.title(), .xlabel = "training step", .ylabel = "test accuracy"};
  for (const bool faulty : {false, true}) {
    const std::string run = faulty ? "faults" : "fault-free";
    const std::string losses = dir + "/losses-" + run + ".csv";
    if (!table.Has(run)) {
      if (!faulty) {
        // Made here, not by 8 peers at once.
        for (int64_t b = segment; b < t.steps(); b += segment) {
          std::error_code ec;
          std::filesystem::create_directories(StateDir(dir, b), ec);
          if (ec) return InternalError(StateDir(dir, b) + ": " + ec.message());
        }
      }
      auto records = bench::RunLocalPeers<SoakRecord>(
          peers, [&](int rank, const std::string& rdv, SoakRecord* r) {
            return SoakPeer(spec, peers, faulty, losses, dir, rank, rdv, r);
          });
      if (!records) return UnavailableError("soak run '" + run + "': a peer process failed");
      // Records arrive in any order.
      const SoakRecord* r0 = &records->front();
      std::string error;
      double faults = 0, copies_replaced = 0, unverified = 0, state_difference = 0;
      for (const SoakRecord& r : *records) {
        if (r.rank == 0) r0 = &r;
        if (error.empty() && r.error[0]) error = "peer " + std::to_string(r.rank) + ": " + r.error;
        faults += r.faults;
        copies_replaced += r.copies_replaced;
        unverified += r.unverified;
        state_difference = std::max(state_difference, r.max_state_diff);
      }
      const SoakRecord& r = *r0;
      if (faulty) {
        std::ostringstream f;
        f.precision(17);
        for (int64_t k = 1; k <= kMaxBoundaries && k * segment < t.steps(); ++k) {
          double d = 0;
          for (const SoakRecord& q : *records) d = std::max(d, q.state_diff[k - 1]);
          f << k * segment << "," << d << "\n";
        }
        POLYGUARD_RETURN_IF_ERROR(WriteText(state_diffs, f.str()));
      }
      POLYGUARD_RETURN_IF_ERROR(table.Append(
          {run, std::to_string(r.steps), std::to_string(r.evals),
           Num(r.evals > 0 ? r.accuracy[r.evals - 1] : 0.0), Num(r.ms_per_step), Num(faults),
           Num(r.wrong_results), Num(r.corrected), Num(r.repairs), Num(r.recomputations),
           Num(r.rollbacks), Num(copies_replaced), Num(unverified), std::to_string(r.resumes),
           Num(state_difference), error.empty() ? "ok" : error}));
      progress.Done(run, false);
    } else {
      progress.Done(run, true);
    }
  }
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<double> clean, ReadLosses(dir + "/losses-fault-free.csv"));
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<double> faulty, ReadLosses(dir + "/losses-faults.csv"));
  std::map<int64_t, double> state_at;  // boundary step -> state difference
  {
    std::ifstream f(state_diffs);
    std::string line;
    while (std::getline(f, line)) {
      const size_t comma = line.find(',');
      if (comma == std::string::npos) continue;
      state_at[std::strtoll(line.c_str(), nullptr, 10)] =
          std::strtod(line.c_str() + comma + 1, nullptr);
    }
  }
  // Every step's loss compared, segment by segment.
  struct Segment {
    int64_t first = 0, last = 0, differing = 0, missing = 0;
    double worst = 0.0;
  };
  const size_t compared = std::min(clean.size(), faulty.size());
  std::vector<Segment> segments;
  int64_t differing = 0, missing = 0;
  Series sc{.title = "fault-free"}, sf{.title = "faults"};
  for (size_t i = 0; i < compared; ++i) {
    const int64_t step = int64_t(i) + 1;
    if (segments.empty() || step > segments.back().last) {
      segments.push_back(
          {.first = step, .last = std::min<int64_t>(step + segment - 1, int64_t(compared))});
    }
    Segment& seg = segments.back();
    if (!std::isfinite(clean[i]) || !std::isfinite(faulty[i])) {
      ++seg.missing;
      ++missing;
      continue;
    }
    const double d = std::abs(faulty[i] - clean[i]) / std::max(std::abs(clean[i]), 1e-300);
    seg.worst = std::max(seg.worst, d);
    if (d > tolerance) ++seg.differing, ++differing;
    if ((i + 1) % size_t(t.eval_every()) == 0) {
      sc.points.emplace_back(double(i + 1), clean[i]);
      sf.points.emplace_back(double(i + 1), faulty[i]);
    }
  }
  plot.ylabel = "training loss";
  plot.series = {sc, sf};
  const Status st = Plot(dir, spec.name(), plot);
  *plotted = st.ok();
  auto sci = [](double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1e", x);
    return std::string(b);
  };
  std::ostringstream csv;
  csv << "segment,first_step,last_step,max_relative_difference,steps_differing,steps_missing,"
         "state_difference_at_end\n";
  csv.precision(17);
  double worst = 0.0, worst_state = 0.0;
  size_t worst_segment = 0;
  for (size_t k = 0; k < segments.size(); ++k) {
    const Segment& seg = segments[k];
    if (seg.worst > worst || k == 0) worst = seg.worst, worst_segment = k;
    const auto it = state_at.find(seg.last);
    if (it != state_at.end()) worst_state = std::max(worst_state, it->second);
    csv << k + 1 << "," << seg.first << "," << seg.last << "," << seg.worst << "," << seg.differing
        << "," << seg.missing << "," << (it != state_at.end() ? Num(it->second) : "") << "\n";
  }
  POLYGUARD_RETURN_IF_ERROR(WriteText(dir + "/segments.csv", csv.str()));

  std::ostringstream md;
  md << "| run | steps | final test accuracy | ms per step | faults injected (all peers) | wrong "
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
  if (segments.size() <= 25) {
    md << "\n| segment | steps | largest relative loss difference | steps differing | steps "
          "missing | state difference at its end |\n|---|---|---|---|---|---|\n";
    for (size_t k = 0; k < segments.size(); ++k) {
      const Segment& seg = segments[k];
      const auto it = state_at.find(seg.last);
      md << "| " << k + 1 << " | " << seg.first << "-" << seg.last << " | " << sci(seg.worst)
         << " | " << seg.differing << " | " << seg.missing << " | "
         << (it != state_at.end() ? sci(it->second) : "-") << " |\n";
    }
  }
  md << "\n"
     << compared << " steps compared in " << segments.size() << " segments of " << segment
     << " steps (at the start of every segment after the first the faulty run resumed from "
        "the fault-free run's state: "
     << table.Get("faults", "resumes") << " times): **" << differing
     << " steps whose loss differs from the fault-free run by more than " << tolerance
     << "** (a step that used a wrong value undetected), " << missing
     << " steps missing; largest relative difference within a segment " << sci(worst)
     << " (segment " << worst_segment + 1 << "); largest relative difference of the faulty "
     << "run's state (shards and velocities) from the fault-free run's at a segment's end "
     << sci(worst_state) << ". " << peers << " peers, faults at rate " << t.error_rate()
     << " per peer per step point (all points), batch " << t.batch() << ".\n";
  return md.str();
}

}  // namespace polyguard::experiment
