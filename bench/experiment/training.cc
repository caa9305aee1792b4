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

Dataset FirstSamples(const Dataset& d, int count) {
  if (count <= 0 || count >= d.size()) return d;
  Dataset out;
  out.classes = d.classes;
  out.inputs = d.inputs.leftCols(count);
  out.labels.assign(d.labels.begin(), d.labels.begin() + count);
  return out;
}

int TrainingPeer(const proto::Experiment& spec, const polyguard::proto::CodeSpec& pc, int peers,
                 int rank, const std::string& dir, TrainingRecord* out) {
  const auto& t = spec.training();
  auto fail = [&](const Status& s) {
    std::snprintf(out->error, sizeof out->error, "%s", s.ToString().c_str());
    return 0;  // report the error as the record
  };
  auto group = PeerGroup::Connect({.rank = rank,
                                   .size = peers,
                                   .rendezvous = "file:" + dir,
                                   .job_id = "experiment",
                                   .timeout = 120s});
  if (!group.ok()) return 1;
  const std::string data = t.data_dir().empty() ? "data/mnist" : t.data_dir();
  auto train = LoadIdxDataset(data + "/train-images-idx3-ubyte", data + "/train-labels-idx1-ubyte");
  auto test = LoadIdxDataset(data + "/t10k-images-idx3-ubyte", data + "/t10k-labels-idx1-ubyte");
  if (!train.ok()) return fail(train.status().WithContext("run scripts/fetch-mnist"));
  if (!test.ok()) return fail(test.status().WithContext("run scripts/fetch-mnist"));
  const Dataset train_set = FirstSamples(*train, t.train_samples());
  const Dataset test_set = FirstSamples(*test, t.test_samples());
  SequentialOptions mo;
  int width = static_cast<int>(train_set.inputs.rows());
  for (int h : t.hidden()) {
    mo.layers.push_back({width, h, Activation::kRelu});
    width = h;
  }
  mo.layers.push_back({width, 10, Activation::kIdentity});
  mo.batch = t.batch();
  mo.seed = spec.seed();
  auto code = CodeOptions(pc, peers, {1, 1, 1});
  if (!code.ok()) return fail(code.status());
  mo.code = *code;
  FaultModel fm;
  fm.error_rate = t.error_rate();
  if (!t.points().empty()) {
    fm.points.clear();
    for (const std::string& p : t.points()) fm.points.push_back(ParseStepPoint(p).value());
  }
  FaultInjector faults(fm, DeriveSeed(spec.seed(), {17}), rank);
  FaultInjector* injector = t.error_rate() > 0 ? &faults : nullptr;
  auto model = Sequential::Create(mo, group->get(), injector);
  if (!model.ok()) return fail(model.status());
  TrainerOptions to;
  to.sgd = {.learning_rate = t.learning_rate() > 0 ? t.learning_rate() : 0.05,
            .momentum = t.momentum(),
            .weight_decay = 0.0};
  if (t.scrub_interval() > 0) to.scrub_interval = t.scrub_interval();
  auto trainer = Trainer::Create(group->get(), model->get(), injector, to);
  if (!trainer.ok()) return fail(trainer.status());
  BatchSampler sampler(&train_set, t.batch(), spec.seed());
  Matrix x;
  std::vector<int> labels;
  // Test accuracy measures the model, not fault-tolerant inference: no
  // faults while evaluating.
  auto evaluate = [&](int64_t step) -> Status {
    faults.set_paused(true);
    struct Resume {
      FaultInjector* f;
      ~Resume() { f->set_paused(false); }
    } resume{&faults};
    int correct = 0;
    const int b = t.batch();
    Matrix xb(test_set.inputs.rows(), b);
    std::vector<int> yb(static_cast<size_t>(b));
    for (int64_t i0 = 0; i0 < test_set.size(); i0 += b) {
      const int count = static_cast<int>(std::min<int64_t>(b, test_set.size() - i0));
      xb.setZero();
      xb.leftCols(count) = test_set.inputs.middleCols(i0, count);
      for (int i = 0; i < b; ++i) yb[size_t(i)] = i < count ? test_set.labels[size_t(i0 + i)] : 0;
      POLYGUARD_ASSIGN_OR_RETURN(int c, (*trainer)->Evaluate(xb, yb, count));
      correct += c;
    }
    if (out->evals < kMaxEvals) {
      out->eval_step[out->evals] = step;
      out->accuracy[out->evals] = double(correct) / double(test_set.size());
      ++out->evals;
    }
    return Status::Ok();
  };
  double wall_ms = 0, cpu_ms = 0;
  int64_t step = 1, done = 0;
  if (Status s = evaluate(0); !s.ok()) {
    fail(s);
    step = t.steps() + 1;
  }
  while (step <= t.steps()) {
    sampler.Batch(step, &x, &labels);
    const double c0 = bench::ThreadCpuMs();
    const auto w0 = std::chrono::steady_clock::now();
    auto r = (*trainer)->Step(step, x, labels);
    wall_ms +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count();
    cpu_ms += bench::ThreadCpuMs() - c0;
    ++done;
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kUnavailable ||
          r.status().code() == StatusCode::kDeadlineExceeded)
        return 4;
      fail(r.status());
      break;
    }
    if (!r->rolled_back && step % t.eval_every() == 0) {
      if (Status s = evaluate(step); !s.ok()) {
        fail(s);
        break;
      }
    }
    step = r->next_step;
  }
  const TrainingCounters c = (*trainer)->counters();
  out->ms_per_step = wall_ms / double(std::max<int64_t>(done, 1));
  out->cpu_ms_per_step = cpu_ms / double(std::max<int64_t>(done, 1));
  out->steps = c.steps;
  out->faults = double(c.faults_injected);
  out->corrected = double(c.results_corrected);
  out->repairs = double(c.shard_repairs);
  out->recomputations = double(c.recomputations);
  out->rollbacks = double(c.rollbacks);
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
