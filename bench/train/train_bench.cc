// Coded training across P local peer processes, every strategy side by side
// (issue 4's benchmark). With 2 cores the P processes share the machine, so
// the figures are per peer and step: the CPU time of the peer's own work (its
// main thread: encode, product, decode, activations, loss, update,
// agreement), the CPU of its whole process in user and in kernel mode (gloo's
// I/O thread and the exchanges' system calls included: what a user pays), the
// bytes it sends and receives, the bytes of its stored shards and velocities,
// and wall time.
//
//   train_bench [--steps S] [--error-rate E] [--layers 784,1024,1024,10]
//               [--batch B] [--only label,label,...] [--repeat R]
// Labels: uncoded4 uncoded8 genpolydot8 mds8 replication8 abft8, each fault
// free and with faults at rate E at every step point ("+faults").
// Prints CSV, one row per run (the runs are interleaved R times: the machine
// is shared and noisy), then the medians' ratios to uncoded4 (the uncoded
// split with the same memory per peer as Generalized PolyDot m = n = 2).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/help.h"
#include "common/local_peers.h"
#include "polyguard/polyguard.h"

namespace polyguard {
namespace {

struct Run {
  std::string label;
  Strategy strategy;
  int peers;
  double error_rate;
  Precision precision = Precision::kFloat64;
};

struct Record {
  double cpu_own = 0, cpu_user = 0, cpu_sys = 0, wall = 0, sent = 0, received = 0;
  double cpu_process = 0;  // user + kernel, for the medians
  double stored = 0;       // bytes of the peer's shards and velocities, as kept
  double faults = 0, recomputations = 0, rollbacks = 0, repairs = 0, loss = 0;
  int steps = 0;
  int failed = 0;  // diverged or could not progress
  char error[160] = {};
};

struct Setup {
  std::vector<LayerSpec> layers;
  int batch = 64;
  int steps = 8;
  int warmup = 2;
};

int Peer(const Run& run, const Setup& setup, int rank, const std::string& dir, Record* out) {
  using namespace std::chrono_literals;
  auto group = PeerGroup::Connect({.rank = rank,
                                   .size = run.peers,
                                   .rendezvous = "file:" + dir,
                                   .job_id = "train-bench",
                                   .timeout = 300s});
  if (!group.ok()) return 1;
  FaultModel fm;
  fm.error_rate = run.error_rate;
  FaultInjector faults(fm, 5, rank);
  SequentialOptions mo;
  mo.layers = setup.layers;
  mo.batch = setup.batch;
  mo.code.strategy = run.strategy;
  mo.code.precision = run.precision;
  mo.code.m = 2;
  mo.code.n = 2;
  mo.code.replicas = 2;
  mo.seed = 3;
  auto model = Sequential::Create(mo, group->get(), run.error_rate > 0 ? &faults : nullptr);
  if (!model.ok()) {
    std::fprintf(stderr, "%s: %s\n", run.label.c_str(), model.status().ToString().c_str());
    return 2;
  }
  TrainerOptions to;
  to.sgd = {.learning_rate = 0.005, .momentum = 0.9, .weight_decay = 1e-4};
  auto trainer =
      Trainer::Create(group->get(), model->get(), run.error_rate > 0 ? &faults : nullptr, to);
  if (!trainer.ok()) return 3;
  auto data =
      SyntheticClassification::Create(setup.layers.front().inputs, setup.layers.back().outputs, 1)
          .value();
  Matrix x;
  std::vector<int> labels;
  Record r;
  int64_t step = 1;
  while (step <= setup.warmup + setup.steps) {
    data->Batch(step, setup.batch, &x, &labels);
    const bool measured = step > setup.warmup;
    const double c0 = bench::ThreadCpuMs();
    const bench::ProcessCpu p0 = bench::ProcessCpuMs();
    const auto w0 = std::chrono::steady_clock::now();
    const int64_t s0 = (*group)->bytes_sent(), r0 = (*group)->bytes_received();
    StatusOr<StepResult> result = (*trainer)->Step(step, x, labels);
    if (!result.ok()) {
      if (result.status().code() == StatusCode::kUnavailable ||
          result.status().code() == StatusCode::kDeadlineExceeded) {
        return 4;
      }
      r.failed = 1;  // diverged or no progress: report what was measured
      std::snprintf(r.error, sizeof r.error, "%s", result.status().ToString().c_str());
      break;
    }
    if (measured) {
      r.cpu_own += bench::ThreadCpuMs() - c0;
      const bench::ProcessCpu used = bench::ProcessCpuMs() - p0;
      r.cpu_user += used.user_ms;
      r.cpu_sys += used.sys_ms;
      r.wall +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count();
      r.sent += double((*group)->bytes_sent() - s0);
      r.received += double((*group)->bytes_received() - r0);
      if (!result->rolled_back) {
        ++r.steps;
        r.loss = result->loss;
      }
    }
    step = result->next_step;
  }
  for (int l = 0; l < (*model)->num_layers(); ++l)
    r.stored += double((*model)->layer(l).stored_bytes());
  const TrainingCounters c = (*trainer)->counters();
  r.faults = double(c.faults_injected);
  r.recomputations = double(c.recomputations);
  r.rollbacks = double(c.rollbacks);
  r.repairs = double(c.shard_repairs);
  *out = r;
  return 0;
}

std::vector<int> ParseInts(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::atoi(item.c_str()));
  return out;
}

}  // namespace
}  // namespace polyguard

