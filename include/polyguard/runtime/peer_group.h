// PeerGroup: P peer processes (or threads) connected by gloo over TCP, with
// no master. The one place where gloo is called (lib/runtime): every gloo
// exception or timeout becomes a Status (Unavailable or DeadlineExceeded)
// naming the operation, and nothing aborts.
//
// Rendezvous (where peers meet, chosen by a URL-like string):
//   "file:/some/dir" or "/some/dir"   gloo FileStore in a folder shared by the
//                                     peers of one machine (use a fresh folder
//                                     per job)
//   "redis://[[USER]:PASSWORD@]host[:port][/db]"
//                                     gloo RedisStore, for several machines;
//                                     the password may instead come from the
//                                     environment, POLYGUARD_REDIS_PASSWORD
//                                     (kept out of process listings)
//   "inproc:name"                     gloo HashStore shared by the threads of
//                                     this process (tests)
// Every job id gets its own key prefix (gloo PrefixStore), so concurrent jobs
// sharing a store never meet.
//
// Exchanges are direct peer-to-peer messages tagged by (step, layer, op): a
// message can only ever match an exchange with the same tag, so a late result
// is never taken for a later step's. Each peer sends its piece to every other
// peer once:
//   cost per peer and exchange: (P - 1) sends and (P - 1) receives of n
//   numbers (one gloo message per 131,072 / (P - 1) numbers, at most 16,384,
//   written at once into a buffer the receiver registered ahead); one communication
//   step. A receiver thread per other peer files arrivals (started at
//   connect: no thread is started per exchange), and the exchange's own
//   thread waits for them.
//
// Straggler tolerance: GatherAtLeast returns as soon as `need` pieces (its own
// included) have arrived, or at the deadline; a piece that comes after its
// exchange ended is dropped when it comes. Every connection carries a
// heartbeat when it has been idle for a while, so a group may sit idle for
// any time; a peer silent for the whole failure timeout (stopped) is taken
// for lost, its connection closed, and every other connection stays usable.
// Connections end with a goodbye each way (the destructor, AgreeOnLost), so
// a peer leaving does not lose the pieces it sent last, and the others see
// it gone at once.
//
// Signals: Connect sets SIGPIPE to be ignored when it still has its default
// action (gloo writes to sockets without MSG_NOSIGNAL, so a vanished peer
// would otherwise kill this process instead of becoming an error).
//
// Thread safety: one exchange at a time per PeerGroup (calls are serialised
// by an internal mutex); distinct groups are independent.
#ifndef POLYGUARD_RUNTIME_PEER_GROUP_H_
#define POLYGUARD_RUNTIME_PEER_GROUP_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "polyguard/base/matrix.h"
#include "polyguard/base/status.h"

