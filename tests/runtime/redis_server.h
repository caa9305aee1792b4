// A real redis-server on a free loopback port, started by a test and stopped
// when the object goes away.
#ifndef POLYGUARD_TESTS_RUNTIME_REDIS_SERVER_H_
#define POLYGUARD_TESTS_RUNTIME_REDIS_SERVER_H_

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace polyguard::testing {

inline sockaddr_in LoopbackAddress(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

inline int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = LoopbackAddress(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// The first of `count` consecutive loopback ports free now, below the
// kernel's ephemeral range (ip_local_port_range), so that no connection's
// port (the peers' own, other tests') can take one of them before the test
// binds it; FreePort's neighbours are ephemeral ports.
inline int FreePortRun(int count) {
  int low = 32768;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%d", &low) != 1) low = 32768;
    std::fclose(f);
  }
  const int first = 10000, last = std::max(first + 1000, low - count);
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int base = first + int(rng() % unsigned(last - first));
    bool free = true;
    for (int i = 0; i < count && free; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = LoopbackAddress(base + i);
      free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      ::close(fd);
    }
    if (free) return base;
  }
  return FreePort();
}

inline bool CanConnect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = LoopbackAddress(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

class RedisServer {
 public:
  static constexpr const char* kBinary = "/usr/bin/redis-server";
  // Starts the server with its working files in `dir`; check ok().
  // With `password`, clients must authenticate (--requirepass).
  explicit RedisServer(const std::string& dir, const std::string& password = "")
      : port_(FreePort()) {
    if (!std::filesystem::exists(kBinary)) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string port = std::to_string(port_);
      std::vector<const char*> args = {kBinary,     "--port", port.c_str(), "--bind",
                                       "127.0.0.1", "--save", "",           "--appendonly",
                                       "no",        "--dir",  dir.c_str()};
      if (!password.empty()) args.insert(args.end(), {"--requirepass", password.c_str()});
      args.push_back(nullptr);
      ::execv(kBinary, const_cast<char* const*>(args.data()));
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !CanConnect(port_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ~RedisServer() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool ok() const { return pid_ > 0 && CanConnect(port_); }
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

}  // namespace polyguard::testing

#endif  // POLYGUARD_TESTS_RUNTIME_REDIS_SERVER_H_
