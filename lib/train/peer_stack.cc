#include "polyguard/train/peer_stack.h"

#include <utility>

namespace polyguard {

StatusOr<PeerStack> BuildPeerStack(const PeerStackOptions& o) {
  PeerStack s;
  POLYGUARD_ASSIGN_OR_RETURN(
      s.group, o.join_wait ? PeerGroup::Join(o.group, *o.join_wait) : PeerGroup::Connect(o.group));
  if (o.faults) {
    s.faults = std::make_unique<FaultInjector>(*o.faults, o.fault_seed, o.group.rank);
  }
  POLYGUARD_ASSIGN_OR_RETURN(s.model, Sequential::Create(o.model, s.group.get(), s.faults.get()));
  POLYGUARD_ASSIGN_OR_RETURN(
      s.trainer, Trainer::Create(s.group.get(), s.model.get(), s.faults.get(), o.trainer));
  return s;
}

}  // namespace polyguard
