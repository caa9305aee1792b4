// Coding-core costs per peer, with the uncoded product of the same size in the
// same binary. Names carry the parameters: N (A is N x N), B (batch), P, and
// n (the inner split: 1 is a Polynomial code, 2 Generalized PolyDot).
//   Encode        the per-step input encode at one peer (B~_r)
//   EncodeShard   the one-time shard encode at one peer
//   LocalProduct  shard * piece at one peer
//   RoundoffScale the peer's declared roundoff scale of that product (sent
//                 with its result) from the shard's kept sums: one pass over
//                 the piece
//   ShardAbsSums  those sums, once per change of the shard (one pass over it;
//                 a training step uses them for its forward and transpose
//                 products, so ratios.py counts half of it per product)
//   DecodeClean   decode from all P results, no errors
//   DecodeErrors  decode with the most correctable wrong results (P - K - 1)
//   ReadResults   one pass that only reads the P results (sums them): the
//                 floor of any decode that checks every result
//   Uncoded       the full N x N by N x B product on one core
// bench/codes/ratios.py turns the JSON output into (encode + declared scale +
// decode) / (local product) per case.
#include <benchmark/benchmark.h>

#include "polyguard/polyguard.h"

namespace polyguard {
namespace {

struct Case {
  std::unique_ptr<PolyDotCode> code;
  Matrix a, b, shard, piece;
  std::vector<PeerResult> clean, wrong;
};

// split n = 1 (a Polynomial code) or 2 (Generalized PolyDot), d = 1, and
// m = P / (2 split): P = 8 gives K = 4 or 5, P = 16 gives K = 8 or 9.
Case MakeCase(int64_t n, int64_t batch, int peers, int split) {
  Case c;
  const int m = peers / (2 * split);
  c.code = PolyDotCode::Create({n, n, batch}, {.peers = peers, .m = m, .n = split, .d = 1}).value();
  Random rng(1);
  c.a = rng.NormalMatrix(n, n);
  c.b = rng.NormalMatrix(n, batch);
  for (int p = 0; p < peers; ++p) {
    Matrix shard = c.code->EncodeShard(c.a, p).value();
    Matrix piece = c.code->EncodeInput(c.b, p).value();
    Matrix y = shard * piece;
    if (p == 0) {
      c.shard = shard;
      c.piece = piece;
    }
    c.clean.push_back({p, y});
  }
  c.wrong = c.clean;
  const int errors = c.code->errors_corrected_probabilistic();
  for (int p = 0; p < errors; ++p)
    ApplySoftError(&c.wrong[size_t(p)].value, SoftErrorKind::kDense, 1e-3, &rng);
  return c;
}

void Label(benchmark::State& state, const Case& c) { state.SetLabel(c.code->Describe()); }

void BM_Encode(benchmark::State& state) {
  Case c = MakeCase(state.range(0), state.range(1), int(state.range(2)), int(state.range(3)));
  for (auto _ : state) benchmark::DoNotOptimize(c.code->EncodeInput(c.b, 3));
  Label(state, c);
}

void BM_EncodeShard(benchmark::State& state) {
  Case c = MakeCase(state.range(0), state.range(1), int(state.range(2)), int(state.range(3)));
  for (auto _ : state) benchmark::DoNotOptimize(c.code->EncodeShard(c.a, 3));
  Label(state, c);
}

void BM_LocalProduct(benchmark::State& state) {
  Case c = MakeCase(state.range(0), state.range(1), int(state.range(2)), int(state.range(3)));
  Matrix y(c.shard.rows(), c.piece.cols());
  for (auto _ : state) {
    y.noalias() = c.shard * c.piece;
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * double(c.shard.rows()) * double(c.shard.cols()) * double(c.piece.cols()),
      benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  Label(state, c);
}

void BM_RoundoffScale(benchmark::State& state) {
  Case c = MakeCase(state.range(0), state.range(1), int(state.range(2)), int(state.range(3)));
  const ShardAbsSums sums = AbsSumsOf(c.shard);
  for (auto _ : state) benchmark::DoNotOptimize(RoundoffScale(sums, c.piece));
  Label(state, c);
}

void BM_ShardAbsSums(benchmark::State& state) {
  Case c = MakeCase(state.range(0), state.range(1), int(state.range(2)), int(state.range(3)));
  for (auto _ : state) benchmark::DoNotOptimize(AbsSumsOf(c.shard));
  Label(state, c);
}

void BM_DecodeClean(benchmark::State& state) {
  Case c = MakeCase(state.range(0), state.range(1), int(state.range(2)), int(state.range(3)));
  for (auto _ : state) {
    auto d = c.code->Decode(c.clean);
    if (!d.ok()) state.SkipWithError(d.status().ToString().c_str());
    benchmark::DoNotOptimize(d);
  }
  Label(state, c);
}

void BM_DecodeErrors(benchmark::State& state) {
  Case c = MakeCase(state.range(0), state.range(1), int(state.range(2)), int(state.range(3)));
  for (auto _ : state) {
    auto d = c.code->Decode(c.wrong);
    if (!d.ok() || int(d->wrong_peers.size()) != c.code->errors_corrected_probabilistic())
      state.SkipWithError("decode with errors failed");
    benchmark::DoNotOptimize(d);
  }
  Label(state, c);
}

void BM_ReadResults(benchmark::State& state) {
  Case c = MakeCase(state.range(0), state.range(1), int(state.range(2)), int(state.range(3)));
  for (auto _ : state) {
    double sum = 0.0;
    for (const PeerResult& r : c.clean) sum += r.value.sum();
    benchmark::DoNotOptimize(sum);
  }
  Label(state, c);
}

void BM_Uncoded(benchmark::State& state) {
  Random rng(2);
  const Matrix a = rng.NormalMatrix(state.range(0), state.range(0));
  const Matrix b = rng.NormalMatrix(state.range(0), state.range(1));
  Matrix y(a.rows(), b.cols());
  for (auto _ : state) {
    y.noalias() = a * b;
    benchmark::DoNotOptimize(y.data());
  }
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "B", "P", "n"});
  for (int64_t n : {1024, 4096})
    for (int64_t batch : {1, 64})
      for (int64_t p : {8, 16})
        for (int64_t split : {1, 2}) b->Args({n, batch, p, split});
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_Encode)->Apply(Args);
BENCHMARK(BM_EncodeShard)->Apply(Args)->Iterations(3);
BENCHMARK(BM_LocalProduct)->Apply(Args);
BENCHMARK(BM_RoundoffScale)->Apply(Args);
BENCHMARK(BM_ShardAbsSums)->Apply(Args);
BENCHMARK(BM_DecodeClean)->Apply(Args);
BENCHMARK(BM_DecodeErrors)->Apply(Args);
BENCHMARK(BM_ReadResults)->Apply(Args);
BENCHMARK(BM_Uncoded)
    ->ArgNames({"N", "B"})
    ->Args({1024, 1})
    ->Args({1024, 64})
    ->Args({4096, 1})
    ->Args({4096, 64})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace polyguard

BENCHMARK_MAIN();
