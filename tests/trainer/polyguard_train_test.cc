// polyguard-train end to end: real peer processes, real files, a real
// redis-server.
#include <gtest/gtest.h>

#include <dirent.h>

#include <fstream>
#include <thread>
#include <regex>
#include <sstream>

#include "runtime/multiprocess.h"
#include "runtime/redis_server.h"
#include "train/http_get.h"
#include "trainer/train_cli.h"

namespace polyguard {
namespace {

using testing::Outcome;
using testing::Slurp;
using testing::Train;

const std::string kSmall = std::string(POLYGUARD_SOURCE_DIR) + "/models/mlp_synthetic_small.textproto";

// Losses rank 0 prints with --quiet ("step N loss L" every 10 steps).
std::map<int, std::string> Losses(const std::string& out) {
  std::map<int, std::string> losses;
  std::regex line("step ([0-9]+) loss ([0-9.e+-]+)");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator(); ++it)
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
    for (char& c : cmdline) if (c == '\0') c = ' ';
    if (cmdline.find(marker) != std::string::npos && cmdline.find("polyguard-train") != std::string::npos) none = false;
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

// The bundled small CNN (coded convolutions, pooling, a dense layer) on 6
// peer processes: with soft errors at every step point it ends on the same
// losses and test accuracy as without.
TEST_F(PolyguardTrain, CnnTrainsThroughFaultsToTheFaultFreeResult) {
  const std::string cnn = std::string(POLYGUARD_SOURCE_DIR) + "/models/cnn_synthetic_small.textproto";
  const Outcome clean = Train("--spec " + cnn + " --error-rate 0 --quiet", dir_);
  ASSERT_EQ(clean.exit_code, 0) << clean.err;
  const Outcome faulty = Train("--spec " + cnn + " --error-rate 0.01 --quiet", dir_);
  ASSERT_EQ(faulty.exit_code, 0) << faulty.err;
  std::smatch a, b, f;
  ASSERT_TRUE(std::regex_search(clean.out, a, std::regex("test accuracy: ([0-9.]+ \\([0-9]+ of [0-9]+\\))"))) << clean.out;
  ASSERT_TRUE(std::regex_search(faulty.out, b, std::regex("test accuracy: ([0-9.]+ \\([0-9]+ of [0-9]+\\))"))) << faulty.out;
  EXPECT_EQ(a[1], b[1]);
  ASSERT_TRUE(std::regex_search(faulty.out, f, std::regex("faults: ([0-9]+) injected")));
  EXPECT_GT(std::stoi(f[1]), 20);
  const auto want = Losses(clean.out), got = Losses(faulty.out);
  ASSERT_FALSE(want.empty()) << clean.out;
  for (const auto& [step, loss] : want) {
    ASSERT_TRUE(got.count(step)) << "step " << step;
    EXPECT_NEAR(std::stod(got.at(step)), std::stod(loss), 2e-6) << "step " << step;  // printed to 6 places
  }
}

TEST_F(PolyguardTrain, BadSpecsAndArgumentsAreRefusedWithReasons) {
  Outcome o = Train("--spec " + WriteSpec("snapshot_interval: 0\n"), dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("job.textproto:15: snapshot_interval: must be >= 1"), std::string::npos) << o.err;
  o = Train("--spec " + WriteSpec("bogus_field: 1\n"), dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("job.textproto:15:1"), std::string::npos) << o.err;
  o = Train("--spec " + kSmall + " --peers 2", dir_);  // m = 2 needs K_t = 3
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.err.find("needs 3 peers"), std::string::npos) << o.err;
  o = Train("--spec " + kSmall + " --strategy fountain", dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("unknown strategy 'fountain'"), std::string::npos) << o.err;
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

TEST_F(PolyguardTrain, ResumeContinuesExactlyAndBadCheckpointsAreRefused) {
  const std::string ckpt = dir_ + "/ckpt";
  const Outcome whole = Train("--spec " + kSmall + " --quiet --steps 40", dir_);
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  const Outcome first = Train("--spec " + kSmall + " --quiet --steps 20 --checkpoint-dir " + ckpt, dir_);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const Outcome rest = Train("--spec " + kSmall + " --quiet --steps 40 --resume --checkpoint-dir " + ckpt, dir_);
  ASSERT_EQ(rest.exit_code, 0) << rest.err;
  const auto all = Losses(whole.out), resumed = Losses(rest.out);
  ASSERT_EQ(all.size(), 4u) << whole.out;
  ASSERT_EQ(resumed.size(), 2u) << rest.out;
  EXPECT_EQ(resumed.at(30), all.at(30));
  EXPECT_EQ(resumed.at(40), all.at(40));
  // Corrupt one byte of peer 1's checkpoint: refused, nothing trained.
  const std::string p1 = ckpt + "/peer-1.ckpt";
  std::string bytes = Slurp(p1);
  bytes[bytes.size() / 2] ^= 0x5a;
  std::ofstream(p1, std::ios::binary) << bytes;
  Outcome bad = Train("--spec " + kSmall + " --quiet --steps 40 --resume --checkpoint-dir " + ckpt, dir_);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(bad.err.find("peer-1.ckpt is corrupted (checksum mismatch)") != std::string::npos ||
              bad.err.find("peer-1.ckpt is truncated") != std::string::npos)
      << bad.err;
  std::ofstream(p1, std::ios::binary) << bytes.substr(0, 10);
  bad = Train("--spec " + kSmall + " --quiet --steps 40 --resume --checkpoint-dir " + ckpt, dir_);
  EXPECT_NE(bad.err.find("peer-1.ckpt is truncated"), std::string::npos) << bad.err;
  // Another code: refused, naming both.
  bad = Train("--spec " + kSmall + " --strategy uncoded --quiet --steps 40 --resume --checkpoint-dir " + ckpt, dir_);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("is for code 'genpolydot"), std::string::npos) << bad.err;
}

TEST_F(PolyguardTrain, EveryPeerServesItsStatus) {
  const int base = testing::FreePort();
  std::thread job([&] { Train("--spec " + kSmall + " --steps 400 --quiet --status-port " + std::to_string(base), dir_); });
  std::string health, metrics;
  // Up to a minute: on a loaded machine the 4 peers take a while to start.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline &&
         metrics.find("polyguard_steps_total{peer=\"3\"} ") == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    health = testing::Get(base + 2, "GET", "/healthz");
    metrics = testing::Get(base + 3, "GET", "/metrics");
  }
  job.join();
  EXPECT_NE(health.find("200 OK"), std::string::npos) << health;
  EXPECT_NE(metrics.find("polyguard_steps_total{peer=\"3\"} "), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("polyguard_rollbacks_total{peer=\"3\"} 0"), std::string::npos) << metrics;
}

TEST_F(PolyguardTrain, FourHostsMeetThroughRedis) {
  testing::RedisServer redis(dir_);
  ASSERT_TRUE(redis.ok()) << "redis-server did not start (missing? run scripts/setup)";
  auto results = testing::RunPeers(4, [&](int rank) {
    const std::string args = "--spec " + kSmall + " --rank " + std::to_string(rank) +
                             " --rendezvous " + redis.url() + " --quiet";
    const std::string out = dir_ + "/out" + std::to_string(rank);
    return WEXITSTATUS(std::system((std::string(POLYGUARD_TRAIN_BIN) + " " + args + " > " + out + " 2>&1").c_str()));
  }, std::chrono::seconds(120));
  for (int r = 0; r < 4; ++r) EXPECT_EQ(results[size_t(r)].exit_code, 0) << Slurp(dir_ + "/out" + std::to_string(r));
  EXPECT_NE(Slurp(dir_ + "/out0").find("test accuracy: "), std::string::npos);
}

}  // namespace
}  // namespace polyguard
