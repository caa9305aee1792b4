// polyguard-train: trains a job spec (models/*.textproto) on P peers.
//
//   polyguard-train --spec FILE [overrides]
//     local mode (no --rank): starts the P peer processes on this machine,
//     meeting in a fresh temporary folder; one progress line; a summary.
//   polyguard-train --spec FILE --rank R --rendezvous redis://host:port
//     one peer of a multi-host job (every machine runs one, R = 0..P-1).
//
// Overrides: --peers --strategy --error-rate --epochs --steps --seed
// --rendezvous --rank --checkpoint-dir --resume --timeout-ms --quiet
// --status-port (peer r serves /metrics and /healthz on PORT + r, on
// 127.0.0.1 unless --status-address says otherwise).
// Exit status: 0 on success; 1 when training failed (a peer's message says
// why); 2 for bad arguments or a bad spec, and for --resume from checkpoints
// that do not fit the job (at different steps, or past its last step); 0
// without training when they are at its last step already.
//
// This program is also the example of driving the library from your own
// trainer: see RunPeer.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "polyguard/polyguard.h"

namespace polyguard {
namespace {

struct Args {
  std::string spec;
  std::optional<int> peers, rank;
  std::optional<std::string> strategy, precision, rendezvous, checkpoint_dir;
  std::optional<double> error_rate;
  std::optional<int> epochs;
  std::optional<int64_t> steps, timeout_ms;
  std::optional<int> status_port;  // peer r serves on status_port + r
  std::string status_address = "127.0.0.1";
  std::string hostname = "127.0.0.1";  // the address this peer listens on and announces
  std::optional<uint64_t> seed;
  bool resume = false;
  bool rejoin = false;   // a replacement for --rank in a running job
  int max_restarts = 3;  // local mode: replacements per crashed peer
  std::optional<int> max_restarts_flag;
  bool quiet = false;
  bool help = false;
  std::string launcher;  // set when the rank came from the environment
  int launcher_size = 0;
  bool progress = true;  // rank 0 of a local job draws the progress line
};

const char kUsage[] =
    "usage: polyguard-train --spec FILE [options]\n"
    "  --spec FILE          the job (models/*.textproto)\n"
    "  --peers P            override the spec's peers\n"
    "  --strategy S         a strategy that trains: %s\n"
    "  --precision P        the peers' arithmetic: float64 or float32\n"
    "  --error-rate E       faults per step point, in [0, 1]\n"
    "  --epochs N | --steps N   how long to train\n"
    "  --seed N             model, data and fault seeds\n"
    "  --checkpoint-dir DIR [--resume]   write (and resume from) DIR/peer-R.ckpt\n"
    "  --timeout-ms MS      how long a peer waits for another (>= 100)\n"
    "  --max-restarts N     local mode, a spec with survive_crashes: a crashed peer's\n"
    "                       replacement rejoins the job, up to N times a peer (default 3)\n"
    "  --rejoin             with --rank R: replace peer R of a running job that\n"
    "                       survives crashes (same spec and rendezvous)\n"
    "  --quiet              a loss line every 10 steps, one per rollback and one per\n"
    "                       recomputation, instead of the progress line\n"
    "  --status-port PORT [--status-address ADDR]   peer r serves GET /metrics and\n"
    "                       /healthz on PORT + r (on 127.0.0.1 by default)\n"
    "  --help               this text\n"
    "Without --rank, the P peers run as processes on this machine. One peer of a\n"
    "multi-host job: --rank R --rendezvous URL [--hostname ADDR], URL being\n"
    "redis://[:PASSWORD@]HOST:PORT[/DB] (or the password in POLYGUARD_REDIS_PASSWORD)\n"
    "or file:DIR (a fresh folder, peers of one machine only). Under torchrun, srun or\n"
    "mpirun the rank and size come from RANK/WORLD_SIZE, SLURM_PROCID/SLURM_NTASKS or\n"
    "OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE (the size must equal the job's peers);\n"
    "--rendezvous is still needed (MASTER_ADDR is not a store polyguard can use).\n"
    "Exit status: 0 done, 1 training failed, 2 bad arguments, spec or data.\n";

// The rank and peer count that torchrun, srun (Slurm) and mpirun (Open MPI)
// give each process they start, for a peer started without --rank.
struct LauncherVariables {
  const char* launcher;
  const char* rank;
  const char* size;
};
constexpr LauncherVariables kLaunchers[] = {
    {"torchrun", "RANK", "WORLD_SIZE"},
    {"Slurm", "SLURM_PROCID", "SLURM_NTASKS"},
    {"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
};

StatusOr<int> EnvInt(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return NotFoundError(std::string(name) + " is not set");
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 1 << 20) {
    return InvalidArgumentError(std::string(name) + "='" + text + "' is not a count");
  }
  return static_cast<int>(v);
}

Status RankFromLauncher(Args* a) {
  for (const LauncherVariables& l : kLaunchers) {
    if (std::getenv(l.rank) == nullptr) continue;
    POLYGUARD_ASSIGN_OR_RETURN(int rank, EnvInt(l.rank));
    StatusOr<int> size = EnvInt(l.size);
    if (!size.ok()) {
      return InvalidArgumentError(std::string(l.rank) + " is set (" + l.launcher + ") but " +
                                  size.status().message());
    }
    if (rank >= *size) {
      return InvalidArgumentError(std::string(l.launcher) + ": " + l.rank + "=" +
                                  std::to_string(rank) + " must be below " + l.size + "=" +
                                  std::to_string(*size));
    }
    a->rank = rank;
    a->launcher_size = *size;
    a->launcher = std::string(l.launcher) + " (" + l.rank + "=" + std::to_string(rank) + ", " +
                  l.size + "=" + std::to_string(*size) + ")";
    return Status::Ok();
  }
  return Status::Ok();
}

StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> StatusOr<std::string> {
      if (i + 1 >= argc) return InvalidArgumentError(flag + " needs a value");
      return std::string(argv[++i]);
    };
    auto number = [&](auto* out) -> Status {
      POLYGUARD_ASSIGN_OR_RETURN(std::string v, value());
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0')
        return InvalidArgumentError(flag + ": not a number: '" + v + "'");
      using T = typename std::remove_reference_t<decltype(*out)>::value_type;
      if (!std::is_floating_point_v<T> && d != std::floor(d)) {
        return InvalidArgumentError(flag + ": not an integer: '" + v + "'");
      }
      // Outside T's range a cast is undefined (1e10 became -2147483648).
      if (!std::isfinite(d) || d < double(std::numeric_limits<T>::lowest()) ||
          d > double(std::numeric_limits<T>::max())) {
        return InvalidArgumentError(flag + ": '" + v + "' is out of range");
      }
      *out = static_cast<T>(d);
      return Status::Ok();
    };
    if (flag == "--help" || flag == "-h") {
      a.help = true;
      return a;
    }
    if (flag == "--spec") {
      POLYGUARD_ASSIGN_OR_RETURN(a.spec, value());
    } else if (flag == "--peers")
      POLYGUARD_RETURN_IF_ERROR(number(&a.peers));
    else if (flag == "--rank")
      POLYGUARD_RETURN_IF_ERROR(number(&a.rank));
    else if (flag == "--strategy") {
      POLYGUARD_ASSIGN_OR_RETURN(a.strategy, value());
    } else if (flag == "--precision") {
      POLYGUARD_ASSIGN_OR_RETURN(a.precision, value());
    } else if (flag == "--rendezvous") {
      POLYGUARD_ASSIGN_OR_RETURN(a.rendezvous, value());
    } else if (flag == "--checkpoint-dir") {
      POLYGUARD_ASSIGN_OR_RETURN(a.checkpoint_dir, value());
    } else if (flag == "--error-rate")
      POLYGUARD_RETURN_IF_ERROR(number(&a.error_rate));
    else if (flag == "--epochs")
      POLYGUARD_RETURN_IF_ERROR(number(&a.epochs));
    else if (flag == "--steps")
      POLYGUARD_RETURN_IF_ERROR(number(&a.steps));
    else if (flag == "--seed")
      POLYGUARD_RETURN_IF_ERROR(number(&a.seed));
    else if (flag == "--timeout-ms")
      POLYGUARD_RETURN_IF_ERROR(number(&a.timeout_ms));
    else if (flag == "--status-port")
      POLYGUARD_RETURN_IF_ERROR(number(&a.status_port));
    else if (flag == "--status-address") {
      POLYGUARD_ASSIGN_OR_RETURN(a.status_address, value());
    } else if (flag == "--hostname") {
      POLYGUARD_ASSIGN_OR_RETURN(a.hostname, value());
    } else if (flag == "--resume")
      a.resume = true;
    else if (flag == "--rejoin")
      a.rejoin = true;
    else if (flag == "--max-restarts")
      POLYGUARD_RETURN_IF_ERROR(number(&a.max_restarts_flag));
    else if (flag == "--quiet")
      a.quiet = true;
    else if (flag == "--no-progress")
      a.progress = false;
    else
      return InvalidArgumentError("unknown option " + flag);
  }
  if (a.spec.empty()) return InvalidArgumentError("--spec FILE is required");
  if (!a.rank) POLYGUARD_RETURN_IF_ERROR(RankFromLauncher(&a));
  if (a.rank && !a.rendezvous) {
    if (!a.launcher.empty()) {
      const char* addr = std::getenv("MASTER_ADDR");
      const char* port = std::getenv("MASTER_PORT");
      // Debian's gloo has no TCP store (only file, hash and Redis stores).
      return InvalidArgumentError(
          std::string("the rank comes from ") + a.launcher + (addr ? ", MASTER_ADDR=" : "") +
          (addr ? addr : "") + (port ? " MASTER_PORT=" : "") + (port ? port : "") +
          ", but polyguard cannot meet through a store at MASTER_ADDR (gloo as packaged has "
          "no TCP store): pass --rendezvous redis://HOST:PORT (a Redis server every peer "
          "reaches) or --rendezvous file:DIR (a fresh folder every peer shares)");
    }
    return InvalidArgumentError("--rank needs --rendezvous");
  }
  if (a.resume && !a.checkpoint_dir) return InvalidArgumentError("--resume needs --checkpoint-dir");
  if (a.rejoin && !a.rank) {
    return InvalidArgumentError(
        "--rejoin needs --rank R and --rendezvous URL: it replaces peer R of a running job "
        "(local mode restarts crashed peers itself: --max-restarts)");
  }
  if (a.rejoin && a.resume) {
    return InvalidArgumentError(
        "--rejoin and --resume do not go together: a replacement takes its state from the "
        "running peers");
  }
  if (a.max_restarts_flag) {
    if (*a.max_restarts_flag < 0) return InvalidArgumentError("--max-restarts must be >= 0");
    a.max_restarts = *a.max_restarts_flag;
  }
  if (a.status_port && (*a.status_port < 1 || *a.status_port > 65000)) {
    return InvalidArgumentError("--status-port must be in [1, 65000]");
  }
  return a;
}

