// Rejoining (lib/runtime/membership.cc): a replacement asks to join the
// job's newest generation through the rendezvous, the members admit it and
// re-form with it; another job's identity is refused, a job that ended is
// reported, and a joiner that never connects is dropped. (Losing peers:
// peer_group_test.cc.)
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lib/runtime/peer_group_impl.h"
#include "lib/runtime/rendezvous.h"
#include "polyguard/runtime/peer_group.h"
#include "runtime/multiprocess.h"

namespace polyguard {
namespace {
namespace membership_test {

using namespace std::chrono_literals;

PeerGroupOptions Options(int rank, int size, const std::string& rendezvous,
                         std::vector<int> members, std::chrono::milliseconds timeout = 10s) {
  PeerGroupOptions o;
  o.rank = rank;
  o.size = size;
  o.rendezvous = rendezvous;
  o.members = std::move(members);
  o.timeout = timeout;
  o.identity = "job-a";
  return o;
}

// Polls JoinRequests until it returns `want` (or 10 s pass).
bool SeesRequests(const PeerGroup& g, const std::vector<int>& want) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    if (g.JoinRequests() == want) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// Peer r of {0, 1} (of 3 peers, timeout 1 s), once it saw peer 2 ask to
// join.
StatusOr<std::unique_ptr<PeerGroup>> MemberSeeingPeer2(int r, const std::string& rdv) {
  auto g = PeerGroup::Connect(Options(r, 3, rdv, {0, 1}, 1s));
  if (g.ok() && !SeesRequests(**g, {2})) return InternalError("no request from peer 2");
  return g;
}

// A joiner's side: joins the three peers' group, expects to be admitted
// under `generation`, and all-gathers its rank with the others'. Returns what
// went wrong ("" when nothing).
std::string JoinAndGather(const PeerGroupOptions& o, std::chrono::milliseconds wait,
                          int64_t generation) {
  auto g = PeerGroup::Join(o, wait);
  if (!g.ok()) return g.status().ToString();
  if ((*g)->members() != std::vector<int>{0, 1, 2} || (*g)->generation() != generation) {
    return "the joiner's members";
  }
  auto all = (*g)->AllGather(std::vector<double>{double(o.rank)}, {.step = 1});
  if (!all.ok()) return "all-gather: " + all.status().ToString();
  for (int q = 0; q < 3; ++q)
    if ((*all)(0, q) != double(q)) return "all-gather: peer " + std::to_string(q) + "'s piece";
  return "";
}

TEST(Membership, AReplacementJoinsWhenTheMembersAdmitIt) {
  const std::string rdv = "inproc:membership-join";
  std::vector<std::string> failures(3);
  std::vector<std::thread> threads;
  for (int r : {0, 2}) {
    threads.emplace_back([&, r] {
      auto g = PeerGroup::Connect(Options(r, 3, rdv, {0, 2}));
      if (!g.ok()) return void(failures[size_t(r)] = g.status().ToString());
      if (!SeesRequests(**g, {1})) return void(failures[size_t(r)] = "no request from peer 1");
      auto admitted = (*g)->Admit({1});
      if (!admitted.ok() || *admitted != std::vector<int>{1}) {
        return void(failures[size_t(r)] = "admit: " + admitted.status().ToString());
      }
      if ((*g)->members() != std::vector<int>{0, 1, 2} || (*g)->generation() != 1) {
        return void(failures[size_t(r)] = "members after admitting");
      }
      auto all = (*g)->AllGather(std::vector<double>{double(r)}, {.step = 1});
      if (!all.ok() || (*all)(0, 1) != 1.0) failures[size_t(r)] = "all-gather with peer 1";
    });
  }
  threads.emplace_back([&] { failures[1] = JoinAndGather(Options(1, 3, rdv, {}), 10s, 1); });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) EXPECT_EQ(failures[size_t(r)], "") << "peer " << r;
}

// Peer 3 asks just after the members agreed to admit peer 1: it asked the
// generation the admission replaces. Its request stands in the next one,
// seen there at once (it was seen only once peer 3 saw the new generation
// and asked again: a short job could end first).
TEST(Membership, ARequestMadeAsAnAdmissionReplacesItsGenerationStandsInTheNext) {
  const std::string rdv = "inproc:membership-stands";
  std::vector<std::string> failures(3);
  std::vector<std::thread> threads;
  for (int r : {0, 2}) {
    threads.emplace_back([&, r] {
      auto g = PeerGroup::Connect(Options(r, 4, rdv, {0, 2}));
      if (!g.ok()) return void(failures[size_t(r)] = g.status().ToString());
      if (!SeesRequests(**g, {1})) return void(failures[size_t(r)] = "no request from peer 1");
      // The members' agreement on peer 1; then peer 3 asks.
      if (!(*g)->AllGather(std::vector<double>{1.0}, {.step = 1}).ok()) {
        return void(failures[size_t(r)] = "agreement");
      }
      if (r == 0) {
        auto store = internal::MakeRendezvousStore(rdv).value();
        const std::string join = "join:3;";
        store->set(internal::GenerationPrefix("polyguard", 0) + "/join-3",
                   std::vector<char>(join.begin(), join.end()));
      }
      auto admitted = (*g)->Admit({1});
      if (!admitted.ok() || *admitted != std::vector<int>{1} || (*g)->generation() != 1) {
        return void(failures[size_t(r)] = "admit: " + admitted.status().ToString());
      }
      if ((*g)->JoinRequests() != std::vector<int>{3}) failures[size_t(r)] = "peer 3's request";
      // (The joiner stays until the members took its pieces.)
      if (!(*g)->AllGather(std::vector<double>{1.0}, {.step = 1}).ok()) {
        failures[size_t(r)] = "all-gather";
      }
    });
  }
  threads.emplace_back([&] {
    auto g = PeerGroup::Join(Options(1, 4, rdv, {}), 10s);
    if (!g.ok()) return void(failures[1] = g.status().ToString());
    if (!(*g)->AllGather(std::vector<double>{1.0}, {.step = 1}).ok()) failures[1] = "all-gather";
  });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) EXPECT_EQ(failures[size_t(r)], "") << "peer " << r;
}

TEST(Membership, AJoinIsRefusedForAnotherJobAndGivesUpOnceTheJobEnded) {
  const std::string rdv = "inproc:membership-refuse";
  auto g = PeerGroup::Connect(Options(0, 2, rdv, {0}));
  ASSERT_TRUE(g.ok()) << g.status();
  PeerGroupOptions other = Options(1, 2, rdv, {});
  other.identity = "job-b";
  auto refused = PeerGroup::Join(other, 5s);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("another job: its identity is job-a, this peer's "
                                            "job-b"),
            std::string::npos)
      << refused.status();
  // A member cannot join what it is in: it waits, and says so at the end.
  auto member = PeerGroup::Join(Options(0, 2, rdv, {}), 100ms);
  EXPECT_EQ(member.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(member.status().message().find("peer 0 is still a member of generation 0"),
            std::string::npos)
      << member.status();
  (*g)->MarkEnded();
  auto ended = PeerGroup::Join(Options(1, 2, rdv, {}), 5s);
  EXPECT_EQ(ended.status().code(), StatusCode::kNotFound);
  EXPECT_NE(ended.status().message().find("the job ended"), std::string::npos) << ended.status();
  // Nothing of the job in the rendezvous: it waits and says so.
  auto none = PeerGroup::Join(Options(1, 2, "inproc:membership-none", {}), 100ms);
  EXPECT_EQ(none.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(none.status().message().find("no generation of the job"), std::string::npos)
      << none.status();
}

// The joiner asks and gives up before it is admitted: the members' connect
// with it fails at their timeout and they re-form among themselves.
TEST(Membership, AJoinerThatNeverConnectsIsDroppedAndTheMembersGoOn) {
  const std::string rdv = "inproc:membership-drop";
  std::vector<std::string> failures(2);
  std::vector<std::thread> threads;
  for (int r : {0, 1}) {
    threads.emplace_back([&, r] {
      auto g = MemberSeeingPeer2(r, rdv);
      if (!g.ok()) return void(failures[size_t(r)] = g.status().ToString());
      auto admitted = (*g)->Admit({2});
      if (!admitted.ok() || !admitted->empty()) {
        return void(failures[size_t(r)] = "admit: " + admitted.status().ToString());
      }
      if ((*g)->members() != std::vector<int>{0, 1} || (*g)->generation() != 2) {
        return void(failures[size_t(r)] = "members after the failed admission");
      }
      auto all = (*g)->AllGather(std::vector<double>{double(r)}, {.step = 1});
      if (!all.ok() || (*all)(0, 1 - r) != double(1 - r)) failures[size_t(r)] = "all-gather";
    });
  }
  // Asks once the group is there (a zero wait looks once), then is gone.
  Status gone = Status::Ok();
  for (int i = 0; i < 2000 && gone.message().find("asked generation 0") == std::string::npos; ++i) {
    gone = PeerGroup::Join(Options(2, 3, rdv, {}), 0ms).status();
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(gone.code(), StatusCode::kDeadlineExceeded) << gone;
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) EXPECT_EQ(failures[size_t(r)], "") << "peer " << r;
}

// An earlier replacement of peer 2 was admitted and died while connecting,
// leaving its first key of the new generation (planted here). The next
// replacement, admitted by the same answer, cannot connect there: it must
// not give up, but wait for the members to re-form without it and ask the
// generation after (it gave up at once with "already exists").
// (A folder: an in-process store lets a key be set twice.)
TEST(Membership, AJoinWhoseAdmissionFailsToConnectAsksTheNextGeneration) {
  const std::string dir = testing::FreshFolder("membership-retry");
  const std::string rdv = "file:" + dir;
  std::vector<std::string> failures(3);
  std::vector<std::thread> threads;
  for (int r : {0, 1}) {
    threads.emplace_back([&, r] {
      auto g = MemberSeeingPeer2(r, rdv);
      if (!g.ok()) return void(failures[size_t(r)] = g.status().ToString());
      if (r == 0) {
        auto store = internal::MakeRendezvousStore(rdv).value();
        const std::string dead = internal::GenerationPrefix("polyguard", 1) + "/up/rank_2";
        store->set(dead, std::vector<char>{'x'});
      }
      auto first = (*g)->Admit({2});  // its connect fails: dropped, generation 2
      if (!first.ok() || !first->empty() || (*g)->generation() != 2) {
        return void(failures[size_t(r)] = "first admit: " + first.status().ToString());
      }
      if (!SeesRequests(**g, {2})) return void(failures[size_t(r)] = "no second request");
      auto second = (*g)->Admit({2});
      if (!second.ok() || *second != std::vector<int>{2} || (*g)->generation() != 3) {
        return void(failures[size_t(r)] = "second admit: " + second.status().ToString());
      }
      auto all = (*g)->AllGather(std::vector<double>{double(r)}, {.step = 1});
      if (!all.ok() || (*all)(0, 2) != 2.0) failures[size_t(r)] = "all-gather with peer 2";
    });
  }
  threads.emplace_back([&] { failures[2] = JoinAndGather(Options(2, 3, rdv, {}, 1s), 30s, 3); });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) EXPECT_EQ(failures[size_t(r)], "") << "peer " << r;
  std::filesystem::remove_all(dir);
}

}  // namespace membership_test
}  // namespace
}  // namespace polyguard
