// Experiment 7 (experiment.proto, CrashRecovery): a peer killed mid-run. The
// job of a spec file runs three times on local peer processes (the library's
// launcher): uninterrupted, with the crash and no replacement, and with the
// crash and a replacement that rejoins (docs/architecture.md, "Rejoining").
// Each peer process writes its figures to a file; the summary compares the
// runs side by side, and the plot shows every run's loss at every step.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "experiment/kinds.h"
#include "experiment/results.h"
#include "polyguard/polyguard.h"

namespace polyguard::experiment {
namespace {

enum class Variant { kUninterrupted, kCrash, kRejoin };
constexpr Variant kVariants[] = {Variant::kUninterrupted, Variant::kCrash, Variant::kRejoin};

const char* Label(Variant v) {
  switch (v) {
    case Variant::kUninterrupted:
      return "uninterrupted";
    case Variant::kCrash:
      return "crashed";
    case Variant::kRejoin:
      return "crashed+rejoined";
  }
  return "";
}

StatusOr<JobSpec> CrashJob(const proto::CrashRecovery& c, Variant v) {
  POLYGUARD_ASSIGN_OR_RETURN(JobSpec job, LoadJobSpec(c.job()));
  job.trainer.survive_crashes = true;
  if (c.steps() > 0) job.steps = c.steps();
  if (c.timeout_ms() > 0) job.timeout = std::chrono::milliseconds(c.timeout_ms());
  if (v != Variant::kUninterrupted) {
    job.faults.crash_peer = c.crash_peer();
    job.faults.crash_step = c.crash_step();
  }
  POLYGUARD_RETURN_IF_ERROR(ValidateJobSpec(job));
  return job;
}

// One peer process: runs its part of the job and writes "key value" lines
// (and "loss STEP VALUE" per step) to FILE. Exit 0 when it finished.
int CrashPeer(const JobSpec& job, int rank, bool rejoin, const std::string& rendezvous,
              const std::string& file) {
  std::map<int64_t, double> losses;
  double loss_step = 0;  // the step a loss was survived in, from its start
  size_t losses_seen = 0;
  JobHooks hooks;
  hooks.on_step = [&](int64_t step, int64_t, const StepResult& r, const StepTiming& t,
                      const Trainer& trainer) {
    losses[step] = r.loss;
    if (trainer.peer_losses().size() > losses_seen) {
      losses_seen = trainer.peer_losses().size();
      loss_step = t.wall_seconds;
    }
  };
  const JobOutcome out =
      RunJobPeer(job, {.rank = rank, .rendezvous = rendezvous, .rejoin = rejoin}, hooks);
  std::ofstream f(file);
  f.precision(17);
  const TrainingCounters& c = out.counters;
  f << "status " << (out.status.ok() ? "ok" : out.status.ToString()) << "\n"
    << "accuracy " << double(out.correct) / double(std::max<int64_t>(out.tested, 1)) << "\n"
    << "loop_s " << out.seconds << "\nmean_step_s "
    << out.step_wall_seconds / double(std::max<int64_t>(out.steps_run, 1)) << "\n"
    << "loss_step_s " << loss_step << "\n"
    << "agree_s " << (out.peer_losses.empty() ? 0.0 : out.peer_losses.front().seconds) << "\n"
    << "degraded_steps " << c.degraded_steps << "\npeers_lost " << c.peers_lost << "\nrejoins "
    << c.rejoins << "\nrebuild_bytes " << c.rebuild_bytes << "\nrebuild_s "
    << (out.peer_rejoins.empty() ? 0.0 : out.peer_rejoins.front().seconds) << "\n"
    << "recomputations " << c.recomputations << "\nrollbacks " << c.rollbacks << "\n"
    << "rejoin_s " << out.rejoin_seconds << "\n";
  for (const auto& [step, loss] : losses) f << "loss " << step << " " << loss << "\n";
  return out.status.ok() || out.job_ended_before_rejoin ? 0 : 1;
}

struct Figures {
  std::map<std::string, std::string> values;
  std::map<int64_t, double> losses;
};

Figures ReadFigures(const std::string& file) {
  Figures f;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "loss") {
      int64_t step = 0;
      double loss = 0;
      if (words >> step >> loss) f.losses[step] = loss;
    } else {
      std::string rest;
      std::getline(words, rest);
      f.values[key] = rest.empty() ? "" : rest.substr(1);
    }
  }
  return f;
}

// Runs one variant; returns its peers' figures (the replacement's under
// rank + peers) and the launcher's wall seconds.
StatusOr<std::pair<std::map<int, Figures>, double>> RunVariant(const proto::CrashRecovery& c,
                                                               Variant v) {
  POLYGUARD_ASSIGN_OR_RETURN(const JobSpec job, CrashJob(c, v));
  std::random_device rd;
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("polyguard-crash-" + std::to_string(rd())))
          .string();
  std::filesystem::create_directories(dir);
  auto file = [&](int rank, bool rejoin) {
    return dir + "/peer-" + std::to_string(rank) + (rejoin ? "-rejoin" : "") + ".txt";
  };
  LocalPeersOptions o;
  o.peers = job.peers;
  o.deadline = std::chrono::hours(1);
  if (v == Variant::kRejoin) {
    o.restart_when = [](const PeerExit& e) {
      return e.exit_code == FaultInjector::kCrashExitCode && e.incarnation == 0;
    };
    o.restart_body = [&](int r) {
      return CrashPeer(job, r, true, "file:" + dir + "/rdv", file(r, true));
    };
  }
  const auto start = std::chrono::steady_clock::now();
  auto exits = RunLocalPeers(
      o, [&](int r) { return CrashPeer(job, r, false, "file:" + dir + "/rdv", file(r, false)); });
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::map<int, Figures> figures;
  for (int r = 0; r < job.peers; ++r) {
    if (std::filesystem::exists(file(r, false))) figures[r] = ReadFigures(file(r, false));
    if (std::filesystem::exists(file(r, true))) figures[r + job.peers] = ReadFigures(file(r, true));
  }
  std::filesystem::remove_all(dir);
  if (!exits.ok()) return exits.status();
  return std::make_pair(std::move(figures), wall);
}

}  // namespace