StatusOr<JobSpec> SpecWithOverrides(const Args& a) {
  POLYGUARD_ASSIGN_OR_RETURN(JobSpec s, LoadJobSpec(a.spec));
  if (a.peers) s.peers = *a.peers;
  if (a.strategy) {
    POLYGUARD_ASSIGN_OR_RETURN(s.model.code.strategy, ParseStrategy(*a.strategy));
  }
  if (a.precision) {
    StatusOr<Precision> p = ParsePrecision(*a.precision);
    if (!p.ok()) return InvalidArgumentError("--precision: " + std::string(p.status().message()));
    s.model.code.precision = *p;
  }
  if (a.error_rate) s.faults.error_rate = *a.error_rate;
  if (a.epochs) {
    s.epochs = *a.epochs;
    if (!a.steps) s.steps = 0;
  }
  if (a.steps) s.steps = *a.steps;
  if (a.seed) s.model.seed = s.fault_seed = s.data.seed = *a.seed;
  if (a.timeout_ms) s.timeout = std::chrono::milliseconds(*a.timeout_ms);
  if (!a.launcher.empty() && a.launcher_size != s.peers) {
    return InvalidArgumentError(a.spec + ": the job has peers: " + std::to_string(s.peers) +
                                (a.peers ? " (--peers)" : "") + " but the launcher started " +
                                std::to_string(a.launcher_size) + " processes: " + a.launcher);
  }
  if (a.rejoin && !s.trainer.survive_crashes) {
    return InvalidArgumentError(a.spec +
                                ": --rejoin needs a job that survives crashes "
                                "(survive_crashes: true)");
  }
  if (a.rank && (*a.rank < 0 || *a.rank >= s.peers)) {
    return InvalidArgumentError("--rank " + std::to_string(*a.rank) + " outside [0, " +
                                std::to_string(s.peers) + ")");
  }
  POLYGUARD_RETURN_IF_ERROR(ValidateJobSpec(s).WithContext("after the command-line overrides"));
  return s;
}

