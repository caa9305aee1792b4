#include "lib/runtime/rendezvous.h"

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/hash_store.h>
#include <gloo/rendezvous/redis_store.h>
#include <hiredis.h>

#include "lib/runtime/gloo_errors.h"

namespace polyguard::internal {
namespace {

using Store = gloo::rendezvous::Store;

// gloo's stores with their lookups made public (RendezvousKeyExists).
class InprocHashStore : public gloo::rendezvous::HashStore {
 public:
  bool Has(const std::string& key) {
    std::lock_guard<std::mutex> lock(m_);
    return map_.count(key) > 0;
  }
};

// A wait without a timeout (gloo's connectFullMesh reads each lower rank's
// key with get(), which waits gloo's 30 s default) waits the group's timeout:
// a peer that died before announcing itself fails the others' connect then.
class FolderStore : public gloo::rendezvous::FileStore {
 public:
  FolderStore(const std::string& dir, std::chrono::milliseconds timeout)
      : gloo::rendezvous::FileStore(dir), timeout_(timeout) {}
  bool Has(const std::string& key) { return check({key}); }
  using gloo::rendezvous::FileStore::wait;
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }

 private:
  std::chrono::milliseconds timeout_;
};

// In-process stores, shared by name between the threads of this process.
std::shared_ptr<Store> InprocStore(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<Store>> stores;
  std::lock_guard<std::mutex> lock(mu);
  auto& s = stores[name];
  if (!s) s = std::make_shared<InprocHashStore>();
  return s;
}

// A hiredis timeout.
timeval TimevalOf(std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  return tv;
}

// gloo's RedisStore, with the connection authenticated and its database
// selected before any key is read or written (redis_ is gloo's hiredis
// connection, open once the base constructor returns).
class AuthRedisStore : public gloo::rendezvous::RedisStore {
 public:
  AuthRedisStore(const std::string& host, int port, std::chrono::milliseconds timeout)
      : gloo::rendezvous::RedisStore(host, port), timeout_(timeout) {
    // Every later command's socket waits at most this long (hiredis).
    redisSetTimeout(redis_, TimevalOf(timeout));
  }
  // (As FolderStore's.)
  using gloo::rendezvous::RedisStore::wait;
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  // What became of a command: Redis's error reply, or no reply at all (the
  // connection failed, or nothing came within the timeout).
  struct Reply {
    std::string error;  // "" when it succeeded
    bool answered = true;
  };
  Reply Command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(redis_, int(argv.size()), argv.data(), lengths.data()));
    if (reply == nullptr) return {redis_->errstr[0] ? redis_->errstr : "no reply", false};
    std::string error = reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len) : "";
    freeReplyObject(reply);
    return {error, true};
  }

 private:
  std::chrono::milliseconds timeout_;
};

StatusOr<std::shared_ptr<Store>> RedisStore(const std::string& url,
                                            std::chrono::milliseconds timeout) {
  POLYGUARD_ASSIGN_OR_RETURN(const RedisAddress a, ParseRedisUrl(url));
  const std::string shown = RedactRendezvous(url);
  // Reach the server first with the timeout: gloo's own connect has none (an
  // unreachable host would block for the kernel's connect timeout) and, when
  // it fails, leaks its hiredis context.
  {
    redisContext* probe = redisConnectWithTimeout(a.host.c_str(), a.port, TimevalOf(timeout));
    if (probe == nullptr || probe->err != 0) {
      const std::string why = probe != nullptr ? probe->errstr : "out of memory";
      if (probe != nullptr) redisFree(probe);
      return UnavailableError("rendezvous '" + shown + "': cannot reach Redis within " +
                              std::to_string(timeout.count()) + " ms: " + why);
    }
    redisFree(probe);
  }
  std::shared_ptr<AuthRedisStore> store;
  try {
    store = std::make_shared<AuthRedisStore>(a.host, a.port, timeout);
  } catch (const std::exception& e) {
    return GlooErrorStatus("rendezvous '" + shown + "': cannot reach Redis", e);
  }
  std::string password = a.password;
  if (!a.has_password) {
    const char* env = std::getenv("POLYGUARD_REDIS_PASSWORD");
    if (env != nullptr && env[0] != '\0') password = env;
  }
  // A server that does not answer (stopped, or not Redis at all) is not one
  // that refused: Unavailable, within the timeout.
  auto silent = [&](const AuthRedisStore::Reply& r) {
    return UnavailableError("rendezvous '" + shown + "': no answer from Redis within " +
                            std::to_string(timeout.count()) + " ms (" + r.error + ")");
  };
  if (!password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!a.user.empty()) auth.push_back(a.user);
    auth.push_back(password);
    if (const AuthRedisStore::Reply r = store->Command(auth); !r.error.empty()) {
      if (!r.answered) return silent(r);
      return FailedPreconditionError(
          "rendezvous '" + shown + "': Redis refused the " +
          (a.has_password ? "password in the URL" : "password in POLYGUARD_REDIS_PASSWORD") + ": " +
          r.error);
    }
  }
  if (a.db != 0) {
    if (const AuthRedisStore::Reply r = store->Command({"SELECT", std::to_string(a.db)});
        !r.error.empty()) {
      if (!r.answered) return silent(r);
      return FailedPreconditionError("rendezvous '" + shown + "': cannot select database " +
                                     std::to_string(a.db) + ": " + r.error);
    }
  }
  // One round trip now: a server that wants a password, or that refuses
  // clients from other hosts (protected mode), says so here, not at the
  // first key a peer waits for.
  if (const AuthRedisStore::Reply r = store->Command({"PING"}); !r.error.empty()) {
    if (!r.answered) return silent(r);
    const std::string& e = r.error;
    std::string hint;
    if (e.rfind("NOAUTH", 0) == 0) {
      hint =
          " (give the password in the URL, redis://:PASSWORD@HOST:PORT, or in "
          "POLYGUARD_REDIS_PASSWORD)";
    } else if (e.rfind("DENIED", 0) == 0) {
      hint =
          " (set a password with --requirepass, which also ends protected mode, and bind "
          "to the cluster interface: see the README's multi-host recipe)";
    }
    return FailedPreconditionError("rendezvous '" + shown + "': Redis refused: " + e + hint);
  }
  return std::shared_ptr<Store>(std::move(store));
}

