// Connecting a peer group, and what every exchange shares. The exchanges
// themselves: gather.cc (GatherAtLeast and the all-gathers' core),
// collectives.cc, send_recv.cc; their transport: mailboxes.cc.
#include "polyguard/runtime/peer_group.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <string>

#include <gloo/transport/tcp/device.h>

#include "lib/runtime/gloo_errors.h"
#include "lib/runtime/peer_group_impl.h"
#include "lib/runtime/rendezvous.h"
#include "lib/runtime/sigpipe.h"
#include "polyguard/base/random.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"  // FormatPeers

namespace polyguard {

namespace internal {

uint64_t SlotOf(const ExchangeTag& tag, Phase phase) {
  return DeriveSeed(0x9100, {uint64_t(tag.step), uint64_t(tag.layer), uint64_t(tag.op), phase});
}

std::string DescribeExchange(const char* op, const ExchangeTag& tag) {
  return std::string(op) + " (step " + std::to_string(tag.step) + ", layer " +
         std::to_string(tag.layer) + ", op " + std::to_string(tag.op) + ")";
}

Status DiscardedError(const std::string& what) {
  return DataLossError(what + ": this peer held pieces of more than " +
                       std::to_string(Mailboxes::kHeldExchanges) +
                       " exchanges and discarded this one's; its tag cannot be used again");
}

}  // namespace internal

Status CheckRendezvous(const std::string& url, std::chrono::milliseconds timeout) {
  return internal::MakeRendezvousStore(url, timeout).status();
}

StatusOr<std::unique_ptr<PeerGroup>> PeerGroup::Connect(const PeerGroupOptions& o) {
  if (o.size < 1 || o.rank < 0 || o.rank >= o.size) {
    return InvalidArgumentError("peer group: rank " + std::to_string(o.rank) +
                                " out of range for " + std::to_string(o.size) + " peers");
  }
  if (o.timeout.count() <= 0) return InvalidArgumentError("peer group: timeout must be > 0");
  if (o.job_id.empty()) return InvalidArgumentError("peer group: empty job id");
  if (o.generation < 0) return InvalidArgumentError("peer group: generation must be >= 0");
  std::vector<int> members = o.members;
  if (members.empty()) {
    for (int p = 0; p < o.size; ++p) members.push_back(p);
  }
  internal::IgnoreSigpipeUnlessHandled();
  POLYGUARD_ASSIGN_OR_RETURN(std::unique_ptr<Impl> impl, ConnectMembers(o, members));
  std::unique_ptr<PeerGroup> group(new PeerGroup(o, std::move(members), std::move(impl)));
  std::lock_guard<std::mutex> lock(group->mu_);
  POLYGUARD_RETURN_IF_ERROR(group->AwaitConnectedLocked());
  return group;
}

Status PeerGroup::AwaitConnectedLocked() {
  const int present = static_cast<int>(members_.size());
  const double mine = 1;
  const int64_t sent = bytes_sent_, received = bytes_received_;
  // Just inside the failure timeout: the abortable wait, which keeps every
  // connection usable when a peer stays silent.
  const auto deadline = std::chrono::steady_clock::now() + timeout_ - std::chrono::milliseconds(1);
  StatusOr<GatherResult> g =
      GatherLocked(std::span<const double>(&mine, 1), present, deadline,
                   internal::SlotOf({}, internal::kConnected), "connect handshake");
  bytes_sent_ = sent;  // the counters are the job's exchanges
  bytes_received_ = received;
  if (broken_) return UnavailableError("connect handshake: " + broken_reason_);
  if (g.ok()) {
    for (int p : members_)
      if (!std::binary_search(g->peers.begin(), g->peers.end(), p)) NoteLost(p, /*closed=*/false);
  }
  return Status::Ok();  // peers gone are noted lost; the job decides what that costs
}

StatusOr<std::unique_ptr<PeerGroup::Impl>> PeerGroup::ConnectMembers(
    const PeerGroupOptions& o, const std::vector<int>& members,
    std::chrono::milliseconds connect_timeout) {
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i] < 0 || members[i] >= o.size || (i > 0 && members[i] <= members[i - 1])) {
      return InvalidArgumentError("peer group: members must be ascending peers in [0, " +
                                  std::to_string(o.size) + "), got " + FormatPeers(members));
    }
  }
  const auto self = std::find(members.begin(), members.end(), o.rank);
  if (self == members.end()) {
    return InvalidArgumentError("peer group: rank " + std::to_string(o.rank) +
                                " is not among the members " + FormatPeers(members));
  }
  auto impl = std::make_unique<Impl>(o.size);
  for (size_t i = 0; i < members.size(); ++i) impl->gloo_rank[size_t(members[i])] = int(i);
  // The store's waits for a peer's key wait this connect's timeout: a
  // re-form whose members arrive up to a few timeouts apart gives a longer
  // one (Admit's fallback), and then so do gloo's reads of their keys.
  const std::chrono::milliseconds timeout =
      connect_timeout.count() > 0 ? connect_timeout : o.timeout;
  POLYGUARD_ASSIGN_OR_RETURN(impl->base_store,
                             internal::MakeRendezvousStore(o.rendezvous, timeout));
  const std::string what = "connect rank " + std::to_string(o.rank) + " of " +
                           std::to_string(o.size) +
                           (o.generation > 0 ? " (generation " + std::to_string(o.generation) +
                                                   ", peers " + FormatPeers(members) + ")"
                                             : std::string()) +
                           " via " + internal::RedactRendezvous(o.rendezvous);
  try {
    const std::string prefix = internal::GenerationPrefix(o.job_id, o.generation);
    impl->store = std::make_unique<gloo::rendezvous::PrefixStore>(prefix, *impl->base_store);
    impl->prefix = prefix;
    gloo::transport::tcp::attr attr;
    attr.hostname = o.hostname;
    impl->device = gloo::transport::tcp::CreateDevice(attr);
    // One context per direction (mailboxes.h). The connections keep the
    // timeout they were made with.
    auto connect = [&](const char* direction) {
      gloo::rendezvous::PrefixStore store(direction, *impl->store);
      auto context = std::make_shared<gloo::rendezvous::Context>(int(self - members.begin()),
                                                                 int(members.size()));
      context->setTimeout(timeout);
      context->connectFullMesh(store, impl->device);
      context->setTimeout(o.timeout);
      return context;
    };
    impl->connections.up = connect("up");
    impl->connections.down = connect("down");
    impl->mail = std::make_unique<internal::Mailboxes>(impl->connections, o.rank, members,
                                                       impl->gloo_rank, timeout);
  } catch (const std::exception& e) {
    Status s = internal::GlooErrorStatus(what, e);
    const bool redis = o.rendezvous.rfind("redis://", 0) == 0;
    // The usual multi-host mistake: a peer announced its loopback address
    // (one machine's peers, meeting through a folder, may).
    if (redis && s.message().find("[127.") != std::string::npos) {
      s = Status(s.code(), s.message() +
                               " (a peer announced a loopback address, which peers on other "
                               "hosts cannot reach: give every peer --hostname with an address "
                               "the others reach)");
    }
    // Keys already there: an earlier run of the job left them, or two peers
    // were started with the same rank.
    if (s.message().find("already set") != std::string::npos ||
        s.message().find("already exists") != std::string::npos) {
      s = Status(s.code(),
                 s.message() + " (the rendezvous already holds job '" + o.job_id + "' rank " +
                     std::to_string(o.rank) +
                     "'s keys: an earlier run of the job, or another peer with this rank; give a "
                     "fresh folder or Redis database, or another job name)");
    }
    return s;
  }
  if (o.rank == members.front()) internal::PublishMembers(*impl, members, o.identity);
  return impl;
}

