#include "polyguard/train/status_server.h"

#include <gtest/gtest.h>

#include "train/http_get.h"

namespace polyguard {
namespace {

using testing::Get;

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

}  // namespace
}  // namespace polyguard