StatusOr<std::shared_ptr<Store>> FileStore(const std::string& url,
                                           std::chrono::milliseconds timeout) {
  const std::string dir = url.rfind("file:", 0) == 0 ? url.substr(5) : url;
  if (dir.empty() || dir[0] != '/') {
    return InvalidArgumentError("rendezvous '" + RedactRendezvous(url) +
                                "': expected file:/abs/dir, redis://HOST:PORT or inproc:NAME");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return UnavailableError("rendezvous folder '" + RedactRendezvous(dir) + "': " + ec.message());
  }
  try {
    return std::shared_ptr<Store>(std::make_shared<FolderStore>(dir, timeout));
  } catch (const std::exception& e) {
    return GlooErrorStatus("rendezvous folder '" + RedactRendezvous(dir) + "'", e);
  }
}

}  // namespace

StatusOr<RedisAddress> ParseRedisUrl(const std::string& url) {
  if (url.rfind("redis://", 0) != 0) {
    return InvalidArgumentError("rendezvous '" + RedactRendezvous(url) + "': not a redis:// URL");
  }
  const std::string shown = "rendezvous '" + RedactRendezvous(url) + "': ";
  RedisAddress a;
  std::string rest = url.substr(8);
  if (const auto at = rest.rfind('@'); at != std::string::npos) {
    const std::string user_info = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = user_info.find(':');
    if (colon == std::string::npos) {
      return InvalidArgumentError(shown + "expected [USER]:PASSWORD@ before the host");
    }
    a.user = user_info.substr(0, colon);
    a.password = user_info.substr(colon + 1);
    a.has_password = true;
    if (a.password.empty()) return InvalidArgumentError(shown + "empty password");
  }
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    size_t used = 0;
    try {
      a.db = std::stoi(db, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (db.empty() || used != db.size() || a.db < 0) {
      return InvalidArgumentError(shown + "bad database '" + db + "' (a number >= 0)");
    }
  }
  a.host = rest;
  if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    a.host = rest.substr(0, colon);
    try {
      size_t used = 0;
      a.port = std::stoi(rest.substr(colon + 1), &used);
      if (used != rest.size() - colon - 1 || a.port < 1 || a.port > 65535) {
        throw std::invalid_argument("");
      }
    } catch (const std::exception&) {
      return InvalidArgumentError(shown + "bad port");
    }
  }
  if (a.host.empty()) return InvalidArgumentError(shown + "missing host");
  return a;
}

std::string RedactRendezvous(const std::string& url) {
  // Any scheme, in any case, mistyped or not (a message may echo a URL the
  // parser refused): only a plain folder is shown as given.
  const auto scheme = url.find("://");
  const auto first = url.find_first_not_of(" \t");
  if (scheme == std::string::npos && first != std::string::npos &&
      url.compare(first, 5, "file:") == 0) {
    return url;
  }
  const auto at = url.rfind('@');
  if (at != std::string::npos) {
    // The user information: after "//", or after the first ':' ("redis:PW@host").
    size_t start = 0;
    if (scheme != std::string::npos && scheme < at) {
      start = scheme + 3;
    } else if (const auto c = url.find(':'); c != std::string::npos && c < at) {
      start = c + 1;
    }
    const std::string user_info = url.substr(start, at - start);
    const auto colon = user_info.find(':');
    return url.substr(0, start) +
           (colon == std::string::npos ? "***" : user_info.substr(0, colon) + ":***") +
           url.substr(at);
  }
  if (scheme == std::string::npos) return url;
  // No '@': a password given without one ("redis://:PW") would read as a
  // port; anything after the host's ':' that is not a number is hidden.
  const size_t host = scheme + 3;
  const size_t end = std::min(url.find('/', host), url.size());
  const auto colon = url.rfind(':', end == 0 ? 0 : end - 1);
  if (colon == std::string::npos || colon < host) return url;
  const std::string port = url.substr(colon + 1, end - colon - 1);
  if (!port.empty() && port.find_first_not_of("0123456789") == std::string::npos) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(end);
}

StatusOr<std::shared_ptr<Store>> MakeRendezvousStore(const std::string& url,
                                                     std::chrono::milliseconds timeout) {
  if (url.empty()) {
    return InvalidArgumentError(
        "rendezvous: empty; expected file:DIR, redis://HOST:PORT or inproc:NAME");
  }
  if (url.rfind("inproc:", 0) == 0) return InprocStore(url.substr(7));
  if (url.rfind("redis://", 0) == 0) return RedisStore(url, timeout);
  return FileStore(url, timeout);
}

bool RendezvousKeyExists(Store& store, const std::string& key) {
  try {
    if (auto* folder = dynamic_cast<FolderStore*>(&store)) return folder->Has(key);
    if (auto* hash = dynamic_cast<InprocHashStore*>(&store)) return hash->Has(key);
    if (auto* redis = dynamic_cast<AuthRedisStore*>(&store)) {
      return redis->check({key});
    }
  } catch (const std::exception&) {
  }
  return false;
}

}  // namespace polyguard::internal