Status ValidateCrashRecovery(const proto::Experiment& spec, const std::string& file) {
  const proto::CrashRecovery& c = spec.crash_recovery();
  if (c.job().empty()) return Bad(file, "crash_recovery.job", "a job spec file is required");
  auto job = CrashJob(c, Variant::kCrash);
  if (!job.ok()) return Bad(file, "crash_recovery.job", job.status().message());
  if (c.crash_peer() < 0 || c.crash_peer() >= job->peers) {
    return Bad(file, "crash_recovery.crash_peer",
               "must be in [0, " + std::to_string(job->peers) + ")");
  }
  if (c.crash_step() < 1) return Bad(file, "crash_recovery.crash_step", "must be >= 1");
  if (c.steps() < 0) return Bad(file, "crash_recovery.steps", "must be >= 0");
  return Status::Ok();
}

StatusOr<std::string> RunCrashRecovery(const proto::Experiment& spec, const std::string& dir,
                                       bool* plotted) {
  const proto::CrashRecovery& c = spec.crash_recovery();
  const std::vector<std::string> keys = {
      "accuracy",      "wall_s",         "mean_step_s", "loss_step_s", "agree_s",
      "peers_lost",    "degraded_steps", "rejoins",     "rejoin_s",    "rebuild_s",
      "rebuild_bytes", "recomputations", "rollbacks",   "status"};
  std::vector<std::string> columns = {"point", "variant", "step", "loss"};
  columns.insert(columns.end(), keys.begin(), keys.end());
  POLYGUARD_ASSIGN_OR_RETURN(ResultTable table,
                             ResultTable::Open(dir + "/" + spec.name() + ".csv", columns));
  Progress progress(spec.name(), 3);
  POLYGUARD_ASSIGN_OR_RETURN(const JobSpec job, CrashJob(c, Variant::kCrash));
  // The figures of a survivor (the lowest rank that did not crash).
  const int witness = c.crash_peer() == 0 ? 1 : 0;
  for (Variant v : kVariants) {
    const std::string label = Label(v);
    const std::string done = label + ";done";
    if (table.Has(done)) {
      progress.Done(label, true);
      continue;
    }
    POLYGUARD_ASSIGN_OR_RETURN(auto run, RunVariant(c, v));
    auto& [figures, wall] = run;
    Figures& w = figures[witness];
    const Figures* replacement = figures.count(c.crash_peer() + job.peers) > 0
                                     ? &figures[c.crash_peer() + job.peers]
                                     : nullptr;
    for (const auto& [step, loss] : w.losses) {
      std::vector<std::string> row = {label + ";step=" + std::to_string(step), label,
                                      std::to_string(step), Num(loss)};
      row.resize(columns.size());
      POLYGUARD_RETURN_IF_ERROR(table.Append(row));
    }
    std::vector<std::string> row = {done, label, "", ""};
    for (const std::string& k : keys) {
      if (k == "wall_s") {
        row.push_back(Num(wall));
      } else if (k == "rejoin_s") {
        row.push_back(replacement ? Num(std::stod(replacement->values.at("rejoin_s"))) : "");
      } else if (k == "status") {
        std::string s = w.values.count(k) ? w.values[k] : "no figures (the peer died)";
        for (char& ch : s)
          if (ch == ',' || ch == '\n') ch = ';';
        row.push_back(s);
      } else {
        row.push_back(w.values.count(k) ? Num(std::stod(w.values[k])) : "");
      }
    }
    POLYGUARD_RETURN_IF_ERROR(table.Append(row));
    progress.Done(label, false);
  }
  PlotSpec plot{.title = spec.title(), .xlabel = "training step", .ylabel = "training loss"};
  std::ostringstream md;
  md << "| | ";
  for (Variant v : kVariants) md << Label(v) << " | ";
  md << "\n|---|---|---|---|\n";
  for (const std::string& k : keys) {
    md << "| " << k << " | ";
    for (Variant v : kVariants) md << table.Get(std::string(Label(v)) + ";done", k) << " | ";
    md << "\n";
  }
  for (Variant v : kVariants) {
    Series s{.title = Label(v)};
    for (const auto& r : table.rows())
      if (r[1] == Label(v) && !r[2].empty())
        s.points.emplace_back(std::stod(r[2]), std::stod(r[3]));
    plot.series.push_back(std::move(s));
  }
  const Status st = Plot(dir, spec.name(), plot);
  *plotted = st.ok();
  if (!st.ok()) std::fprintf(stderr, "%s\n", st.ToString().c_str());
  md << "\n"
     << c.job() << " on " << job.peers << " local peer processes, peer " << c.crash_peer()
     << " crashing at round " << c.crash_step() << ", failure timeout " << job.timeout.count()
     << " ms. Figures of peer " << witness
     << " (rejoin_s: the replacement's, from its start to its first step as a member; "
        "loss_step_s: the step the crash hit, from its start to its completion by the survivors "
        "(the time from the kill to the next completed step); agree_s: agreeing on the lost "
        "peer and re-forming, within it; rebuild_s: admitting the replacement, handing over the "
        "state, rebuilding its shards and probing them).\n";
  return md.str();
}

}  // namespace polyguard::experiment
