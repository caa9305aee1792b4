#include "lib/runtime/rendezvous.h"

#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/hash_store.h>
#include <gloo/rendezvous/redis_store.h>

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

class FolderStore : public gloo::rendezvous::FileStore {
 public:
  using gloo::rendezvous::FileStore::FileStore;
  bool Has(const std::string& key) { return check({key}); }
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

StatusOr<std::shared_ptr<Store>> RedisStore(const std::string& url) {
  const std::string rest = url.substr(8);
  const auto colon = rest.rfind(':');
  std::string host = rest;
  int port = 6379;
  if (colon != std::string::npos) {
    host = rest.substr(0, colon);
    try {
      size_t used = 0;
      port = std::stoi(rest.substr(colon + 1), &used);
      if (used != rest.size() - colon - 1 || port < 1 || port > 65535) {
        throw std::invalid_argument("");
      }
    } catch (const std::exception&) {
      return InvalidArgumentError("rendezvous '" + url + "': bad port");
    }
  }
  if (host.empty()) return InvalidArgumentError("rendezvous '" + url + "': missing host");
  try {
    return std::shared_ptr<Store>(std::make_shared<gloo::rendezvous::RedisStore>(host, port));
  } catch (const std::exception& e) {
    return GlooErrorStatus("rendezvous '" + url + "': cannot reach Redis", e);
  }
}

StatusOr<std::shared_ptr<Store>> FileStore(const std::string& url) {
  const std::string dir = url.rfind("file:", 0) == 0 ? url.substr(5) : url;
  if (dir.empty() || dir[0] != '/') {
    return InvalidArgumentError("rendezvous '" + url +
                                "': expected file:/abs/dir, redis://HOST:PORT or inproc:NAME");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return UnavailableError("rendezvous folder '" + dir + "': " + ec.message());
  try {
    return std::shared_ptr<Store>(std::make_shared<FolderStore>(dir));
  } catch (const std::exception& e) {
    return GlooErrorStatus("rendezvous folder '" + dir + "'", e);
  }
}

}  // namespace

StatusOr<std::shared_ptr<Store>> MakeRendezvousStore(const std::string& url) {
  if (url.empty()) {
    return InvalidArgumentError(
        "rendezvous: empty; expected file:DIR, redis://HOST:PORT or inproc:NAME");
  }
  if (url.rfind("inproc:", 0) == 0) return InprocStore(url.substr(7));
  if (url.rfind("redis://", 0) == 0) return RedisStore(url);
  return FileStore(url);
}

bool RendezvousKeyExists(Store& store, const std::string& key) {
  try {
    if (auto* folder = dynamic_cast<FolderStore*>(&store)) return folder->Has(key);
    if (auto* hash = dynamic_cast<InprocHashStore*>(&store)) return hash->Has(key);
    if (auto* redis = dynamic_cast<gloo::rendezvous::RedisStore*>(&store)) {
      return redis->check({key});
    }
  } catch (const std::exception&) {
  }
  return false;
}

}  // namespace polyguard::internal