int main(int argc, char** argv) {
  using namespace polyguard;
  Setup setup;
  double error_rate = 0.003;
  int repeat = 3;
  std::string only, layers = "784,1024,1024,10";
  const char usage[] =
      "usage: train_bench [--steps N] [--error-rate E] [--layers 784,1024,1024,10] [--batch B]\n"
      "                   [--only LABEL,...] [--repeat N]\n"
      "Trains the layers on local peers under every strategy, with and without faults (and\n"
      "uncoded4 and genpolydot8 in float32 too), and prints per-peer CPU time and bytes per\n"
      "step as CSV, then medians and ratios (to uncoded4, and float32 to float64).\n";
  if (bench::PrintedHelp(argc, argv, usage)) return 0;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "train_bench: %s needs a value\n%s", flag.c_str(), usage);
      return 2;
    }
    const std::string value = argv[i + 1];
    if (flag == "--steps")
      setup.steps = std::atoi(value.c_str());
    else if (flag == "--error-rate")
      error_rate = std::atof(value.c_str());
    else if (flag == "--layers")
      layers = value;
    else if (flag == "--batch")
      setup.batch = std::atoi(value.c_str());
    else if (flag == "--only")
      only = "," + value + ",";
    else if (flag == "--repeat")
      repeat = std::atoi(value.c_str());
    else {
      std::fprintf(stderr, "train_bench: unknown flag %s\n%s", flag.c_str(), usage);
      return 2;
    }
  }
  const std::vector<int> widths = ParseInts(layers);
  if (widths.size() < 2 || setup.steps < 1 || repeat < 1 || setup.batch < 1 ||
      !(error_rate > 0 && error_rate < 1)) {
    std::fprintf(stderr,
                 "train_bench: needs --layers with >= 2 widths, --steps >= 1, --batch >= 1, "
                 "--error-rate in (0, 1)\n");
    return 2;
  }
  for (size_t i = 0; i + 1 < widths.size(); ++i)
    setup.layers.push_back({widths[i], widths[i + 1],
                            i + 2 == widths.size() ? Activation::kIdentity : Activation::kRelu});
  std::vector<Run> runs;
  for (double e : {0.0, error_rate}) {
    const std::string suffix = e > 0 ? "+faults" : "";
    runs.push_back({"uncoded4" + suffix, Strategy::kUncoded, 4, e});
    runs.push_back({"uncoded8" + suffix, Strategy::kUncoded, 8, e});
    runs.push_back({"genpolydot8" + suffix, Strategy::kPolyDot, 8, e});
    runs.push_back({"mds8" + suffix, Strategy::kMds, 8, e});
    runs.push_back({"replication8" + suffix, Strategy::kReplication, 8, e});
    runs.push_back({"abft8" + suffix, Strategy::kAbft, 8, e});
    runs.push_back({"uncoded4-float32" + suffix, Strategy::kUncoded, 4, e, Precision::kFloat32});
    runs.push_back({"genpolydot8-float32" + suffix, Strategy::kPolyDot, 8, e, Precision::kFloat32});
  }
  std::printf(
      "run,strategy,P,error_rate,steps,cpu_own_ms,cpu_user_ms,cpu_sys_ms,wall_ms,bytes_sent,"
      "bytes_received,stored_bytes,faults,recomputations,rollbacks,shard_repairs,final_loss,"
      "status\n");
  std::map<std::string, std::vector<Record>> means;
  std::vector<std::string> order;
  for (int rep = 0; rep < repeat; ++rep)
    for (const Run& run : runs) {
      if (!only.empty() && only.find("," + run.label + ",") == std::string::npos) continue;
      auto records = bench::RunLocalPeers<Record>(
          run.peers, [&](int rank, const std::string& dir, Record* out) {
            return Peer(run, setup, rank, dir, out);
          });
      if (!records) {
        std::fprintf(stderr, "train_bench: a peer of %s failed\n", run.label.c_str());
        return 1;
      }
      Record mean;
      std::string status = "ok";
      for (const Record& r : *records) {
        const double n = std::max(r.steps, 1);
        mean.cpu_own += r.cpu_own / n / run.peers;
        mean.cpu_user += r.cpu_user / n / run.peers;
        mean.cpu_sys += r.cpu_sys / n / run.peers;
        mean.wall += r.wall / n / run.peers;
        mean.sent += r.sent / n / run.peers;
        mean.received += r.received / n / run.peers;
        mean.stored += r.stored / run.peers;
        mean.faults += r.faults;
        mean.recomputations = r.recomputations;
        mean.rollbacks = r.rollbacks;
        mean.repairs = r.repairs;
        mean.loss = r.loss;
        mean.steps = r.steps;
        if (r.failed) status = std::string("failed: ") + r.error;
      }
      for (char& ch : status)
        if (ch == ',') ch = ';';
      std::printf("%s,%s,%d,%g,%d,%.2f,%.2f,%.2f,%.2f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.6g,%s\n",
                  run.label.c_str(), std::string(run.strategy.name()).c_str(), run.peers,
                  run.error_rate, mean.steps, mean.cpu_own, mean.cpu_user, mean.cpu_sys, mean.wall,
                  mean.sent, mean.received, mean.stored, mean.faults, mean.recomputations,
                  mean.rollbacks, mean.repairs, mean.loss, status.c_str());
      std::fflush(stdout);
      if (rep == 0) order.push_back(run.label);
      means[run.label].push_back(mean);
    }
  auto median = [&](const std::string& label, double Record::*field) {
    std::vector<double> v;
    for (const Record& r : means[label]) v.push_back(r.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  if (means.count("uncoded4") != 0) {
    std::printf(
        "\nmedians of %d runs, and ratios to uncoded4 (per peer and step):\n"
        "run,cpu_own_ms,cpu_own_ratio,cpu_process_ms,cpu_process_ratio,kernel_share,"
        "bytes_sent_ratio,wall_ratio\n",
        repeat);
    for (auto& [label, records] : means)
      for (Record& r : records) r.cpu_process = r.cpu_user + r.cpu_sys;
    const double cpu = median("uncoded4", &Record::cpu_own);
    const double process = median("uncoded4", &Record::cpu_process);
    const double sent = median("uncoded4", &Record::sent);
    const double wall = median("uncoded4", &Record::wall);
    for (const std::string& label : order)
      std::printf("%s,%.2f,%.3f,%.2f,%.3f,%.3f,%.3f,%.3f\n", label.c_str(),
                  median(label, &Record::cpu_own), median(label, &Record::cpu_own) / cpu,
                  median(label, &Record::cpu_process),
                  median(label, &Record::cpu_process) / process,
                  median(label, &Record::cpu_sys) / median(label, &Record::cpu_process),
                  median(label, &Record::sent) / sent, median(label, &Record::wall) / wall);
  }
  // Float32 runs against the same run in float64 (the label without "-float32").
  const std::string float32 = "-float32";
  bool header = false;
  for (const std::string& label : order) {
    const size_t at = label.find(float32);
    if (at == std::string::npos) continue;
    const std::string base = label.substr(0, at) + label.substr(at + float32.size());
    if (means.count(base) == 0) continue;
    if (!header) {
      std::printf(
          "\nfloat32 against float64 (medians, per peer and step):\n"
          "run,cpu_own_ratio,cpu_process_ratio,bytes_sent_ratio,stored_bytes_ratio,wall_ratio\n");
      header = true;
    }
    auto process = [&](const std::string& l) {
      return median(l, &Record::cpu_user) + median(l, &Record::cpu_sys);
    };
    std::printf("%s,%.3f,%.3f,%.3f,%.3f,%.3f\n", label.c_str(),
                median(label, &Record::cpu_own) / median(base, &Record::cpu_own),
                process(label) / process(base),
                median(label, &Record::sent) / median(base, &Record::sent),
                median(label, &Record::stored) / median(base, &Record::stored),
                median(label, &Record::wall) / median(base, &Record::wall));
  }
  return 0;
}
