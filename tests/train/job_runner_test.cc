// The job runner against the loop it replaces: the same steps through
// Trainer::Step by hand. Checkpoints must not change a single loss, and
// evaluations (without faults) only to roundoff; a resumed run continues the
// uninterrupted one exactly.
#include "polyguard/train/job_runner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "polyguard/train/checkpoint.h"
#include "polyguard/train/job_data.h"

namespace polyguard {
namespace {
namespace job_runner_test {

JobSpec SmallJob(const std::string& name, int64_t steps) {
  JobSpec job;
  job.name = name;
  job.peers = 4;
  job.steps = steps;
  job.data.kind = DataSpec::Kind::kSynthetic;
  job.data.classes = 3;
  job.data.seed = 7;
  job.model.layers = {{10, 12, Activation::kRelu}, {12, 3, Activation::kIdentity}};
  job.model.batch = 6;
  job.model.code = {.strategy = Strategy::kPolyDot, .m = 2, .n = 1};
  job.trainer.sgd = {.learning_rate = 0.1, .momentum = 0.9};
  job.trainer.scrub_interval = 4;
  job.trainer.snapshot_interval = 3;
  job.faults.error_rate = 0.02;  // every step point
  job.fault_seed = 11;
  job.timeout = std::chrono::seconds(60);
  return job;
}

std::string FreshDir(const std::string& name) {
  std::random_device rd;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("polyguard-runner-" + name + "-" + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

// Runs fn(rank) on every peer as a thread; returns peer 0's losses by step.
std::vector<double> OnThreads(int peers, const std::function<std::vector<double>(int)>& fn) {
  std::vector<std::vector<double>> losses(static_cast<size_t>(peers));
  std::vector<std::thread> threads;
  for (int r = 0; r < peers; ++r) threads.emplace_back([&, r] { losses[size_t(r)] = fn(r); });
  for (auto& t : threads) t.join();
  for (int r = 1; r < peers; ++r) EXPECT_EQ(losses[size_t(r)], losses[0]) << "peer " << r;
  return losses[0];
}

// The reference: the stack built by hand and Trainer::Step in a loop.
std::vector<double> HandLoop(const JobSpec& job) {
  return OnThreads(job.peers, [&](int rank) {
    std::vector<double> losses(size_t(job.steps + 1), 0.0);
    auto data = JobData::Load(job);
    EXPECT_TRUE(data.ok()) << data.status();
    if (!data.ok()) return losses;
    auto stack = BuildPeerStack({.group = {.rank = rank,
                                           .size = job.peers,
                                           .rendezvous = "inproc:hand-" + job.name,
                                           .job_id = job.name,
                                           .timeout = job.timeout},
                                 .model = job.model,
                                 .trainer = job.trainer,
                                 .faults = job.faults,
                                 .fault_seed = job.fault_seed});
    EXPECT_TRUE(stack.ok()) << stack.status();
    if (!stack.ok()) return losses;
    Matrix x;
    std::vector<int> labels;
    for (int64_t step = 1; step <= job.steps;) {
      (*data)->Batch(step, &x, &labels);
      auto r = stack->trainer->Step(step, x, labels);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      if (!r->rolled_back) losses[size_t(step)] = r->loss;
      step = r->next_step;
    }
    return losses;
  });
}

std::vector<double> Runner(const JobSpec& job, JobPeerOptions options, int64_t* correct) {
  static int runs = 0;  // an in-process rendezvous name is used once
  ++runs;
  return OnThreads(job.peers, [&](int rank) {
    std::vector<double> losses(size_t(job.steps + 1), 0.0);
    JobPeerOptions o = options;
    o.rank = rank;
    o.rendezvous = "inproc:runner-" + job.name + std::to_string(runs);
    JobHooks hooks;
    hooks.on_step = [&](int64_t step, int64_t, const StepResult& r, const StepTiming&,
                        const Trainer&) { losses[size_t(step)] = r.loss; };
    const JobOutcome out = RunJobPeer(job, o, hooks);
    EXPECT_TRUE(out.status.ok()) << "peer " << rank << ": " << out.status;
    EXPECT_EQ(out.tested, 512);  // the synthetic test set
    if (rank == 0) *correct = out.correct;
    return losses;
  });
}

struct Hooks {
  const char* name;
  int64_t evaluate_every;
  bool evaluate_without_faults;
  bool checkpoints;
};

class JobRunnerTest : public ::testing::TestWithParam<Hooks> {};

TEST_P(JobRunnerTest, FollowsTheHandWrittenLoopStepForStep) {
  const Hooks& h = GetParam();
  const JobSpec job = SmallJob(std::string("follow-") + h.name, 24);
  const std::vector<double> reference = HandLoop(job);
  const std::string dir = FreshDir(h.name);
  JobPeerOptions o{.evaluate_every = h.evaluate_every,
                   .evaluate_without_faults = h.evaluate_without_faults};
  if (h.checkpoints) o.checkpoint_dir = dir;
  JobSpec checkpointed = job;
  checkpointed.checkpoint_interval = 5;
  int64_t correct = -1;
  const std::vector<double> losses = Runner(h.checkpoints ? checkpointed : job, o, &correct);
  if (h.evaluate_every == 0) {
    EXPECT_EQ(losses, reference);  // bit for bit
  } else {
    // An evaluation may repair a shard that training's faults corrupted
    // before training's own next scrub would (trainer.h): roundoff.
    ASSERT_EQ(losses.size(), reference.size());
    for (size_t k = 1; k < losses.size(); ++k) {
      EXPECT_NEAR(losses[k], reference[k], 1e-9 * std::abs(reference[k])) << "step " << k;
    }
  }
  EXPECT_GT(correct, 512 / 3);  // better than chance
  if (h.checkpoints) {
    auto header = ReadCheckpointHeader(CheckpointPath(dir, 0));
    ASSERT_TRUE(header.ok()) << header.status();
    EXPECT_EQ(header->step, 24);
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Every, JobRunnerTest,
                         ::testing::Values(Hooks{"plain", 0, false, false},
                                           Hooks{"evaluating", 5, true, false},
                                           Hooks{"checkpoints", 0, false, true},
                                           Hooks{"both", 7, true, true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(JobRunner, ResumedRunContinuesTheUninterruptedOne) {
  const JobSpec whole = SmallJob("resume-whole", 24);
  const std::vector<double> reference = HandLoop(whole);
  const std::string dir = FreshDir("resume");
  JobSpec first = SmallJob("resume", 13);
  first.checkpoint_interval = 5;
  int64_t correct = 0;
  Runner(first, {.checkpoint_dir = dir}, &correct);
  JobSpec rest = SmallJob("resume", 24);
  const std::vector<double> resumed =
      Runner(rest, {.checkpoint_dir = dir, .resume = true}, &correct);
  for (int64_t step = 14; step <= 24; ++step) {
    EXPECT_EQ(resumed[size_t(step)], reference[size_t(step)]) << "step " << step;
  }
  EXPECT_EQ(resumed[13], 0.0);  // not run again
  std::filesystem::remove_all(dir);
}

TEST(JobRunner, ResumingAtTheLastStepTrainsNothingAndKeepsTheCheckpoints) {
  const std::string dir = FreshDir("last");
  const JobSpec job = SmallJob("last", 6);
  int64_t correct = 0;
  Runner(job, {.checkpoint_dir = dir}, &correct);
  const auto before = std::filesystem::last_write_time(CheckpointPath(dir, 0));
  OnThreads(job.peers, [&](int rank) {
    const JobOutcome out = RunJobPeer(
        job, {.rank = rank, .rendezvous = "inproc:last2", .checkpoint_dir = dir, .resume = true});
    EXPECT_TRUE(out.status.ok()) << out.status;
    EXPECT_TRUE(out.nothing_to_train);
    EXPECT_EQ(out.steps_run, 0);
    return std::vector<double>{};
  });
  EXPECT_EQ(std::filesystem::last_write_time(CheckpointPath(dir, 0)), before);
  std::filesystem::remove_all(dir);
}

TEST(JobRunner, CheckpointsOfAnotherJobAreRefusedAtEveryPeer) {
  const std::string dir = FreshDir("other");
  int64_t correct = 0;
  Runner(SmallJob("other", 6), {.checkpoint_dir = dir}, &correct);
  JobSpec longer = SmallJob("other", 4);  // ends before the checkpoints' step
  OnThreads(longer.peers, [&](int rank) {
    const JobOutcome out = RunJobPeer(
        longer,
        {.rank = rank, .rendezvous = "inproc:other2", .checkpoint_dir = dir, .resume = true});
    EXPECT_FALSE(out.status.ok());
    EXPECT_TRUE(out.refused) << out.status;
    EXPECT_NE(out.status.message().find("step 6"), std::string::npos) << out.status;
    return std::vector<double>{};
  });
  std::filesystem::remove_all(dir);
}

TEST(JobRunner, BadOptionsAreRefusedBeforeConnecting) {
  const JobSpec job = SmallJob("bad", 4);
  JobOutcome out = RunJobPeer(job, {.rendezvous = "inproc:bad", .resume = true});
  EXPECT_TRUE(out.refused);
  EXPECT_NE(out.status.message().find("checkpoint dir"), std::string::npos) << out.status;
  out = RunJobPeer(job, {.rendezvous = "inproc:bad", .evaluate_every = -1});
  EXPECT_TRUE(out.refused);
  EXPECT_NE(out.status.message().find("evaluate_every"), std::string::npos) << out.status;
}

}  // namespace job_runner_test
}  // namespace
}  // namespace polyguard
