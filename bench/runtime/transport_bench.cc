// What one all-to-all gather costs on gloo's TCP transport, by protocol, side
// by side in one run: what the runtime's transport costs against gloo's raw
// protocols (issue 19: kernel time and wall time of the demo). P local
// processes each send a piece of `len` doubles to every other and wait for
// all P - 1 pieces, G times.
//   peer_group  PeerGroup::AllGather, over its mailboxes (lib/runtime/mailboxes.h)
//   unbound     gloo unbound buffers, as PeerGroup posted them until
//               2026-12-06: each piece is three messages (NOTIFY_SEND_READY,
//               NOTIFY_RECV_READY, data), each a system call and a wake-up of
//               the receiving I/O thread
//   bound       gloo bound buffers registered once (two per peer and
//               direction, by gather parity): one message a piece, received
//               by a long-lived thread per source peer that hands arrivals
//               to the gathering thread, as a transport with K-of-P waits
//               would
//   bound_sync  the same over a connection per direction, the receiving end
//               in gloo's sync mode: the receiver thread reads its socket
//               itself, with no hop through gloo's I/O thread
//
//   transport_bench [--peers P] [--gathers G]      (default P = 8, G = 2000)
// prints CSV: protocol,len,P,cpu_user_ms,cpu_sys_ms,wall_ms per gather and peer
// (whole process: gloo's I/O thread and the receiver threads included).
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/help.h"
#include "common/local_peers.h"
#include "polyguard/polyguard.h"

namespace polyguard {
namespace {

struct Figures {
  double user = 0, sys = 0, wall = 0;
};

// Times the gathers only (not the connection).
class GatherClock {
 public:
  void Start() {
    cpu_ = bench::ProcessCpuMs();
    wall_ = std::chrono::steady_clock::now();
  }
  Figures PerGather(int gathers) const {
    const bench::ProcessCpu used = bench::ProcessCpuMs() - cpu_;
    const double wall =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall_).count();
    return {used.user_ms / gathers, used.sys_ms / gathers, wall / gathers};
  }

 private:
  bench::ProcessCpu cpu_;
  std::chrono::steady_clock::time_point wall_;
};

enum class Protocol { kPeerGroup, kUnbound, kBound, kBoundSync };

// Every peer waits here until all have finished, so that no connection
// closes under a peer still using it.
void StoreBarrier(gloo::rendezvous::FileStore& store, int rank, int p, const std::string& key) {
  store.set(key + std::to_string(rank), std::vector<char>{1});
  std::vector<std::string> keys;
  for (int q = 0; q < p; ++q) keys.push_back(key + std::to_string(q));
  store.wait(keys, std::chrono::seconds(60));
}

// G gathers over bound buffers registered once, two per peer and direction
// by gather parity (send[parity * p + q], recv[parity * p + q]): a
// long-lived receiver thread per source hands arrivals to the gathering
// thread, as a transport with K-of-P waits would. Starts `clock`.
void BoundGathers(const std::vector<std::unique_ptr<gloo::transport::Buffer>>& send,
                  const std::vector<std::unique_ptr<gloo::transport::Buffer>>& recv, int rank,
                  int p, size_t bytes, int gathers, GatherClock* clock) {
  std::mutex mu;
  std::condition_variable arrived;
  std::vector<int> count(size_t(p), 0);  // pieces in from each peer
  std::vector<std::thread> receivers;
  clock->Start();
  for (int q = 0; q < p; ++q) {
    if (q == rank) continue;
    receivers.emplace_back([&, q] {
      for (int g = 0; g < gathers; ++g) {
        recv[size_t((g % 2) * p + q)]->waitRecv();
        std::lock_guard<std::mutex> lock(mu);
        ++count[size_t(q)];
        arrived.notify_one();
      }
    });
  }
  // Two buffers by parity suffice here: a peer sends gather g + 2 only
  // after every piece of g + 1 reached it, so after every peer read g.
  for (int g = 0; g < gathers; ++g) {
    for (int q = 0; q < p; ++q)
      if (q != rank) send[size_t((g % 2) * p + q)]->send(0, bytes);
    std::unique_lock<std::mutex> lock(mu);
    arrived.wait(lock, [&] {
      for (int q = 0; q < p; ++q)
        if (q != rank && count[size_t(q)] <= g) return false;
      return true;
    });
    lock.unlock();
    for (int q = 0; q < p; ++q)
      if (q != rank) send[size_t((g % 2) * p + q)]->waitSend();
  }
  for (std::thread& t : receivers) t.join();
}

// G gathers over raw gloo; returns false on a gloo error.
bool RawGathers(Protocol protocol, int rank, int p, size_t len, int gathers, const std::string& dir,
                Figures* out) {
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = "127.0.0.1";
    auto device = gloo::transport::tcp::CreateDevice(attr);
    gloo::rendezvous::FileStore store(dir);
    auto context = std::make_shared<gloo::rendezvous::Context>(rank, p);
    context->setTimeout(std::chrono::seconds(60));
    context->connectFullMesh(store, device);
    const size_t bytes = len * sizeof(double);
    std::vector<double> mine(len, double(rank));
    // received[parity * p + q]: q's piece of gathers of that parity.
    std::vector<std::vector<double>> received(size_t(2 * p), std::vector<double>(len));
    GatherClock clock;
    if (protocol == Protocol::kUnbound) {
      clock.Start();
      for (int g = 0; g < gathers; ++g) {
        std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> sends, recvs;
        for (int q = 0; q < p; ++q) {
          if (q == rank) continue;
          sends.push_back(context->createUnboundBuffer(mine.data(), bytes));
          sends.back()->send(q, uint64_t(g));
        }
        for (int q = 0; q < p; ++q) {
          if (q == rank) continue;
          recvs.push_back(context->createUnboundBuffer(received[size_t(q)].data(), bytes));
          recvs.back()->recv(q, uint64_t(g));
        }
        for (auto& r : recvs) r->waitRecv();
        for (auto& s : sends) s->waitSend();
      }
    } else if (protocol == Protocol::kBoundSync) {
      // Two contexts, one per direction: on each connection one side only
      // sends (its pair stays asynchronous: gloo's I/O thread finishes a
      // write the socket could not take) and the other only receives, in
      // gloo's sync mode: the receiver thread reads the socket itself, woken
      // by the kernel, with no I/O thread in between.
      std::vector<std::shared_ptr<gloo::rendezvous::Context>> direction;
      for (const char* prefix : {"up", "down"}) {
        gloo::rendezvous::PrefixStore prefixed(prefix, store);
        direction.push_back(std::make_shared<gloo::rendezvous::Context>(rank, p));
        direction.back()->setTimeout(std::chrono::seconds(60));
        direction.back()->connectFullMesh(prefixed, device);
      }
      // "up" carries sends from lower to higher ranks, "down" the others.
      auto sending = [&](int q) { return direction[rank < q ? 0 : 1]; };
      auto receiving = [&](int q) { return direction[q < rank ? 0 : 1]; };
      std::vector<std::unique_ptr<gloo::transport::Buffer>> send(size_t(2 * p)),
          recv(size_t(2 * p));
      for (int q = 0; q < p; ++q) {
        if (q == rank) continue;
        receiving(q)->getPair(q)->setSync(true, false);
        for (int parity = 0; parity < 2; ++parity) {
          const size_t i = size_t(parity * p + q);
          send[i] = sending(q)->getPair(q)->createSendBuffer(parity, mine.data(), bytes);
          recv[i] = receiving(q)->getPair(q)->createRecvBuffer(parity, received[i].data(), bytes);
        }
      }
      BoundGathers(send, recv, rank, p, bytes, gathers, &clock);
    } else {
      // Slot of q's sends to r by parity: both sides compute the same one.
      auto slot = [p](int parity, int from, int to) { return (parity * p + from) * p + to; };
      std::vector<std::unique_ptr<gloo::transport::Buffer>> send(size_t(2 * p)),
          recv(size_t(2 * p));
      for (int parity = 0; parity < 2; ++parity) {
        for (int q = 0; q < p; ++q) {
          if (q == rank) continue;
          auto& pair = context->getPair(q);
          const size_t i = size_t(parity * p + q);
          send[i] = pair->createSendBuffer(slot(parity, rank, q), mine.data(), bytes);
          recv[i] = pair->createRecvBuffer(slot(parity, q, rank), received[i].data(), bytes);
        }
      }
      BoundGathers(send, recv, rank, p, bytes, gathers, &clock);
    }
    *out = clock.PerGather(gathers);
    StoreBarrier(store, rank, p, "done");
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "transport_bench: peer %d: %s\n", rank, e.what());
    return false;
  }
}