// One progress line, redrawn in place on a terminal; elsewhere (a log, a
// pipe) a line at every tenth of the job.
void Progress(int64_t step, int64_t total, const StepResult& r, const TrainingCounters& c,
              int peers, double seconds) {
  static const bool tty = ::isatty(STDOUT_FILENO) != 0;
  static auto last = std::chrono::steady_clock::time_point();
  const auto now = std::chrono::steady_clock::now();
  const bool tenth =
      (step * 10 / std::max<int64_t>(total, 1)) != ((step - 1) * 10 / std::max<int64_t>(total, 1));
  if (tty ? (now - last < std::chrono::milliseconds(100) && step != total) : !tenth) return;
  last = now;
  const int width = 24;
  const int filled = static_cast<int>(width * step / std::max<int64_t>(total, 1));
  std::string bar(size_t(filled), '#');
  bar.resize(size_t(width), '.');
  // While peers are lost: "7/8 peers".
  const std::string present =
      c.peers_present > 0 && c.peers_present < peers
          ? "  " + std::to_string(c.peers_present) + "/" + std::to_string(peers) + " peers"
          : "";
  std::fprintf(
      stdout,
      "%s[%s] step %ld/%ld  loss %.4f  acc %.3f  wrong %ld corrected %ld%s  %.1f steps/s %s",
      tty ? "\r" : "", bar.c_str(), long(step), long(total), r.loss, r.accuracy,
      long(c.wrong_results), long(c.results_corrected), present.c_str(),
      double(step) / std::max(seconds, 1e-9), tty ? "" : "\n");
  std::fflush(stdout);
}

