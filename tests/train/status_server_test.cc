#include "polyguard/train/status_server.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "train/http_get.h"

namespace polyguard {
namespace {
namespace status_server_test {

using testing::Connect;
using testing::Get;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// False once the server has closed or reset (MSG_NOSIGNAL: no SIGPIPE).
bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(size_t(n));
  }
  return true;
}

struct Received {
  std::string data;
  bool closed = false;  // by the server (EOF or reset), rather than our receive timing out
};

Received ReadUntilClosed(int fd) {
  Received received;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      received.data.append(buffer, size_t(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      received.closed = n == 0 || errno == ECONNRESET;
      return received;
    }
  }
}

// A whole GET with the timeouts above; "" when it cannot connect.
std::string Fetch(int port, const std::string& target) {
  const int fd = Connect(port);
  if (fd < 0) return "";
  SendAll(fd, "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
  const Received received = ReadUntilClosed(fd);
  ::close(fd);
  return received.data;
}

std::string BodyOf(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

// Waits up to 5 s for `flag`; a server that never gets there fails the test.
bool WaitFor(const std::atomic<bool>& flag) {
  const auto start = Clock::now();
  while (!flag) {
    if (Clock::now() - start > 5s) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Resets the connection (so a server blocked writing to it is freed too) and
// marks `fd` closed.
void Abort(int& fd) {
  const linger reset{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  ::close(fd);
  fd = -1;
}

// Destroys `server` and returns the seconds that took. A destructor that waits
// on a client would hang the test instead of failing it, so after 3 s
// `release` aborts the test's clients, which frees such a server.
double TimedDestroy(std::unique_ptr<StatusServer> server, const std::function<void()>& release) {
  const auto start = Clock::now();
  auto done = std::async(std::launch::async, [&server] { server.reset(); });
  if (done.wait_for(3s) != std::future_status::ready) {
    release();
    done.wait();
  }
  return SecondsSince(start);
}

bool Served(const std::string& response) { return response.rfind("HTTP/1.1 200 OK\r\n", 0) == 0; }

TEST(StatusServer, ServesMetricsAndHealth) {
  TrainingMetrics metrics(3);
  TrainingCounters c;
  c.steps = 12;
  c.faults_injected = 5;
  c.results_corrected = 4;
  c.shard_repairs = 1;
  metrics.Update(12, 0.25, 0.01, c);
  auto server = StatusServer::Start("127.0.0.1", 0, [&] { return metrics.Render(); });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  const std::string m = Get(port, "GET", "/metrics");
  EXPECT_NE(m.find("HTTP/1.1 200 OK"), std::string::npos) << m;
  EXPECT_NE(m.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(m.find("# TYPE polyguard_faults_injected_total counter"), std::string::npos);
  EXPECT_NE(m.find("polyguard_faults_injected_total{peer=\"3\"} 5\n"), std::string::npos) << m;
  EXPECT_NE(m.find("polyguard_results_corrected_total{peer=\"3\"} 4\n"), std::string::npos);
  EXPECT_NE(m.find("polyguard_shard_repairs_total{peer=\"3\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("polyguard_loss{peer=\"3\"} 0.25\n"), std::string::npos);
  EXPECT_NE(m.find("polyguard_step{peer=\"3\"} 12\n"), std::string::npos);
  const std::string h = Get(port, "GET", "/healthz");
  EXPECT_NE(h.find("200 OK"), std::string::npos);
  EXPECT_NE(h.find("\r\n\r\nok\n"), std::string::npos) << h;
  EXPECT_NE(Get(port, "GET", "/nothing").find("404 Not Found"), std::string::npos);
  EXPECT_NE(Get(port, "POST", "/metrics").find("405 Method Not Allowed"), std::string::npos);
}

TEST(StatusServer, RefusesBadAddressesAndTakenPorts) {
  EXPECT_EQ(StatusServer::Start("not-an-ip", 0, [] { return std::string(); }).status().code(),
            StatusCode::kInvalidArgument);
  auto first = StatusServer::Start("127.0.0.1", 0, [] { return std::string(); });
  ASSERT_TRUE(first.ok());
  auto second = StatusServer::Start("127.0.0.1", (*first)->port(), [] { return std::string(); });
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("cannot listen on 127.0.0.1:"), std::string::npos);
}

TEST(StatusServer, RefusesBadOptions) {
  StatusServerOptions options;
  options.request_deadline = 0ms;
  EXPECT_EQ(StatusServer::Start(
                "127.0.0.1", 0, [] { return std::string(); }, options)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  options = StatusServerOptions();
  options.max_request_bytes = 0;
  EXPECT_EQ(StatusServer::Start(
                "127.0.0.1", 0, [] { return std::string(); }, options)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusServer::Start("127.0.0.1", 0, nullptr).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(StatusServer, MetricsThatThrowIsA500) {
  auto server = StatusServer::Start(
      "127.0.0.1", 0, []() -> std::string { throw std::runtime_error("no metrics yet"); });
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string m = Fetch((*server)->port(), "/metrics");
  EXPECT_NE(m.find("500 Internal Server Error"), std::string::npos) << m;
  EXPECT_TRUE(Served(Fetch((*server)->port(), "/healthz")));  // and the server goes on
}

// Before: the one thread blocked reading this client, so /metrics waited for
// ever and so did the destructor (and with it the job's exit).
TEST(StatusServer, IdleClientHoldsUpNeitherOthersNorDestruction) {
  // The default 5 s deadline, so that destruction cannot pass by waiting it out.
  auto server = StatusServer::Start("127.0.0.1", 0, [] { return std::string("up 1\n"); });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  int idle = Connect(port);
  ASSERT_GE(idle, 0);

  const auto scrape_start = Clock::now();
  const std::string m = Fetch(port, "/metrics");
  const double scrape_seconds = SecondsSince(scrape_start);
  EXPECT_TRUE(Served(m)) << m;
  EXPECT_EQ(BodyOf(m), "up 1\n");
  std::printf("scrape beside an idle client: %.4f s\n", scrape_seconds);
  EXPECT_LT(scrape_seconds, 2.0);  // liveness, not speed: a stall would be >= 5 s

  const double destroy_seconds = TimedDestroy(std::move(server).value(), [&idle] { Abort(idle); });
  std::printf("destruction with an idle client connected: %.4f s\n", destroy_seconds);
  EXPECT_LT(destroy_seconds, 3.0);
  // The idle client is let go, not left half-open.
  const Received idle_received = ReadUntilClosed(idle);
  EXPECT_TRUE(idle_received.closed);
  EXPECT_EQ(idle_received.data, "");
  ::close(idle);
}

TEST(StatusServer, SlowClientIsCutOffAtTheDeadlineWhileOthersAreServed) {
  StatusServerOptions options;
  options.request_deadline = 500ms;
  auto server = StatusServer::Start(
      "127.0.0.1", 0, [] { return std::string("up 1\n"); }, options);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();

  // A valid request a byte every 50 ms: every read arrives well within the
  // deadline, but the whole request would take ~2 s, four deadlines. (One byte
  // a second against the default 5 s, scaled down to keep the test short.)
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
  std::atomic<bool> started{false}, cut{false};
  size_t sent = 0;
  double cut_seconds = 0;
  Received slow;
  std::thread slow_client([&] {
    const int fd = Connect(port);
    if (fd < 0) {
      cut = started = true;
      return;
    }
    const auto start = Clock::now();
    for (const char c : request) {
      if (!SendAll(fd, std::string_view(&c, 1))) break;
      ++sent;
      started = true;
      pollfd readable{fd, POLLIN, 0};
      if (::poll(&readable, 1, 50) > 0) break;  // answered or closed
    }
    slow = ReadUntilClosed(fd);
    cut_seconds = SecondsSince(start);
    cut = true;
    ::close(fd);
  });
  EXPECT_TRUE(WaitFor(started));
  const std::string m = Fetch(port, "/metrics");
  const bool served_while_slow_open = !cut;
  slow_client.join();

  EXPECT_TRUE(Served(m)) << m;
  EXPECT_TRUE(served_while_slow_open);
  std::printf("slow client cut off after %.3f s, %zu of %zu bytes sent\n", cut_seconds, sent,
              request.size());
  EXPECT_TRUE(slow.closed);
  EXPECT_EQ(slow.data, "");  // closed without an answer
  EXPECT_LT(sent, request.size());
  EXPECT_GE(cut_seconds, 0.4);  // by the deadline, not earlier
  EXPECT_TRUE(Served(Fetch(port, "/healthz")));
}

TEST(StatusServer, HundredConcurrentScrapersAllGetTheWholeBody) {
  // ~60 KiB: more than one write's worth, so partial writes are exercised.
  std::string body;
  for (int i = 0; i < 2000; ++i) {
    body += "polyguard_test_metric{i=\"" + std::to_string(i) + "\"} " + std::to_string(i) + "\n";
  }
  auto server = StatusServer::Start("127.0.0.1", 0, [&body] { return body; });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  constexpr int kScrapers = 100;
  std::vector<std::string> responses(kScrapers);
  std::promise<void> go;
  std::shared_future<void> start = go.get_future().share();
  std::vector<std::thread> scrapers;
  for (int i = 0; i < kScrapers; ++i) {
    scrapers.emplace_back([&, i] {
      start.wait();
      responses[size_t(i)] = Fetch(port, "/metrics");
    });
  }
  const auto t = Clock::now();
  go.set_value();
  for (std::thread& scraper : scrapers) scraper.join();
  std::printf("%d concurrent scrapes: %.3f s\n", kScrapers, SecondsSince(t));
  int whole = 0;
  for (const std::string& response : responses) {
    if (Served(response) && BodyOf(response) == body) ++whole;
  }
  EXPECT_EQ(whole, kScrapers);
}

TEST(StatusServer, OversizedRequestsAreRefusedWithoutHurtingLaterClients) {
  auto server = StatusServer::Start("127.0.0.1", 0, [] { return std::string("up 1\n"); });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  // The server may answer before it has read everything and then close with
  // our bytes unread, which resets the connection: the answer may be lost.
  const auto refused = [](const Received& r, const char* status) {
    return r.closed && (r.data.empty() || r.data.rfind(std::string("HTTP/1.1 ") + status, 0) == 0);
  };
  {
    const int fd = Connect(port);
    ASSERT_GE(fd, 0);
    SendAll(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Padding: " +
                    std::string(1 << 20, 'a') + "\r\n\r\n");
    const Received r = ReadUntilClosed(fd);
    ::close(fd);
    EXPECT_TRUE(refused(r, "431")) << r.closed << " " << r.data.substr(0, 200);
  }
  {
    const int fd = Connect(port);
    ASSERT_GE(fd, 0);
    SendAll(fd, "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048576\r\n\r\n" +
                    std::string(1 << 20, 'b'));
    const Received r = ReadUntilClosed(fd);
    ::close(fd);
    EXPECT_TRUE(refused(r, "413")) << r.closed << " " << r.data.substr(0, 200);
  }
  // A large but reasonable request is still served, and so is a plain one.
  {
    const int fd = Connect(port);
    ASSERT_GE(fd, 0);
    SendAll(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + std::string(4096, 'c') +
                    "\r\n\r\n");
    const Received r = ReadUntilClosed(fd);
    ::close(fd);
    EXPECT_TRUE(Served(r.data)) << r.data;
  }
  EXPECT_EQ(BodyOf(Fetch(port, "/healthz")), "ok\n");
}

TEST(StatusServer, DestructionMidRequestNeitherHangsNorCrashes) {
  {
    // A response far bigger than the socket buffers, to a client that does not
    // read it: the write is still pending when the server goes away. Beside it,
    // a half-sent request and a silent connection.
    const std::string big(32 << 20, 'x');
    std::atomic<bool> asked{false};
    auto server = StatusServer::Start("127.0.0.1", 0, [&] {
      asked = true;
      return big;
    });
    ASSERT_TRUE(server.ok()) << server.status();
    const int port = (*server)->port();
    int reader = Connect(port), partial = Connect(port), silent = Connect(port);
    ASSERT_GE(reader, 0);
    ASSERT_GE(partial, 0);
    ASSERT_GE(silent, 0);
    SendAll(reader, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    SendAll(partial, "GET /metr");
    ASSERT_TRUE(WaitFor(asked));
    std::this_thread::sleep_for(50ms);  // let the write start
    const double seconds = TimedDestroy(std::move(server).value(), [&] {
      for (int* fd : {&reader, &partial, &silent}) Abort(*fd);
    });
    std::printf("destruction mid-write: %.4f s\n", seconds);
    EXPECT_LT(seconds, 3.0);
    const Received r = ReadUntilClosed(reader);
    EXPECT_TRUE(r.closed);
    EXPECT_LT(r.data.size(), big.size());  // cut off, not finished
    EXPECT_TRUE(ReadUntilClosed(partial).closed);
    EXPECT_TRUE(ReadUntilClosed(silent).closed);
    for (const int fd : {reader, partial, silent}) ::close(fd);
  }
  {
    // Destruction during a metrics() call waits for that call, and only that.
    std::atomic<bool> inside{false};
    auto server = StatusServer::Start("127.0.0.1", 0, [&] {
      inside = true;
      std::this_thread::sleep_for(200ms);
      return std::string("late 1\n");
    });
    ASSERT_TRUE(server.ok()) << server.status();
    int fd = Connect((*server)->port());
    ASSERT_GE(fd, 0);
    SendAll(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ASSERT_TRUE(WaitFor(inside));
    const double seconds = TimedDestroy(std::move(server).value(), [&fd] { Abort(fd); });
    std::printf("destruction during a metrics call: %.4f s\n", seconds);
    EXPECT_LT(seconds, 3.0);
    EXPECT_TRUE(ReadUntilClosed(fd).closed);
    ::close(fd);
  }
}

}  // namespace status_server_test
}  // namespace
}  // namespace polyguard
