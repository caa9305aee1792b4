#include "polyguard/train/status_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <sstream>
#include <thread>
#include <utility>

namespace polyguard {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

using Response = http::response<http::string_body>;

Response Reply(http::status status, unsigned version, const char* content_type, std::string body) {
  Response response(status, version);
  response.set(http::field::content_type, content_type);
  response.body() = std::move(body);
  return response;
}

// One connection, one request. Owned by the handlers of its pending operations
// (shared_from_this), so it lives exactly as long as there is something to do
// for it, and goes away with them if the io_context is stopped and destroyed.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const std::function<std::string()>& metrics,
          const StatusServerOptions& options)
      : stream_(std::move(socket)), metrics_(metrics), options_(options) {}

  void Run() {
    const std::size_t limit = options_.max_request_bytes;
    parser_.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limit, std::numeric_limits<std::uint32_t>::max())));
    parser_.body_limit(static_cast<std::uint64_t>(limit));
    // One deadline for the whole request rather than per read: a client
    // trickling a byte at a time must not keep the connection open.
    stream_.expires_after(options_.request_deadline);
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](error_code ec, std::size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(error_code ec) {
    if (ec == http::error::header_limit) {
      return Send(Reply(http::status::request_header_fields_too_large, 11, "text/plain",
                        "request header too large\n"));
    }
    if (ec == http::error::body_limit) {
      return Send(
          Reply(http::status::payload_too_large, 11, "text/plain", "request body too large\n"));
    }
    // Timed out, closed, reset or not HTTP: nobody to answer usefully.
    if (ec) return;
    Send(Answer(parser_.get()));
  }

  Response Answer(const http::request<http::string_body>& request) const {
    const unsigned version = request.version();
    if (request.method() != http::verb::get) {
      return Reply(http::status::method_not_allowed, version, "text/plain", "only GET\n");
    }
    if (request.target() == "/metrics") {
      try {
        return Reply(http::status::ok, version, "text/plain; version=0.0.4", metrics_());
      } catch (const std::exception& e) {
        return Reply(http::status::internal_server_error, version, "text/plain",
                     std::string("metrics failed: ") + e.what() + "\n");
      } catch (...) {
        return Reply(http::status::internal_server_error, version, "text/plain",
                     "metrics failed\n");
      }
    }
    if (request.target() == "/healthz") {
      return Reply(http::status::ok, version, "text/plain", "ok\n");
    }
    return Reply(http::status::not_found, version, "text/plain",
                 "not found (try /metrics or /healthz)\n");
  }

  void Send(Response response) {
    response_ = std::move(response);
    response_.set(http::field::server, "polyguard");
    response_.keep_alive(false);
    response_.prepare_payload();
    // A client that never reads its response is cut off too.
    stream_.expires_after(options_.request_deadline);
    http::async_write(stream_, response_, [self = shared_from_this()](error_code ec, std::size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(error_code ec) {
    // Send FIN; the socket closes when the last handler releases the session.
    if (!ec) stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request_parser<http::string_body> parser_;
  Response response_;
  const std::function<std::string()>& metrics_;
  const StatusServerOptions& options_;
};

}  // namespace

struct StatusServer::Impl {
  // Declared before `io` so they outlive the sessions that io's destruction
  // releases.
  std::function<std::string()> metrics;
  StatusServerOptions options;
  int port = 0;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;  // the acceptor was closed
      if (ec) {
        // Out of descriptors, say: try again shortly rather than spin, or stop
        // serving for good.
        accept_retry.expires_after(std::chrono::milliseconds(100));
        accept_retry.async_wait([this](error_code wait_ec) {
          if (!wait_ec) Accept();
        });
        return;
      }
      Accept();
      std::make_shared<Session>(std::move(socket), metrics, options)->Run();
    });
  }

  void Serve() {
    // A handler that throws (bad_alloc, in practice) loses its connection, not
    // the server, and must not reach std::thread (std::terminate). After
    // io.stop(), run() returns normally.
    for (;;) {
      try {
        io.run();
        return;
      } catch (...) {
      }
    }
  }
};