// One peer of the job: the library's job runner (train/job_runner.h) with
// this program's output in its hooks.
int RunPeer(const Args& args, const JobSpec& spec) {
  const int rank = *args.rank;
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "polyguard-train: peer %d: %s\n", rank, s.ToString().c_str());
    return 1;
  };
  JobPeerOptions o{.rank = rank,
                   .rendezvous = *args.rendezvous,
                   .hostname = args.hostname,
                   .checkpoint_dir = args.checkpoint_dir,
                   .resume = args.resume,
                   .rejoin = args.rejoin};
  TrainingMetrics metrics(rank);
  std::unique_ptr<StatusServer> status;
  const bool draw = rank == 0 && args.progress && !args.quiet;
  const auto start = std::chrono::steady_clock::now();
  int64_t done = 0;
  // The slowest step (after a loss: the agreement, re-forming and recomputing).
  double slowest = 0;
  int64_t slowest_step = 0;
  std::vector<double> loss_step_seconds;  // per loss survived
  JobHooks hooks;
  hooks.on_start = [&](const PeerStack&) -> Status {
    if (!args.status_port) return Status::Ok();
    POLYGUARD_ASSIGN_OR_RETURN(status,
                               StatusServer::Start(args.status_address, *args.status_port + rank,
                                                   [&metrics] { return metrics.Render(); }));
    return Status::Ok();
  };
  hooks.on_step = [&](int64_t step, int64_t total, const StepResult& r, const StepTiming& t,
                      const Trainer& trainer) {
    ++done;
    if (t.wall_seconds > slowest) slowest = t.wall_seconds, slowest_step = step;
    // The step a loss was survived in: from its start (before the loss) to
    // its completion by the survivors.
    const auto& losses = trainer.peer_losses();
    if (loss_step_seconds.size() < losses.size() && losses.back().step == step) {
      loss_step_seconds.resize(losses.size(), t.wall_seconds);
    }
    metrics.Update(step, r.loss, t.wall_seconds, trainer.counters());
    if (rank == 0 && args.quiet && step % 10 == 0)
      std::printf("step %ld loss %.6f\n", long(step), r.loss);
    if (draw) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      Progress(step, total, r, trainer.counters(), spec.peers,
               seconds * double(step) / double(done));
    }
  };
  // Under --quiet, a rollback is said at once: recomputing and rolling back
  // can take minutes without a completed step to print.
  hooks.on_rollback = [&](int64_t step, const StepResult& r, const Trainer& trainer) {
    if (rank == 0 && args.quiet) {
      std::printf("step %ld rolled back (%ld rollbacks so far); going on at step %ld\n", long(step),
                  long(trainer.counters().rollbacks), long(r.next_step));
      std::fflush(stdout);
    }
  };
  // And each recomputation: a step retried again and again prints nothing
  // else (adversary s4: minutes of silence with heavy faults).
  hooks.on_recompute = [&](int64_t step, int attempt, bool decode_failed) {
    if (rank == 0 && args.quiet) {
      std::printf("step %ld recomputed (retry %d: %s)\n", long(step), attempt,
                  decode_failed ? "a decode failed" : "a copy or the agreement disagreed");
      std::fflush(stdout);
    }
  };
  const JobOutcome out = RunJobPeer(spec, o, hooks);
  if (draw && done > 0 && ::isatty(STDOUT_FILENO)) std::printf("\n");
  if (out.job_ended_before_rejoin) {
    std::fprintf(stderr, "polyguard-train: peer %d: %s: nothing to rejoin\n", rank,
                 out.status.message().c_str());
    return 0;
  }
  if (!out.status.ok()) {
    fail(out.status);
    return out.refused ? 2 : 1;
  }
  if (args.rejoin) {
    const Trainer::PeerRejoin* mine = nullptr;
    for (const Trainer::PeerRejoin& j : out.peer_rejoins)
      if (std::find(j.peers.begin(), j.peers.end(), rank) != j.peers.end()) mine = &j;
    if (mine != nullptr) {
      std::fprintf(stderr,
                   "polyguard-train: peer %d rejoined at step %ld (generation %ld): %.2f s from "
                   "its start, %.1f MB rebuilt\n",
                   rank, long(mine->step), long(mine->generation), out.rejoin_seconds,
                   double(mine->bytes) / 1e6);
    }
  }
  if (out.nothing_to_train) {
    if (rank == 0) {
      std::printf("%s: checkpoints at step %ld, the job's last: nothing to train\n",
                  spec.name.c_str(), long(out.total_steps));
    }
    return 0;
  }
  if (rank == 0) {
    const TrainingCounters& c = out.counters;
    std::printf("%s: %s on %d peers, %ld steps in %.1f s (%.1f steps/s)\n", spec.name.c_str(),
                out.code.c_str(), spec.peers, long(done), out.seconds,
                double(done) / std::max(out.seconds, 1e-9));
    std::printf("test accuracy: %.4f (%ld of %ld)\n", double(out.correct) / double(out.tested),
                long(out.correct), long(out.tested));
    std::printf(
        "faults: %ld injected, %ld wrong results located, %ld corrected, %ld local copies "
        "replaced (%ld refused on arrival); %ld uncorrectable steps, %ld recomputations, %ld "
        "shard repairs, %ld rollbacks\n",
        long(out.job_faults_injected), long(c.wrong_results), long(c.results_corrected),
        long(out.job_copies_replaced), long(out.job_copies_refused), long(c.uncorrectable_steps),
        long(c.recomputations), long(c.shard_repairs), long(c.rollbacks));
    if (spec.model.product.wait_for != 0) {
      std::printf(
          "stragglers: %ld results not awaited by peer 0, %ld copies aligned to the root's\n",
          long(c.results_not_awaited), long(out.job_copies_aligned));
    }
    if (c.peers_lost > 0) {
      std::printf(
          "crashes: %ld peers lost and survived, %ld rejoined (%ld of %d present at the end), "
          "%ld steps degraded\n",
          long(c.peers_lost), long(c.rejoins), long(c.peers_present), spec.peers,
          long(c.degraded_steps));
      std::printf("  slowest step: %ld, %.2f s (the mean step: %.3f s)\n", long(slowest_step),
                  slowest, out.step_wall_seconds / double(std::max<int64_t>(out.steps_run, 1)));
      for (size_t i = 0; i < out.peer_losses.size(); ++i) {
        const Trainer::PeerLoss& l = out.peer_losses[i];
        std::printf(
            "  peers %s lost; step %ld recomputed by generation %ld (agreeing and "
            "re-forming: %.2f s; the step: %.2f s)\n",
            FormatPeers(l.peers).c_str(), long(l.step), long(l.generation), l.seconds,
            i < loss_step_seconds.size() ? loss_step_seconds[i] : 0.0);
      }
      for (const Trainer::PeerRejoin& j : out.peer_rejoins) {
        std::printf(
            "  peers %s rejoined before step %ld as generation %ld (admitting and rebuilding: "
            "%.2f s, %.1f MB)\n",
            FormatPeers(j.peers).c_str(), long(j.step), long(j.generation), j.seconds,
            double(j.bytes) / 1e6);
      }
    }
    if (c.products_widened > 0) {
      std::printf(
          "float32: %ld products computed again in float64 (their float32 decode could not "
          "resolve them)\n",
          long(c.products_widened));
    }
    if (out.job_unverified_decodes > 0) {
      std::printf("unprotected: %ld decodes checked nothing (exactly K results)\n",
                  long(out.job_unverified_decodes));
    }
  }
  return 0;
}

