// What a launcher checks before any peer starts (ValidateSequentialForPeers,
// CheckSequentialMemory) against what the peers themselves refuse
// (Sequential::Create on a real group): the two must agree, case by case.
#include "polyguard/nn/sequential.h"

#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "polyguard/base/memory.h"
#include "runtime/peers.h"

namespace polyguard {
namespace {
namespace sequential_test {

using namespace std::chrono_literals;

SequentialOptions Mlp() {
  SequentialOptions m;
  m.layers = {{12, 16, Activation::kTanh}, {16, 4, Activation::kIdentity}};
  m.batch = 8;
  m.code.strategy = Strategy::kPolyDot;
  m.code.m = 2;
  m.code.n = 1;
  return m;
}

SequentialOptions SmallCnn() {
  SequentialOptions m;
  const ConvShape conv{.channels = 1,
                       .height = 8,
                       .width = 8,
                       .filters = 4,
                       .kernel_h = 3,
                       .kernel_w = 3,
                       .stride = 1,
                       .pad = 1};
  m.layers.push_back(ConvLayerSpec(conv, 2, 2, Activation::kRelu));
  m.layers.push_back({m.layers[0].outputs, 4, Activation::kIdentity});
  m.batch = 4;
  m.code.strategy = Strategy::kPolyDot;
  m.code.k_a = 2;
  m.code.k_b = 1;
  return m;
}

struct RefusalCase {
  const char* name;
  std::function<SequentialOptions()> options;
  int peers;
  const char* message;  // a fragment of the refusal
};

std::ostream& operator<<(std::ostream& out, const RefusalCase& c) { return out << c.name; }

class SequentialRefusal : public ::testing::TestWithParam<RefusalCase> {};

// The launcher's check refuses, naming the layer and the cause...
TEST_P(SequentialRefusal, RefusedBeforeAnyPeerStarts) {
  const RefusalCase& c = GetParam();
  const Status s = ValidateSequentialForPeers(c.options(), c.peers);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find(c.message), std::string::npos) << s;
}

// ...and every peer of a real group refuses the same job with the same words.
TEST_P(SequentialRefusal, EveryPeerRefusesItTheSameWay) {
  const RefusalCase& c = GetParam();
  const Status expected = ValidateSequentialForPeers(c.options(), c.peers);
  std::vector<Status> got(size_t(c.peers));
  testing::RunPeerGroup(testing::PeerMode::kThreads, c.peers, std::string("refusal-") + c.name,
                        [&](int r, PeerGroup& group) {
                          got[size_t(r)] =
                              Sequential::Create(c.options(), &group, nullptr).status();
                          return true;
                        });
  for (int r = 0; r < c.peers; ++r) {
    EXPECT_EQ(got[size_t(r)].code(), expected.code()) << "peer " << r << ": " << got[size_t(r)];
    EXPECT_EQ(got[size_t(r)].message(), expected.message()) << "peer " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SequentialRefusal,
    ::testing::Values(RefusalCase{"PolyDotNeedsMorePeers",
                                  [] {
                                    auto m = Mlp();
                                    m.code.n = 2;
                                    m.code.d = 2;
                                    return m;
                                  },
                                  4, "needs at least K = mnd + n - 1 = 9 peers, got 4"},
                      RefusalCase{"WaitForBelowK",
                                  [] {
                                    auto m = Mlp();
                                    m.product.wait_for = 1;
                                    return m;
                                  },
                                  4, "wait_for must be 0 (all) or in [K = 2, P = 4], got 1"},
                      RefusalCase{"MoreReplicasThanPeers",
                                  [] {
                                    auto m = Mlp();
                                    m.code.strategy = Strategy::kReplication;
                                    m.code.replicas = 9;
                                    return m;
                                  },
                                  4, "replicas = 9"},
                      RefusalCase{"BadMdsLayout",
                                  [] {
                                    auto m = Mlp();
                                    m.code.strategy = Strategy::kMds;
                                    m.code.row_peers = 3;
                                    m.code.row_blocks = 5;
                                    return m;
                                  },
                                  4, "layout"},
                      RefusalCase{"LowWeightCannotTrain",
                                  [] {
                                    auto m = Mlp();
                                    m.code.strategy = Strategy::kLowWeight;
                                    return m;
                                  },
                                  4, "forward only"},
                      RefusalCase{"ErrorBudgetTooBig",
                                  [] {
                                    auto m = Mlp();
                                    m.errors_to_correct = 3;
                                    return m;
                                  },
                                  4, "code.errors_to_correct"},
                      RefusalCase{"ConvNeedsMorePeers",
                                  [] {
                                    auto m = SmallCnn();
                                    m.code.k_a = 4;
                                    m.code.k_b = 2;
                                    return m;
                                  },
                                  2, "layer 0 (conv"}),
    [](const ::testing::TestParamInfo<RefusalCase>& info) { return info.param.name; });

TEST(SequentialForPeers, AcceptsWhatCreateBuilds) {
  EXPECT_TRUE(ValidateSequentialForPeers(Mlp(), 4).ok());
  EXPECT_TRUE(ValidateSequentialForPeers(SmallCnn(), 4).ok())
      << ValidateSequentialForPeers(SmallCnn(), 4);
}

// A layer of 2e9 outputs is refused with the bytes it needs, before a
// single weight is allocated (it used to be std::bad_alloc in every peer).
TEST(SequentialMemory, AHugeLayerIsResourceExhaustedNotBadAlloc) {
  SequentialOptions m = Mlp();
  m.layers = {{12, 2000000000, Activation::kTanh}, {2000000000, 4, Activation::kIdentity}};
  const Status s = CheckSequentialMemory(m, 4, 4, AvailableMemoryBytes());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("layer 0 (dense 12 -> 2000000000)"), std::string::npos) << s;
  EXPECT_NE(s.message().find("4 peers on this machine"), std::string::npos) << s;
  EXPECT_NE(s.message().find("available"), std::string::npos) << s;

  PeerGroupOptions o;
  o.rendezvous = "inproc:huge-layer";
  auto group = PeerGroup::Connect(o).value();
  m.code.m = 1;
  const auto made = Sequential::Create(m, group.get(), nullptr);
  EXPECT_EQ(made.status().code(), StatusCode::kResourceExhausted) << made.status();
}

// The estimate covers what a peer holds: at least the full initial weights,
// the shard and the velocity; and it counts every peer on the machine.
TEST(SequentialMemory, EstimateBoundsWhatAPeerHolds) {
  const SequentialOptions m = Mlp();
  const double bytes = EstimatePeerBytes(m, 4).value();
  const double weights = 8.0 * (16 * 13 + 4 * 17);
  EXPECT_GE(bytes, weights);
  EXPECT_LE(bytes, 1e6);
  EXPECT_TRUE(CheckSequentialMemory(m, 4, 4, int64_t(4 * bytes)).ok());
  const Status s = CheckSequentialMemory(m, 4, 4, int64_t(4 * bytes) - 1);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("4 peers on this machine"), std::string::npos) << s;
}

// Each copy of the shards and velocities a trainer keeps (its snapshots,
// crash survival's undo copies) counts in full: a job that keeps more is
// refused sooner, not killed by the kernel.
TEST(SequentialMemory, EstimateCountsEveryWeightCopy) {
  const SequentialOptions m = Mlp();
  const double two = EstimatePeerBytes(m, 4, 2).value();
  const double three = EstimatePeerBytes(m, 4, 3).value();
  const double four = EstimatePeerBytes(m, 4, 4).value();
  // A copy is a shard and a velocity in doubles; 4 peers store at least a
  // quarter of the weights (16 x 13 + 4 x 17) each.
  EXPECT_GE(three - two, 2 * 8.0 * (16 * 13 + 4 * 17) / 4);
  EXPECT_DOUBLE_EQ(four - two, 2 * (three - two));
  EXPECT_EQ(EstimatePeerBytes(m, 4).value(), two);
  EXPECT_TRUE(CheckSequentialMemory(m, 4, 1, int64_t(two), 2).ok());
  EXPECT_EQ(CheckSequentialMemory(m, 4, 1, int64_t(two), 4).code(), StatusCode::kResourceExhausted);
}

// A peer's data counts beside its model, and the message says how much.
TEST(SequentialMemory, DataCountsBesideTheModel) {
  const SequentialOptions m = Mlp();
  const double model = EstimatePeerBytes(m, 4).value();
  const int64_t data = 1 << 20;
  EXPECT_TRUE(CheckSequentialMemory(m, 4, 2, int64_t(2 * model) + 2 * data, 2, data).ok());
  const Status s = CheckSequentialMemory(m, 4, 2, int64_t(2 * model) + 2 * data - 1, 2, data);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("data: 1.0 MiB"), std::string::npos) << s;
}

TEST(Memory, FormatsBytesAndKnowsTheMachine) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(3.0 * (1 << 30)), "3.0 GiB");
  EXPECT_GT(AvailableMemoryBytes(), int64_t{1} << 20);
  EXPECT_TRUE(CheckMemory("x", 10, 10).ok());
  EXPECT_EQ(CheckMemory("x", 11, 10).code(), StatusCode::kResourceExhausted);
}

}  // namespace sequential_test
}  // namespace
}  // namespace polyguard
