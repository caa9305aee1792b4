// polyguard-train end to end: real peer processes, real files, a real
// redis-server.
#include <gtest/gtest.h>

#include <dirent.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "polyguard/train/checkpoint.h"
#include "runtime/multiprocess.h"
#include "runtime/redis_server.h"
#include "train/http_get.h"
#include "trainer/train_cli.h"

namespace polyguard {
namespace {
namespace polyguard_train_test {

using testing::Outcome;
using testing::Slurp;
using testing::Train;

const std::string kSmall =
    std::string(POLYGUARD_SOURCE_DIR) + "/models/mlp_synthetic_small.textproto";

// The small job surviving crashes, peer 2 crashing in round 15.
const char kPeer2Crashes[] =
    "survive_crashes: true\ntimeout_ms: 2000\nfaults { crash_peer: 2 crash_step: 15 }\n";

// Losses rank 0 prints with --quiet ("step N loss L" every 10 steps).
std::map<int, std::string> Losses(const std::string& out) {
  std::map<int, std::string> losses;
  std::regex line("step ([0-9]+) loss ([0-9.e+-]+)");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator();
       ++it)
    losses[std::stoi((*it)[1])] = (*it)[2];
  return losses;
}

// No process of this job (its spec path is unique) is left behind.
bool NoneLeft(const std::string& marker) {
  DIR* proc = ::opendir("/proc");
  bool none = true;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string cmdline = Slurp(std::string("/proc/") + e->d_name + "/cmdline");
    for (char& c : cmdline)
      if (c == '\0') c = ' ';
    if (cmdline.find(marker) != std::string::npos &&
        cmdline.find("polyguard-train") != std::string::npos)
      none = false;
  }
  ::closedir(proc);
  return none;
}

class PolyguardTrain : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::FreshFolder("train-bin"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string WriteSpec(const std::string& extra) {
    const std::string path = dir_ + "/job.textproto";
    std::ofstream(path) << Slurp(kSmall) << extra;
    return path;
  }
  std::string dir_;
};

TEST_F(PolyguardTrain, LocalModeTrainsAndSummarises) {
  const Outcome o = Train("--spec " + kSmall + " --error-rate 0.01", dir_);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("test accuracy: "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("faults: "), std::string::npos);
  EXPECT_NE(o.out.find("step 40/40"), std::string::npos);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(o.out, m, std::regex("test accuracy: ([0-9.]+)")));
  EXPECT_GT(std::stod(m[1]), 0.6);  // a 4-class task learned in 40 steps
}

// With --quiet a rollback is said when it happens (recomputing and rolling
// back can take minutes with no completed step to print): one line each, as
// many as the summary counts.
TEST_F(PolyguardTrain, UnderQuietEachRollbackIsSaid) {
  const Outcome o = Train("--spec " + kSmall + " --quiet --error-rate 0.03", dir_);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(o.out, m, std::regex("([0-9]+) rollbacks\n"))) << o.out;
  const int rollbacks = std::stoi(m[1]);
  EXPECT_GT(rollbacks, 0) << o.out;
  const std::regex said(
      "step [0-9]+ rolled back \\(([0-9]+) rollbacks so far\\); going on at step");
  int lines = 0, last = 0;
  for (auto it = std::sregex_iterator(o.out.begin(), o.out.end(), said);
       it != std::sregex_iterator(); ++it, ++lines)
    last = std::stoi((*it)[1]);
  EXPECT_EQ(lines, rollbacks) << o.out;
  EXPECT_EQ(last, rollbacks);
}

