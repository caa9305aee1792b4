// Rendezvous: where the peers of a group meet, named by a URL-like string
// (the forms are documented in polyguard/runtime/peer_group.h).
#ifndef POLYGUARD_LIB_RUNTIME_RENDEZVOUS_H_
#define POLYGUARD_LIB_RUNTIME_RENDEZVOUS_H_

#include <chrono>
#include <memory>
#include <string>

#include <gloo/rendezvous/store.h>

#include "polyguard/base/status.h"

namespace polyguard::internal {

// The gloo store `url` names: "file:/dir" or "/dir" (a FileStore; the folder
// is created), "redis://host[:port]" (a RedisStore, port 6379 by default) or
// "inproc:name" (a HashStore shared by every group of this process that names
// it). A Redis store is authenticated (AUTH) and its database selected
// before it is returned, and pinged once. InvalidArgument for a malformed URL,
// FailedPrecondition when Redis refuses (a wrong or missing password,
// protected mode), Unavailable (or DeadlineExceeded) when the store cannot be
// reached. Messages show the URL without its password.
// A Redis command waits at most `timeout` for its reply (a host cut off from
// the server fails instead of blocking forever), and a folder's or Redis's
// wait for a key without a timeout of its own (gloo's get) waits `timeout`.
StatusOr<std::shared_ptr<gloo::rendezvous::Store>> MakeRendezvousStore(
    const std::string& url, std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A redis:// rendezvous: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (port
// 6379, database 0 by default). has_password: the URL gave one (else
// POLYGUARD_REDIS_PASSWORD is used, when set). InvalidArgument names what is
// malformed, never the password.
struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user, password;
  bool has_password = false;
};
StatusOr<RedisAddress> ParseRedisUrl(const std::string& url);

// `url` with any password replaced by "***", for messages and logs.
std::string RedactRendezvous(const std::string& url);

// Whether `key` (a full key, prefixes included) is in a store made by
// MakeRendezvousStore, without waiting (gloo's own wait polls a folder at
// coarse intervals). False for a store of another kind.
bool RendezvousKeyExists(gloo::rendezvous::Store& store, const std::string& key);

}  // namespace polyguard::internal

#endif  // POLYGUARD_LIB_RUNTIME_RENDEZVOUS_H_
