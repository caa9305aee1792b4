#include "polyguard/base/peer_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>
#include <vector>

namespace polyguard {
namespace {
namespace peer_set_test {

class PeerSetTest : public ::testing::TestWithParam<std::vector<int>> {};

TEST_P(PeerSetTest, HoldsExactlyItsPeers) {
  const std::vector<int> peers = GetParam();
  const PeerSet s = PeerSet::Of(peers);
  EXPECT_EQ(s.Peers(), peers);
  EXPECT_EQ(s.size(), int(peers.size()));
  EXPECT_EQ(s.empty(), peers.empty());
  for (int p = 0; p < kMaxPeers; ++p)
    EXPECT_EQ(s.Contains(p), std::binary_search(peers.begin(), peers.end(), p)) << p;
  EXPECT_FALSE(s.Contains(-1));
  EXPECT_FALSE(s.Contains(kMaxPeers));
}

// Through an exchange of numbers and back, for every group size that holds it.
TEST_P(PeerSetTest, SurvivesAnExchangeOfNumbers) {
  const std::vector<int> peers = GetParam();
  const PeerSet s = PeerSet::Of(peers);
  const int least = peers.empty() ? 1 : peers.back() + 1;
  for (int size : {least, least + 1, least + 31, least + 64, kMaxPeers}) {
    if (size > kMaxPeers) continue;
    std::vector<double> numbers = {7.0};  // what precedes it in a message
    s.AppendTo(size, &numbers);
    ASSERT_EQ(int(numbers.size()), 1 + PeerSet::NumbersFor(size));
    const auto back = PeerSet::Read(std::span<const double>(numbers).subspan(1), size);
    ASSERT_TRUE(back.has_value()) << size;
    EXPECT_EQ(*back, s) << size;
  }
}

INSTANTIATE_TEST_SUITE_P(Sets, PeerSetTest,
                         ::testing::Values(std::vector<int>{}, std::vector<int>{0},
                                           std::vector<int>{63}, std::vector<int>{64},
                                           std::vector<int>{31, 32, 33},
                                           std::vector<int>{0, 5, 63, 64, 95},
                                           std::vector<int>{1, 200, 511, 1023}),
                         [](const ::testing::TestParamInfo<std::vector<int>>& info) {
                           std::string name = "Peers";
                           for (int p : info.param) {
                             name += '_';  // (GCC 12 misreads "_" + std::string)
                             name += std::to_string(p);
                           }
                           return info.param.empty() ? std::string("Empty") : name;
                         });

TEST(PeerSet, EqualSetsAreEqualHowEverBuilt) {
  PeerSet a = PeerSet::Of(std::vector<int>{3, 90});
  PeerSet b = PeerSet::Of(std::vector<int>{90});
  b |= PeerSet::Of(std::vector<int>{3});
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.Hash(), b.Hash());
  // A union with the empty set, or with a set of low peers only, keeps no
  // trailing zero word that would tell equal sets apart.
  PeerSet c = PeerSet::Of(std::vector<int>{1});
  c |= PeerSet();
  EXPECT_EQ(c, PeerSet::Of(std::vector<int>{1}));
  EXPECT_NE(PeerSet::Of(std::vector<int>{0}), PeerSet::Of(std::vector<int>{64}));
}

TEST(PeerSet, HashesTellManySetsApart) {
  std::unordered_set<size_t> hashes;
  for (int a = 0; a < 96; ++a)
    for (int b = a + 1; b < 96; ++b) hashes.insert(PeerSet::Of(std::vector<int>{a, b}).Hash());
  EXPECT_GT(hashes.size(), size_t(96 * 95 / 2 * 99 / 100));
}

// A lost peer's column (NaN), a corrupted vote, a wrong count, or a peer
// beyond the group: no set.
TEST(PeerSet, ReadRefusesWhatIsNotASet) {
  const double nan = std::nan("");
  EXPECT_FALSE(PeerSet::Read(std::vector<double>{nan, 0.0}, 40).has_value());
  EXPECT_FALSE(PeerSet::Read(std::vector<double>{-1.0, 0.0}, 40).has_value());
  EXPECT_FALSE(PeerSet::Read(std::vector<double>{0.5, 0.0}, 40).has_value());
  EXPECT_FALSE(PeerSet::Read(std::vector<double>{4294967296.0, 0.0}, 40).has_value());
  EXPECT_FALSE(PeerSet::Read(std::vector<double>{0.0}, 40).has_value());
  EXPECT_FALSE(PeerSet::Read(std::vector<double>{0.0, 256.0}, 40).has_value());  // peer 40
  EXPECT_TRUE(PeerSet::Read(std::vector<double>{0.0, 128.0}, 40).has_value());   // peer 39
  // A group bigger than any code allows: a peer past kMaxPeers is refused,
  // not an abort.
  std::vector<double> beyond(size_t(PeerSet::NumbersFor(2 * kMaxPeers)), 0.0);
  beyond[size_t(kMaxPeers / 32)] = 1.0;  // peer kMaxPeers
  EXPECT_FALSE(PeerSet::Read(beyond, 2 * kMaxPeers).has_value());
}

}  // namespace peer_set_test
}  // namespace
}  // namespace polyguard
