// polyguard-train as a new user meets it: every bad input is refused by the
// launcher with exit code 2 and the file, line, field or value named, before
// any peer starts; and the launchers users already have (torchrun, srun,
// mpirun) start peers through their environment variables.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>

#include "polyguard/data/idx.h"
#include "runtime/multiprocess.h"
#include "trainer/train_cli.h"

namespace polyguard {
namespace {
namespace polyguard_train_input_test {

using testing::Outcome;
using testing::Shell;
using testing::Slurp;
using testing::Train;

const std::string kSmall =
    std::string(POLYGUARD_SOURCE_DIR) + "/models/mlp_synthetic_small.textproto";
const std::string kSmallCode = R"(code { strategy: "genpolydot" m: 2 n: 1 })";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  if (at == std::string::npos) return "(test bug: '" + from + "' not in the spec)";
  return text.replace(at, from.size(), to);
}

// IDX files of `count` images rows x cols and their labels (< 4).
void WriteImages(const std::string& dir, const std::string& prefix, int64_t count, int64_t rows,
                 int64_t cols) {
  IdxArray images{{count, rows, cols}, std::vector<uint8_t>(size_t(count * rows * cols), 7)};
  IdxArray labels{{count}, std::vector<uint8_t>(size_t(count))};
  for (int64_t i = 0; i < count; ++i) labels.data[size_t(i)] = uint8_t(i % 4);
  ASSERT_TRUE(WriteIdx(dir + "/" + prefix + "-images-idx3-ubyte", images).ok());
  ASSERT_TRUE(WriteIdx(dir + "/" + prefix + "-labels-idx1-ubyte", labels).ok());
}

struct BadInput {
  const char* name;
  // Makes the spec file (from the small spec's text) and any files it needs
  // in `dir`; returns the spec text.
  std::function<std::string(const std::string& spec, const std::string& dir)> spec;
  const char* args;
  std::vector<const char*> said;  // fragments of the message
};

std::ostream& operator<<(std::ostream& out, const BadInput& c) { return out << c.name; }

// A spec whose data are IDX files in DIR/mnist: 3 x 4 images for the
// model's 12 inputs.
std::string MnistSpec(const std::string& spec, const std::string& dir) {
  std::filesystem::create_directories(dir + "/mnist");
  return Replace(spec, R"(data { kind: "synthetic" classes: 4 seed: 3 })",
                 R"(data { kind: "mnist" dir: ")" + dir + R"(/mnist" classes: 4 })");
}

class PolyguardTrainInput : public ::testing::TestWithParam<BadInput> {
 protected:
  void SetUp() override { dir_ = testing::FreshFolder("train-input"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_P(PolyguardTrainInput, IsRefusedBeforeAnyPeerStarts) {
  const BadInput& c = GetParam();
  const std::string spec = dir_ + "/job.textproto";
  std::ofstream(spec) << c.spec(Slurp(kSmall), dir_);
  const Outcome o = Train("--spec " + spec + " --steps 2 --quiet " + c.args, dir_);
  EXPECT_EQ(o.exit_code, 2) << o.err;
  for (const char* fragment : c.said) EXPECT_NE(o.err.find(fragment), std::string::npos) << o.err;
  // One message from the launcher, none from a peer.
  EXPECT_EQ(o.err.find("peer 0"), std::string::npos) << o.err;
  EXPECT_LE(std::count(o.err.begin(), o.err.end(), '\n'), 2) << o.err;  // and a --help hint
}

const auto kKeep = [](const std::string& spec, const std::string&) { return spec; };

INSTANTIATE_TEST_SUITE_P(
    Cases, PolyguardTrainInput,
    ::testing::Values(
        BadInput{"PolyDotNeedsMorePeers",
                 [](const std::string& s, const std::string&) {
                   return Replace(s, kSmallCode,
                                  R"(code { strategy: "genpolydot" m: 2 n: 2 d: 2 })");
                 },
                 "",
                 {"job.textproto:10: code: ", "K = mnd + n - 1 = 9 peers, got 4"}},
        BadInput{
            "WaitForBelowK",
            [](const std::string& s, const std::string&) {
              return Replace(s, kSmallCode,
                             R"(code { strategy: "genpolydot" m: 2 n: 1 wait_for: 1 })");
            },
            "",
            {"job.textproto:10: code: ", "wait_for must be 0 (all) or in [K = 2, P = 4], got 1"}},
        BadInput{"NineReplicas",
                 [](const std::string& s, const std::string&) {
                   return Replace(s, kSmallCode, R"(code { strategy: "replication" replicas: 9 })");
                 },
                 "",
                 {"job.textproto:10: code: ", "replicas = 9"}},
        BadInput{"BadMdsLayout",
                 [](const std::string& s, const std::string&) {
                   return Replace(s, kSmallCode,
                                  R"(code { strategy: "mds" row_peers: 3 row_blocks: 5 })");
                 },
                 "",
                 {"job.textproto:10: code: ", "layout"}},
        BadInput{"ZeroTimeout", kKeep, "--timeout-ms 0", {"timeout must be >= 100 ms, got 0"}},
        BadInput{"NanTolerance",
                 [](const std::string& s, const std::string&) {
                   return Replace(s, kSmallCode,
                                  R"(code { strategy: "genpolydot" m: 2 n: 1 tolerance: nan })");
                 },
                 "",
                 {"job.textproto:10: code.tolerance: ", "got nan"}},
        BadInput{"UnknownFaultKind",
                 [](const std::string& s, const std::string&) {
                   return s + "faults { kind: \"entries\" }\n";
                 },
                 "",
                 {"job.textproto:15: faults.kind: ", "expected dense, entry, bitflip, nan or inf"}},
        BadInput{"PeersOutOfRange", kKeep, "--peers 1e10", {"--peers: '1e10' is out of range"}},
        BadInput{"HugeLayer",
                 [](const std::string& s, const std::string&) {
                   return Replace(s, "layer { outputs: 16", "layer { outputs: 2000000000");
                 },
                 "",
                 {"ResourceExhausted", "layer 0 (dense 12 -> 2000000000)", "available"}},
        BadInput{"ImagesAreADirectory",
                 [](const std::string& s, const std::string& dir) {
                   const std::string spec = MnistSpec(s, dir);
                   std::filesystem::create_directories(dir + "/mnist/train-images-idx3-ubyte");
                   return spec;
                 },
                 "",
                 {"mnist/train-images-idx3-ubyte is a directory"}},
        BadInput{"TestImagesOfAnotherSize",
                 [](const std::string& s, const std::string& dir) {
                   const std::string spec = MnistSpec(s, dir);
                   WriteImages(dir + "/mnist", "train", 64, 3, 4);
                   WriteImages(dir + "/mnist", "t10k", 16, 2, 2);
                   return spec;
                 },
                 "",
                 {"t10k-images-idx3-ubyte has 2 x 2 = 4 pixels per image", "takes 12 inputs"}},
        BadInput{"LabelsMissing",
                 [](const std::string& s, const std::string& dir) {
                   const std::string spec = MnistSpec(s, dir);
                   WriteImages(dir + "/mnist", "train", 64, 3, 4);
                   WriteImages(dir + "/mnist", "t10k", 16, 3, 4);
                   std::filesystem::remove(dir + "/mnist/t10k-labels-idx1-ubyte");
                   return spec;
                 },
                 "",
                 {"cannot open", "t10k-labels-idx1-ubyte"}}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

class PolyguardTrainCli : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::FreshFolder("train-cli"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(PolyguardTrainCli, HelpListsTheOptionsAndExitsZero) {
  const Outcome o = Train("--help", dir_);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("usage: polyguard-train --spec FILE"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("WORLD_SIZE"), std::string::npos) << o.out;
  EXPECT_TRUE(o.err.empty()) << o.err;
}

TEST_F(PolyguardTrainCli, ASpecThatIsADirectoryIsRefused) {
  const Outcome o = Train("--spec " + dir_, dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find(dir_ + " is a directory, not a spec file"), std::string::npos) << o.err;
}

// A directory where a checkpoint should be: an error naming it, not an
// abort in every peer.
TEST_F(PolyguardTrainCli, ACheckpointThatIsADirectoryIsRefused) {
  const std::string ckpt = dir_ + "/ckpt";
  const std::string job = "--spec " + kSmall + " --steps 20 --quiet --checkpoint-dir " + ckpt;
  ASSERT_EQ(Train(job, dir_).exit_code, 0);
  std::filesystem::remove(ckpt + "/peer-3.ckpt");
  std::filesystem::create_directories(ckpt + "/peer-3.ckpt");
  const Outcome o = Train(job + " --steps 40 --resume", dir_);
  EXPECT_TRUE(o.exit_code == 1 || o.exit_code == 2) << o.exit_code << o.err;
  EXPECT_NE(o.err.find("peer-3.ckpt is a directory, not a checkpoint"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("signal"), std::string::npos) << o.err;
}

TEST_F(PolyguardTrainCli, MnistDataThatFitsTrains) {
  const std::string spec = dir_ + "/job.textproto";
  std::ofstream(spec) << MnistSpec(Slurp(kSmall), dir_);
  WriteImages(dir_ + "/mnist", "train", 64, 3, 4);
  WriteImages(dir_ + "/mnist", "t10k", 16, 3, 4);
  const Outcome o = Train("--spec " + spec + " --steps 4 --quiet", dir_);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("test accuracy"), std::string::npos) << o.out;
}

// The environment of each launcher, as a shell prefix for rank r of 4.
struct Launcher {
  const char* name;
  const char* rank;
  const char* size;
};

std::ostream& operator<<(std::ostream& out, const Launcher& l) { return out << l.name; }

// No launcher variable from the test's own environment leaks in.
const char kClean[] =
    "env -u RANK -u WORLD_SIZE -u SLURM_PROCID -u SLURM_NTASKS -u OMPI_COMM_WORLD_RANK "
    "-u OMPI_COMM_WORLD_SIZE -u MASTER_ADDR -u MASTER_PORT ";

class PolyguardTrainLauncher : public ::testing::TestWithParam<Launcher> {
 protected:
  void SetUp() override { dir_ = testing::FreshFolder("train-launcher"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Env(const std::string& rank, const std::string& size) const {
    return std::string(kClean) + GetParam().rank + "=" + rank + " " + GetParam().size + "=" + size +
           " ";
  }
  std::string dir_;
};

// Four peers started by a shell loop with only the launcher's variables (no
// --rank) train the same job as local mode, loss for loss.
TEST_P(PolyguardTrainLauncher, FourPeersFromAShellLoopTrainLikeLocalMode) {
  const std::string rendezvous = dir_ + "/rendezvous";
  std::filesystem::create_directories(rendezvous);
  const std::string job = "--spec " + kSmall + " --steps 20 --quiet";
  std::string loop = "for r in 1 2 3; do ";
  loop += Env("$r", "4") + POLYGUARD_TRAIN_BIN + " " + job + " --rendezvous file:" + rendezvous +
          " > /dev/null 2>&1 & done; " + Env("0", "4") + POLYGUARD_TRAIN_BIN + " " + job +
          " --rendezvous file:" + rendezvous + "; code=$?; wait; exit $code";
  const Outcome peers = Shell(loop, dir_);
  ASSERT_EQ(peers.exit_code, 0) << peers.err;
  const Outcome local = Shell(std::string(kClean) + POLYGUARD_TRAIN_BIN + " " + job, dir_);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  const std::regex loss("step 20 loss [0-9.e+-]+");
  std::smatch a, b;
  ASSERT_TRUE(std::regex_search(peers.out, a, loss)) << peers.out;
  ASSERT_TRUE(std::regex_search(local.out, b, loss)) << local.out;
  EXPECT_EQ(a.str(), b.str());
}

TEST_P(PolyguardTrainLauncher, MismatchedVariablesAreRefusedNamingBoth) {
  Outcome o = Shell(
      Env("5", "4") + POLYGUARD_TRAIN_BIN + " --spec " + kSmall + " --rendezvous file:" + dir_,
      dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find(std::string(GetParam().rank) + "=5 must be below " + GetParam().size + "=4"),
            std::string::npos)
      << o.err;
  o = Shell(
      Env("1", "8") + POLYGUARD_TRAIN_BIN + " --spec " + kSmall + " --rendezvous file:" + dir_,
      dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("the job has peers: 4 but the launcher started 8 processes"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find(std::string(GetParam().size) + "=8"), std::string::npos) << o.err;
  // Without --rendezvous: MASTER_ADDR is no store polyguard can use.
  o = Shell(Env("1", "4") + "MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 " + POLYGUARD_TRAIN_BIN +
                " --spec " + kSmall,
            dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("MASTER_ADDR=10.0.0.1 MASTER_PORT=29500"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("--rendezvous redis://HOST:PORT"), std::string::npos) << o.err;
  o = Shell(
      std::string(kClean) + GetParam().rank + "=1 " + POLYGUARD_TRAIN_BIN + " --spec " + kSmall,
      dir_);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find(std::string(GetParam().size) + " is not set"), std::string::npos) << o.err;
}

INSTANTIATE_TEST_SUITE_P(
    Conventions, PolyguardTrainLauncher,
    ::testing::Values(Launcher{"torchrun", "RANK", "WORLD_SIZE"},
                      Launcher{"Slurm", "SLURM_PROCID", "SLURM_NTASKS"},
                      Launcher{"OpenMpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"}),
    [](const ::testing::TestParamInfo<Launcher>& info) { return info.param.name; });

}  // namespace polyguard_train_input_test
}  // namespace
}  // namespace polyguard
