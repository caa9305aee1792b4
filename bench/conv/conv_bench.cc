// A coded convolution step (FCDCC with rotation embeddings) against the
// direct convolution, per peer, side by side in one run (issue 6).
//
// For each layer: thread CPU time of the direct convolution of a batch, and
// at one peer of the coded step: encoding its two input slabs, its 4 small
// convolutions, and decoding the whole output from K results. Ratios to the
// direct convolution; the ideal per-peer convolution is 1/K of it.
//
//   build/bench/conv_bench [--repeat 5]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/local_peers.h"
#include "polyguard/base/random.h"
#include "polyguard/conv/coded_convolution.h"

namespace polyguard {
namespace {

double CpuMs() { return bench::ThreadCpuMs(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Layer {
  const char* name;
  ConvShape shape;
  int batch, peers, k_a, k_b;
};

void RunLayer(const Layer& layer, int repeat) {
  const ConvShape& s = layer.shape;
  auto code = CodedConvolution::Create(
      s, {.peers = layer.peers, .k_a = layer.k_a, .k_b = layer.k_b, .batch = layer.batch});
  if (!code.ok()) {
    std::fprintf(stderr, "%s: %s\n", layer.name, code.status().ToString().c_str());
    std::exit(1);
  }
  Random rng(1);
  const Matrix f = rng.NormalMatrix(s.filters, s.filter_size());
  const Matrix x = rng.NormalMatrix(s.input_size(), layer.batch);
  std::vector<double> direct, encode, conv, decode;
  Matrix want;
  std::vector<Matrix> shards;
  for (int r = 0; r < layer.peers; ++r) shards.push_back((*code)->EncodeFilters(f, r).value());
  double rel = 0.0;
  for (int it = 0; it < repeat; ++it) {
    double t0 = CpuMs();
    want = Conv2d(s, f, x);
    direct.push_back(CpuMs() - t0);
    std::vector<PeerResult> results;
    const int k = (*code)->recovery_threshold();
    for (int r = 0; r < k; ++r) {
      t0 = CpuMs();
      const Matrix slabs = (*code)->EncodeInput(x, r).value();
      const double t1 = CpuMs();
      Matrix y = (*code)->PeerConvolution(shards[size_t(r)], slabs);
      const double t2 = CpuMs();
      if (r == 0) {
        encode.push_back(t1 - t0);
        conv.push_back(t2 - t1);
      }
      results.push_back({r, std::move(y)});
    }
    t0 = CpuMs();
    DecodedProduct d = (*code)->Decode(results).value();
    decode.push_back(CpuMs() - t0);
    rel = std::max(rel, (d.product - want).norm() / want.norm());
  }
  const double dm = Median(direct), em = Median(encode), cm = Median(conv), de = Median(decode);
  std::printf("| %s | %s, B=%d | P=%d K=%d | %.2f | %.2f (%.3f) | %.2f (%.3f) | %.2f (%.3f) | %.3f | %.3f | %.1e |\n",
              layer.name, s.Describe().c_str(), layer.batch, layer.peers, layer.k_a * layer.k_b, dm,
              em, em / dm, cm, cm / dm, de, de / dm, (em + cm + de) / dm,
              1.0 / (layer.k_a * layer.k_b), rel);
  std::fflush(stdout);
}

}  // namespace
}  // namespace polyguard

int main(int argc, char** argv) {
  int repeat = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--repeat" && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: conv_bench [--repeat R]\n");
      return 2;
    }
  }
  if (repeat < 1) return 2;
  using polyguard::ConvShape;
  std::printf("| layer | shape | code | direct ms | encode ms (/direct) | peer conv ms (/direct) | "
              "decode ms (/direct) | step per peer / direct | ideal conv share 1/K | rel. error |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  polyguard::RunLayer({"LeNet conv1", ConvShape{.channels = 1, .height = 28, .width = 28, .filters = 6,
                       .kernel_h = 5, .kernel_w = 5, .stride = 1, .pad = 2}, 64, 8, 2, 2}, repeat);
  polyguard::RunLayer({"LeNet conv2", ConvShape{.channels = 6, .height = 14, .width = 14, .filters = 16,
                       .kernel_h = 5, .kernel_w = 5, .stride = 1, .pad = 0}, 64, 8, 2, 2}, repeat);
  polyguard::RunLayer({"AlexNet conv1", ConvShape{.channels = 3, .height = 227, .width = 227,
                       .filters = 96, .kernel_h = 11, .kernel_w = 11, .stride = 4, .pad = 0}, 8, 20, 4, 4},
                      repeat);
  return 0;
}
