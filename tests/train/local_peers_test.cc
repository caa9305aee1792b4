// The fork launcher (lib/train/local_peers.cc): replacements for peers that
// end as the caller says, each reported, the last one's exit returned.
#include "polyguard/train/local_peers.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <vector>

namespace polyguard {
namespace {
namespace local_peers_test {

TEST(LocalPeers, RestartsAPeerAsToldAndReturnsTheLastProcesssExit) {
  LocalPeersOptions o;
  o.peers = 3;
  o.deadline = std::chrono::seconds(60);
  std::vector<PeerExit> seen;
  o.on_exit = [&](const PeerExit& e) { seen.push_back(e); };
  o.restart_when = [](const PeerExit& e) { return e.exit_code == 86 && e.incarnation < 2; };
  // Peer 1 crashes, and so does its first replacement; the second exits 7.
  int restarts = 0;
  o.restart_body = [&](int rank) { return rank == 1 && restarts++ == 0 ? 86 : 7; };
  auto exits = RunLocalPeers(o, [](int rank) { return rank == 1 ? 86 : 0; });
  ASSERT_TRUE(exits.ok()) << exits.status();
  ASSERT_EQ(exits->size(), 3u);
  EXPECT_EQ((*exits)[0].exit_code, 0);
  EXPECT_EQ((*exits)[2].exit_code, 0);
  // (The restart counter lives in each child's copy: every replacement sees
  // 0 and crashes, so the last exit is the last allowed one's crash.)
  EXPECT_EQ((*exits)[1].exit_code, 86);
  EXPECT_EQ((*exits)[1].incarnation, 2);
  int of_peer_1 = 0;
  for (const PeerExit& e : seen) of_peer_1 += e.rank == 1 ? 1 : 0;
  EXPECT_EQ(of_peer_1, 3);  // the first process and two replacements
}

// A peer still running long after another finished (a stopped process) is
// killed once the grace after a success runs out, and reported as killed;
// the launcher returns instead of waiting for it forever.
TEST(LocalPeers, AStuckPeerIsKilledAGraceAfterAnotherFinished) {
  LocalPeersOptions o;
  o.peers = 2;
  o.deadline = std::chrono::seconds(60);
  o.grace_after_success = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  auto exits = RunLocalPeers(o, [](int rank) {
    if (rank == 1) ::raise(SIGSTOP);  // stopped: never ends by itself
    return 0;
  });
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(exits.ok()) << exits.status();
  EXPECT_TRUE((*exits)[0].ok());
  EXPECT_FALSE((*exits)[0].killed);
  EXPECT_TRUE((*exits)[1].killed);
  EXPECT_EQ((*exits)[1].signal, SIGKILL);
  EXPECT_LT(took, std::chrono::seconds(30));
}

}  // namespace local_peers_test
}  // namespace
}  // namespace polyguard