// The bundled small CNN (coded convolutions, pooling, a dense layer) on 6
// peer processes: with soft errors at every step point it ends on the same
// losses and test accuracy as without.
TEST_F(PolyguardTrain, CnnTrainsThroughFaultsToTheFaultFreeResult) {
  const std::string cnn =
      std::string(POLYGUARD_SOURCE_DIR) + "/models/cnn_synthetic_small.textproto";
  const Outcome clean = Train("--spec " + cnn + " --error-rate 0 --quiet", dir_);
  ASSERT_EQ(clean.exit_code, 0) << clean.err;
  const Outcome faulty = Train("--spec " + cnn + " --error-rate 0.01 --quiet", dir_);
  ASSERT_EQ(faulty.exit_code, 0) << faulty.err;
  std::smatch a, b, f;
  ASSERT_TRUE(std::regex_search(clean.out, a,
                                std::regex("test accuracy: ([0-9.]+ \\([0-9]+ of [0-9]+\\))")))
      << clean.out;
  ASSERT_TRUE(std::regex_search(faulty.out, b,
                                std::regex("test accuracy: ([0-9.]+ \\([0-9]+ of [0-9]+\\))")))
      << faulty.out;
  EXPECT_EQ(a[1], b[1]);
  ASSERT_TRUE(std::regex_search(faulty.out, f, std::regex("faults: ([0-9]+) injected")));
  EXPECT_GT(std::stoi(f[1]), 20);
  const auto want = Losses(clean.out), got = Losses(faulty.out);
  ASSERT_FALSE(want.empty()) << clean.out;
  for (const auto& [step, loss] : want) {
    ASSERT_TRUE(got.count(step)) << "step " << step;
    EXPECT_NEAR(std::stod(got.at(step)), std::stod(loss), 2e-6)
        << "step " << step;  // printed to 6 places
  }
}

TEST_F(PolyguardTrain, BadSpecsAndArgumentsAreRefusedWithReasons) {
  Outcome o = Train("--spec " + WriteSpec("snapshot_interval: 0\n"), dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("job.textproto:15: snapshot_interval: must be >= 1"), std::string::npos)
      << o.err;
  o = Train("--spec " + WriteSpec("bogus_field: 1\n"), dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("job.textproto:15:1"), std::string::npos) << o.err;
  // m = 2 needs K_t = 3: refused by the launcher, before any peer starts.
  o = Train("--spec " + kSmall + " --peers 2", dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("needs 3 peers"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("peer 0"), std::string::npos) << o.err;
  o = Train("--spec " + kSmall + " --strategy fountain", dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("unknown strategy 'fountain'"), std::string::npos) << o.err;
  o = Train("--spec " + kSmall + " --precision float16", dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("--precision: unknown precision 'float16'"), std::string::npos) << o.err;
  o = Train("--spec " + kSmall + " --steps ten", dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("--steps: not a number"), std::string::npos) << o.err;
}

TEST_F(PolyguardTrain, AFailedPeerFailsTheJobCleanlyAndLeavesNoProcess) {
  const std::string spec = WriteSpec("faults { crash_peer: 2 crash_step: 10 }\ntimeout_ms: 3000\n");
  const Outcome o = Train("--spec " + spec, dir_);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.err.find("peer 2 failed (exit code 86)"), std::string::npos) << o.err;
  EXPECT_TRUE(std::regex_search(o.err, std::regex("peers ([0-9]+, )*2[ ,]"))) << o.err;
  EXPECT_TRUE(NoneLeft(spec));
}

// The four peers' checkpoint files in dir, byte for byte.
std::vector<std::string> CheckpointBytes(const std::string& dir) {
  std::vector<std::string> files;
  for (int r = 0; r < 4; ++r) files.push_back(Slurp(CheckpointPath(dir, r)));
  return files;
}

