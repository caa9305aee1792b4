#include "polyguard/fault/fault_injector.h"

#include <gtest/gtest.h>

#include <cmath>

namespace polyguard {
namespace {
namespace fault_injector_test {

TEST(FaultInjector, HitRateFollowsTheModel) {
  FaultModel model;
  model.error_rate = 0.05;
  FaultInjector inj(model, 7, 3);
  int hits = 0, total = 0;
  for (int64_t step = 0; step < 4000; ++step)
    for (int point = 0; point < kNumStepPoints; ++point, ++total)
      hits += inj.Hits(step, 0, static_cast<StepPoint>(point));
  const double p = 0.05, sd = std::sqrt(p * (1 - p) / total);
  EXPECT_NEAR(double(hits) / total, p, 5 * sd);
}

TEST(FaultInjector, ReplaysFromSeedPeerStepPoint) {
  FaultModel model;
  model.error_rate = 0.3;
  model.kind = SoftErrorKind::kEntry;
  model.entries = 2;
  FaultInjector a(model, 11, 2), b(model, 11, 2), other_peer(model, 11, 1);
  const Matrix base = Random(1).NormalMatrix(5, 4);
  int differ = 0;
  for (int64_t step = 0; step < 200; ++step) {
    Matrix x = base, y = base, z = base;
    const bool ha = a.MaybeCorrupt(step, 1, StepPoint::kProduct, &x);
    const bool hb = b.MaybeCorrupt(step, 1, StepPoint::kProduct, &y);
    other_peer.MaybeCorrupt(step, 1, StepPoint::kProduct, &z);
    EXPECT_EQ(ha, hb);
    EXPECT_EQ(x, y);
    if (ha) {
      EXPECT_EQ(((x.array() != base.array())).count(), 2);
    }
    differ += (x != z);
  }
  EXPECT_GT(differ, 0);
  EXPECT_EQ(a.record(), b.record());
  EXPECT_EQ(a.faults_injected(), int64_t(a.record().size()));
  for (const InjectedFault& f : a.record()) {
    EXPECT_EQ(f.peer, 2);
    EXPECT_EQ(f.point, StepPoint::kProduct);
  }
}

TEST(FaultInjector, OnlyChosenPointsAndPeers) {
  FaultModel model;
  model.error_rate = 1.0;
  model.points = {StepPoint::kUpdate};
  model.faulty_peers = {4};
  FaultInjector hit(model, 1, 4), spared(model, 1, 0);
  EXPECT_TRUE(hit.Hits(0, 0, StepPoint::kUpdate));
  EXPECT_FALSE(hit.Hits(0, 0, StepPoint::kShard));
  EXPECT_FALSE(spared.Hits(0, 0, StepPoint::kUpdate));
}

// A scheduled fault hits exactly its coordinates, with its own kind,
// whatever the rate, points and faulty peers say; the rest stay random.
TEST(FaultInjector, ScheduledFaultsHitExactlyTheirCoordinates) {
  FaultModel model;
  model.points = {StepPoint::kUpdate};
  model.faulty_peers = {0};
  model.scheduled = {{.step = 5,
                      .peer = 2,
                      .layer = 1,
                      .point = StepPoint::kHadamard,
                      .kind = SoftErrorKind::kNaN}};
  FaultInjector named(model, 1, 2), other(model, 1, 3);
  EXPECT_TRUE(named.Hits(5, 1, StepPoint::kHadamard));
  EXPECT_FALSE(named.Hits(4, 1, StepPoint::kHadamard));
  EXPECT_FALSE(named.Hits(5, 0, StepPoint::kHadamard));
  EXPECT_FALSE(named.Hits(5, 1, StepPoint::kActivation));
  EXPECT_FALSE(other.Hits(5, 1, StepPoint::kHadamard));
  Matrix x = Matrix::Ones(3, 2);
  ASSERT_TRUE(named.MaybeCorrupt(5, 1, StepPoint::kHadamard, &x));
  EXPECT_TRUE(x.array().isNaN().any());
  EXPECT_EQ(named.record(), model.scheduled);
  named.set_paused(true);
  EXPECT_FALSE(named.Hits(5, 1, StepPoint::kHadamard));
  // With a rate the random ones come too, and the scheduled one still hits.
  model.error_rate = 1.0;
  FaultInjector both(model, 1, 2);
  EXPECT_TRUE(both.Hits(5, 1, StepPoint::kHadamard));
  EXPECT_FALSE(both.Hits(6, 1, StepPoint::kUpdate));  // peer 2 is not faulty
  model.scheduled[0].peer = 4;
  EXPECT_NE(ValidateFaultModel(model, 4).message().find("scheduled fault at step 5, peer 4"),
            std::string::npos);
}

TEST(FaultInjector, StragglersAndCrashes) {
  FaultModel model;
  model.straggler_delay = FaultModel::Delay::kFixed;
  model.straggler_delay_ms = 250;
  model.straggler_peers = {1};
  model.crash_peer = 2;
  model.crash_step = 10;
  EXPECT_EQ(FaultInjector(model, 1, 1).StragglerDelay(5), std::chrono::milliseconds(250));
  EXPECT_EQ(FaultInjector(model, 1, 0).StragglerDelay(5), std::chrono::microseconds(0));
  EXPECT_FALSE(FaultInjector(model, 1, 2).ShouldCrash(9));
  EXPECT_TRUE(FaultInjector(model, 1, 2).ShouldCrash(10));
  EXPECT_FALSE(FaultInjector(model, 1, 1).ShouldCrash(10));
  // Only at its point.
  EXPECT_FALSE(FaultInjector(model, 1, 2).ShouldCrash(10, FaultModel::CrashPoint::kScrub));
  model.crash_point = FaultModel::CrashPoint::kRepair;
  EXPECT_FALSE(FaultInjector(model, 1, 2).ShouldCrash(12));
  EXPECT_TRUE(FaultInjector(model, 1, 2).ShouldCrash(12, FaultModel::CrashPoint::kRepair));
  model.crash_point = FaultModel::CrashPoint::kProduct;

  model.straggler_delay = FaultModel::Delay::kExponential;
  model.straggler_delay_ms = 10;
  FaultInjector exp(model, 3, 1);
  double sum = 0;
  for (int s = 0; s < 2000; ++s) sum += double(exp.StragglerDelay(s).count()) / 1000.0;
  EXPECT_NEAR(sum / 2000, 10.0, 1.5);
}

TEST(FaultInjector, ValidationNamesTheField) {
  FaultModel model;
  model.error_rate = 1.5;
  EXPECT_NE(ValidateFaultModel(model, 4).message().find("error_rate"), std::string::npos);
  model = {};
  model.straggler_peers = {9};
  EXPECT_NE(ValidateFaultModel(model, 4).message().find("straggler_peers"), std::string::npos);
  model = {};
  model.entries = 0;
  EXPECT_FALSE(ValidateFaultModel(model, 4).ok());
  EXPECT_TRUE(ValidateFaultModel(FaultModel{}, 4).ok());
  EXPECT_EQ(ParseStepPoint("hadamard").value(), StepPoint::kHadamard);
  EXPECT_FALSE(ParseStepPoint("everywhere").ok());
}

}  // namespace fault_injector_test
}  // namespace
}  // namespace polyguard

