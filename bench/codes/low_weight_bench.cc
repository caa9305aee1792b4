// Low-weight codes against a dense MDS code on sparse matrices (issue 8).
//
// For each density, side by side in one run:
//   * per-peer product time (thread CPU time, median over the sampled peers
//     and repeats) of the low-weight code at the bound and of a dense code
//     (every coded block mixes all k blocks: as dense as a Reed-Solomon or
//     polynomial code, with the same random-coefficient design);
//   * nonzeros per coded block of A (and B);
//   * the time the weight predicts: weight x the time of one uncoded block
//     product A_i B_j (median over a few blocks);
//   * time per step at one peer: encode its input piece, multiply, decode C
//     from K results (the decoded product is checked against A B).
//
// Matrix-matrix: C = A^T B with A 12000 x 15000, B 12000 x 13500 as in the
// published experiments (here A is stored transposed, 15000 x 12000), n = 24,
// k_a = 4, k_b = 5. Matrix-vector: the same A times a dense vector, n = 24,
// k_a = 20. --scale s multiplies every dimension (default 1).
//
//   build/bench/low_weight_bench [--scale 0.5] [--densities 0.01,0.02,0.05]
//                                [--peers-sampled 3] [--repeat 2] [--cases mm,mv]
// Every timed product starts with cold caches (EvictCaches).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/help.h"
#include "common/local_peers.h"
#include "polyguard/base/random.h"
#include "polyguard/codes/low_weight_code.h"

