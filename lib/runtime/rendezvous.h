// Rendezvous: where the peers of a group meet, named by a URL-like string
// (the forms are documented in polyguard/runtime/peer_group.h).
#ifndef POLYGUARD_LIB_RUNTIME_RENDEZVOUS_H_
#define POLYGUARD_LIB_RUNTIME_RENDEZVOUS_H_

#include <memory>
#include <string>

#include <gloo/rendezvous/store.h>

#include "polyguard/base/status.h"

namespace polyguard::internal {

// The gloo store `url` names: "file:/dir" or "/dir" (a FileStore; the folder
// is created), "redis://host[:port]" (a RedisStore, port 6379 by default) or
// "inproc:name" (a HashStore shared by every group of this process that names
// it). InvalidArgument for a malformed URL, Unavailable (or DeadlineExceeded)
// when the store cannot be reached.
StatusOr<std::shared_ptr<gloo::rendezvous::Store>> MakeRendezvousStore(const std::string& url);

// Whether `key` (a full key, prefixes included) is in a store made by
// MakeRendezvousStore, without waiting (gloo's own wait polls a folder at
// coarse intervals). False for a store of another kind.
bool RendezvousKeyExists(gloo::rendezvous::Store& store, const std::string& key);

}  // namespace polyguard::internal

#endif  // POLYGUARD_LIB_RUNTIME_RENDEZVOUS_H_
