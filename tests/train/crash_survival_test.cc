// A crashed peer is an erasure: real peer processes over gloo TCP, one of
// them dying mid-step (FaultModel crash: _exit inside a forward product) or
// killed between steps; the survivors agree, re-form and go on, and their
// losses follow an uninterrupted run's to roundoff, with faults at every step
// point. When a threshold no longer holds they stop with DataLoss naming it.
#include <signal.h>

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "polyguard/train/job_runner.h"
#include "polyguard/train/local_peers.h"
#include "runtime/multiprocess.h"
#include "runtime/redis_server.h"

namespace polyguard {
namespace {
namespace crash_survival_test {

using namespace std::chrono_literals;

JobSpec SurvivingJob(const std::string& name, int peers, int64_t steps) {
  JobSpec job;
  job.name = name;
  job.peers = peers;
  job.steps = steps;
  job.data.kind = DataSpec::Kind::kSynthetic;
  job.data.classes = 3;
  job.model.layers = {{10, 12, Activation::kRelu}, {12, 3, Activation::kIdentity}};
  job.model.batch = 6;
  job.model.code = {.strategy = Strategy::kPolyDot, .m = 2, .n = 1};  // K = 2, backward 3
  job.trainer.sgd = {.learning_rate = 0.1, .momentum = 0.9};
  job.trainer.scrub_interval = 5;
  job.trainer.snapshot_interval = 5;
  job.trainer.survive_crashes = true;
  job.faults.error_rate = 0.01;  // every step point
  job.fault_seed = 4;
  job.timeout = 3s;
  return job;
}

// Peer 0's losses by step (0: not completed) from an uninterrupted run on threads.
std::vector<double> Uninterrupted(const JobSpec& job) {
  std::vector<std::vector<double>> losses(static_cast<size_t>(job.peers));
  std::vector<std::thread> threads;
  for (int r = 0; r < job.peers; ++r) {
    threads.emplace_back([&, r] {
      losses[size_t(r)].assign(size_t(job.steps + 1), 0.0);
      JobHooks hooks;
      hooks.on_step = [&](int64_t step, int64_t, const StepResult& res, const StepTiming&,
                          const Trainer&) { losses[size_t(r)][size_t(step)] = res.loss; };
      const JobOutcome out =
          RunJobPeer(job, {.rank = r, .rendezvous = "inproc:whole-" + job.name}, hooks);
      EXPECT_TRUE(out.status.ok()) << out.status;
    });
  }
  for (auto& t : threads) t.join();
  return losses[0];
}

struct PeerRun {
  int exit_code = -1, signal = 0;
  std::vector<double> losses;
  std::string status;
};

// Replacements for crashed peers (the launcher's restarts, local_peers.h).
struct Replacements {
  int times = 0;                      // per crashed peer
  std::optional<JobSpec> first_spec;  // the first's (default: the job's)
  int die_rebuilding = 0;             // the first this many die after rebuilding layer 0
  // The first this many die just after rebuilding the last layer, killed
  // from another thread: around their report that they rebuilt.
  int die_reporting = 0;
};

// Runs the job on processes; `kill_after(rank)` > 0 kills that peer after
// completing that step. Each peer (the last process of each rank) writes its
// losses and final status. Rendezvous: a folder (default) or the given
// redis:// URL.
std::vector<PeerRun> OnProcesses(const JobSpec& job, const std::function<int64_t(int)>& kill_after,
                                 const std::string& redis = "", const Replacements& replace = {}) {
  const std::string dir = testing::FreshFolder("survive-" + job.name);
  const std::string rendezvous = redis.empty() ? "file:" + dir + "/rdv" : redis;
  std::vector<int> incarnation(size_t(job.peers), 0);  // the launcher's count, seen by a fork
  auto run = [&](int rank, bool rejoin) {
    std::vector<double> losses(size_t(job.steps + 1), 0.0);
    JobHooks hooks;
    hooks.on_step = [&](int64_t step, int64_t, const StepResult& res, const StepTiming&,
                        const Trainer& trainer) {
      losses[size_t(step)] = res.loss;
      if (!rejoin && kill_after(rank) == step) ::raise(SIGKILL);
      // Degraded with a replacement on its way: slower steps, so that it is
      // admitted before the job ends on a loaded machine (30-step jobs
      // ended in 1.2 s before a forked replacement joined, under ctest -j 2).
      // The trajectory does not depend on the pace.
      const TrainingCounters c = trainer.counters();
      if (replace.times > 0 && c.peers_lost > c.rejoins) std::this_thread::sleep_for(20ms);
    };
    hooks.on_layer_rebuilt = [&](int layer) {
      if (layer == 0 && incarnation[size_t(rank)] <= replace.die_rebuilding) ::raise(SIGKILL);
      const int last = int(job.model.layers.size()) - 1;
      if (layer == last && incarnation[size_t(rank)] <= replace.die_reporting) {
        std::thread([] { ::raise(SIGKILL); }).detach();
      }
    };
    const JobSpec& spec =
        rejoin && replace.first_spec && incarnation[size_t(rank)] == 1 ? *replace.first_spec : job;
    std::optional<std::string> checkpoints;
    if (job.checkpoint_interval > 0) checkpoints = dir + "/ckpt";
    const JobOutcome out = RunJobPeer(
        spec,
        {.rank = rank, .rendezvous = rendezvous, .checkpoint_dir = checkpoints, .rejoin = rejoin},
        hooks);
    std::ofstream f(dir + "/peer-" + std::to_string(rank) + ".txt");
    f.precision(17);
    // (The job's fault tally sums the survivors' counts: never negative.)
    f << out.status.ToString() << " faults " << (out.job_faults_injected >= 0) << "\n"
      << out.counters.peers_lost << " " << out.counters.generation << " "
      << out.counters.degraded_steps << " rejoins " << out.counters.rejoins;
    int64_t repaired = 0;  // by the probe check after a rebuild
    for (const Trainer::PeerRejoin& j : out.peer_rejoins) repaired += int64_t(j.repaired.size());
    f << " probe_repaired " << repaired << "\n";
    for (double l : losses) f << l << "\n";
    return out.refused ? 2 : out.status.ok() ? 0 : 1;
  };
  LocalPeersOptions o;
  o.peers = job.peers;
  o.deadline = 120s;
  o.restart_when = [&](const PeerExit& e) {
    if (e.ok() || e.incarnation >= replace.times) return false;
    ++incarnation[size_t(e.rank)];
    return true;
  };
  o.restart_body = [&](int rank) { return run(rank, true); };
  const auto results = RunLocalPeers(o, [&](int rank) { return run(rank, false); });
  EXPECT_TRUE(results.ok()) << results.status();
  std::vector<PeerRun> runs(size_t(job.peers));
  for (int r = 0; r < job.peers && results.ok(); ++r) {
    PeerRun& run = runs[size_t(r)];
    run.exit_code = (*results)[size_t(r)].exit_code;
    run.signal = (*results)[size_t(r)].signal;
    std::ifstream f(dir + "/peer-" + std::to_string(r) + ".txt");
    std::getline(f, run.status);
    std::string counters;
    std::getline(f, counters);
    run.status += " | " + counters;
    for (double l; f >> l;) run.losses.push_back(l);
  }
  std::filesystem::remove_all(dir);
  return runs;
}

// Every step a peer completed (a replacement: from its first) has the
// uninterrupted run's loss to roundoff.
void ExpectOnTheUninterruptedTrajectory(const PeerRun& run, const std::vector<double>& reference) {
  ASSERT_EQ(run.losses.size(), reference.size()) << run.status;
  for (size_t k = 1; k < reference.size(); ++k) {
    if (run.losses[k] == 0.0) continue;  // not run by this process
    EXPECT_NEAR(run.losses[k], reference[k], 1e-9 * std::abs(reference[k])) << "step " << k;
  }
  EXPECT_NE(run.losses.back(), 0.0) << "the last step was not run: " << run.status;
}

// Every peer (the replacement included) finished with `lost` peers lost,
// generation `generation` and one rejoin, on the uninterrupted trajectory.
void ExpectEveryPeerRejoined(const std::vector<PeerRun>& runs, const std::vector<double>& reference,
                             int lost, int generation) {
  ASSERT_EQ(runs.size(), 5u);
  for (int r = 0; r < 5; ++r) {
    SCOPED_TRACE("peer " + std::to_string(r));
    const PeerRun& run = runs[size_t(r)];
    ASSERT_EQ(run.exit_code, 0) << run.status;
    EXPECT_NE(run.status.find("OK faults 1 | " + std::to_string(lost) + " " +
                              std::to_string(generation) + " "),
              std::string::npos)
        << run.status;
    EXPECT_NE(run.status.find(" rejoins 1"), std::string::npos) << run.status;
    ExpectOnTheUninterruptedTrajectory(run, reference);
  }
}

// Under both rendezvous: a folder, and a real redis-server started here.
class CrashSurvival : public ::testing::TestWithParam<std::string> {
 protected:
  // "" (a fresh folder) or the URL of a redis-server started for this test.
  std::string Rendezvous() {
    if (GetParam() != "redis") return "";
    dir_ = testing::FreshFolder("redis");
    redis_.emplace(dir_);
    EXPECT_TRUE(redis_->ok()) << "redis-server did not start (missing? run scripts/setup)";
    return redis_->ok() ? redis_->url() : "";
  }
  void TearDown() override {
    redis_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

 private:
  std::string dir_;
  std::optional<testing::RedisServer> redis_;
};

TEST_P(CrashSurvival, APeerDyingMidStepIsAnErasureAndTrainingFollowsTheUninterruptedRun) {
  const JobSpec whole = SurvivingJob("mid-" + GetParam(), 5, 24);
  const std::vector<double> reference = Uninterrupted(whole);
  JobSpec crashing = whole;
  crashing.faults.crash_peer = 3;
  crashing.faults.crash_step = 11;  // a round: inside step 11's forward product
  const std::string rendezvous = Rendezvous();
  if (HasFailure()) return;
  const std::vector<PeerRun> runs = OnProcesses(
      crashing, [](int) { return -1; }, rendezvous);
  EXPECT_EQ(runs[3].exit_code, FaultInjector::kCrashExitCode);
  for (int r : {0, 1, 2, 4}) {
    SCOPED_TRACE("peer " + std::to_string(r));
    const PeerRun& run = runs[size_t(r)];
    ASSERT_EQ(run.exit_code, 0) << run.status;
    // 1 lost, generation 1.
    EXPECT_NE(run.status.find("OK faults 1 | 1 1 "), std::string::npos) << run.status;
    ASSERT_EQ(run.losses.size(), reference.size());
    for (size_t k = 1; k < reference.size(); ++k) {
      EXPECT_NEAR(run.losses[k], reference[k], 1e-9 * std::abs(reference[k])) << "step " << k;
    }
  }
}

// The crashed peer's replacement rejoins (the launcher starts it at once; it
// waits for the survivors to re-form, asks to join and is admitted at a step
// boundary), rebuilds its shards from the others and trains on: every
// peer's losses, the replacement's included, follow the uninterrupted run,
// with faults at every step point.
TEST_P(CrashSurvival, ACrashedPeersReplacementRejoinsAndTrainingFollowsTheUninterruptedRun) {
  const JobSpec whole = SurvivingJob("rejoin-" + GetParam(), 5, 40);
  const std::vector<double> reference = Uninterrupted(whole);
  JobSpec crashing = whole;
  crashing.faults.crash_peer = 3;
  crashing.faults.crash_step = 11;
  const std::string rendezvous = Rendezvous();
  if (HasFailure()) return;
  const std::vector<PeerRun> runs =
      OnProcesses(crashing, [](int) { return -1; }, rendezvous, {.times = 1});
  // 1 lost, generation 2 (lost, then rejoined), 1 rejoin.
  ExpectEveryPeerRejoined(runs, reference, 1, 2);
}

TEST(CrashSurvivalThresholds, TwoPeersKilledAtOnceStopCleanlyNamingTheThreshold) {
  // 5 peers, backward threshold 3: losing two leaves 3 (holds), losing
  // three leaves 2 (fails).
  // Without faults: with three peers left no decode has redundancy to spare
  // (errors_to_correct is 0), so a fault would be detected, not corrected.
  JobSpec job = SurvivingJob("two", 5, 16);
  job.faults.error_rate = 0;
  const std::vector<PeerRun> holds =
      OnProcesses(job, [](int rank) { return rank == 1 || rank == 4 ? 6 : -1; });
  for (int r : {0, 2, 3}) {
    EXPECT_EQ(holds[size_t(r)].exit_code, 0) << "peer " << r << ": " << holds[size_t(r)].status;
  }
  JobSpec again = job;
  again.name = "three";
  again.checkpoint_interval = 5;  // the message names where to resume from
  const std::vector<PeerRun> fails =
      OnProcesses(again, [](int rank) { return rank >= 2 ? 6 : -1; });
  for (int r : {0, 1}) {
    SCOPED_TRACE("peer " + std::to_string(r));
    EXPECT_EQ(fails[size_t(r)].exit_code, 1);
    EXPECT_NE(fails[size_t(r)].status.find("DataLoss: layer 0"), std::string::npos)
        << fails[size_t(r)].status;
    EXPECT_NE(fails[size_t(r)].status.find("threshold"), std::string::npos)
        << fails[size_t(r)].status;
    EXPECT_NE(fails[size_t(r)].status.find("; the last checkpoint: "), std::string::npos)
        << fails[size_t(r)].status;
    EXPECT_NE(fails[size_t(r)].status.find("/ckpt/peer-" + std::to_string(r) +
                                           ".ckpt at step 5 (--resume continues from it)"),
              std::string::npos)
        << fails[size_t(r)].status;
  }
}

// A peer killed in a scrub (before its probes go out, after the step's
// update), or while it sends or receives a shard repair: the survivors return
// to the start of the step (the update and shards repaired so far are undone
// from the step's copy and done again), a replacement rejoins, and every loss follows
// the uninterrupted run.
class CrashInMaintenance
    : public ::testing::TestWithParam<std::pair<const char*, FaultModel::CrashPoint>> {};

TEST_P(CrashInMaintenance, IsSurvivedAndTheReplacementRejoinsOnTheUninterruptedTrajectory) {
  JobSpec whole = SurvivingJob(std::string("in-") + GetParam().first, 5, 40);
  whole.faults.error_rate = 0.03;  // shards hit often enough to need repairs
  const std::vector<double> reference = Uninterrupted(whole);
  JobSpec crashing = whole;
  crashing.faults.crash_peer = 3;
  crashing.faults.crash_step = 8;
  crashing.faults.crash_point = GetParam().second;
  const std::vector<PeerRun> runs = OnProcesses(crashing, [](int) { return -1; }, "", {.times = 1});
  // It crashed there (1 lost), and its replacement rejoined (generation 2).
  ExpectEveryPeerRejoined(runs, reference, 1, 2);
}

INSTANTIATE_TEST_SUITE_P(Point, CrashInMaintenance,
                         ::testing::Values(std::pair("scrub", FaultModel::CrashPoint::kScrub),
                                           std::pair("repair", FaultModel::CrashPoint::kRepair)),
                         [](const auto& info) { return std::string(info.param.first); });

// A member's stored shard is hit at every update (here peer 2's, the repair
// source nearest the crashed peer 3). A step whose products locate it in a
// row with the step before scrubs it after its update; the other steps end
// with it wrong. So at two of three step boundaries, where the replacement
// is admitted, an old member's shard is wrong and not yet scrubbed. The
// members' shards are checked before any is copied: rebuilt from the wrong
// one first, the replacement's shard would agree with it, and two sets of
// wrong shards would explain the probes equally well (DataLoss). 4 peers,
// m = n = 1 (every shard the whole matrix): 2 of 4 is such a tie, and 3
// peers still correct one wrong result while degraded.
TEST(CrashSurvivalRejoin, AMembersShardHitBeforeTheAdmissionIsRepairedBeforeAnyIsCopied) {
  JobSpec job = SurvivingJob("hit-source", 4, 30);
  job.model.code = {.strategy = Strategy::kPolyDot, .m = 1, .n = 1};
  job.faults.error_rate = 1.0;
  job.faults.points = {StepPoint::kUpdate};
  job.faults.faulty_peers = {2};
  job.trainer.scrub_interval = 0;  // scrubs only where located in a row
  job.trainer.snapshot_interval = 1000;
  job.faults.crash_peer = 3;
  job.faults.crash_step = 8;
  const std::vector<PeerRun> runs = OnProcesses(job, [](int) { return -1; }, "", {.times = 1});
  ASSERT_EQ(runs.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    SCOPED_TRACE("peer " + std::to_string(r));
    const PeerRun& run = runs[size_t(r)];
    ASSERT_EQ(run.exit_code, 0) << run.status;
    // 1 lost, generation 2, 1 rejoin.
    EXPECT_NE(run.status.find("OK faults 1 | 1 2 "), std::string::npos) << run.status;
    EXPECT_NE(run.status.find(" rejoins 1 "), std::string::npos) << run.status;
    EXPECT_NE(run.losses.back(), 0.0) << "the last step was not run: " << run.status;
  }
}

// The first replacement dies while it rebuilds (after layer 0): the members
// lose it as any peer, go on degraded, and admit the second, which rejoins.
TEST_P(CrashSurvival, AReplacementKilledWhileRebuildingIsLostAndTheNextOneRejoins) {
  const JobSpec whole = SurvivingJob("twice-" + GetParam(), 5, 40);
  const std::string rendezvous = Rendezvous();
  if (HasFailure()) return;
  const std::vector<double> reference = Uninterrupted(whole);
  JobSpec crashing = whole;
  crashing.faults.crash_peer = 3;
  crashing.faults.crash_step = 11;
  const std::vector<PeerRun> runs =
      OnProcesses(crashing, [](int) { return -1; }, rendezvous, {.times = 2, .die_rebuilding = 1});
  // Lost twice (the crash, the replacement), generation 4, 1 rejoin.
  ExpectEveryPeerRejoined(runs, reference, 2, 4);
}

// A member (peer 1) crashes in the admission of another peer's replacement
// (peer 3's, killed after step 10): with no periodic scrub and no faults, the
// first scrub at or after round 12 is the admission's. That replacement's
// rebuild fails; it must not tell the job's other replacements that the job
// ended (they gave up: NotFound "the job ended (peer 3, ...)"). Both ranks'
// next replacements rejoin, and every peer follows the uninterrupted run.
TEST(CrashSurvivalRejoin, AReplacementThatFailsItsRejoinLetsTheOtherRanksReplacementsRejoin) {
  JobSpec whole = SurvivingJob("fails-rejoin", 5, 40);
  whole.faults.error_rate = 0;
  whole.trainer.scrub_interval = 0;
  whole.trainer.snapshot_interval = 1000;
  const std::vector<double> reference = Uninterrupted(whole);
  JobSpec crashing = whole;
  crashing.faults.crash_peer = 1;
  crashing.faults.crash_step = 12;
  crashing.faults.crash_point = FaultModel::CrashPoint::kScrub;
  const std::vector<PeerRun> runs =
      OnProcesses(crashing, [](int rank) { return rank == 3 ? 10 : -1; }, "", {.times = 2});
  ASSERT_EQ(runs.size(), 5u);
  for (int r = 0; r < 5; ++r) {
    SCOPED_TRACE("peer " + std::to_string(r));
    ASSERT_EQ(runs[size_t(r)].exit_code, 0) << runs[size_t(r)].status;
    ExpectOnTheUninterruptedTrajectory(runs[size_t(r)], reference);
  }
}

// The first replacement dies as it reports that it rebuilt: its report can
// reach some members and not others. Every member must agree on the rejoins
// (those that got the report counted one, the others not), and the next
// replacement rejoins. (The race is narrow: the old code failed in about 3
// of 8 runs; two runs here.)
TEST(CrashSurvivalRejoin, AReplacementDyingAsItReportsIsCountedAlikeByEveryMember) {
  const JobSpec whole = SurvivingJob("dies-reporting", 5, 40);
  const std::vector<double> reference = Uninterrupted(whole);
  for (int run = 0; run < 2; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    JobSpec crashing = whole;
    crashing.faults.crash_peer = 3;
    crashing.faults.crash_step = 11;
    const std::vector<PeerRun> runs =
        OnProcesses(crashing, [](int) { return -1; }, "", {.times = 2, .die_reporting = 1});
    ASSERT_EQ(runs.size(), 5u);
    const auto rejoins = [](const PeerRun& r) {
      const size_t at = r.status.find(" rejoins ");
      return at == std::string::npos ? std::string("?") : r.status.substr(at, 11);
    };
    for (int r = 0; r < 5; ++r) {
      SCOPED_TRACE("peer " + std::to_string(r));
      ASSERT_EQ(runs[size_t(r)].exit_code, 0) << runs[size_t(r)].status;
      EXPECT_EQ(rejoins(runs[size_t(r)]), rejoins(runs[0])) << runs[size_t(r)].status;
      ExpectOnTheUninterruptedTrajectory(runs[size_t(r)], reference);
    }
  }
}

// A replacement started with another spec (here: another learning rate) is
// refused before it joins, naming both identities; the job goes on without
// it, and the next replacement, with the job's spec, rejoins. Without
// faults, its rebuilt shards pass the probe check as they are.
TEST(CrashSurvivalRejoin, AReplacementWithAnotherSpecIsRefusedAndTheNextOneRejoins) {
  JobSpec job = SurvivingJob("other", 5, 40);
  job.faults.error_rate = 0;
  job.faults.crash_peer = 3;
  job.faults.crash_step = 11;
  JobSpec other = job;
  other.trainer.sgd.learning_rate = 0.2;
  const std::vector<PeerRun> runs =
      OnProcesses(job, [](int) { return -1; }, "", {.times = 2, .first_spec = other});
  ASSERT_EQ(runs.size(), 5u);
  for (int r = 0; r < 5; ++r) {
    EXPECT_EQ(runs[size_t(r)].exit_code, 0) << runs[size_t(r)].status;
    EXPECT_NE(runs[size_t(r)].status.find(" rejoins 1 probe_repaired 0"), std::string::npos)
        << runs[size_t(r)].status;
  }
  // The refused one said why (its own test: one replacement only).
  const std::vector<PeerRun> refused =
      OnProcesses(job, [](int) { return -1; }, "", {.times = 1, .first_spec = other});
  ASSERT_EQ(refused.size(), 5u);
  EXPECT_EQ(refused[3].exit_code, 2) << refused[3].status;
  EXPECT_NE(refused[3].status.find("FailedPrecondition: peer 3 rejoining job other: the running "
                                   "job (generation "),
            std::string::npos)
      << refused[3].status;
  EXPECT_NE(refused[3].status.find("is another job: its identity is " + JobIdentity(job) +
                                   ", this peer's " + JobIdentity(other)),
            std::string::npos)
      << refused[3].status;
  for (int r : {0, 1, 2, 4}) {
    EXPECT_EQ(refused[size_t(r)].exit_code, 0) << refused[size_t(r)].status;
    EXPECT_NE(refused[size_t(r)].status.find(" rejoins 0"), std::string::npos)
        << refused[size_t(r)].status;
  }
}

INSTANTIATE_TEST_SUITE_P(Rendezvous, CrashSurvival, ::testing::Values("file", "redis"),
                         [](const auto& info) { return info.param; });

}  // namespace crash_survival_test
}  // namespace
}  // namespace polyguard
