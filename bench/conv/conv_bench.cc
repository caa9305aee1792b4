// A coded convolution step against the direct convolution, per peer, side by
// side in one run (issue 6): FCDCC (rotation embeddings, 4 small
// convolutions per peer) and Generalized PolyDot on the im2col product (what
// the training layer runs with conv_code "im2col"), both with the bias.
//
// For each layer: thread CPU time of the direct convolution of a batch, and
// at one peer of each coded step: encoding its input piece, its product, and
// decoding the whole output from K results. Ratios to the direct
// convolution; the ideal product share is 1/K (FCDCC) or 1/(mn) (PolyDot).
//
//   build/bench/conv_bench [--repeat 5]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/help.h"
#include "common/local_peers.h"
#include "polyguard/base/random.h"
#include "polyguard/conv/coded_convolution.h"
#include "polyguard/conv/im2col_convolution.h"

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
  int batch, peers, k_a, k_b;  // FCDCC
  int m, n;                    // Generalized PolyDot on the im2col product
};

// The output with a bias per channel.
Matrix ConvWithBias(const ConvShape& s, const Matrix& fb, const Matrix& x) {
  const int64_t fs = s.filter_size(), spatial = int64_t(s.out_height()) * s.out_width();
  Matrix y = Conv2d(s, fb.leftCols(fs), x);
  for (int n = 0; n < s.filters; ++n) y.middleRows(n * spatial, spatial).array() += fb(n, fs);
  return y;
}

// One code's step at one peer (encode, its product, decoding from K
// results), median thread CPU ms over `repeat`, and the decode's error.
struct Step {
  double encode = 0, product = 0, decode = 0, rel = 0;
};

Step Measure(const ProductCode& code, const Matrix& fb, const Matrix& x, const Matrix& want,
             int repeat) {
  std::vector<Matrix> shards;
  for (int r = 0; r < code.num_peers(); ++r) shards.push_back(code.EncodeShard(fb, r).value());
  std::vector<double> encode, product, decode;
  Step out;
  for (int it = 0; it < repeat; ++it) {
    std::vector<PeerResult> results;
    for (int r = 0; r < code.recovery_threshold(); ++r) {
      double t0 = CpuMs();
      const Matrix piece = code.EncodeInput(x, r).value();
      const double t1 = CpuMs();
      Matrix y = code.PeerProduct(shards[size_t(r)], piece);
      const double t2 = CpuMs();
      if (r == 0) {
        encode.push_back(t1 - t0);
        product.push_back(t2 - t1);
      }
      results.push_back({r, std::move(y)});
    }
    const double t0 = CpuMs();
    DecodedProduct d = code.Decode(results).value();
    decode.push_back(CpuMs() - t0);
    out.rel = std::max(out.rel, (d.product - want).norm() / want.norm());
  }
  out.encode = Median(encode);
  out.product = Median(product);
  out.decode = Median(decode);
  return out;
}

template <typename T>
T OrDie(StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, v.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(v).value();
}

void RunLayer(const Layer& layer, int repeat) {
  const ConvShape& s = layer.shape;
  auto fcdcc = OrDie(CodedConvolution::Create(s, {.peers = layer.peers,
                                                  .k_a = layer.k_a,
                                                  .k_b = layer.k_b,
                                                  .batch = layer.batch,
                                                  .bias = true}),
                     layer.name);
  ProductCodeOptions po;
  po.strategy = Strategy::kPolyDot;
  po.peers = layer.peers;
  po.m = layer.m;
  po.n = layer.n;
  auto im2col = OrDie(Im2ColConvolution::Create(s, layer.batch, po), layer.name);
  Random rng(1);
  const Matrix fb = rng.NormalMatrix(s.filters, s.filter_size() + 1);
  const Matrix x = rng.NormalMatrix(s.input_size(), layer.batch);
  std::vector<double> direct;
  Matrix want;
  for (int it = 0; it < repeat; ++it) {
    const double t0 = CpuMs();
    want = ConvWithBias(s, fb, x);
    direct.push_back(CpuMs() - t0);
  }
  const double dm = Median(direct);
  for (const ProductCode* code : {static_cast<const ProductCode*>(fcdcc.get()),
                                  static_cast<const ProductCode*>(im2col.get())}) {
    const Step st = Measure(*code, fb, x, want, repeat);
    const bool is_fcdcc = code == fcdcc.get();
    std::printf(
        "| %s | %s, B=%d | %s P=%d K=%d | %.2f | %.2f (%.3f) | %.2f (%.3f) | %.2f (%.3f) | %.3f | "
        "%.3f | %.1e |\n",
        layer.name, s.Describe().c_str(), layer.batch, is_fcdcc ? "fcdcc" : "im2col genpolydot",
        layer.peers, code->recovery_threshold(), dm, st.encode, st.encode / dm, st.product,
        st.product / dm, st.decode, st.decode / dm, (st.encode + st.product + st.decode) / dm,
        is_fcdcc ? 1.0 / code->recovery_threshold() : 1.0 / (layer.m * layer.n), st.rel);
    std::fflush(stdout);
  }
}

}  // namespace
}  // namespace polyguard

const char kUsage[] = "usage: conv_bench [--repeat R]\n";

int main(int argc, char** argv) {
  if (polyguard::bench::PrintedHelp(argc, argv, kUsage)) return 0;
  int repeat = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--repeat" && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  if (repeat < 1) return 2;
  using polyguard::ConvShape;
  std::printf(
      "| layer | shape | code | direct ms | encode ms (/direct) | peer product ms (/direct) | "
      "decode ms (/direct) | step per peer / direct | ideal product share | rel. error |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  polyguard::RunLayer({"LeNet conv1",
                       ConvShape{.channels = 1,
                                 .height = 28,
                                 .width = 28,
                                 .filters = 6,
                                 .kernel_h = 5,
                                 .kernel_w = 5,
                                 .stride = 1,
                                 .pad = 2},
                       64, 8, 2, 2, 2, 2},
                      repeat);
  polyguard::RunLayer({"LeNet conv2",
                       ConvShape{.channels = 6,
                                 .height = 14,
                                 .width = 14,
                                 .filters = 16,
                                 .kernel_h = 5,
                                 .kernel_w = 5,
                                 .stride = 1,
                                 .pad = 0},
                       64, 8, 2, 2, 2, 2},
                      repeat);
  polyguard::RunLayer({"AlexNet conv1",
                       ConvShape{.channels = 3,
                                 .height = 227,
                                 .width = 227,
                                 .filters = 96,
                                 .kernel_h = 11,
                                 .kernel_w = 11,
                                 .stride = 4,
                                 .pad = 0},
                       8, 20, 4, 4, 4, 4},
                      repeat);
  return 0;
}
