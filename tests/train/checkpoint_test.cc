#include "polyguard/train/checkpoint.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "runtime/multiprocess.h"

namespace polyguard {
namespace {
namespace checkpoint_test {

using namespace std::chrono_literals;

Trainer::State SomeState(int64_t step) {
  Trainer::State s;
  s.step = step;
  s.round = step + 3;
  s.shards = {Matrix::Constant(2, 3, 0.5), Matrix::Constant(3, 1, -1.0)};
  s.velocities = {Matrix::Zero(2, 3), Matrix::Constant(3, 1, 0.25)};
  return s;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class CheckpointFolder : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::FreshFolder("ckpt"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // Peer r's checkpoint of job "j" on `peers` peers at steps[r].
  void WriteAll(const std::vector<int64_t>& steps) {
    const int peers = int(steps.size());
    for (int r = 0; r < peers; ++r) {
      ASSERT_TRUE(WriteCheckpoint(CheckpointPath(dir_, r), {"j", "code", peers, r},
                                  SomeState(steps[size_t(r)]))
                      .ok());
    }
  }
  std::string dir_;
};

// Everything that decides the steps after a resume comes back: the scrub
// trigger (peers located wrong in the snapshot's step), the rollback counts
// and where a rollback returns to, besides the weights, step and round.
TEST_F(CheckpointFolder, StateRoundTripsWithItsScrubAndRollbackDecisions) {
  Trainer::State s = SomeState(20);
  s.previous_wrong = {1, 3};
  s.rollbacks_in_a_row = 2;
  s.rollback_step = 17;
  const Trainer::State periodic = SomeState(10);
  s.periodic_step = 10;
  s.periodic_shards = {periodic.shards[0] * 2.0, periodic.shards[1]};
  s.periodic_velocities = periodic.velocities;
  const CheckpointIdentity id{"j", "code", 4, 1};
  ASSERT_TRUE(WriteCheckpoint(CheckpointPath(dir_, 1), id, s).ok());
  auto back = ReadCheckpoint(CheckpointPath(dir_, 1), id);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->step, 20);
  EXPECT_EQ(back->round, 23);
  EXPECT_EQ(back->previous_wrong, (std::vector<int>{1, 3}));
  EXPECT_EQ(back->rollbacks_in_a_row, 2);
  EXPECT_EQ(back->rollback_step, 17);
  ASSERT_EQ(back->shards.size(), 2u);
  EXPECT_EQ(back->shards[1], s.shards[1]);
  EXPECT_EQ(back->velocities[1], s.velocities[1]);
  EXPECT_EQ(back->periodic_step, 10);
  ASSERT_EQ(back->periodic_shards.size(), 2u);
  EXPECT_EQ(back->periodic_shards[0], s.periodic_shards[0]);
  EXPECT_EQ(back->periodic_velocities[1], s.periodic_velocities[1]);
  auto header = ReadCheckpointHeader(CheckpointPath(dir_, 1));
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->step, 20);
  EXPECT_EQ(header->round, 23);
  EXPECT_EQ(header->identity.code, "code");
  EXPECT_EQ(header->identity.rank, 1);
  // A periodic snapshot has no second copy.
  ASSERT_TRUE(WriteCheckpoint(CheckpointPath(dir_, 1), id, periodic).ok());
  back = ReadCheckpoint(CheckpointPath(dir_, 1), id);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->periodic_shards.empty());
  EXPECT_TRUE(back->previous_wrong.empty());
}

TEST_F(CheckpointFolder, StepsOfEveryPeerAreReadAndBadFilesNamed) {
  WriteAll({20, 30, 30, 30});
  auto steps = ReadCheckpointSteps(dir_, "j", 4);
  ASSERT_TRUE(steps.ok()) << steps.status();
  EXPECT_EQ(*steps, (std::vector<int64_t>{20, 30, 30, 30}));
  // Another job, another peer count: refused as ReadCheckpoint refuses them.
  Status s = ReadCheckpointSteps(dir_, "other", 4).status();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("peer-0.ckpt is for job 'j', this job has 'other'"), std::string::npos)
      << s;
  s = ReadCheckpointSteps(dir_, "j", 3).status();
  EXPECT_NE(s.message().find("peer-0.ckpt is for peers 4, this job has 3"), std::string::npos) << s;
  // A file under another rank's name.
  std::filesystem::copy_file(CheckpointPath(dir_, 1), CheckpointPath(dir_, 2),
                             std::filesystem::copy_options::overwrite_existing);
  s = ReadCheckpointSteps(dir_, "j", 4).status();
  EXPECT_NE(s.message().find("peer-2.ckpt is for rank 1, this job has 2"), std::string::npos) << s;
  // Corrupted and missing files.
  WriteAll({30, 30, 30, 30});
  std::string bytes = Slurp(CheckpointPath(dir_, 3));
  bytes[bytes.size() / 2] ^= 0x5a;
  std::ofstream(CheckpointPath(dir_, 3), std::ios::binary) << bytes;
  s = ReadCheckpointSteps(dir_, "j", 4).status();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("peer-3.ckpt"), std::string::npos) << s;
  s = ReadCheckpointSteps(dir_, "j", 5).status();
  EXPECT_NE(s.message().find("peer-0.ckpt is for peers 4"), std::string::npos) << s;
  std::filesystem::remove(CheckpointPath(dir_, 0));
  s = ReadCheckpointSteps(dir_, "j", 4).status();
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s;
  EXPECT_NE(s.message().find("cannot open " + CheckpointPath(dir_, 0)), std::string::npos) << s;
}