StatusOr<std::unique_ptr<StatusServer>> StatusServer::Start(const std::string& address, int port,
                                                            std::function<std::string()> metrics,
                                                            StatusServerOptions options) {
  if (port < 0 || port > 65535) {
    return InvalidArgumentError("status server: port " + std::to_string(port) + " out of range");
  }
  if (!metrics) return InvalidArgumentError("status server: no metrics callback");
  if (options.request_deadline <= std::chrono::milliseconds::zero()) {
    return InvalidArgumentError("status server: request_deadline must be positive");
  }
  if (options.max_request_bytes == 0) {
    return InvalidArgumentError("status server: max_request_bytes must be positive");
  }
  try {
    auto impl = std::make_unique<Impl>();
    impl->metrics = std::move(metrics);
    impl->options = options;
    error_code ec;
    const auto ip = asio::ip::make_address(address, ec);
    if (ec) return InvalidArgumentError("status server: bad address '" + address + "'");
    const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
    impl->acceptor.open(endpoint.protocol(), ec);
    if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) impl->acceptor.bind(endpoint, ec);
    if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) impl->port = impl->acceptor.local_endpoint(ec).port();
    if (ec) {
      return UnavailableError("status server: cannot listen on " + address + ":" +
                              std::to_string(port) + ": " + ec.message());
    }
    impl->Accept();
    // Own the Impl before the thread exists, so that a failure below still
    // ends in ~StatusServer, which stops and joins.
    std::unique_ptr<StatusServer> server(new StatusServer(std::move(impl)));
    Impl* raw = server->impl_.get();
    server->impl_->thread = std::thread([raw] { raw->Serve(); });
    return server;
  } catch (const std::exception& e) {
    return UnavailableError(std::string("status server: ") + e.what());
  } catch (...) {
    return UnavailableError("status server: unknown failure while starting");
  }
}

StatusServer::StatusServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusServer::~StatusServer() {
  // Stop rather than close and drain: run() returns as soon as the handler in
  // progress (at worst a metrics() call) is done, whatever the clients do.
  // Then ~Impl closes the acceptor and destroys the io_context, which destroys
  // the pending handlers and with them every session and its socket.
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int StatusServer::port() const { return impl_->port; }

void TrainingMetrics::Update(int64_t step, double loss, double step_seconds,
                             const TrainingCounters& counters) {
  std::lock_guard<std::mutex> lock(mu_);
  step_ = step;
  loss_ = loss;
  step_seconds_ = step_seconds;
  counters_ = counters;
}

std::string TrainingMetrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream out;
  out.precision(10);
  const std::string label = "{peer=\"" + std::to_string(peer_) + "\"}";
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
        << name << label << " " << value << "\n";
  };
  metric("polyguard_step", "gauge", "Last completed training step.", double(step_));
  metric("polyguard_steps_total", "counter",
         "Steps completed (replays after a rollback count again).", double(counters_.steps));
  metric("polyguard_loss", "gauge", "Loss of the last completed step.", loss_);
  metric("polyguard_step_seconds", "gauge", "Wall time of the last step.", step_seconds_);
  metric("polyguard_faults_injected_total", "counter", "Soft errors injected at this peer.",
         double(counters_.faults_injected));
  metric("polyguard_wrong_results_total", "counter",
         "Distinct wrong results located (job-wide, agreed by all peers).",
         double(counters_.wrong_results));
  metric("polyguard_results_located_by_this_peer_total", "counter",
         "Wrong results this peer's decodes located (per-peer view).",
         double(counters_.results_located_by_this_peer));
  metric("polyguard_unverified_decodes_total", "counter",
         "This peer's decodes that checked nothing (unprotected).",
         double(counters_.unverified_decodes));
  metric("polyguard_results_corrected_total", "counter",
         "Wrong results corrected in completed steps.", double(counters_.results_corrected));
  metric("polyguard_uncorrectable_steps_total", "counter",
         "Step attempts with an uncorrectable decode.", double(counters_.uncorrectable_steps));
  metric("polyguard_recomputations_total", "counter", "Whole-step recomputations.",
         double(counters_.recomputations));
  metric("polyguard_shard_repairs_total", "counter", "Shards regenerated from healthy peers.",
         double(counters_.shard_repairs));
  metric("polyguard_rollbacks_total", "counter", "Rollbacks to a verified snapshot.",
         double(counters_.rollbacks));
  metric("polyguard_peers_lost_total", "counter",
         "Peers lost and survived as erasures (survive_crashes).", double(counters_.peers_lost));
  metric("polyguard_generation", "gauge", "The peer group's generation (re-formed after a loss).",
         double(counters_.generation));
  metric("polyguard_peers_present", "gauge", "Peers taking part now.",
         double(counters_.peers_present));
  metric("polyguard_degraded_steps_total", "counter", "Steps completed with fewer than P peers.",
         double(counters_.degraded_steps));
  metric("polyguard_rejoins_total", "counter", "Replacements admitted and rebuilt (job-wide).",
         double(counters_.rejoins));
  metric("polyguard_rebuild_bytes_total", "counter",
         "Bytes sent to rebuild replacements' shards (job-wide).", double(counters_.rebuild_bytes));
  metric("polyguard_rebuild_seconds_total", "counter",
         "Seconds this peer spent admitting replacements and rebuilding shards.",
         counters_.rebuild_seconds);
  return out.str();
}

}  // namespace polyguard
