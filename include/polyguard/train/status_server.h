// StatusServer: a peer's HTTP status endpoint (Boost.Asio + Beast).
//   GET /metrics   Prometheus text format, from the `metrics` callback
//   GET /healthz   "ok"
// Anything else is 404; methods other than GET are 405. Bound to 127.0.0.1
// unless told otherwise.
//
// Contract. The endpoint must never hold up the job it reports on:
//   - Every connection is served asynchronously: a slow or idle client costs
//     a socket and a small buffer, never the attention of the serving thread,
//     so other scrapers are answered meanwhile.
//   - One request per connection (the response says "Connection: close").
//     A client has `request_deadline` from accept to send the whole request,
//     and the same again to take the response; then the server closes the
//     connection (unanswered if the request is incomplete or not HTTP). A
//     request whose header section or body exceeds `max_request_bytes` is
//     answered 431 or 413 and closed.
//   - The destructor never waits on a client: it stops the serving thread
//     (closing the listener and every open connection) and joins it. The only
//     thing it can wait for is a `metrics` call already in progress.
//   - No exceptions cross the API; Start reports failures as a Status.
// Cost: one thread, idle unless a request is being served.
//
// Thread safety: `metrics` is called on the server's thread; it must be safe
// to call concurrently with training (TrainingMetrics below is) and should
// return quickly, since requests are answered one callback at a time. If it
// throws, that request gets a 500.
#ifndef POLYGUARD_TRAIN_STATUS_SERVER_H_
#define POLYGUARD_TRAIN_STATUS_SERVER_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "polyguard/base/status.h"
#include "polyguard/train/trainer.h"

namespace polyguard {

struct StatusServerOptions {
  // Time a client has to send its whole request (and, separately, to take the
  // response). Monitoring scrapers send a few hundred bytes at once; 5 s is
  // ample for them and bounds what a stuck client can hold.
  static constexpr std::chrono::milliseconds kDefaultRequestDeadline{5000};
  // A GET needs well under 1 KiB; 8 KiB is Beast's own default header limit.
  static constexpr std::size_t kDefaultMaxRequestBytes = 8 * 1024;

  std::chrono::milliseconds request_deadline = kDefaultRequestDeadline;  // > 0
  // Bounds the request line plus headers, and separately the body.
  std::size_t max_request_bytes = kDefaultMaxRequestBytes;  // > 0
};

class StatusServer {
 public:
  // port 0 picks a free port (see port()). Unavailable when it cannot bind;
  // InvalidArgument for a bad address, port or option.
  static StatusOr<std::unique_ptr<StatusServer>> Start(const std::string& address, int port,
                                                       std::function<std::string()> metrics,
                                                       StatusServerOptions options = {});
  // Returns promptly whatever clients are doing (see the contract above).
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  int port() const;

  struct Impl;

 private:
  explicit StatusServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What a training peer publishes, updated after every step and rendered as
// Prometheus text.
class TrainingMetrics {
 public:
  explicit TrainingMetrics(int peer) : peer_(peer) {}
  void Update(int64_t step, double loss, double step_seconds, const TrainingCounters& counters);
  std::string Render() const;

 private:
  int peer_;
  mutable std::mutex mu_;
  int64_t step_ = 0;
  double loss_ = 0.0, step_seconds_ = 0.0;
  TrainingCounters counters_;
};

}  // namespace polyguard

#endif  // POLYGUARD_TRAIN_STATUS_SERVER_H_
