// A coded product step across P local processes against the same product
// uncoded across the same processes (a plain row split plus an all-gather).
// With 2 cores, P processes share the machine, so the primary figures are per
// peer: the CPU time of its own work (encode, product, decode / assemble), the
// CPU of its whole process in user and in kernel mode (the exchange's system
// calls and gloo's I/O thread included), and the bytes it sends and receives;
// wall time per step is reported too.
//
//   runtime_bench [--peers P] [--steps S]     (default P = 8, S = 5)
// prints CSV: mode,N,B,P,cpu_own_ms,cpu_user_ms,cpu_sys_ms,wall_ms,bytes_sent,bytes_received
// (per peer and step, averaged over peers).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/help.h"
#include "common/local_peers.h"
#include "polyguard/polyguard.h"

namespace polyguard {
namespace {

using bench::ProcessCpuMs;
using bench::ThreadCpuMs;

struct Figures {
  double cpu_own = 0, cpu_user = 0, cpu_sys = 0, wall = 0, sent = 0, received = 0;
};

// One peer's run; fills its figures.
int Peer(int rank, int p, int64_t n, int64_t b, int steps, bool coded, const std::string& dir,
         Figures* out) {
  auto group = bench::ConnectLocalPeer(rank, p, dir, std::chrono::seconds(120));
  if (!group.ok()) return 1;
  Random rng(7);
  const Matrix a = rng.NormalMatrix(n, n), x = rng.NormalMatrix(n, b);
  // Coded: m = P / 4, n = 2 (K = P/2 + 1): half the peers are redundancy.
  // Uncoded: a plain row split; its decode is the assembly of the pieces.
  ProductCodeOptions options{.strategy = coded ? Strategy::kPolyDot : Strategy::kUncoded,
                             .shape = {n, n, b},
                             .peers = p,
                             .m = p / 4,
                             .n = 2,
                             .d = 1};
  auto code = MakeProductCode(options).value();
  const Matrix shard = code->EncodeShard(a, rank).value();
  Figures f;
  for (int s = -1; s < steps; ++s) {  // step -1 warms up
    const double c0 = ThreadCpuMs();
    const bench::ProcessCpu p0 = ProcessCpuMs();
    const auto w0 = std::chrono::steady_clock::now();
    const int64_t sent0 = (*group)->bytes_sent(), received0 = (*group)->bytes_received();
    Matrix y = code->PeerProduct(shard, code->EncodeInput(x, rank).value());
    double own = ThreadCpuMs() - c0;
    auto g =
        (*group)->AllGather(std::span<const double>(y.data(), size_t(y.size())), {.step = s + 1});
    if (!g.ok()) return 2;
    const double c1 = ThreadCpuMs();
    std::vector<PeerResult> results;
    for (int q = 0; q < p; ++q) results.push_back({q, g->col(q).reshaped(y.rows(), y.cols())});
    if (!code->Decode(results).ok()) return 3;
    own += ThreadCpuMs() - c1;
    if (s < 0) continue;
    f.cpu_own += own;
    const bench::ProcessCpu used = ProcessCpuMs() - p0;
    f.cpu_user += used.user_ms;
    f.cpu_sys += used.sys_ms;
    f.wall +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count();
    f.sent += double((*group)->bytes_sent() - sent0);
    f.received += double((*group)->bytes_received() - received0);
  }
  for (double* v : {&f.cpu_own, &f.cpu_user, &f.cpu_sys, &f.wall, &f.sent, &f.received})
    *v /= steps;
  *out = f;
  return 0;
}

}  // namespace

using BenchFigures = Figures;
}  // namespace polyguard

int main(int argc, char** argv) {
  using namespace polyguard;
  int p = 8, steps = 5;
  const char usage[] = "usage: runtime_bench [--peers P] [--steps S]\n";
  if (bench::PrintedHelp(argc, argv, usage)) return 0;
  if (!bench::ParsedIntFlags(argc, argv, {{"--peers", &p}, {"--steps", &steps}}, usage)) return 2;
  if (p < 4 || p % 4 != 0 || steps < 1) {
    std::fprintf(stderr, "runtime_bench: --peers must be a multiple of 4, --steps >= 1\n");
    return 2;
  }
  std::printf("mode,N,B,P,cpu_own_ms,cpu_user_ms,cpu_sys_ms,wall_ms,bytes_sent,bytes_received\n");
  for (int64_t n : {1024, 4096}) {
    for (int64_t b : {1, 64}) {
      for (bool coded : {false, true}) {
        auto records = bench::RunLocalPeers<BenchFigures>(
            p, [&](int r, const std::string& dir, BenchFigures* out) {
              return Peer(r, p, n, b, steps, coded, dir, out);
            });
        if (!records) {
          std::fprintf(stderr, "runtime_bench: a peer failed (N=%ld B=%ld)\n", long(n), long(b));
          return 1;
        }
        BenchFigures sum;
        for (const BenchFigures& one : *records) {
          sum.cpu_own += one.cpu_own;
          sum.cpu_user += one.cpu_user;
          sum.cpu_sys += one.cpu_sys;
          sum.wall += one.wall;
          sum.sent += one.sent;
          sum.received += one.received;
        }
        std::printf("%s,%ld,%ld,%d,%.3f,%.3f,%.3f,%.3f,%.0f,%.0f\n",
                    coded ? "genpolydot" : "uncoded", long(n), long(b), p, sum.cpu_own / p,
                    sum.cpu_user / p, sum.cpu_sys / p, sum.wall / p, sum.sent / p,
                    sum.received / p);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