PeerGroup::PeerGroup(const PeerGroupOptions& o, std::vector<int> members,
                     std::unique_ptr<Impl> impl)
    : options_(o),
      rank_(o.rank),
      size_(o.size),
      members_(std::move(members)),
      generation_(o.generation),
      timeout_(o.timeout),
      impl_(std::move(impl)) {}

std::string PeerGroup::AbsentAmong(const std::vector<int>& peers) const {
  std::vector<int> absent;
  for (int p : peers)
    if (!std::binary_search(members_.begin(), members_.end(), p)) absent.push_back(p);
  if (absent.empty()) return "";
  return "peers " + FormatPeers(absent) + " are not members of generation " +
         std::to_string(generation_) + " (lost earlier)";
}

PeerGroup::~PeerGroup() { (void)Flush(timeout_); }

int64_t PeerGroup::pending_buffers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_ && impl_->mail ? impl_->mail->in_flight() : 0;
}

int64_t PeerGroup::held_exchanges() const {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_ && impl_->mail ? impl_->mail->held_exchanges() : 0;
}

Status PeerGroup::Flush(std::chrono::milliseconds) {
  std::lock_guard<std::mutex> lock(mu_);
  if (broken_ || !impl_ || !impl_->mail) return Status::Ok();
  impl_->mail->Flush();
  return Status::Ok();
}

}  // namespace polyguard