// With faults at every step point, often enough that steps are recomputed
// (the exchange rounds, by which faults hit, run ahead of the steps), a run
// resumed from checkpoints continues exactly as the uninterrupted run: from
// the last checkpoints of finished runs of 10 and 20 steps, and from the
// periodic checkpoints a crashed run leaves. It ends on byte-identical
// checkpoints (step, round, shards, momentum) and prints the same losses.
// With survive_crashes the crash of peer 2 is survived: the launcher lets
// the others go on, the job ends with exit 0, and the summary says whom it
// lost and which step was recomputed. (No soft errors: with 3 of 4 peers
// left the backward decode has no redundancy, so they would only be
// detected; CrashSurvival in tests/train has both, on 5 peers.)
TEST_F(PolyguardTrain, ACrashIsSurvivedWhenTheSpecSaysSo) {
  const std::string spec = WriteSpec(kPeer2Crashes);
  const Outcome o = Train("--spec " + spec + " --max-restarts 0", dir_);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_NE(o.err.find("peer 2 crashed (exit code 86); the others go on\n"), std::string::npos)
      << o.err;
  EXPECT_NE(o.out.find("crashes: 1 peers lost and survived, 0 rejoined (3 of 4 present at the "
                       "end)"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("peers 2 lost; step"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("test accuracy"), std::string::npos) << o.out;
  EXPECT_TRUE(NoneLeft(spec));
}

// By default the launcher restarts a crashed peer: the replacement rejoins
// the running job (rebuilding its shards from the others) and the job ends
// with all four peers. Its flags are checked before any peer starts.
TEST_F(PolyguardTrain, ACrashedPeersReplacementRejoins) {
  const std::string spec = WriteSpec(kPeer2Crashes);
  const Outcome o = Train("--spec " + spec + " --steps 200", dir_);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_NE(o.err.find("peer 2 crashed (exit code 86); the others go on, and a replacement "
                       "rejoins (restart 1 of 3)"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("polyguard-train: peer 2 rejoined at step "), std::string::npos) << o.err;
  EXPECT_NE(o.out.find("crashes: 1 peers lost and survived, 1 rejoined (4 of 4 present at the "
                       "end)"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("  peers 2 rejoined before step "), std::string::npos) << o.out;
  EXPECT_TRUE(NoneLeft(spec));
  Outcome bad = Train("--spec " + spec + " --rejoin", dir_);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--rejoin needs --rank R and --rendezvous URL"), std::string::npos)
      << bad.err;
  bad = Train("--spec " + kSmall + " --rank 1 --rendezvous file:" + dir_ + "/r --rejoin", dir_);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--rejoin needs a job that survives crashes"), std::string::npos)
      << bad.err;
  bad = Train("--spec " + spec + " --max-restarts -1", dir_);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--max-restarts must be >= 0"), std::string::npos) << bad.err;
}

TEST_F(PolyguardTrain, ResumeContinuesExactlyUnderFaults) {
  const std::string faulty = " --quiet --error-rate 0.01 --checkpoint-dir ";
  const Outcome whole = Train("--spec " + kSmall + faulty + dir_ + "/whole", dir_);
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(whole.out, m, std::regex("faults: ([0-9]+) injected")));
  EXPECT_GT(std::stoi(m[1]), 10) << whole.out;
  ASSERT_TRUE(std::regex_search(whole.out, m, std::regex("([0-9]+) recomputations")));
  EXPECT_GT(std::stoi(m[1]), 0) << whole.out;
  // --quiet says each recomputation as it happens (adversary s4: minutes of
  // silence under heavy faults otherwise).
  const std::regex said("step [0-9]+ recomputed \\(retry [0-9]+: ");
  EXPECT_EQ(std::distance(std::sregex_iterator(whole.out.begin(), whole.out.end(), said),
                          std::sregex_iterator()),
            std::stoi(m[1]))
      << whole.out;
  const auto all = Losses(whole.out);
  ASSERT_EQ(all.size(), 4u) << whole.out;
  const std::vector<std::string> end = CheckpointBytes(dir_ + "/whole");
  auto expect_as_whole = [&](const Outcome& rest, int64_t from, const std::string& ckpt) {
    ASSERT_EQ(rest.exit_code, 0) << rest.err;
    const auto resumed = Losses(rest.out);
    for (const auto& [step, loss] : all) {
      if (step <= from) continue;
      ASSERT_TRUE(resumed.count(step)) << "step " << step << "\n" << rest.out;
      EXPECT_EQ(resumed.at(step), loss) << "step " << step;
    }
    EXPECT_TRUE(CheckpointBytes(ckpt) == end) << "the resumed run ended elsewhere";
  };
  for (int k : {10, 20}) {
    SCOPED_TRACE("stopped at step " + std::to_string(k));
    const std::string ckpt = dir_ + "/ckpt" + std::to_string(k);
    const Outcome first =
        Train("--spec " + kSmall + " --steps " + std::to_string(k) + faulty + ckpt, dir_);
    ASSERT_EQ(first.exit_code, 0) << first.err;
    expect_as_whole(Train("--spec " + kSmall + " --resume" + faulty + ckpt, dir_), k, ckpt);
  }
  // Peer 2 crashes in round 27 (at step 27 or a little before, as steps were
  // recomputed): the others stop, and the checkpoints hold the periodic
  // snapshot before it.
  const std::string ckpt = dir_ + "/crashed";
  const std::string crashing = WriteSpec(
      "checkpoint_interval: 10\ntimeout_ms: 3000\nfaults { crash_peer: 2 crash_step: 27 }\n");
  const Outcome crashed = Train("--spec " + crashing + faulty + ckpt, dir_);
  ASSERT_EQ(crashed.exit_code, 1) << crashed.out << crashed.err;
  EXPECT_NE(crashed.err.find("peer 2 failed (exit code 86)"), std::string::npos) << crashed.err;
  auto header = ReadCheckpointHeader(CheckpointPath(ckpt, 0));
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_GT(header->step, 0);
  EXPECT_LT(header->step, 27);
  const std::string spec = WriteSpec("checkpoint_interval: 10\n");
  expect_as_whole(Train("--spec " + spec + " --resume" + faulty + ckpt, dir_), header->step, ckpt);
}

// Checkpoints that cannot be resumed are refused by the launcher before any
// peer starts, with the reason, and left as they were.
TEST_F(PolyguardTrain, BadCheckpointsAndResumeMistakesAreRefused) {
  const std::string at20 = dir_ + "/at20", ckpt = dir_ + "/ckpt";
  const std::string quiet = "--spec " + kSmall + " --quiet ";
  ASSERT_EQ(Train(quiet + "--steps 20 --checkpoint-dir " + at20, dir_).exit_code, 0);
  std::filesystem::copy(at20, ckpt);
  ASSERT_EQ(Train(quiet + "--steps 30 --resume --checkpoint-dir " + ckpt, dir_).exit_code, 0);
  const std::vector<std::string> at30 = CheckpointBytes(ckpt);
  // Fewer steps than the checkpoints have (once, this rewrote them as step
  // 10 holding step 30's weights).
  Outcome o = Train(quiet + "--steps 10 --resume --checkpoint-dir " + ckpt, dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("checkpoint: " + ckpt +
                       "/peer-0.ckpt is at step 30; a job of 10 steps would end before it"),
            std::string::npos)
      << o.err;
  EXPECT_TRUE(o.out.empty()) << o.out;  // no peer started
  EXPECT_TRUE(CheckpointBytes(ckpt) == at30);
  // As many: nothing to train, nothing rewritten.
  o = Train(quiet + "--steps 30 --resume --checkpoint-dir " + ckpt, dir_);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("checkpoints in " + ckpt + " at step 30, the job's last: nothing to train"),
            std::string::npos)
      << o.out;
  EXPECT_TRUE(CheckpointBytes(ckpt) == at30);
  // One peer's checkpoint from another step.
  std::filesystem::copy_file(CheckpointPath(at20, 0), CheckpointPath(ckpt, 0),
                             std::filesystem::copy_options::overwrite_existing);
  o = Train(quiet + "--resume --checkpoint-dir " + ckpt, dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("peers disagree on the checkpoint step: peer 0 at 20, peers 1, 2, 3 at 30"),
            std::string::npos)
      << o.err;
  EXPECT_TRUE(o.out.empty()) << o.out;
  // Corrupt one byte of peer 1's checkpoint: refused, nothing trained.
  std::filesystem::remove_all(ckpt);
  std::filesystem::copy(at20, ckpt);
  const std::string p1 = ckpt + "/peer-1.ckpt";
  std::string bytes = Slurp(p1);
  bytes[bytes.size() / 2] ^= 0x5a;
  std::ofstream(p1, std::ios::binary) << bytes;
  Outcome bad = Train(quiet + "--steps 40 --resume --checkpoint-dir " + ckpt, dir_);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(bad.err.find("peer-1.ckpt is corrupted (checksum mismatch)") != std::string::npos ||
              bad.err.find("peer-1.ckpt is truncated") != std::string::npos)
      << bad.err;
  std::ofstream(p1, std::ios::binary) << bytes.substr(0, 10);
  bad = Train(quiet + "--steps 40 --resume --checkpoint-dir " + ckpt, dir_);
  EXPECT_NE(bad.err.find("peer-1.ckpt is truncated"), std::string::npos) << bad.err;
  // Another code (only the peers can tell, from their model): refused,
  // naming both.
  std::filesystem::remove_all(ckpt);
  std::filesystem::copy(at20, ckpt);
  bad = Train(quiet + "--strategy uncoded --steps 40 --resume --checkpoint-dir " + ckpt, dir_);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("is for code 'genpolydot"), std::string::npos) << bad.err;
  // Another precision: refused the same way (the code's name carries it).
  bad = Train(quiet + "--precision float32 --steps 40 --resume --checkpoint-dir " + ckpt, dir_);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("this job has 'genpolydot"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find(" float32'"), std::string::npos) << bad.err;
}

// Peers started one by one (--rank: on several machines nobody sees every
// checkpoint) agree on the step right after connecting: every peer refuses
// the same mistake with the same message, at once rather than after the
// failure timeout.
TEST_F(PolyguardTrain, PeersStartedWithRankRefuseResumeMistakesTogether) {
  const std::string at20 = dir_ + "/at20", at30 = dir_ + "/at30", mixed = dir_ + "/mixed";
  const std::string quiet = "--spec " + kSmall + " --quiet ";
  ASSERT_EQ(Train(quiet + "--steps 20 --checkpoint-dir " + at20, dir_).exit_code, 0);
  std::filesystem::copy(at20, at30);
  ASSERT_EQ(Train(quiet + "--steps 30 --resume --checkpoint-dir " + at30, dir_).exit_code, 0);
  std::filesystem::copy(at30, mixed);
  std::filesystem::copy_file(CheckpointPath(at20, 0), CheckpointPath(mixed, 0),
                             std::filesystem::copy_options::overwrite_existing);
  const std::vector<std::string> before = CheckpointBytes(at30);
  int run = 0;
  double seconds = 0;
  // Starts the four peers with `args`: their exit codes and outputs.
  auto peers = [&](const std::string& args) {
    const std::string meet = dir_ + "/meet" + std::to_string(++run);
    std::filesystem::create_directories(meet);
    const auto start = std::chrono::steady_clock::now();
    auto results = testing::RunPeers(
        4,
        [&](int rank) {
          const std::string command = std::string(POLYGUARD_TRAIN_BIN) + " " + quiet + args +
                                      " --rank " + std::to_string(rank) +
                                      " --rendezvous file:" + meet + " > " + meet + "/out" +
                                      std::to_string(rank) + " 2>&1";
          return WEXITSTATUS(std::system(command.c_str()));
        },
        std::chrono::seconds(120));
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::vector<std::pair<int, std::string>> out;
    for (int r = 0; r < 4; ++r) {
      out.emplace_back(results[size_t(r)].exit_code, Slurp(meet + "/out" + std::to_string(r)));
    }
    return out;
  };
  for (const auto& [code, out] : peers("--resume --checkpoint-dir " + mixed)) {
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find("peers disagree on the checkpoint step: peer 0 at 20, peers 1, 2, 3 at 30"),
              std::string::npos)
        << out;
  }
  EXPECT_LT(seconds, 30.0);  // the failure timeout (30 s) never ran out
  const auto short_job = peers("--steps 10 --resume --checkpoint-dir " + at30);
  for (int r = 0; r < 4; ++r) {
    const auto& [code, out] = short_job[size_t(r)];
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(
        out.find(CheckpointPath(at30, r) + " is at step 30; a job of 10 steps would end before it"),
        std::string::npos)
        << out;
  }
  const auto done = peers("--steps 30 --resume --checkpoint-dir " + at30);
  for (const auto& [code, out] : done) EXPECT_EQ(code, 0) << out;
  EXPECT_NE(done[0].second.find("at step 30, the job's last: nothing to train"), std::string::npos)
      << done[0].second;
  EXPECT_TRUE(CheckpointBytes(at30) == before);
  // A peer that cannot load its checkpoint says why; the others name it.
  const std::string bytes = Slurp(CheckpointPath(at30, 1));
  std::ofstream(CheckpointPath(at30, 1), std::ios::binary) << bytes.substr(0, 10);
  const auto broken = peers("--resume --checkpoint-dir " + at30);
  for (int r = 0; r < 4; ++r) {
    const auto& [code, out] = broken[size_t(r)];
    EXPECT_EQ(code, 1) << out;
    const char* want = r == 1 ? "peer-1.ckpt is truncated" : "peer 1 could not load its checkpoint";
    EXPECT_NE(out.find(want), std::string::npos) << out;
  }
  EXPECT_LT(seconds, 30.0);
}

