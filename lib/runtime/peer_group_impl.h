// PeerGroup's gloo state, shared by the files of lib/runtime that implement
// it (peer_group.cc: connecting; gather.cc, collectives.cc, send_recv.cc: the
// exchanges, over mailboxes.h), and how an exchange's tag becomes its slot.
#ifndef POLYGUARD_LIB_RUNTIME_PEER_GROUP_IMPL_H_
#define POLYGUARD_LIB_RUNTIME_PEER_GROUP_IMPL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/device.h>

#include "lib/runtime/mailboxes.h"
#include "polyguard/runtime/peer_group.h"

namespace polyguard {

struct PeerGroup::Impl {
  explicit Impl(int peers) : gloo_rank(static_cast<size_t>(peers), -1) {}

  std::shared_ptr<gloo::rendezvous::Store> base_store;
  std::unique_ptr<gloo::rendezvous::PrefixStore> store;  // the job's keys in base_store
  std::string prefix;  // of `store`'s keys in base_store (gloo joins "prefix/key")
  std::shared_ptr<gloo::transport::Device> device;
  internal::Mailboxes::Directions connections;  // null once this peer left the generation
  // Every exchange's transport; null once this peer left the generation
  // (AgreeOnLost).
  std::unique_ptr<internal::Mailboxes> mail;
  // gloo's rank of each peer (its index among the members; -1: absent).
  std::vector<int> gloo_rank;

  ~Impl() {
    mail.reset();  // says goodbye, and its receivers end (before the context)
    connections = {};
  }
};

namespace internal {

// The messages of one exchange: an all-gather-v sends sizes, then data.
// kConnected: the handshake that ends a connect (PeerGroup::AwaitConnectedLocked).
enum Phase : uint64_t { kData = 1, kDirect = 3, kConnected = 4 };  // (2: sizes, no more)

// gloo's slot (its message tag) for `tag`'s messages in `phase`.
uint64_t SlotOf(const ExchangeTag& tag, Phase phase);

// "op (step s, layer l, op o)": names an exchange in error messages.
std::string DescribeExchange(const char* op, const ExchangeTag& tag);
// The error of a gather whose exchange the inbox discarded pieces of
// (Mailboxes::EndGather): DataLoss, rather than pieces of another exchange.
Status DiscardedError(const std::string& what);

// How long a gloo wait may run when the caller aborts it at its own deadline
// first: a little more than the failure timeout, so gloo's timeout (which
// closes every connection) only catches a wait nobody aborted.
inline std::chrono::milliseconds GlooTimeout(std::chrono::milliseconds failure_timeout) {
  return failure_timeout + std::chrono::milliseconds(2000);
}

// The store prefix of a job's generation (generation 0: the job id itself).
std::string GenerationPrefix(const std::string& job_id, int64_t generation);

// After a generation connects, its lowest member publishes the members and
// the job's identity (for a replacement looking for the job: PeerGroup::Join).
// Best effort: a store that refuses costs only a later rejoin.
// (lib/runtime/membership.cc)
void PublishMembers(PeerGroup::Impl& impl, const std::vector<int>& members,
                    const std::string& identity);

}  // namespace internal
}  // namespace polyguard

#endif  // POLYGUARD_LIB_RUNTIME_PEER_GROUP_IMPL_H_
