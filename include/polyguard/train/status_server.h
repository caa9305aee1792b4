// StatusServer: a peer's HTTP status endpoint (Boost.Asio + Beast).
//   GET /metrics   Prometheus text format, from the `metrics` callback
//   GET /healthz   "ok"
// Anything else is 404; methods other than GET are 405. Bound to 127.0.0.1
// unless told otherwise. Serves on its own thread until destroyed.
//
// Thread safety: `metrics` is called on the server's thread; it must be safe
// to call concurrently with training (TrainingMetrics below is).
#ifndef POLYGUARD_TRAIN_STATUS_SERVER_H_
#define POLYGUARD_TRAIN_STATUS_SERVER_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "polyguard/base/status.h"
#include "polyguard/train/trainer.h"

namespace polyguard {

class StatusServer {
 public:
  // port 0 picks a free port (see port()). Unavailable when it cannot bind.
  static StatusOr<std::unique_ptr<StatusServer>> Start(const std::string& address, int port,
                                                       std::function<std::string()> metrics);
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