TEST_F(PolyguardTrain, EveryPeerServesItsStatus) {
  // Four ports, peer r's at base + r.
  const int base = testing::FreePortRun(4);
  std::thread job([&] {
    Train("--spec " + kSmall + " --steps 400 --quiet --status-port " + std::to_string(base), dir_);
  });
  std::string health, metrics;
  // Up to a minute: on a loaded machine the 4 peers take a while to start.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  // Each peer starts its server on its own schedule: wait for both answers, not just the last.
  while (std::chrono::steady_clock::now() < deadline &&
         (health.find("200 OK") == std::string::npos ||
          metrics.find("polyguard_steps_total{peer=\"3\"} ") == std::string::npos)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (health.find("200 OK") == std::string::npos)
      health = testing::Get(base + 2, "GET", "/healthz");
    if (metrics.find("polyguard_steps_total{peer=\"3\"} ") == std::string::npos)
      metrics = testing::Get(base + 3, "GET", "/metrics");
  }
  job.join();
  EXPECT_NE(health.find("200 OK"), std::string::npos) << health;
  EXPECT_NE(metrics.find("polyguard_steps_total{peer=\"3\"} "), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("polyguard_rollbacks_total{peer=\"3\"} 0"), std::string::npos) << metrics;
}

// The README's multi-host recipe, on loopback: a Redis server with a
// password; two peers give it in the URL, two in POLYGUARD_REDIS_PASSWORD
// (out of process listings). A wrong password is refused before the peer
// loads anything (exit 2), and no message shows it.
TEST_F(PolyguardTrain, FourHostsMeetThroughAPasswordProtectedRedis) {
  testing::RedisServer redis(dir_, "s3cret");
  ASSERT_TRUE(redis.ok()) << "redis-server did not start (missing? run scripts/setup)";
  const std::string address = "127.0.0.1:" + std::to_string(redis.port());
  const Outcome wrong =
      Train("--spec " + kSmall + " --rank 0 --rendezvous redis://:not-it@" + address, dir_);
  EXPECT_EQ(wrong.exit_code, 2) << wrong.err;
  EXPECT_NE(wrong.err.find("refused the password in the URL"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("not-it"), std::string::npos) << wrong.err;
  const Outcome none =
      Train("--spec " + kSmall + " --rank 0 --rendezvous redis://" + address, dir_);
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_NE(none.err.find("NOAUTH"), std::string::npos) << none.err;
  auto results = testing::RunPeers(
      4,
      [&](int rank) {
        const std::string url = rank < 2 ? "redis://:s3cret@" + address : "redis://" + address;
        const std::string env = rank < 2 ? "" : "POLYGUARD_REDIS_PASSWORD=s3cret ";
        const std::string args = "--spec " + kSmall + " --rank " + std::to_string(rank) +
                                 " --rendezvous " + url + " --quiet";
        const std::string out = dir_ + "/out" + std::to_string(rank);
        return WEXITSTATUS(std::system(
            (env + std::string(POLYGUARD_TRAIN_BIN) + " " + args + " > " + out + " 2>&1").c_str()));
      },
      std::chrono::seconds(120));
  for (int r = 0; r < 4; ++r)
    EXPECT_EQ(results[size_t(r)].exit_code, 0) << Slurp(dir_ + "/out" + std::to_string(r));
  EXPECT_NE(Slurp(dir_ + "/out0").find("test accuracy: "), std::string::npos);
}

}  // namespace polyguard_train_test
}  // namespace
}  // namespace polyguard
