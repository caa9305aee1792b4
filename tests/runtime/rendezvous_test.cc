// The rendezvous (lib/runtime/rendezvous.cc): redis:// URLs with a password
// and a database, the password from the environment, and a real
// redis-server that wants one: refused with a clear message that never shows
// the password, accepted with the right one.
#include "lib/runtime/rendezvous.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "polyguard/runtime/peer_group.h"
#include "runtime/multiprocess.h"
#include "runtime/redis_server.h"

namespace polyguard {
namespace {
namespace rendezvous_test {

using internal::ParseRedisUrl;
using internal::RedactRendezvous;

TEST(Rendezvous, ParsesRedisUrls) {
  auto a = ParseRedisUrl("redis://10.0.0.1");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "10.0.0.1");
  EXPECT_EQ(a->port, 6379);
  EXPECT_EQ(a->db, 0);
  EXPECT_FALSE(a->has_password);
  a = ParseRedisUrl("redis://:s3cret@cluster:7000/2");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "cluster");
  EXPECT_EQ(a->port, 7000);
  EXPECT_EQ(a->db, 2);
  EXPECT_EQ(a->user, "");
  EXPECT_EQ(a->password, "s3cret");
  EXPECT_TRUE(a->has_password);
  a = ParseRedisUrl("redis://peer:p@ss@host");  // the last '@' ends the password
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->user, "peer");
  EXPECT_EQ(a->password, "p@ss");
  EXPECT_EQ(a->host, "host");
}

TEST(Rendezvous, MalformedUrlsAreNamedWithoutThePassword) {
  for (const std::string url :
       {"redis://:s3cret@host:0", "redis://:s3cret@host:x", "redis://:s3cret@host/x",
        "redis://:s3cret@:6379", "redis://s3cret@host", "redis://:@host"}) {
    SCOPED_TRACE(url);
    auto a = ParseRedisUrl(url);
    ASSERT_FALSE(a.ok());
    EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(a.status().message().find("s3cret"), std::string::npos) << a.status();
  }
  EXPECT_EQ(RedactRendezvous("redis://:s3cret@host:1/2"), "redis://:***@host:1/2");
  EXPECT_EQ(RedactRendezvous("redis://peer:s3cret@host"), "redis://peer:***@host");
  EXPECT_EQ(RedactRendezvous("redis://host:1"), "redis://host:1");
  EXPECT_EQ(RedactRendezvous("file:/a@b"), "file:/a@b");
}

// Whatever a mistyped URL looks like, an error that echoes it hides the
// password (found by an adversarial review: each of these was echoed whole).
TEST(Rendezvous, NoRefusedUrlShowsThePassword) {
  for (const std::string url :
       {"redis://:s3cret", "rediss://:s3cret@127.0.0.1:6379", "REDIS://:s3cret@127.0.0.1:6379",
        "Redis://:s3cret@h:1", "redis:/:s3cret@h:1", "redis:s3cret@h:1", "http://:s3cret@h:1",
        "file:redis://:s3cret@h:1", "  redis://:s3cret@h:1", "redis://u:s3cret@h:1/0@other:1",
        "redis://:s3cret@", "redis://h:s3cret/0"}) {
    SCOPED_TRACE(url);
    EXPECT_EQ(RedactRendezvous(url).find("s3cret"), std::string::npos) << RedactRendezvous(url);
    const Status s = CheckRendezvous(url);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.message().find("s3cret"), std::string::npos) << s;
  }
  EXPECT_EQ(RedactRendezvous("redis://h:6379/0"), "redis://h:6379/0");
  EXPECT_EQ(RedactRendezvous("redis://h:x"), "redis://h:***");
}

// A server that accepts connections and never answers (a stopped Redis, or
// something else on the port) is Unavailable within the timeout given, not a
// refused password.
TEST(Rendezvous, ASilentServerIsUnavailableWithinTheTimeout) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 8), 0);  // the kernel completes the handshake; nobody reads
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url = "redis://:s3cret@127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  const auto start = std::chrono::steady_clock::now();
  const Status s = CheckRendezvous(url, std::chrono::milliseconds(500));
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(listener);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("no answer from Redis within 500 ms"), std::string::npos) << s;
  EXPECT_EQ(s.message().find("s3cret"), std::string::npos) << s;
  EXPECT_LT(took, std::chrono::seconds(10));
}

// A real redis-server with --requirepass.
class RedisWithPassword : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshFolder("redis-auth");
    redis_.emplace(dir_, "s3cret");
    ASSERT_TRUE(redis_->ok()) << "redis-server did not start (missing? run scripts/setup)";
    ::unsetenv("POLYGUARD_REDIS_PASSWORD");
  }
  void TearDown() override {
    ::unsetenv("POLYGUARD_REDIS_PASSWORD");
    redis_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string Url(const std::string& credentials) const {
    return "redis://" + credentials + "127.0.0.1:" + std::to_string(redis_->port());
  }
  std::string dir_;
  std::optional<testing::RedisServer> redis_;
};

TEST_F(RedisWithPassword, WithoutThePasswordItSaysWhereToGiveIt) {
  const Status s = CheckRendezvous(Url(""));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("NOAUTH"), std::string::npos) << s;
  EXPECT_NE(s.message().find("POLYGUARD_REDIS_PASSWORD"), std::string::npos) << s;
}

TEST_F(RedisWithPassword, AWrongPasswordIsRefusedAndNeverShown) {
  Status s = CheckRendezvous(Url(":wrong-one@"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("refused the password in the URL"), std::string::npos) << s;
  EXPECT_NE(s.message().find("redis://:***@127.0.0.1:"), std::string::npos) << s;
  EXPECT_EQ(s.message().find("wrong-one"), std::string::npos) << s;
  ::setenv("POLYGUARD_REDIS_PASSWORD", "wrong-two", 1);
  s = CheckRendezvous(Url(""));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("password in POLYGUARD_REDIS_PASSWORD"), std::string::npos) << s;
  EXPECT_EQ(s.message().find("wrong-two"), std::string::npos) << s;
}

TEST_F(RedisWithPassword, TheRightPasswordFromTheUrlOrTheEnvironmentLetsPeersMeet) {
  EXPECT_TRUE(CheckRendezvous(Url(":s3cret@") + "/3").ok());
  ::setenv("POLYGUARD_REDIS_PASSWORD", "s3cret", 1);
  EXPECT_TRUE(CheckRendezvous(Url("")).ok());
  // Two peers meet through it (the password from the URL for one, the
  // environment for the other) and exchange.
  std::vector<std::string> failures(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      PeerGroupOptions o;
      o.rank = r;
      o.size = 2;
      o.rendezvous = r == 0 ? Url(":s3cret@") : Url("");
      o.job_id = "auth";
      o.timeout = std::chrono::seconds(10);
      auto g = PeerGroup::Connect(o);
      if (!g.ok()) return void(failures[size_t(r)] = g.status().ToString());
      auto all = (*g)->AllGather(std::vector<double>{double(r)}, {.step = 1});
      if (!all.ok() || (*all)(0, 1 - r) != double(1 - r)) failures[size_t(r)] = "all-gather";
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures[0], "");
  EXPECT_EQ(failures[1], "");
}

}  // namespace rendezvous_test
}  // namespace
}  // namespace polyguard