namespace polyguard {

struct PeerGroupOptions {
  int rank = 0;  // this peer, in [0, size)
  int size = 1;  // P, >= 1
  // Where peers meet (see above). Required.
  std::string rendezvous;
  // Keeps concurrent jobs apart. Default "polyguard".
  std::string job_id = "polyguard";
  // Host name or address this peer listens on and announces. Default loopback.
  std::string hostname = "127.0.0.1";
  // Connect timeout, and how long any exchange may wait before a silent peer
  // is declared failed. Default 30 s. A peer that never comes fails the
  // others' Connect after about this long (each store wait and each
  // connection waits at most this); a peer that dies in the middle of
  // connecting can leave others waiting on each other, up to a few times
  // this (gloo connects its pairs one by one).
  std::chrono::milliseconds timeout{30000};
  // The peers taking part (ascending, rank among them; empty: all of
  // [0, size)). A peer's identity (its rank: the code index its shards
  // belong to) stays fixed when the group re-forms without a lost peer: the
  // survivors connect again with the lost one left out and a new generation.
  // An absent peer is an erasure in every gather (its piece never comes);
  // exchanges that need it fail at once, naming it.
  std::vector<int> members;
  // Keeps the connections of successive groups of one job apart in the same
  // rendezvous (generation 0 uses the job id's own keys).
  int64_t generation = 0;
  // What every peer of the job must share to work with the others (e.g. a
  // digest of its spec): published with each generation's members, and a
  // peer joining a running group (Join) with another identity is refused.
  std::string identity;
};

// Reaches the rendezvous as a peer would (Redis: connects, authenticates,
// selects the database and pings; a folder: creates it) and says what is
// wrong: InvalidArgument (a malformed URL), FailedPrecondition (Redis refused:
// a wrong or missing password, protected mode), Unavailable (unreachable, or
// no answer within `timeout`: give the job's failure timeout). Messages never
// show the password. For a launcher to refuse before it starts a peer.
Status CheckRendezvous(const std::string& url,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Identifies one exchange. Every peer must use the same tag for it. The
// library's own exchanges take theirs from MakeExchangeTag
// (polyguard/runtime/exchange_tags.h), which keeps them distinct.
struct ExchangeTag {
  int64_t step = 0;
  int layer = 0;
  int op = 0;  // e.g. forward / transpose / scrub
};

struct GatherResult {
  // P entries: pieces[r] is peer r's piece (n x 1) if it arrived, else empty.
  // Each received piece is the memory gloo wrote into, handed over uncopied.
  std::vector<Matrix> pieces;
  std::vector<int> peers;  // sorted peers whose pieces arrived (self included)
};

class PeerGroup {
 public:
  static StatusOr<std::unique_ptr<PeerGroup>> Connect(const PeerGroupOptions& options);
  ~PeerGroup();
  PeerGroup(const PeerGroup&) = delete;
  PeerGroup& operator=(const PeerGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // The peers taking part (ascending) and this group's generation.
  const std::vector<int>& members() const { return members_; }
  int64_t generation() const { return generation_; }
  // The failure timeout (PeerGroupOptions::timeout).
  std::chrono::milliseconds timeout() const { return timeout_; }

  // Every member's piece (all of length n): column r of the result is peer
  // r's; an absent peer's column (members()) is NaN. Unavailable or
  // DeadlineExceeded when a member fails or stays silent.
  StatusOr<Matrix> AllGather(std::span<const double> mine, ExchangeTag tag);

  // Pieces of any lengths: element r is peer r's (empty for an absent peer).
  StatusOr<std::vector<std::vector<double>>> AllGatherV(std::span<const double> mine,
                                                        ExchangeTag tag);

  // root's data to every peer; on the others `data` is replaced. A root
  // outside [0, size) is InvalidArgument, and an absent root Unavailable,
  // after this peer took part as a peer that is not the root (the exchange
  // stays in step at every peer).
  Status Broadcast(int root, std::vector<double>* data, ExchangeTag tag);

  // Sends `mine` to every peer and returns once `need` pieces (own included)
  // have arrived, or at `deadline` with whatever arrived (need <= size; the
  // deadline is at most the failure timeout after the call, also for a
  // process that was stopped past it). A piece of another length than `mine`
  // counts as its peer gone. A failed connection is an error only when it
  // makes `need` unreachable. A `need` outside [1, size] is InvalidArgument,
  // and one above the members present Unavailable, after this peer's piece
  // went out and the others' were set to be dropped: the exchange stays in
  // step at every peer.
  StatusOr<GatherResult> GatherAtLeast(std::span<const double> mine, int need,
                                       std::chrono::steady_clock::time_point deadline,
                                       ExchangeTag tag);

  // Point to point: sends to[p] to each peer p whose entry is non-empty, and
  // receives from_lengths[q] numbers from each peer q whose length is > 0
  // (both vectors have size() entries; own entries are ignored). Every peer
  // calls it with the same tag, and the lengths match pairwise. Costs only
  // what is sent (e.g. rebuilding one shard from K others). Unavailable or
  // DeadlineExceeded when a source fails or stays silent.
  StatusOr<std::vector<std::vector<double>>> SendRecv(const std::vector<std::vector<double>>& to,
                                                      const std::vector<int64_t>& from_lengths,
                                                      ExchangeTag tag);

  // Waits until every piece this peer sent is written to its connection (the
  // receiver's thread reads it from there whatever this peer does next), or
  // that connection failed: at once unless a receiver stopped reading, and
  // then at most the failure timeout (which `timeout` cannot shorten: gloo
  // cannot abort a write). The destructor flushes too, and its goodbyes wait
  // for every peer's answer, so that a fast peer that finishes early does not
  // strand a slow one.
  Status Flush(std::chrono::milliseconds timeout);

  // Membership after a crash (lib/runtime/membership.cc).
  // Collective over the members still alive, after an exchange failed
  // because peers are gone. Every survivor publishes a report in the
  // rendezvous and waits up to `wait` for every other member's: the members
  // that do not report are lost. Then every survivor publishes its lost set
  // and waits up to `wait` again for every other survivor's, which must be
  // the same. Returns the members lost (never this peer). FailedPrecondition
  // when the others already decided without this peer (it was silent too
  // long: it must stop, not carry on or rejoin silently); DataLoss when the
  // survivors disagree or one stops answering. Every survivor must enter it
  // within `wait` of the first (a failure timeout and some margin). It
  // first closes this generation's connections, so that survivors waiting
  // for this peer's piece fail at once and enter it too; afterwards only
  // Reform makes the group usable. Cost: about a second per peer whose
  // connection failed (it may be alive: it would report at once), up to
  // `wait` per silent one; 3 store writes, 2 (members - 1) + 2 store reads.
  StatusOr<std::vector<int>> AgreeOnLost(std::chrono::milliseconds wait);

  // Rejoining (lib/runtime/membership.cc). A replacement for a lost peer
  // (options.rank, not a member of the job's newest generation): finds the
  // newest generation in the rendezvous, asks to join it (a store key), and
  // once its members admit it (Admit, at their next step boundary) connects
  // as a member of the generation after. Errors: FailedPrecondition when the
  // running job's identity differs (both named); NotFound when the job
  // ended first; DeadlineExceeded when not admitted within `wait` (the
  // message says what it saw last: no generation yet, options.rank still a
  // member, a request not yet answered, or an admission whose connect
  // failed). An admission whose connect fails (e.g. an earlier replacement
  // of this rank took it and died) is not the end: the members re-form
  // without this peer, and it asks their next generation. Cost: a few store
  // lookups every 20 ms while it waits, then a connect per admission.
  static StatusOr<std::unique_ptr<PeerGroup>> Join(const PeerGroupOptions& options,
                                                   std::chrono::milliseconds wait);

  // Absent peers that asked to join this generation or the one before (a
  // request made as an admission replaced that one): up to two store lookups
  // per absent peer, no exchange (peers may see different sets: agree on them
  // before Admit).
  std::vector<int> JoinRequests() const;

  // Collective over the members, all with the same `joiners` (absent peers,
  // ascending): once every piece this peer sent is taken (Flush), the lowest
  // member answers their requests and every member re-forms with them under
  // the next generation. Returns the peers
  // admitted: `joiners`, or none when they did not connect within the
  // timeout (a joiner died or stopped): the members then re-form among
  // themselves under the generation after that, waiting up to eight timeouts
  // for each other (they leave the failed connect at different times).
  // Errors: those of Reform. Not handled: a member lost during the admission
  // (every member's re-form fails; the job stops).
  StatusOr<std::vector<int>> Admit(const std::vector<int>& joiners);

  // Records in the rendezvous that this peer's part in the job is over, so
  // that a replacement still waiting to join gives up (Join: NotFound).
  // Best effort; never fails.
  void MarkEnded();

  // Reconnects this group in place as `members` (ascending, this peer among
  // them) under `generation` (above the current one): same rank, size,
  // rendezvous, job and timeout. Every new member calls it with the same
  // arguments. Pending buffers of the old connections are dropped.
  // `connect_timeout` (0: the group's timeout) bounds this connect only.
  Status Reform(const std::vector<int>& members, int64_t generation,
                std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(0));

  // Bytes this peer has handed to the transport so far.
  int64_t bytes_sent() const { return bytes_sent_; }
  // Bytes of pieces this peer has received so far (those it waited for).
  int64_t bytes_received() const { return bytes_received_; }

  // Messages gloo may still be writing (diagnostics; a few while every peer
  // reads, more while one is stopped, until its connection's timeout).
  int64_t pending_buffers() const;
  // Exchanges this peer holds pieces of, or will drop the late pieces of
  // (diagnostics): those in progress, and those a gather ended without a
  // peer's piece until that piece comes. At most 4,096: past that the oldest
  // exchange's pieces are discarded, and a later call on its tag is DataLoss
  // (never another exchange's pieces) for as long as the last 65,536
  // discarded exchanges are remembered.
  int64_t held_exchanges() const;

  struct Impl;  // gloo state; defined in lib/runtime/peer_group_impl.h

 private:
  PeerGroup(const PeerGroupOptions& options, std::vector<int> members, std::unique_ptr<Impl> impl);
  // Validates `members` and connects them under o.generation, waiting up to
  // `connect_timeout` for the others (0: o.timeout; exchanges and store
  // commands keep o.timeout).
  static StatusOr<std::unique_ptr<Impl>> ConnectMembers(
      const PeerGroupOptions& o, const std::vector<int>& members,
      std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(0));
  // mu_ held. Returns once every member has connected, or is gone (then
  // noted lost, as if it had crashed in the first exchange); an error only if
  // the group broke. gloo's connect returns on each peer when its own
  // connections are up: without this a fast peer could start the job, crash,
  // and fail the connect of a slower one still setting up its connection.
  Status AwaitConnectedLocked();
  // mu_ held. `closed`: its connection failed (a crash closes it at once),
  // as opposed to silence until the failure timeout.
  void NoteLost(int peer, bool closed);
  // Absent peers among `peers`, for an error that names them ("" if none).
  std::string AbsentAmong(const std::vector<int>& peers) const;
  // The gather under every collective (lib/runtime/gather.cc); mu_ held.
  // Pieces of another length than `mine` count as their peers gone, unless
  // `any_length`.
  StatusOr<GatherResult> GatherLocked(std::span<const double> mine, int need,
                                      std::chrono::steady_clock::time_point deadline, uint64_t slot,
                                      const std::string& what, bool any_length = false);
  // mu_ held: every member's piece, or DeadlineExceeded naming the silent
  // members (noted lost).
  StatusOr<GatherResult> GatherEveryMemberLocked(std::span<const double> mine, ExchangeTag tag,
                                                 const std::string& what, bool any_length);

  PeerGroupOptions options_;  // as connected (members and generation: below)
  int rank_;
  int size_;
  std::vector<int> members_;  // ascending; rank_ among them
  std::vector<int> lost_;     // ascending: peers seen gone in this generation
  std::vector<int> closed_;   // ascending: those of them whose connection failed
  int64_t generation_ = 0;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Impl> impl_;
  mutable std::mutex mu_;
  int64_t bytes_sent_ = 0;
  int64_t bytes_received_ = 0;
  bool broken_ = false;  // after a gloo failure every call fails fast
  std::string broken_reason_;
};

}  // namespace polyguard

#endif  // POLYGUARD_RUNTIME_PEER_GROUP_H_