int Peer(Protocol protocol, int rank, int p, size_t len, int gathers, const std::string& dir,
         Figures* out) {
  if (protocol == Protocol::kPeerGroup) {
    auto group = bench::ConnectLocalPeer(rank, p, dir, std::chrono::seconds(60));
    if (!group.ok()) return 1;
    const std::vector<double> mine(len, double(rank));
    GatherClock clock;
    clock.Start();
    for (int g = 0; g < gathers; ++g)
      if (!(*group)->AllGather(mine, {.step = g}).ok()) return 2;
    *out = clock.PerGather(gathers);
    return 0;
  }
  return RawGathers(protocol, rank, p, len, gathers, dir, out) ? 0 : 3;
}

}  // namespace
}  // namespace polyguard

int main(int argc, char** argv) {
  using namespace polyguard;
  int p = 8, gathers = 2000;
  const char usage[] = "usage: transport_bench [--peers P] [--gathers G]\n";
  if (bench::PrintedHelp(argc, argv, usage)) return 0;
  if (!bench::ParsedIntFlags(argc, argv, {{"--peers", &p}, {"--gathers", &gathers}}, usage)) {
    return 2;
  }
  if (p < 2 || gathers < 1) {
    std::fputs(usage, stderr);
    return 2;
  }
  std::printf("protocol,len,P,cpu_user_ms,cpu_sys_ms,wall_ms\n");
  const std::pair<Protocol, const char*> protocols[] = {{Protocol::kPeerGroup, "peer_group"},
                                                        {Protocol::kUnbound, "unbound"},
                                                        {Protocol::kBound, "bound"},
                                                        {Protocol::kBoundSync, "bound_sync"}};
  // Piece lengths of the bundled MLP's exchanges (5 x 64 to 128 x 64) and beyond.
  for (size_t len : {320, 4096, 8192, 32768}) {
    for (const auto& [protocol, name] : protocols) {
      auto records = bench::RunLocalPeers<Figures>(
          p, [&, protocol = protocol](int r, const std::string& dir, Figures* out) {
            return Peer(protocol, r, p, len, gathers, dir, out);
          });
      if (!records) {
        std::fprintf(stderr, "transport_bench: a peer failed (%s, len %zu)\n", name, len);
        return 1;
      }
      Figures sum;
      for (const Figures& f : *records) {
        sum.user += f.user;
        sum.sys += f.sys;
        sum.wall += f.wall;
      }
      std::printf("%s,%zu,%d,%.3f,%.3f,%.3f\n", name, len, p, sum.user / p, sum.sys / p,
                  sum.wall / p);
      std::fflush(stdout);
    }
  }
  return 0;
}
