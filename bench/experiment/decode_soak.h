// The decoder soak (polyguard-experiment soak): many random decodes of every
// strategy that decodes, in structured error families, counted per family
// against the decoder's guarantee (errors_and_erasures_decoder.h):
//   (a) at most floor((R - K)/2) wrong results in every entry: exact;
//   (b) at most R - K - 1 wrong results with generic errors: exact;
//   (c) beyond: DataLoss or exact, never a wrong product marked verified.
// "Exact" is against the decode of all P clean results (itself checked
// against the direct product), to the relative error `exact_tolerance`.
// A clean decode (stragglers only) that names a peer is a false positive,
// and a failure of its row.
//
// Float32 (`precision`): the two float32 codes (Generalized PolyDot
// P = 8, m = n = 2, and rotation points P = 20, K = 16; inner dimension
// 256), their results float32 products, in three families: clean (the false
// positives), R - K - 1 dense generic errors of 4,000 rho and up
// (rho = u sqrt(inner), u = 2^-24: the size the decoder's float32 contract
// locates, base/precision.h), and beyond the budget. Exact is then within
// ExactProductTolerance (product_trial.h) of the direct product A B.
#ifndef POLYGUARD_BENCH_EXPERIMENT_DECODE_SOAK_H_
#define POLYGUARD_BENCH_EXPERIMENT_DECODE_SOAK_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "polyguard/base/precision.h"
#include "polyguard/base/status.h"

namespace polyguard::experiment {

struct SoakOptions {
  int64_t decodes = 1000000;
  uint64_t seed = 1;
  // A decoded product within this relative error of the clean one is exact.
  double exact_tolerance = 1e-8;
  // Fresh A and B (and so clean results) every this many decodes of a code.
  int data_every = 64;
  Precision precision = Precision::kFloat64;
  // Only the clean family (stragglers, no errors): a false-positive count.
  bool clean_only = false;
};

// One row per (code, family).
struct SoakRow {
  std::string code, family;
  // 'a', 'b', 'c' (beyond the guarantee), or 'n': generic errors within
  // 10^4 of the tolerance, where locating can fail (DataLoss, never a wrong
  // product) because some of their entries pass as roundoff.
  char guarantee = 'c';
  int64_t decodes = 0;
  int64_t exact = 0;            // verified and within exact_tolerance
  int64_t data_loss = 0;        // DataLoss (an honest refusal)
  int64_t unverified = 0;       // returned unverified (R = K)
  int64_t verified_wrong = 0;   // the failure the decoder must never have
  int64_t false_positives = 0;  // clean decodes that named a peer
  int64_t other = 0;            // any other status
  double worst_exact = 0.0;     // largest relative error among exact decodes
  std::string first_failure;    // a reproducer for the first failure
};

// A decode that broke the guarantee: a verified wrong product anywhere, or
// anything but an exact product inside (a) and (b).
bool Failed(const SoakRow& row);

StatusOr<std::vector<SoakRow>> RunDecodeSoak(
    const SoakOptions& options, const std::function<void(int64_t done)>& progress = nullptr);

// A Markdown table of the rows, and a total line.
std::string FormatSoakTable(const std::vector<SoakRow>& rows);

}  // namespace polyguard::experiment

#endif  // POLYGUARD_BENCH_EXPERIMENT_DECODE_SOAK_H_
