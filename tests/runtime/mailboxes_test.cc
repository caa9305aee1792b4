// The gathers' transport (lib/runtime/mailboxes.h), through PeerGroup: what
// bound buffers make hard (gloo closes a connection whose bound wait times
// out, a message needs a buffer registered for it, a connection's end can
// race its last message) must not show.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "polyguard/runtime/peer_group.h"
#include "runtime/multiprocess.h"
#include "runtime/peers.h"

namespace polyguard {
namespace {
namespace mailboxes_test {

using namespace std::chrono_literals;

int RunThreads(int size, const std::string& name, std::chrono::milliseconds timeout,
               const std::function<bool(PeerGroup&)>& body) {
  PeerGroupOptions o;
  o.timeout = timeout;
  const std::vector<bool> ok = testing::RunPeerGroup(
      testing::PeerMode::kThreads, size, name, [&](int, PeerGroup& g) { return body(g); }, o);
  return static_cast<int>(std::count(ok.begin(), ok.end(), false));
}

// Connects peer `rank` of `size` in this process (an in-process rendezvous
// named `name`), over `members` (empty: every peer), for tests that run
// their own threads (a peer that leaves early, a group with absent peers).
StatusOr<std::unique_ptr<PeerGroup>> ConnectHere(int rank, int size, const std::string& name,
                                                 std::vector<int> members = {}) {
  PeerGroupOptions o;
  o.rank = rank;
  o.size = size;
  o.members = std::move(members);
  o.rendezvous = "inproc:" + name;
  o.job_id = name;
  o.timeout = 10s;
  return PeerGroup::Connect(o);
}

// Peer r's piece of exchange `step`: every value distinct.
std::vector<double> PieceOf(int r, int64_t step, size_t length) {
  std::vector<double> piece(length);
  for (size_t i = 0; i < length; ++i) piece[i] = double(r) * 1e9 + double(step) * 1e6 + double(i);
  return piece;
}

bool Check(const GatherResult& g, int64_t step, size_t length) {
  for (int q : g.peers) {
    const std::vector<double> want = PieceOf(q, step, length);
    const Matrix& got = g.pieces[size_t(q)];
    if (size_t(got.size()) != length || !std::equal(want.begin(), want.end(), got.data())) {
      ADD_FAILURE() << "peer " << q << "'s piece of step " << step << " (" << length
                    << " numbers) came wrong";
      return false;
    }
  }
  return true;
}

// Idle three times as long as the failure timeout: the connections stay up
// (heartbeats), and nobody is taken for lost.
TEST(Mailboxes, AGroupIdleLongerThanItsTimeoutStillExchanges) {
  const int p = 3;
  EXPECT_EQ(RunThreads(p, "idle", 1000ms,
                       [&](PeerGroup& g) {
                         auto first = g.AllGather(PieceOf(g.rank(), 1, 5), {.step = 1});
                         std::this_thread::sleep_for(3000ms);
                         auto second = g.AllGather(PieceOf(g.rank(), 2, 5), {.step = 2});
                         if (!first.ok() || !second.ok()) {
                           ADD_FAILURE() << first.status() << " / " << second.status();
                           return false;
                         }
                         return g.members().size() == size_t(p);
                       }),
            0);
}

// Lengths on either side of one message's capacity (pieces longer travel as
// several messages), and empty pieces.
class MailboxesLengths : public ::testing::TestWithParam<size_t> {};

TEST_P(MailboxesLengths, PiecesArriveWhole) {
  const int p = 3;
  const size_t length = GetParam();
  EXPECT_EQ(RunThreads(p, "lengths-" + std::to_string(length), 10s,
                       [&](PeerGroup& g) {
                         for (int64_t step = 1; step <= 3; ++step) {
                           auto all = g.GatherAtLeast(PieceOf(g.rank(), step, length), p,
                                                      std::chrono::steady_clock::now() + 10s,
                                                      {.step = step});
                           if (!all.ok() || all->peers.size() != size_t(p)) {
                             ADD_FAILURE() << all.status();
                             return false;
                           }
                           if (!Check(*all, step, length)) return false;
                         }
                         return true;
                       }),
            0);
}

INSTANTIATE_TEST_SUITE_P(AroundTheCapacity, MailboxesLengths,
                         ::testing::Values(0, 1, 16383, 16384, 16385, 50001));

// Fast peers run many exchanges (far more than the receive buffers kept
// ahead) before the slow one starts: it still gets every piece, each in its
// own exchange.
TEST(Mailboxes, APeerFarBehindGetsEveryPieceInItsExchange) {
  const int p = 4, steps = 40;
  EXPECT_EQ(RunThreads(p, "behind", 10s,
                       [&](PeerGroup& g) {
                         const bool slow = g.rank() == 3;
                         if (slow) std::this_thread::sleep_for(500ms);
                         for (int64_t step = 1; step <= steps; ++step) {
                           auto some = g.GatherAtLeast(
                               PieceOf(g.rank(), step, 70), slow ? p : p - 1,
                               std::chrono::steady_clock::now() + 10s, {.step = step});
                           if (!some.ok() || !Check(*some, step, 70)) {
                             ADD_FAILURE() << some.status();
                             return false;
                           }
                         }
                         return true;
                       }),
            0);
}

// A gather that ended without a late peer's piece: that piece, when it
// comes, is dropped, never taken by a later exchange with the same tag.
TEST(Mailboxes, ALatePieceIsNotTakenByTheNextExchangeWithItsTag) {
  const int p = 3;
  EXPECT_EQ(RunThreads(p, "same-tag", 10s,
                       [&](PeerGroup& g) {
                         const bool late = g.rank() == 2;
                         if (late) std::this_thread::sleep_for(400ms);
                         auto first =
                             g.GatherAtLeast(PieceOf(g.rank(), 1, 9), 2,
                                             std::chrono::steady_clock::now() + 10s, {.step = 5});
                         if (!first.ok()) return false;
                         if (!late) std::this_thread::sleep_for(800ms);  // the late piece is in
                         auto again = g.AllGather(PieceOf(g.rank(), 2, 9), {.step = 5});
                         if (!again.ok()) {
                           ADD_FAILURE() << again.status();
                           return false;
                         }
                         for (int q = 0; q < p; ++q) {
                           if ((*again)(0, q) != PieceOf(q, 2, 9)[0]) {
                             ADD_FAILURE() << "peer " << q << "'s piece of the first exchange";
                             return false;
                           }
                         }
                         return true;
                       }),
            0);
}

// The inbox holds only the exchanges in progress: a piece taken, or a late
// piece dropped when it comes, leaves nothing behind (it kept the last 4096
// exchanges, searched for every piece that came).
TEST(Mailboxes, TheInboxHoldsOnlyTheExchangesInProgress) {
  const int p = 3;
  EXPECT_EQ(RunThreads(p, "held", 10s,
                       [&](PeerGroup& g) {
                         for (int64_t step = 1; step <= 50; ++step) {
                           auto all = g.AllGather(PieceOf(g.rank(), step, 9), {.step = step});
                           if (!all.ok()) return false;
                           // The others are at most one exchange ahead.
                           if (g.held_exchanges() > 1) {
                             ADD_FAILURE()
                                 << g.held_exchanges() << " exchanges held at step " << step;
                             return false;
                           }
                         }
                         // Peer 2's piece comes after the others' gather ended.
                         const bool late = g.rank() == 2;
                         if (late) std::this_thread::sleep_for(300ms);
                         auto some =
                             g.GatherAtLeast(PieceOf(g.rank(), 100, 9), 2,
                                             std::chrono::steady_clock::now() + 10s, {.step = 100});
                         if (!some.ok()) return false;
                         if (!late) std::this_thread::sleep_for(600ms);  // the late piece is in
                         auto last = g.AllGather(PieceOf(g.rank(), 101, 9), {.step = 101});
                         if (!last.ok()) return false;
                         EXPECT_EQ(g.held_exchanges(), 0) << "peer " << g.rank();
                         return true;
                       }),
            0);
}

// A call refused for its `need` still sends its piece and drops the others':
// the next exchange with the same tag gets every peer's piece of that
// exchange (adversary s26: the refused peer sent nothing, and from then on
// the tag was out of step at every peer, with no error anywhere).
class MailboxesRefusedNeed : public ::testing::TestWithParam<int> {};

TEST_P(MailboxesRefusedNeed, KeepsTheTagInStepAtEveryPeer) {
  const int p = 4, bad = GetParam();
  EXPECT_EQ(RunThreads(p, "refused-" + std::to_string(bad + 10), 10s,
                       [&](PeerGroup& g) {
                         const bool refused = g.rank() == 1;
                         auto first =
                             g.GatherAtLeast(PieceOf(g.rank(), 1, 4), refused ? bad : p - 1,
                                             std::chrono::steady_clock::now() + 10s, {.step = 7});
                         if (refused) {
                           EXPECT_EQ(first.status().code(), StatusCode::kInvalidArgument);
                         } else if (!first.ok() || !Check(*first, 1, 4)) {
                           ADD_FAILURE() << first.status();
                           return false;
                         }
                         auto second =
                             g.GatherAtLeast(PieceOf(g.rank(), 2, 4), p,
                                             std::chrono::steady_clock::now() + 10s, {.step = 7});
                         if (!second.ok() || second->peers.size() != size_t(p)) {
                           ADD_FAILURE() << second.status();
                           return false;
                         }
                         return Check(*second, 2, 4);
                       }),
            0);
}

INSTANTIATE_TEST_SUITE_P(Needs, MailboxesRefusedNeed, ::testing::Values(0, -1, 5),
                         [](const auto& info) {
                           return info.param < 0 ? std::string("minus1")
                                                 : std::to_string(info.param);
                         });

// A process that leaves right after its gather, its piece perhaps not yet
// read by the others: they still get it, and nobody waits out the timeout
// (the leaver's goodbye and the others' answers end every receiver).
TEST(Mailboxes, APeerThatLeavesAfterItsLastPieceDeliversIt) {
  const int p = 3;
  PeerGroupOptions o;
  o.timeout = 20s;
  const auto start = std::chrono::steady_clock::now();
  const std::vector<bool> ok = testing::RunPeerGroup(
      testing::PeerMode::kProcesses, p, "leaves",
      [&](int, PeerGroup& g) {
        const bool leaver = g.rank() == 0;
        if (!leaver) std::this_thread::sleep_for(300ms);  // it sends before they ask
        auto all = g.GatherAtLeast(PieceOf(g.rank(), 1, 100), leaver ? 2 : p,
                                   std::chrono::steady_clock::now() + 10s, {.step = 1});
        if (!all.ok()) return false;
        return leaver || (all->peers.size() == size_t(p) && Check(*all, 1, 100));
      },
      o);
  EXPECT_EQ(std::count(ok.begin(), ok.end(), false), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, o.timeout);
}

// A gather that needs only its own piece still sends it: the others may
// need it (adversary s12: a peer with need = 1 sent nothing).
TEST(Mailboxes, AGatherThatNeedsOnlyItsOwnPieceStillSendsIt) {
  const int p = 3;
  EXPECT_EQ(RunThreads(p, "need-one", 10s,
                       [&](PeerGroup& g) {
                         const bool lone = g.rank() == 0;
                         auto some =
                             g.GatherAtLeast(PieceOf(g.rank(), 1, 4), lone ? 1 : p,
                                             std::chrono::steady_clock::now() + 10s, {.step = 1});
                         if (!some.ok()) {
                           ADD_FAILURE() << some.status();
                           return false;
                         }
                         return lone || (some->peers.size() == size_t(p) && Check(*some, 1, 4));
                       }),
            0);
}

// A peer sending pieces of another length: the others do not count it, and
// still meet `need` from each other; the odd one gets an error naming them
// (adversary s12: both returned short, OK).
TEST(Mailboxes, APieceOfAnotherLengthDoesNotCountTowardsNeed) {
  const int p = 3;
  EXPECT_EQ(RunThreads(p, "odd-length", 10s,
                       [&](PeerGroup& g) {
                         const bool odd = g.rank() == 2;
                         if (!odd) std::this_thread::sleep_for(200ms);  // the odd piece is in first
                         auto some =
                             g.GatherAtLeast(PieceOf(g.rank(), 1, odd ? 7 : 5), 2,
                                             std::chrono::steady_clock::now() + 10s, {.step = 1});
                         if (odd) {
                           if (some.ok()) ADD_FAILURE() << "took pieces of another length";
                           return !some.ok();
                         }
                         if (!some.ok() || some->peers.size() != 2u || !Check(*some, 1, 5)) {
                           ADD_FAILURE() << some.status();
                           return false;
                         }
                         return true;
                       }),
            0);
}

// A stopped peer (SIGSTOP) stops reading: the others, who do not need its
// pieces, go on at their pace instead of waiting for writes to it
// (adversary s12: every survivor blocked for about a timeout once its
// connection to the stopped peer was full).
TEST(Mailboxes, AStoppedPeerHoldsUpNoExchange) {
  const int p = 4, steps = 120;
  const std::string dir = testing::FreshFolder("stopped");
  const auto results = testing::RunPeers(
      p,
      [&](int rank) {
        PeerGroupOptions o;
        o.rank = rank;
        o.size = p;
        o.rendezvous = "file:" + dir;
        o.timeout = 4s;
        auto g = PeerGroup::Connect(o);
        if (!g.ok()) return 1;
        if (rank == 3) {
          std::ofstream(dir + "/pid-3") << ::getpid();
          std::this_thread::sleep_for(100ms);
          ::raise(SIGSTOP);  // until peer 0 kills it
          return 0;
        }
        std::chrono::steady_clock::duration longest{};
        for (int64_t step = 1; step <= steps; ++step) {
          const auto start = std::chrono::steady_clock::now();
          auto some =
              (*g)->GatherAtLeast(PieceOf(rank, step, 20000), p - 1, start + 10s, {.step = step});
          if (!some.ok()) return 2;
          longest = std::max(longest, std::chrono::steady_clock::now() - start);
        }
        if (rank == 0) {
          int pid = 0;
          std::ifstream(dir + "/pid-3") >> pid;
          if (pid > 0) ::kill(pid, SIGKILL);
        }
        // About a timeout would be a write waited for; 2 s is far beyond the
        // few ms an exchange takes.
        return longest < 2s ? 0 : 3;
      },
      60s);
  for (int r = 0; r < 3; ++r) EXPECT_EQ(results[size_t(r)].exit_code, 0) << "rank " << r;
  std::filesystem::remove_all(dir);
}

// The same for a broadcast refused for its root at one peer: it takes part
// as a peer that is not the root, the others get the root's data, and the
// next broadcast with the tag is the new data everywhere.
class MailboxesRefusedRoot : public ::testing::TestWithParam<int> {};

TEST_P(MailboxesRefusedRoot, KeepsTheTagInStepAtEveryPeer) {
  const int p = 3, bad = GetParam();
  EXPECT_EQ(RunThreads(p, "root-" + std::to_string(bad + 10), 10s,
                       [&](PeerGroup& g) {
                         const bool refused = g.rank() == 1;
                         std::vector<double> data;
                         if (g.rank() == 0) data = {1.0, 2.0};
                         Status first = g.Broadcast(refused ? bad : 0, &data, {.step = 9});
                         if (refused) {
                           EXPECT_EQ(first.code(), StatusCode::kInvalidArgument) << first;
                         } else if (!first.ok() || data != std::vector<double>{1.0, 2.0}) {
                           ADD_FAILURE() << first;
                           return false;
                         }
                         data.clear();
                         if (g.rank() == 0) data = {3.0, 4.0, 5.0};
                         Status second = g.Broadcast(0, &data, {.step = 9});
                         EXPECT_TRUE(second.ok()) << second;
                         EXPECT_EQ(data, (std::vector<double>{3.0, 4.0, 5.0}));
                         return second.ok();
                       }),
            0);
}

INSTANTIATE_TEST_SUITE_P(Roots, MailboxesRefusedRoot, ::testing::Values(-1, 3),
                         [](const auto& info) {
                           return info.param < 0 ? std::string("minus1")
                                                 : std::to_string(info.param);
                         });

// Pieces of any length in one exchange: a tag used round after round, each
// peer's length changing every round (empty among them), returns every
// round's pieces exactly, and a peer that is late now and then changes none.
TEST(Mailboxes, AllGatherVOnOneTagReturnsEachRoundsPieces) {
  const int p = 3;
  EXPECT_EQ(RunThreads(p, "gather-v", 10s,
                       [&](PeerGroup& g) {
                         auto length = [](int q, int64_t round) {
                           return size_t((round * 7 + q * 3) % 5);
                         };
                         for (int64_t round = 1; round <= 300; ++round) {
                           if (round % 50 == g.rank()) std::this_thread::sleep_for(20ms);
                           auto all = g.AllGatherV(
                               PieceOf(g.rank(), round, length(g.rank(), round)), {.step = 11});
                           if (!all.ok()) {
                             ADD_FAILURE() << all.status();
                             return false;
                           }
                           for (int q = 0; q < p; ++q) {
                             if ((*all)[size_t(q)] != PieceOf(q, round, length(q, round))) {
                               ADD_FAILURE() << "round " << round << ", peer " << q;
                               return false;
                             }
                           }
                         }
                         return true;
                       }),
            0);
}

// The same in a group with an absent member (size 3, members 0 and 1, as
// after a re-form): a gather whose need counts the absent peer, or a
// broadcast from it, is refused at one peer (Unavailable) after it took part,
// and the next exchange on the tag is in step at both (adversary s27).
class MailboxesRefusedForAnAbsentPeer : public ::testing::TestWithParam<std::string> {};

TEST_P(MailboxesRefusedForAnAbsentPeer, KeepsTheTagInStep) {
  const std::string mode = GetParam();
  const ExchangeTag tag{.step = 4, .layer = 4};
  std::vector<char> passed(2, 0);
  std::latch finished(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto group = ConnectHere(r, 3, "absent-" + mode, {0, 1});
      if (!group.ok()) {
        ADD_FAILURE() << "peer " << r << ": " << group.status();
        finished.count_down();
        return;
      }
      PeerGroup& g = **group;
      const bool refused = r == 0;
      bool ok = true;
      if (mode == "need") {
        auto first = g.GatherAtLeast(PieceOf(r, 1, 4), refused ? 3 : 2,
                                     std::chrono::steady_clock::now() + 10s, tag);
        if (refused) {
          EXPECT_EQ(first.status().code(), StatusCode::kUnavailable) << first.status();
        } else {
          ok = first.ok() && first->peers.size() == 2u && Check(*first, 1, 4);
        }
        auto second =
            g.GatherAtLeast(PieceOf(r, 2, 4), 2, std::chrono::steady_clock::now() + 10s, tag);
        ok = ok && second.ok() && second->peers.size() == 2u && Check(*second, 2, 4);
        EXPECT_TRUE(ok) << "peer " << r << ": " << first.status() << " / " << second.status();
      } else {
        std::vector<double> data = r == 1 ? std::vector<double>{1.0} : std::vector<double>{};
        Status first = g.Broadcast(refused ? 2 : 1, &data, tag);
        if (refused) {
          EXPECT_EQ(first.code(), StatusCode::kUnavailable) << first;
        } else {
          ok = first.ok() && data == std::vector<double>{1.0};
        }
        data = r == 1 ? std::vector<double>{2.0, 3.0} : std::vector<double>{};
        Status second = g.Broadcast(1, &data, tag);
        ok = ok && second.ok() && data == std::vector<double>{2.0, 3.0};
        EXPECT_TRUE(ok) << "peer " << r << ": " << first << " / " << second;
      }
      passed[size_t(r)] = ok ? 1 : 0;
      finished.arrive_and_wait();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(passed, std::vector<char>(2, 1));
}

INSTANTIATE_TEST_SUITE_P(Calls, MailboxesRefusedForAnAbsentPeer, ::testing::Values("need", "root"),
                         [](const auto& info) { return info.param; });

// A peer that leaves without taking part in an exchange another ended
// without it: the note to drop its piece goes with it, and nothing stays held
// (adversary s27 F4).
TEST(Mailboxes, APeerThatLeavesTakesItsPiecesToDropWithIt) {
  const int p = 3;
  std::atomic<bool> gathered{false};
  std::vector<char> passed(p, 0);
  std::vector<std::thread> threads;
  for (int r = 0; r < p; ++r) {
    threads.emplace_back([&, r] {
      auto group = ConnectHere(r, p, "lost-drop");
      if (!group.ok()) {
        ADD_FAILURE() << "peer " << r << ": " << group.status();
        return;
      }
      if (r == 1) {
        while (!gathered) std::this_thread::sleep_for(5ms);
        group->reset();  // leaves without the exchange
        passed[1] = 1;
        return;
      }
      PeerGroup& g = **group;
      auto some =
          g.GatherAtLeast(PieceOf(r, 1, 4), 1, std::chrono::steady_clock::now(), {.step = 1});
      if (r == 0) gathered = true;
      // Peer 1's goodbye comes at once; peer 0's and 2's pieces to each other too.
      for (int i = 0; i < 400 && g.held_exchanges() != 0; ++i) std::this_thread::sleep_for(25ms);
      EXPECT_EQ(g.held_exchanges(), 0) << "peer " << r;
      passed[size_t(r)] = some.ok() && g.held_exchanges() == 0 ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(passed, std::vector<char>(p, 1));
}

// A tag used for exchange after exchange (a library user's loop) keeps every
// piece: the inbox's bound counts exchanges held, not uses of one tag (a box
// made afresh for each use once filled the bound with one exchange, and the
// oldest entry, that same exchange, erased the box just made).
TEST(Mailboxes, ATagUsedForThousandsOfExchangesKeepsEveryPiece) {
  const int p = 2;
  EXPECT_EQ(RunThreads(
                p, "one-tag", 60s,
                [&](PeerGroup& g) {
                  for (int64_t round = 1; round <= 10000; ++round) {
                    auto all = g.GatherAtLeast(PieceOf(g.rank(), round, 3), p,
                                               std::chrono::steady_clock::now() + 10s, {.step = 7});
                    if (!all.ok() || all->peers.size() != size_t(p) || !Check(*all, round, 3)) {
                      ADD_FAILURE() << "round " << round << ": " << all.status();
                      return false;
                    }
                  }
                  EXPECT_LE(g.held_exchanges(), 1);
                  return true;
                }),
            0);
}

// Pieces of exchanges nobody gathers are bounded: past 4,096 exchanges held,
// the oldest go (a later gather of one fails: DataLoss), and the newest are
// still gathered whole. Peer 0 sends nothing until peer 1 is done: a piece
// sent early would be among the oldest at peer 1.
TEST(Mailboxes, PiecesNobodyGathersAreBoundedOldestFirst) {
  const int p = 2, skipped = 5000;
  std::atomic<bool> flooded{false};
  EXPECT_EQ(
      RunThreads(
          p, "skipped", 20s,
          [&](PeerGroup& g) {
            if (g.rank() == 1) {
              for (int64_t s = 1; s <= skipped; ++s) {
                // need 1: sent, not waited for
                auto sent = g.GatherAtLeast(PieceOf(1, s, 3), 1, std::chrono::steady_clock::now(),
                                            {.step = 1000 + s});
                if (!sent.ok()) {
                  ADD_FAILURE() << sent.status();
                  return false;
                }
              }
              flooded = true;
            }
            while (!flooded) std::this_thread::sleep_for(5ms);
            // One connection keeps its order: every piece above is in.
            if (!g.AllGather(PieceOf(g.rank(), 1, 3), {.step = 2}).ok()) return false;
            if (g.rank() == 0) {
              // 4,096 at most; the barrier's box took a place and is gone.
              EXPECT_EQ(g.held_exchanges(), 4095);
              auto oldest = g.GatherAtLeast(
                  PieceOf(0, 1, 3), 2, std::chrono::steady_clock::now() + 200ms, {.step = 1001});
              EXPECT_EQ(oldest.status().code(), StatusCode::kDataLoss) << oldest.status();
              auto newest =
                  g.GatherAtLeast(PieceOf(0, skipped, 3), 2, std::chrono::steady_clock::now() + 10s,
                                  {.step = 1000 + skipped});
              if (!newest.ok() || newest->peers.size() != 2u || !Check(*newest, skipped, 3)) {
                ADD_FAILURE() << newest.status();
                return false;
              }
            }
            auto last = g.AllGather(PieceOf(g.rank(), 2, 3), {.step = 3});
            EXPECT_TRUE(last.ok()) << last.status();
            return last.ok();
          }),
      0);
}

// Past the bound, a tag used again after its exchange's pieces were
// discarded fails rather than take a later exchange's piece (adversary s27:
// a peer more than 4,096 need-1 exchanges ahead, and the slow peer's first
// gather on the tag returned OK with the piece of its second use).
TEST(Mailboxes, ATagWhosePiecesWereDiscardedFailsRatherThanTakeALaterOnes) {
  const int p = 2, others = 4096;
  const ExchangeTag reused{.step = 1, .layer = 7};
  std::atomic<bool> flooded{false};
  EXPECT_EQ(
      RunThreads(p, "discarded", 20s,
                 [&](PeerGroup& g) {
                   if (g.rank() == 1) {
                     auto ahead = [&](int64_t call, ExchangeTag tag) {
                       return g.GatherAtLeast(PieceOf(1, call, 3), 1,
                                              std::chrono::steady_clock::now(), tag);
                     };
                     bool ok = ahead(0, reused).ok();
                     for (int i = 1; i <= others; ++i)
                       ok = ok && ahead(i, {.step = 1000 + i, .layer = 7}).ok();
                     if (!ok) return false;
                     // Its own note to drop peer 0's piece of the first
                     // use went too: the second use fails here as well
                     // (after its piece went out).
                     EXPECT_EQ(ahead(others + 1, reused).status().code(), StatusCode::kDataLoss);
                     flooded = true;
                   }
                   // Nothing from peer 0 until then (it would be among the
                   // oldest at peer 1). One connection keeps its order: all
                   // of the above is in after the barrier.
                   while (!flooded) std::this_thread::sleep_for(5ms);
                   if (!g.AllGather(PieceOf(g.rank(), 1, 3), {.step = 2}).ok()) return false;
                   if (g.rank() == 0) {
                     auto first = g.GatherAtLeast(PieceOf(0, 0, 3), 2,
                                                  std::chrono::steady_clock::now() + 2s, reused);
                     EXPECT_EQ(first.status().code(), StatusCode::kDataLoss) << first.status();
                     if (first.ok() && first->peers.size() == 2u) {
                       ADD_FAILURE()
                           << "peer 1's piece came from its call " << first->pieces[1](0, 0);
                     }
                   }
                   return g.AllGather(PieceOf(g.rank(), 3, 3), {.step = 3}).ok();
                 }),
      0);
}

}  // namespace mailboxes_test
}  // namespace
}  // namespace polyguard