TEST(ResumeChecks, DisagreeingStepsNameEveryPeersStep) {
  const std::vector<int64_t> same = {30, 30, 30, 30};
  EXPECT_TRUE(CheckSameResumeStep(same).ok());
  const std::vector<int64_t> one_behind = {20, 30, 30, 30};
  Status s = CheckSameResumeStep(one_behind);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "peers disagree on the checkpoint step: peer 0 at 20, peers 1, 2, 3 at 30");
  const std::vector<int64_t> mixed = {30, 20, 30, 10};
  EXPECT_EQ(CheckSameResumeStep(mixed).message(),
            "peers disagree on the checkpoint step: peers 0, 2 at 30, peer 1 at 20, peer 3 at 10");
}

TEST(ResumeChecks, ACheckpointPastTheJobsEndIsRefused) {
  const Status s = CheckResumeFits("d/peer-0.ckpt", 30, 10);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "checkpoint: d/peer-0.ckpt is at step 30; a job of 10 steps would end "
            "before it");
  EXPECT_TRUE(CheckResumeFits("d/peer-0.ckpt", 30, 30).ok());  // nothing left: the caller's call
  EXPECT_TRUE(CheckResumeFits("d/peer-0.ckpt", 30, 40).ok());
}

// The agreement between real peer processes: every peer returns the same
// answer, naming each peer's step.
TEST(ResumeChecks, PeersAgreeOnTheStepRightAfterConnecting) {
  struct Case {
    const char* label;
    std::vector<int64_t> steps, totals;
    StatusCode code;
    std::string message;  // "" when Ok
  };
  const std::vector<Case> cases = {
      {"same", {30, 30, 30, 30}, {40, 40, 40, 40}, StatusCode::kOk, ""},
      {"fresh", {0, 0, 0, 0}, {40, 40, 40, 40}, StatusCode::kOk, ""},
      {"behind",
       {20, 30, 30, 30},
       {40, 40, 40, 40},
       StatusCode::kInvalidArgument,
       "peers disagree on the checkpoint step: peer 0 at 20, peers 1, 2, 3 at 30"},
      {"unloaded",
       {30, -1, 30, -1},
       {40, 40, 40, 40},
       StatusCode::kFailedPrecondition,
       "peers 1, 3 could not load their checkpoints (their own message says why)"},
      {"lengths",
       {30, 30, 30, 30},
       {40, 40, 50, 40},
       StatusCode::kInvalidArgument,
       "peers disagree on the steps to train: peers 0, 1, 3 to step 40, peer 2 to step 50"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    const std::string dir = testing::FreshFolder("resume-agree");
    auto results = testing::RunPeers(
        4,
        [&](int rank) {
          auto group = PeerGroup::Connect({.rank = rank,
                                           .size = 4,
                                           .rendezvous = "file:" + dir,
                                           .job_id = "agree",
                                           .timeout = 20s});
          if (!group.ok()) return 10;
          auto agreed =
              AgreeOnResumeStep(group->get(), c.steps[size_t(rank)], c.totals[size_t(rank)]);
          std::ofstream(dir + "/rank" + std::to_string(rank))
              << int(agreed.status().code()) << "\n"
              << (agreed.ok() ? std::to_string(*agreed) : agreed.status().message()) << "\n";
          return 0;
        },
        60s);
    for (int r = 0; r < 4; ++r) {
      ASSERT_EQ(results[size_t(r)].exit_code, 0) << "rank " << r;
      std::ifstream in(dir + "/rank" + std::to_string(r));
      int code = -1;
      std::string message;
      in >> code;
      in.ignore();
      std::getline(in, message);
      EXPECT_EQ(code, int(c.code)) << "rank " << r << ": " << message;
      EXPECT_EQ(message, c.code == StatusCode::kOk ? std::to_string(c.steps[0]) : c.message)
          << "rank " << r;
    }
    std::filesystem::remove_all(dir);
  }
}

}  // namespace checkpoint_test
}  // namespace
}  // namespace polyguard