// --resume in local mode, before any peer starts (the peers would refuse too,
// but only after starting, loading the data and connecting): every peer's
// checkpoint is read, as the peers would (but for the code, which needs the
// model), and all must be at one step inside the job. Returns the exit
// status when the job must not start: 1 for a file that cannot be used, 2
// for checkpoints that do not fit the job, 0 when they are at its last step
// already.
std::optional<int> CheckResumeBeforeStart(const Args& args, const JobSpec& spec) {
  const std::string& dir = *args.checkpoint_dir;
  auto steps = ReadCheckpointSteps(dir, spec.name, spec.peers);
  if (!steps.ok()) {
    std::fprintf(stderr, "polyguard-train: %s\n", steps.status().message().c_str());
    return 1;
  }
  if (Status s = CheckSameResumeStep(*steps); !s.ok()) {
    std::fprintf(stderr, "polyguard-train: checkpoints in %s: %s\n", dir.c_str(),
                 s.message().c_str());
    return 2;
  }
  const std::optional<int64_t> total = JobTotalSteps(spec);
  if (!total) return std::nullopt;
  if (Status s = CheckResumeFits(CheckpointPath(dir, 0), steps->front(), *total); !s.ok()) {
    std::fprintf(stderr, "polyguard-train: %s\n", s.message().c_str());
    return 2;
  }
  if (steps->front() == *total) {
    std::printf("%s: checkpoints in %s at step %ld, the job's last: nothing to train\n",
                spec.name.c_str(), dir.c_str(), long(*total));
    return 0;
  }
  return std::nullopt;
}

