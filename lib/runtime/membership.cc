// Membership after a crash: which peers this group has seen gone, the
// survivors' agreement on whom they lost (through the rendezvous store, since
// the lost peer's connections are what failed), and re-forming the group in
// place without them under a new generation (docs/architecture.md,
// "Generations").
#include <algorithm>
#include <chrono>
#include <exception>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lib/runtime/peer_group_impl.h"
#include "lib/runtime/rendezvous.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"  // FormatPeers
#include "polyguard/runtime/peer_group.h"

namespace polyguard {
namespace {

// "LABEL:2,5;" — never empty (a file store refuses empty values), and the
// closing ';' tells a complete value from one still being written.
std::vector<char> Encode(const std::vector<int>& peers, const std::string& label = "lost") {
  std::string text = label + ":";
  for (size_t i = 0; i < peers.size(); ++i) {
    if (i > 0) text += ',';
    text += std::to_string(peers[i]);
  }
  text += ";";
  return std::vector<char>(text.begin(), text.end());
}

// The text between "LABEL:" and the closing ';', when the value is complete.
std::optional<std::string> Body(const std::vector<char>& data, const std::string& label) {
  const std::string text(data.begin(), data.end());
  const std::string head = label + ":";
  if (text.rfind(head, 0) != 0 || text.size() <= head.size() || text.back() != ';') {
    return std::nullopt;
  }
  return text.substr(head.size(), text.size() - head.size() - 1);
}

std::optional<std::vector<int>> Decode(const std::vector<char>& data,
                                       const std::string& label = "lost") {
  const std::optional<std::string> body = Body(data, label);
  if (!body) return std::nullopt;
  std::vector<int> peers;
  std::stringstream in(*body);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    try {
      peers.push_back(std::stoi(item));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return peers;
}

// A complete value of a full key in `store`, read without waiting.
std::optional<std::vector<char>> ReadNow(gloo::rendezvous::Store& store, const std::string& key) {
  if (!internal::RendezvousKeyExists(store, key)) return std::nullopt;
  try {
    return store.get(key);
  } catch (const std::exception&) {
    return std::nullopt;  // read while being written: look again later
  }
}

bool Contains(const std::vector<int>& set, int peer) {
  return std::find(set.begin(), set.end(), peer) != set.end();
}

// The value of `key` in this generation's keys, complete, waiting until
// `deadline` (at least one look); nothing when it does not come. Polls every
// 5 ms. (A file store's value can be seen while it is still being written:
// read again until it is whole.)
std::optional<std::vector<int>> WaitFor(const PeerGroup::Impl& impl, const std::string& key,
                                        std::chrono::steady_clock::time_point deadline) {
  const std::string full = impl.prefix + "/" + key;
  while (true) {
    if (internal::RendezvousKeyExists(*impl.base_store, full)) {
      try {
        if (std::optional<std::vector<int>> peers = Decode(impl.store->get(key))) return peers;
      } catch (const std::exception&) {
        // Read while being written: look again.
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

void PeerGroup::NoteLost(int peer, bool closed) {
  if (peer == rank_) return;
  auto add = [peer](std::vector<int>& set) {
    if (!std::binary_search(set.begin(), set.end(), peer))
      set.insert(std::upper_bound(set.begin(), set.end(), peer), peer);
  };
  add(lost_);
  if (closed) add(closed_);
}

StatusOr<std::vector<int>> PeerGroup::AgreeOnLost(std::chrono::milliseconds wait) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!impl_) return UnavailableError("peer group failed earlier: " + broken_reason_);
  gloo::rendezvous::Store& store = *impl_->store;  // this generation's keys
  const std::string gen = " (generation " + std::to_string(generation_) + ")";
  auto key = [](const char* kind, int peer) {
    return std::string(kind) + "-" + std::to_string(peer);
  };
  // A decision taken without this peer (it was silent too long): it is late
  // and lost. The lowest survivor writes "lost-decision".
  auto declared_lost = [&]() -> Status {
    const std::optional<std::vector<int>> d =
        WaitFor(*impl_, "lost-decision", std::chrono::steady_clock::now());
    if (!d || !std::binary_search(d->begin(), d->end(), rank_)) return Status::Ok();
    return FailedPreconditionError("peer " + std::to_string(rank_) +
                                   " was declared lost by the other peers" + gen +
                                   ": it must stop (it may only come back as a replacement)");
  };
  POLYGUARD_RETURN_IF_ERROR(declared_lost());
  try {
    store.set(key("lost-report", rank_), Encode(lost_));
  } catch (const std::exception& e) {
    return UnavailableError("peer " + std::to_string(rank_) +
                            ": cannot report lost peers to the rendezvous: " + e.what());
  }
  // Leave this generation's connections now: a survivor still waiting for
  // this peer's piece fails at once ("connection closed") instead of at its
  // failure timeout, and comes here too. (The group re-forms anyway.)
  if (impl_->mail) internal::RetireInBackground(std::move(impl_->mail));
  impl_->connections = {};
  broken_ = true;
  broken_reason_ = "left generation " + std::to_string(generation_) + " to agree on lost peers";
  // Alive: the members that report within the wait. (A peer this one saw
  // fail may be alive: a gloo timeout elsewhere closes every connection.)
  std::vector<int> lost;
  auto deadline = std::chrono::steady_clock::now() + wait;
  std::vector<int> order;  // the peers not seen failing first: likely alive
  for (int q : members_)
    if (q != rank_ && !std::binary_search(lost_.begin(), lost_.end(), q)) order.push_back(q);
  for (int q : lost_) order.push_back(q);
  // A peer whose connection failed reports at once if it is alive (it
  // closed its connections because it entered this agreement itself); one
  // that was only silent may be waiting for a failure timeout first.
  const auto closed_deadline =
      std::min(deadline, std::chrono::steady_clock::now() +
                             std::min(wait / 3, std::chrono::milliseconds(1000)));
  for (int q : order) {
    const bool closed = std::binary_search(closed_.begin(), closed_.end(), q);
    if (!WaitFor(*impl_, key("lost-report", q), closed ? closed_deadline : deadline)) {
      lost.push_back(q);
    }
  }
  std::sort(lost.begin(), lost.end());
  POLYGUARD_RETURN_IF_ERROR(declared_lost());
  try {
    store.set(key("lost-decision", rank_), Encode(lost));
    // Keys are written once (a file store refuses a second write): the
    // lowest survivor writes the shared one.
    if (rank_ == *std::find_if(members_.begin(), members_.end(), [&](int q) {
          return !std::binary_search(lost.begin(), lost.end(), q);
        })) {
      store.set("lost-decision", Encode(lost));
    }
  } catch (const std::exception& e) {
    return UnavailableError("peer " + std::to_string(rank_) +
                            ": cannot publish the lost peers to the rendezvous: " + e.what());
  }
  // The others may still be waiting out a lost peer's report: a wait of their own.
  deadline = std::chrono::steady_clock::now() + wait;
  for (int q : members_) {
    if (q == rank_ || std::binary_search(lost.begin(), lost.end(), q)) continue;
    const std::optional<std::vector<int>> decision =
        WaitFor(*impl_, key("lost-decision", q), deadline);
    if (!decision) {
      return DataLossError("survivors cannot agree on the lost peers" + gen + ": peer " +
                           std::to_string(q) + " stopped answering");
    }
    if (*decision != lost) {
      return DataLossError("survivors disagree on the lost peers" + gen + ": peer " +
                           std::to_string(rank_) + " says " + FormatPeers(lost) + ", peer " +
                           std::to_string(q) + " says " + FormatPeers(*decision));
    }
  }
  return lost;
}

Status PeerGroup::Reform(const std::vector<int>& members, int64_t generation,
                         std::chrono::milliseconds connect_timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  if (generation <= generation_) {
    return InvalidArgumentError("peer group: reform needs a generation above " +
                                std::to_string(generation_) + ", got " +
                                std::to_string(generation));
  }
  PeerGroupOptions o = options_;
  o.members = members;
  o.generation = generation;
  impl_.reset();  // the old connections first: a peer may be listening again
  StatusOr<std::unique_ptr<Impl>> impl = ConnectMembers(o, members, connect_timeout);
  if (!impl.ok()) {
    broken_ = true;
    broken_reason_ = impl.status().message();
    return impl.status();
  }
  impl_ = std::move(impl).value();
  members_ = members;
  generation_ = generation;
  lost_.clear();
  closed_.clear();
  broken_ = false;
  broken_reason_.clear();
  return AwaitConnectedLocked();
}

namespace internal {

std::string GenerationPrefix(const std::string& job_id, int64_t generation) {
  return generation > 0 ? job_id + "/generation-" + std::to_string(generation) : job_id;
}

void PublishMembers(PeerGroup::Impl& impl, const std::vector<int>& members,
                    const std::string& identity) {
  try {
    impl.store->set("identity", Encode({}, "id=" + identity));
    impl.store->set("members", Encode(members, "members"));  // last: Join reads it first
  } catch (const std::exception&) {
    // A store that already has them (a reused rendezvous) costs only a rejoin.
  }
}

}  // namespace internal

StatusOr<std::unique_ptr<PeerGroup>> PeerGroup::Join(const PeerGroupOptions& o,
                                                     std::chrono::milliseconds wait) {
  if (o.size < 1 || o.rank < 0 || o.rank >= o.size || o.job_id.empty() || o.timeout.count() <= 0) {
    return Connect(o);  // its own checks name what is wrong
  }
  POLYGUARD_ASSIGN_OR_RETURN(std::shared_ptr<gloo::rendezvous::Store> store,
                             internal::MakeRendezvousStore(o.rendezvous, o.timeout));
  const std::string who = "peer " + std::to_string(o.rank) + " rejoining job " + o.job_id;
  auto key = [&](int64_t g, const std::string& k) {
    return internal::GenerationPrefix(o.job_id, g) + "/" + k;
  };
  auto peers = [&](int64_t g, const std::string& k) -> std::optional<std::vector<int>> {
    const std::optional<std::vector<char>> v = ReadNow(*store, key(g, k));
    return v ? Decode(*v, k) : std::nullopt;
  };
  const auto deadline = std::chrono::steady_clock::now() + wait;
  int64_t asked = -1;  // the generation this peer asked to join
  int64_t spent = -1;  // a generation whose admission of this peer failed to connect
  std::string seen = "no generation of the job in the rendezvous";
  while (true) {
    // The newest generation (an admission whose joiner never came skips one).
    int64_t newest = -1;
    for (int64_t g = 0, misses = 0; misses < 3; ++g) {
      if (internal::RendezvousKeyExists(*store, key(g, "members"))) {
        newest = g;
        misses = 0;
      } else {
        ++misses;
      }
    }
    const std::optional<std::vector<int>> members =
        newest >= 0 ? peers(newest, "members") : std::nullopt;
    if (members) {
      const std::string gen = "generation " + std::to_string(newest);
      const std::optional<std::vector<char>> id = ReadNow(*store, key(newest, "identity"));
      const std::string text = id ? std::string(id->begin(), id->end()) : "";
      // "id=IDENTITY:;" (complete when it ends so).
      if (text.size() >= 5 && text.rfind("id=", 0) == 0 && text.ends_with(":;") &&
          text != "id=" + o.identity + ":;") {
        return FailedPreconditionError(
            who + ": the running job (" + gen + ") is another job: its identity is " +
            text.substr(3, text.size() - 5) + ", this peer's " + o.identity +
            " (a replacement needs the same spec and code)");
      }
      for (int q : *members) {
        // (Its own: an earlier replacement that failed in that generation.)
        if (q != o.rank &&
            internal::RendezvousKeyExists(*store, key(newest, "ended-" + std::to_string(q)))) {
          return NotFoundError(who + ": the job ended (peer " + std::to_string(q) + ", " + gen +
                               ") before it was admitted");
        }
      }
      if (Contains(*members, o.rank)) {
        seen = "peer " + std::to_string(o.rank) + " is still a member of " + gen +
               " (its loss not yet agreed)";
      } else {
        if (asked != newest) {
          try {
            store->set(key(newest, "join-" + std::to_string(o.rank)), Encode({o.rank}, "join"));
          } catch (const std::exception&) {
            // Asked already (an earlier replacement): the request stands.
          }
          asked = newest;
        }
        const std::optional<std::vector<int>> admitted = peers(newest, "admit");
        if (admitted && Contains(*admitted, o.rank) && newest != spent) {
          PeerGroupOptions c = o;
          c.members = *admitted;
          c.generation = newest + 1;
          StatusOr<std::unique_ptr<PeerGroup>> group = Connect(c);
          if (group.ok()) return group;
          // The admission failed (an earlier replacement of this rank took
          // it and died, leaving its keys; or the connect did): the members
          // re-form without this peer under a later generation. Ask that one.
          spent = newest;
          seen = "admitted by " + gen + ", but the connect failed (" +
                 std::string(group.status().message()) + "); waiting for the members to re-form";
        } else if (newest != spent) {
          seen = "asked " + gen + " (peers " + FormatPeers(*members) + ") to admit it";
        }
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceededError(who + ": not admitted within " + std::to_string(wait.count()) +
                                   " ms; last seen: " + seen);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<int> PeerGroup::JoinRequests() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int> joiners;
  if (!impl_) return joiners;
  // A request stands for one generation more: one made just after the
  // members agreed on an admission's joiners asked the generation that the
  // admission then replaced, and its joiner asks the next one only once it
  // sees it (up to a poll later): the rest of a short job can take less.
  std::vector<std::string> prefixes = {impl_->prefix};
  if (generation_ > 0)
    prefixes.push_back(internal::GenerationPrefix(options_.job_id, generation_ - 1));
  for (int q = 0; q < size_; ++q) {
    if (std::binary_search(members_.begin(), members_.end(), q)) continue;
    for (const std::string& prefix : prefixes) {
      if (internal::RendezvousKeyExists(*impl_->base_store,
                                        prefix + "/join-" + std::to_string(q))) {
        joiners.push_back(q);
        break;
      }
    }
  }
  return joiners;
}

StatusOr<std::vector<int>> PeerGroup::Admit(const std::vector<int>& joiners) {
  if (joiners.empty()) return joiners;
  // Every piece this peer sent (the members' agreement on the joiners) must
  // be taken before its connections close: gloo moves a piece only when its
  // receiver asks for it.
  POLYGUARD_RETURN_IF_ERROR(Flush(timeout_));
  std::vector<int> before, next;
  int64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < joiners.size(); ++i) {
      const int q = joiners[i];
      if (q < 0 || q >= size_ || (i > 0 && q <= joiners[i - 1]) ||
          std::binary_search(members_.begin(), members_.end(), q)) {
        return InvalidArgumentError("peer group: joiners must be ascending absent peers, got " +
                                    FormatPeers(joiners));
      }
    }
    if (!impl_) return UnavailableError("peer group failed earlier: " + broken_reason_);
    before = members_;
    generation = generation_;
    std::merge(members_.begin(), members_.end(), joiners.begin(), joiners.end(),
               std::back_inserter(next));
    if (rank_ == members_.front()) {
      try {
        impl_->store->set("admit", Encode(next, "admit"));
      } catch (const std::exception& e) {
        return UnavailableError("peer " + std::to_string(rank_) +
                                ": cannot admit peers to the rendezvous: " + e.what());
      }
    }
  }
  const Status with = Reform(next, generation + 1);
  if (with.ok()) return joiners;
  // A joiner that never connects (it died, or stopped): every member's
  // connect fails, and they go on without it. They leave the failed connect
  // at different times (a store wait for the joiner's address, or a TCP
  // handshake it never finishes; gloo connects pair by pair, so one member
  // can wait on another that waits on the joiner: a few timeouts apart, 5
  // measured): this connect waits longer.
  if (Status without = Reform(before, generation + 2, 8 * timeout_); !without.ok()) {
    return Status(without.code(), without.message() + " (after admitting peers " +
                                      FormatPeers(joiners) + " failed: " + with.message() + ")");
  }
  return std::vector<int>();
}

void PeerGroup::MarkEnded() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!impl_) return;
  try {
    impl_->store->set("ended-" + std::to_string(rank_), Encode({rank_}, "ended"));
  } catch (const std::exception&) {
  }
}

}  // namespace polyguard
