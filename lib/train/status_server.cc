#include "polyguard/train/status_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sstream>
#include <thread>

namespace polyguard {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct StatusServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::function<std::string()> metrics;
  std::thread thread;

  void Accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;  // closed: the server is stopping
      Serve(std::move(socket));
      Accept();
    });
  }

  // One request per connection, answered on the server's thread.
  void Serve(tcp::socket socket) {
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    boost::system::error_code ec;
    http::read(socket, buffer, request, ec);
    if (ec) return;
    http::response<http::string_body> response;
    response.version(request.version());
    response.keep_alive(false);
    response.set(http::field::server, "polyguard");
    if (request.method() != http::verb::get) {
      response.result(http::status::method_not_allowed);
      response.body() = "only GET\n";
    } else if (request.target() == "/metrics") {
      response.result(http::status::ok);
      response.set(http::field::content_type, "text/plain; version=0.0.4");
      response.body() = metrics();
    } else if (request.target() == "/healthz") {
      response.result(http::status::ok);
      response.set(http::field::content_type, "text/plain");
      response.body() = "ok\n";
    } else {
      response.result(http::status::not_found);
      response.body() = "not found (try /metrics or /healthz)\n";
    }
    response.prepare_payload();
    http::write(socket, response, ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }
};

StatusOr<std::unique_ptr<StatusServer>> StatusServer::Start(const std::string& address, int port,
                                                            std::function<std::string()> metrics) {
  if (port < 0 || port > 65535) return InvalidArgumentError("status server: port " + std::to_string(port) + " out of range");
  auto impl = std::make_unique<Impl>();
  impl->metrics = std::move(metrics);
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) return InvalidArgumentError("status server: bad address '" + address + "'");
  const tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return UnavailableError("status server: cannot listen on " + address + ":" + std::to_string(port) +
                            ": " + ec.message());
  }
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<StatusServer>(new StatusServer(std::move(impl)));
}

StatusServer::StatusServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusServer::~StatusServer() {
  asio::post(impl_->io, [this] {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int StatusServer::port() const { return impl_->acceptor.local_endpoint().port(); }

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
  metric("polyguard_steps_total", "counter", "Steps completed (replays after a rollback count again).", double(counters_.steps));
  metric("polyguard_loss", "gauge", "Loss of the last completed step.", loss_);
  metric("polyguard_step_seconds", "gauge", "Wall time of the last step.", step_seconds_);
  metric("polyguard_faults_injected_total", "counter", "Soft errors injected at this peer.", double(counters_.faults_injected));
  metric("polyguard_wrong_results_total", "counter", "Distinct wrong results located (job-wide, agreed by all peers).", double(counters_.wrong_results));
  metric("polyguard_results_located_by_this_peer_total", "counter", "Wrong results this peer's decodes located (per-peer view).", double(counters_.results_located_by_this_peer));
  metric("polyguard_unverified_decodes_total", "counter", "This peer's decodes that checked nothing (unprotected).", double(counters_.unverified_decodes));
  metric("polyguard_results_corrected_total", "counter", "Wrong results corrected in completed steps.", double(counters_.results_corrected));
  metric("polyguard_uncorrectable_steps_total", "counter", "Step attempts with an uncorrectable decode.", double(counters_.uncorrectable_steps));
  metric("polyguard_recomputations_total", "counter", "Whole-step recomputations.", double(counters_.recomputations));
  metric("polyguard_shard_repairs_total", "counter", "Shards regenerated from healthy peers.", double(counters_.shard_repairs));
  metric("polyguard_rollbacks_total", "counter", "Rollbacks to a verified snapshot.", double(counters_.rollbacks));
  return out.str();
}

}  // namespace polyguard
