#include "lib/runtime/gloo_errors.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/hash_store.h>
#include <gloo/transport/tcp/device.h>

namespace polyguard::internal {
namespace {
namespace gloo_errors_test {

using namespace std::chrono_literals;

// Messages as gloo (the Debian 2022-05 snapshot, and later) writes them:
// GLOO_ERROR_MSG prefixes "[file:line] ".
const char* const kTimeouts[] = {
    // An operation's own timeout (tcp/unbound_buffer.cc): closes every pair.
    "[/build/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 30000ms for recv "
    "operation to complete",
    "[/build/gloo/gloo/transport/tcp/unbound_buffer.cc:133] Timed out waiting 32000ms for send "
    "operation to complete",
    // What the operations pending on the other pairs then see.
    "Application timeout caused pair closure",
    // Rendezvous stores (file_store.cc, hash_store.cc, redis_store.cc).
    "[/build/gloo/gloo/rendezvous/file_store.cc:148] Wait timeout for key(s): [rank_1]",
    // The transport (tcp/pair.h, tcp/pair.cc, tcp/buffer.cc, newer tcp/helpers.h).
    "[/build/gloo/gloo/transport/tcp/pair.h:324] Connect timeout [127.0.0.1]:41234",
    "[/build/gloo/gloo/transport/tcp/pair.cc:574] Read timeout [127.0.0.1]:41234",
    "[/build/gloo/gloo/transport/tcp/pair.cc:370] Write timeout [127.0.0.1]:41234",
    "timed out connecting: Connection timed out",
};

const char* const kFailures[] = {
    "[/build/gloo/gloo/transport/tcp/pair.cc:598] Connection closed by peer [127.0.0.1]:41234",
    "[/build/gloo/gloo/transport/tcp/pair.cc:589] Read error [127.0.0.1]:41234: Connection reset "
    "by peer",
    "[/build/gloo/gloo/transport/tcp/pair.cc:939] Socket closed [127.0.0.1]:41234",
    "[/build/gloo/gloo/transport/tcp/pair.cc:799] connect [127.0.0.1]:41234: Connection refused",
    "[/build/gloo/gloo/transport/tcp/pair.cc:395] writev [127.0.0.1]:41234: Broken pipe",
    "",
};

TEST(GlooErrors, TimeoutsAreDeadlineExceeded) {
  for (const char* message : kTimeouts) {
    EXPECT_EQ(ClassifyGlooError(message), GlooError::kTimeout) << message;
    const Status s = GlooErrorStatus("all-gather (step 1, layer 0, op 0)", message);
    EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << message;
    EXPECT_EQ(s.message(), std::string("all-gather (step 1, layer 0, op 0): ") + message);
  }
}

TEST(GlooErrors, OtherFailuresAreUnavailable) {
  for (const char* message : kFailures) {
    EXPECT_EQ(ClassifyGlooError(message), GlooError::kFailure) << message;
    const Status s = GlooErrorStatus("connect rank 0 of 2 via inproc:x", message);
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << message;
    EXPECT_EQ(s.message(), std::string("connect rank 0 of 2 via inproc:x: ") + message);
  }
}

TEST(GlooErrors, IgnoresCase) {
  EXPECT_EQ(ClassifyGlooError("TIMED OUT"), GlooError::kTimeout);
  EXPECT_EQ(ClassifyGlooError("read TimeOut"), GlooError::kTimeout);
  EXPECT_EQ(ClassifyGlooError("time is out"), GlooError::kFailure);
}

TEST(GlooErrors, TakesTheExceptionsMessage) {
  const std::runtime_error e("[x.cc:1] Timed out waiting 5ms for recv operation to complete");
  EXPECT_EQ(GlooErrorStatus("gather", e).code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(GlooErrorStatus("gather", std::runtime_error("Socket closed")).code(),
            StatusCode::kUnavailable);
}

// The messages of the gloo this build links, produced for real.
TEST(GlooErrors, ClassifiesWhatTheLinkedGlooThrows) {
  auto store = std::make_shared<gloo::rendezvous::HashStore>();
  try {
    store->wait({"never-set"}, 50ms);
    ADD_FAILURE() << "no store timeout";
  } catch (const std::exception& e) {
    EXPECT_EQ(ClassifyGlooError(e.what()), GlooError::kTimeout) << e.what();
  }

  // Two peers; peer 0 waits for a piece peer 1 never sends (gloo's own
  // timeout), which closes the connection under peer 1's pending receive.
  std::string timed_out, closed;
  auto peer = [&](int rank) {
    gloo::transport::tcp::attr attr;
    attr.hostname = "127.0.0.1";
    auto context = std::make_shared<gloo::rendezvous::Context>(rank, 2);
    context->setTimeout(10s);
    std::shared_ptr<gloo::transport::Device> device = gloo::transport::tcp::CreateDevice(attr);
    context->connectFullMesh(*store, device);
    double value = 0;
    auto buffer = context->createUnboundBuffer(&value, sizeof(value));
    buffer->recv(1 - rank, /*slot=*/7);
    try {
      buffer->waitRecv(nullptr, rank == 0 ? 200ms : 10s);
    } catch (const std::exception& e) {
      (rank == 0 ? timed_out : closed) = e.what();
    }
  };
  std::thread other(peer, 1);
  peer(0);
  other.join();
  EXPECT_EQ(ClassifyGlooError(timed_out), GlooError::kTimeout) << timed_out;
  EXPECT_NE(timed_out.find("Timed out"), std::string::npos) << timed_out;
  ASSERT_FALSE(closed.empty());
  EXPECT_EQ(ClassifyGlooError(closed), GlooError::kFailure) << closed;
}

}  // namespace gloo_errors_test
}  // namespace
}  // namespace polyguard::internal