namespace polyguard {
namespace {

double ThreadCpuSeconds() { return bench::ThreadCpuMs() / 1e3; }

// Evicts the caches (a 64 MB pass), so that every timed product starts cold,
// as a peer's product does in a step: otherwise a small uncoded block that
// fits in L2 is timed warm against a coded block that does not.
void EvictCaches() {
  static std::vector<double> junk(8 << 20, 1.0);
  volatile double sink = 0.0;
  double sum = 0.0;
  for (size_t i = 0; i < junk.size(); i += 8) sum += junk[i]++;
  sink = sum;
  (void)sink;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

SparseMatrix RandomSparse(int64_t rows, int64_t cols, double density, Random* rng) {
  // Exactly Binomial-many nonzeros per column at random rows.
  std::vector<Eigen::Triplet<double>> t;
  t.reserve(static_cast<size_t>(double(rows) * double(cols) * density * 1.1));
  std::binomial_distribution<int64_t> count(rows, density);
  for (int64_t c = 0; c < cols; ++c) {
    const int64_t k = count(rng->engine());
    for (int64_t i = 0; i < k; ++i)
      t.emplace_back(int(rng->UniformInt(0, rows - 1)), int(c), rng->Normal());
  }
  SparseMatrix m(rows, cols);
  m.setFromTriplets(t.begin(), t.end());
  return m;
}

struct Config {
  double scale = 1.0;
  std::vector<double> densities = {0.01, 0.02, 0.05};
  int peers_sampled = 3;
  int repeat = 2;
  bool matrix_matrix = true, matrix_vector = true;
};

struct CodeRun {
  std::string label;
  double weight = 0;            // w_a w_b
  double nnz_a = 0, nnz_b = 0;  // per coded block, mean over sampled peers
  double product_s = 0;         // per-peer product, median
  double decode_s = 0;          // C from K results, at one peer
  double step_s = 0;            // encode input + product + decode, one peer
  double rel_error = 0;         // decoded vs A B
};

// One code on (A, B): sampled peers' products, then a decode from K peers.
CodeRun RunCode(const std::string& label, const LowWeightCode& code, const SparseMatrix& a,
                const SparseMatrix& b, const Matrix& dense_b, bool sparse_b, const Matrix& want,
                const Config& cfg, Random* rng) {
  CodeRun out;
  out.label = label;
  const LowWeightDesign& d = code.design();
  out.weight = d.weight_a * d.weight_b;
  const int n = code.num_peers(), k = code.recovery_threshold();
  std::vector<int> order = rng->Sample(n, n);
  std::vector<int> decode_peers(order.begin(), order.begin() + k);
  std::vector<double> times;
  std::vector<PeerResult> results;
  double encode_input_s = 0.0;
  int encoded_inputs = 0;
  for (int idx = 0; idx < k; ++idx) {
    const int r = decode_peers[static_cast<size_t>(idx)];
    const bool sampled = idx < cfg.peers_sampled;
    SparseMatrix shard = code.EncodeSparseShard(a, r).value();
    Matrix y;
    if (sparse_b) {
      double t0 = ThreadCpuSeconds();
      SparseMatrix piece = code.EncodeSparseInput(b, r).value();
      encode_input_s += ThreadCpuSeconds() - t0;
      ++encoded_inputs;
      if (sampled) {
        out.nnz_a += double(shard.nonZeros()) / cfg.peers_sampled;
        out.nnz_b += double(piece.nonZeros()) / cfg.peers_sampled;
      }
      for (int rep = 0; rep < (sampled ? cfg.repeat : 1); ++rep) {
        EvictCaches();
        t0 = ThreadCpuSeconds();
        y = code.SparsePeerProduct(shard, piece);
        if (sampled) times.push_back(ThreadCpuSeconds() - t0);
      }
    } else {
      double t0 = ThreadCpuSeconds();
      Matrix piece = code.EncodeInput(dense_b, r).value();
      encode_input_s += ThreadCpuSeconds() - t0;
      ++encoded_inputs;
      if (sampled) out.nnz_a += double(shard.nonZeros()) / cfg.peers_sampled;
      for (int rep = 0; rep < (sampled ? cfg.repeat * 20 : 1); ++rep) {
        EvictCaches();
        t0 = ThreadCpuSeconds();
        y = code.SparsePeerProduct(shard, piece);
        if (sampled) times.push_back(ThreadCpuSeconds() - t0);
      }
    }
    results.push_back({r, std::move(y)});
  }
  out.product_s = Median(times);
  // The second decode is timed: the first also builds the decode plan and
  // maps fresh buffers.
  DecodedProduct decoded = code.Decode(results).value();
  const double t0 = ThreadCpuSeconds();
  decoded = code.Decode(results).value();
  out.decode_s = ThreadCpuSeconds() - t0;
  out.step_s = encode_input_s / encoded_inputs + out.product_s + out.decode_s;
  out.rel_error = (decoded.product - want).norm() / want.norm();
  return out;
}

// Median time of one uncoded block product A_i B_j over a few blocks.
double UncodedBlockSeconds(const SparseMatrix& a, const SparseMatrix& b, const Matrix& dense_b,
                           bool sparse_b, int ka, int kb, const Config& cfg) {
  const int64_t br = (a.rows() + ka - 1) / ka;
  const int64_t bc = (b.cols() + kb - 1) / kb;
  std::vector<double> times;
  for (int i = 0; i < std::min(ka, 3); ++i) {
    const SparseMatrix ai = a.middleRows(i * br, std::min(br, a.rows() - i * br));
    for (int rep = 0; rep < (sparse_b ? cfg.repeat : cfg.repeat * 20); ++rep) {
      if (sparse_b) {
        const int j = i % kb;
        const SparseMatrix bj = b.middleCols(j * bc, std::min(bc, b.cols() - j * bc));
        EvictCaches();
        const double t0 = ThreadCpuSeconds();
        Matrix y = ai * bj;
        times.push_back(ThreadCpuSeconds() - t0);
        if (y.size() == 0) std::abort();
      } else {
        EvictCaches();
        const double t0 = ThreadCpuSeconds();
        Matrix y = ai * dense_b;
        times.push_back(ThreadCpuSeconds() - t0);
        if (y.size() == 0) std::abort();
      }
    }
  }
  return Median(times);
}

void RunCase(const char* title, int64_t rows, int64_t inner, int64_t cols, int n, int ka, int kb,
             bool sparse_b, const Config& cfg) {
  std::printf("\n## %s: A %lld x %lld, B %lld x %lld, n = %d, k_a = %d, k_b = %d\n\n", title,
              (long long)rows, (long long)inner, (long long)inner, (long long)cols, n, ka, kb);
  std::printf(
      "| density | code | weight | nnz/coded block A (B) | product ms | predicted ms | "
      "product/predicted | decode ms | step ms | dense/low product | dense/low step | rel. error "
      "|\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  const ProductShape shape{rows, inner, cols};
  auto low = LowWeightCode::Create(shape, {.peers = n, .k_a = ka, .k_b = kb}).value();
  auto dense = LowWeightCode::Create(
                   shape, {.peers = n, .k_a = ka, .k_b = kb, .weight_a = ka, .weight_b = kb})
                   .value();
  std::fprintf(stderr, "%s\n%s\n", low->Describe().c_str(), dense->Describe().c_str());
  for (double density : cfg.densities) {
    Random rng(DeriveSeed(7, {uint64_t(density * 1e6)}));
    const SparseMatrix a = RandomSparse(rows, inner, density, &rng);
    SparseMatrix b;
    Matrix dense_b;
    if (sparse_b) {
      b = RandomSparse(inner, cols, density, &rng);
    } else {
      dense_b = rng.NormalMatrix(inner, cols);
    }
    const Matrix want = sparse_b ? Matrix(a * b) : Matrix(a * dense_b);
    const double block_s = UncodedBlockSeconds(a, b, dense_b, sparse_b, ka, kb, cfg);
    CodeRun lw = RunCode("lowweight", *low, a, b, dense_b, sparse_b, want, cfg, &rng);
    CodeRun dn = RunCode("dense", *dense, a, b, dense_b, sparse_b, want, cfg, &rng);
    for (const CodeRun* run : {&lw, &dn}) {
      const double predicted = run->weight * block_s;
      char nnz[64];
      if (sparse_b) {
        std::snprintf(nnz, sizeof(nnz), "%.0f (%.0f)", run->nnz_a, run->nnz_b);
      } else {
        std::snprintf(nnz, sizeof(nnz), "%.0f", run->nnz_a);
      }
      std::printf(
          "| %.0f%% | %s | %.0f | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s | %.1e |\n",
          density * 100, run->label.c_str(), run->weight, nnz, run->product_s * 1e3,
          predicted * 1e3, run->product_s / predicted, run->decode_s * 1e3, run->step_s * 1e3,
          run == &lw ? (std::to_string(dn.product_s / lw.product_s).substr(0, 4) + "x").c_str()
                     : "",
          run == &lw ? (std::to_string(dn.step_s / lw.step_s).substr(0, 4) + "x").c_str() : "",
          run->rel_error);
    }
    std::printf("| | one uncoded block product: %.2f ms | | | | | | | | | | |\n", block_s * 1e3);
    std::fflush(stdout);
  }
}

}  // namespace
}  // namespace polyguard

const char kUsage[] =
    "usage: low_weight_bench [--scale S] [--densities D1,D2,...] [--peers-sampled N] "
    "[--repeat R] [--cases mm,mv]\n";

int main(int argc, char** argv) {
  if (polyguard::bench::PrintedHelp(argc, argv, kUsage)) return 0;
  polyguard::Config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "low_weight_bench: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--scale") {
      cfg.scale = std::atof(value().c_str());
    } else if (arg == "--densities") {
      cfg.densities.clear();
      std::string list = value();
      for (size_t pos = 0; pos < list.size();) {
        size_t end = list.find(',', pos);
        if (end == std::string::npos) end = list.size();
        cfg.densities.push_back(std::atof(list.substr(pos, end - pos).c_str()));
        pos = end + 1;
      }
    } else if (arg == "--peers-sampled") {
      cfg.peers_sampled = std::atoi(value().c_str());
    } else if (arg == "--cases") {
      const std::string v = value();
      cfg.matrix_matrix = v.find("mm") != std::string::npos;
      cfg.matrix_vector = v.find("mv") != std::string::npos;
    } else if (arg == "--repeat") {
      cfg.repeat = std::atoi(value().c_str());
    } else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  bool bad = !(cfg.scale > 0.0 && cfg.scale <= 4.0) || cfg.peers_sampled < 1 || cfg.repeat < 1;
  for (double d : cfg.densities) bad = bad || !(d > 0.0 && d <= 1.0);
  if (bad || cfg.densities.empty()) {
    std::fprintf(stderr,
                 "low_weight_bench: scale must be in (0, 4], densities in (0, 1], "
                 "peers-sampled and repeat >= 1\n");
    return 2;
  }
  auto dim = [&](double x) { return static_cast<int64_t>(x * cfg.scale); };
  std::printf("# Low-weight vs dense codes on sparse matrices (scale %.2f)\n", cfg.scale);
  std::printf(
      "Times are thread CPU time of one peer; weight = blocks mixed per product "
      "(w_a w_b); predicted = weight x one uncoded block product.\n");
  if (cfg.matrix_matrix)
    polyguard::RunCase("matrix-matrix C = A^T B", dim(15000), dim(12000), dim(13500), 24, 4, 5,
                       /*sparse_b=*/true, cfg);
  if (cfg.matrix_vector)
    polyguard::RunCase("matrix-vector A^T x", dim(15000), dim(12000), 1, 24, 20, 1,
                       /*sparse_b=*/false, cfg);
  return 0;
}