namespace polyguard {
namespace {
namespace fault_injector_test {

TEST(FaultInjector, PausedInjectsNothingAndShiftsNothing) {
  FaultModel m;
  m.error_rate = 0.5;
  m.straggler_delay = FaultModel::Delay::kFixed;
  m.straggler_delay_ms = 5;
  m.straggler_fraction = 1.0;
  FaultInjector paused_meanwhile(m, 3, 1), never_paused(m, 3, 1);
  Matrix a = Matrix::Ones(3, 3), b = a;
  paused_meanwhile.set_paused(true);
  EXPECT_TRUE(paused_meanwhile.paused());
  for (int64_t step = 1; step <= 20; ++step) {
    Matrix v = a;
    EXPECT_FALSE(paused_meanwhile.MaybeCorrupt(step, 0, StepPoint::kProduct, &v));
    EXPECT_EQ(v, a);
    EXPECT_EQ(paused_meanwhile.StragglerDelay(step).count(), 0);
  }
  EXPECT_EQ(paused_meanwhile.faults_injected(), 0);
  paused_meanwhile.set_paused(false);
  // Afterwards both decide alike: decisions are functions of coordinates.
  for (int64_t step = 21; step <= 60; ++step) {
    Matrix x = a, y = b;
    EXPECT_EQ(paused_meanwhile.MaybeCorrupt(step, 0, StepPoint::kProduct, &x),
              never_paused.MaybeCorrupt(step, 0, StepPoint::kProduct, &y));
    EXPECT_EQ(x, y);
    EXPECT_EQ(paused_meanwhile.StragglerDelay(step), never_paused.StragglerDelay(step));
  }
  EXPECT_GT(paused_meanwhile.faults_injected(), 0);
}

}  // namespace fault_injector_test
}  // namespace
}  // namespace polyguard