// Local mode: the P peers as child processes of this one.
int RunLocal(int argc, char** argv, const JobSpec& spec, int args_max_restarts) {
  std::error_code ec;
  char pattern[] = "/tmp/polyguard-train-XXXXXX";
  const char* dir = ::mkdtemp(pattern);
  if (dir == nullptr) {
    std::fprintf(stderr, "polyguard-train: cannot create a rendezvous folder in /tmp\n");
    return 1;
  }
  // Once a peer fails, the others get the failure timeout to notice and
  // stop; then they are killed. A job that survives crashes lets them go on
  // (they stop by themselves when a threshold no longer holds).
  const bool survive = spec.trainer.survive_crashes;
  LocalPeersOptions o;
  o.peers = spec.peers;
  if (!survive) o.grace_after_failure = spec.timeout + std::chrono::seconds(5);
  // Once a peer has finished the job, the others finish within a failure
  // timeout or two; a process still running long after (a replacement
  // stopped while it joined) is stuck: killed.
  o.grace_after_success = 3 * spec.timeout + std::chrono::seconds(10);
  o.die_with_launcher = true;  // never outlive the launcher
  int failures = 0, crashes = 0;
  auto crashed = [&](const PeerExit& e) {
    return survive && (e.signal != 0 || e.exit_code == FaultInjector::kCrashExitCode);
  };
  bool job_ended = false;  // a peer finished it
  o.on_exit = [&](const PeerExit& e) {
    if (e.ok()) {
      job_ended = true;
      return;
    }
    if (e.killed && job_ended) {
      // Still running long after the job ended: stuck. A replacement's
      // end does not change the job's; a member's is a failure.
      std::fprintf(
          stderr,
          "polyguard-train: %s %d was still running %lld s after the job ended: "
          "killed\n",
          e.incarnation > 0 ? "the replacement for peer" : "peer", e.rank,
          static_cast<long long>(
              std::chrono::duration_cast<std::chrono::seconds>(*o.grace_after_success).count()));
      if (e.incarnation == 0) ++failures;
      return;
    }
    // A crash (a signal, or a fault model's crash) is what survive_crashes
    // survives; a peer that stopped with an error is a failure.
    if (crashed(e)) {
      ++crashes;
      const bool restart = e.incarnation < args_max_restarts;
      std::fprintf(
          stderr, "polyguard-train: peer %d crashed (%s %d); the others go on%s\n", e.rank,
          e.signal != 0 ? "signal" : "exit code", e.signal != 0 ? e.signal : e.exit_code,
          restart ? (", and a replacement rejoins (restart " + std::to_string(e.incarnation + 1) +
                     " of " + std::to_string(args_max_restarts) + ")")
                        .c_str()
                  : "");
      return;
    }
    if (e.incarnation > 0) {
      // A replacement that failed (refused, or the job stopped meanwhile):
      // the others went on without it; their own exits decide the job's.
      std::fprintf(stderr,
                   "polyguard-train: the replacement for peer %d failed (%s %d); the others go "
                   "on without it\n",
                   e.rank, e.signal != 0 ? "signal" : "exit code",
                   e.signal != 0 ? e.signal : e.exit_code);
      ++crashes;
      return;
    }
    ++failures;
    if (e.signal != 0) {
      std::fprintf(stderr, "polyguard-train: peer %d was killed by signal %d\n", e.rank, e.signal);
    } else {
      std::fprintf(stderr, "polyguard-train: peer %d failed (exit code %d)\n", e.rank, e.exit_code);
    }
  };
  auto peer = [&](int r, bool rejoin) {
    std::vector<std::string> args(argv, argv + argc);
    args.insert(args.end(),
                {"--rank", std::to_string(r), "--rendezvous", std::string("file:") + dir});
    if (r != 0) args.push_back("--no-progress");
    if (rejoin) args.push_back("--rejoin");
    std::vector<char*> cargs;
    for (std::string& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    ::execv("/proc/self/exe", cargs.data());
    std::perror("polyguard-train: exec");
    return 127;
  };
  // A crashed peer's replacement rejoins the job (its exit is the rank's).
  o.restart_when = [&](const PeerExit& e) {
    if (!crashed(e) || e.incarnation >= args_max_restarts) return false;
    --crashes;  // replaced: only a crash nobody replaces counts against the job
    return true;
  };
  o.restart_body = [&](int r) { return peer(r, true); };
  StatusOr<std::vector<PeerExit>> exits = RunLocalPeers(o, [&](int r) { return peer(r, false); });
  if (!exits.ok()) {
    std::fprintf(stderr, "polyguard-train: %s\n", exits.status().ToString().c_str());
    failures = spec.peers;
  }
  std::filesystem::remove_all(dir, ec);
  if (failures > 0 || crashes == spec.peers) {
    std::fprintf(stderr, "polyguard-train: %d of %d peers failed\n", failures + crashes,
                 spec.peers);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace polyguard

int main(int argc, char** argv) {
  using namespace polyguard;
  auto args = ParseArgs(argc, argv);
  if (!args.ok()) {
    std::fprintf(stderr, "polyguard-train: %s\n(polyguard-train --help lists the options)\n",
                 args.status().message().c_str());
    return 2;
  }
  if (args->help) {
    std::printf(kUsage, StrategyNames({.trains = true}).c_str());
    return 0;
  }
  auto spec = SpecWithOverrides(*args);
  if (!spec.ok()) {
    std::fprintf(stderr, "polyguard-train: %s\n", spec.status().message().c_str());
    return 2;
  }
  // Everything a peer would refuse, before any peer starts: the data files'
  // headers and the memory of the peers on this machine.
  const int peers_here = args->rank ? 1 : spec->peers;
  Status ready = CheckJobData(*spec);
  if (ready.ok()) {
    ready =
        CheckSequentialMemory(spec->model, spec->peers, peers_here, AvailableMemoryBytes(),
                              TrainerWeightCopies(spec->trainer), JobDataBytes(*spec).value_or(0));
  }
  if (!ready.ok()) {
    std::fprintf(stderr, "polyguard-train: %s: %s\n", args->spec.c_str(), ready.ToString().c_str());
    return 2;
  }
  if (args->rank) {
    // The rendezvous as this peer will meet it (a wrong Redis password, a
    // server in protected mode): refused before the data is loaded.
    if (Status r = CheckRendezvous(*args->rendezvous, spec->timeout); !r.ok()) {
      std::fprintf(stderr, "polyguard-train: peer %d: %s\n", *args->rank, r.ToString().c_str());
      return r.code() == StatusCode::kUnavailable || r.code() == StatusCode::kDeadlineExceeded ? 1
                                                                                               : 2;
    }
    // A last net: the checks above refuse what they can foresee; nothing
    // may still escape as an abort.
    try {
      return RunPeer(*args, *spec);
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "polyguard-train: peer %d: ResourceExhausted: out of memory\n",
                   *args->rank);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "polyguard-train: peer %d: Internal: %s\n", *args->rank, e.what());
    }
    return 1;
  }
  if (args->resume) {
    if (std::optional<int> done = CheckResumeBeforeStart(*args, *spec)) return *done;
  }
  return RunLocal(argc, argv, *spec, args->max_restarts);
}
