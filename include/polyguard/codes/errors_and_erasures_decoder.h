// The errors-and-erasures decoder of every evaluation code (codes.md §3).
//
// The R results that arrived form Y = V C + E: V is the R x K generator
// restricted to the answering peers, C the K coefficient blocks (each
// flattened to length L) and E is nonzero only for wrong peers. Peers that did
// not answer are erasures.
//
// What it guarantees, with R results and recovery threshold K:
//   * Probabilistic model (errors drawn from a continuous distribution):
//     up to R - K - 1 wrong results are located and corrected when their
//     error vectors are generic (linearly independent), with probability 1.
//   * Otherwise (e.g. two peers wrong in the same single entry, or L = 1):
//     a per-entry errors-and-erasures decode (Berlekamp-Welch in a Chebyshev
//     basis) corrects floor((R - K)/2) wrong values in every entry.
//   * A result is trusted ("verified") only when at least K + 1 results agree
//     with it. With more errors the decoder returns DataLoss naming the
//     suspect peers; it never returns a wrong product as verified.
//   * With exactly R = K results nothing can be checked: the product is
//     returned with verified = false.
//   * A NaN or Inf in a result marks that peer wrong; it is corrected like any
//     other error.
//
// How: an orthonormal parity check H (H V = 0) gives the syndrome S = H Y =
// H E; the peers whose column of H lies in the span of S are the wrong ones.
// H, the span test and the verification use a Chebyshev-polynomial basis of
// the same code space, so locating errors is well conditioned even where the
// monomial decode is not. Wrong peers are peeled off and the rest re-checked
// until consistent, which handles errors of very different magnitudes.
// Tolerances scale with machine epsilon and with the magnitude of each entry
// across peers (DecoderOptions::tolerance): errors smaller than that are
// indistinguishable from roundoff.
//
// Cost: without errors, one pass over the R results computing (|wanted| + 2)
// combinations of them (memory-bound: about twice the time of reading them);
// with errors add (R - K) x R x L for the syndrome and a QR of the dirty
// syndrome rows.
// Decode plans (parity checks, pseudo-inverses) are cached per set of
// answering peers.
//
// Thread safety: Decode is const and may be called from several threads at
// once; the plan cache is guarded by a mutex.
#ifndef POLYGUARD_CODES_ERRORS_AND_ERASURES_DECODER_H_
#define POLYGUARD_CODES_ERRORS_AND_ERASURES_DECODER_H_

#include <cfloat>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "polyguard/base/matrix.h"
#include "polyguard/base/status.h"

namespace polyguard {

struct DecoderOptions {
  // Relative tolerance. An entry disagrees with the code when its deviation
  // exceeds tolerance x (the RMS magnitude of results + that entry's magnitude
  // across peers). Default 2^15 machine epsilons (about 7e-12): a thousand
  // times the roundoff of the products and encodings that make the results.
  double tolerance = 32768.0 * DBL_EPSILON;
  // Fall back to the per-entry decode when the subspace locator cannot
  // isolate the errors. Default true.
  bool entry_fallback = true;
  // Number of decode plans (one per set of answering peers) kept. Default 4096.
  int cache_capacity = 4096;
};

struct DecodeOutcome {
  // L x |wanted|: column w is the wanted coefficient `wanted[w]`, flattened.
  Matrix coefficients;
  // Sorted ids of the peers whose results disagree with the decoded code word.
  std::vector<int> wrong_peers;
  // True when at least K + 1 results agreed with the decode.
  bool verified = false;
};

class ErrorsAndErasuresDecoder {
 public:
  // points: the P evaluation points (distinct, in [-1, 1]); generator: P x K,
  // row r gives how peer r's result combines the K coefficients (its column
  // space must be that of polynomials of degree < K at the points: monomial
  // or systematic Vandermonde); wanted: which coefficients Decode returns.
  static StatusOr<std::unique_ptr<ErrorsAndErasuresDecoder>> Create(
      std::vector<double> points, Matrix generator, std::vector<int> wanted,
      DecoderOptions options = {});

  // results: L x R, column j is the flattened result of peer `peers[j]`.
  // Errors: InvalidArgument (unknown or duplicated peer, size mismatch),
  // Unavailable (fewer than K results), DataLoss (more errors than can be
  // corrected; the message names the suspect peers).
  StatusOr<DecodeOutcome> Decode(std::span<const int> peers,
                                 const MatrixRef& results) const;

  // The same, without copying: columns[j] points at the `length` numbers of
  // peer peers[j]'s result (e.g. a result matrix's data()). The error-free
  // case reads every result once.
  StatusOr<DecodeOutcome> Decode(std::span<const int> peers,
                                 std::span<const double* const> columns,
                                 int64_t length) const;

  int num_peers() const { return static_cast<int>(points_.size()); }
  int recovery_threshold() const { return static_cast<int>(generator_.cols()); }
  const std::vector<int>& wanted() const { return wanted_; }
  const std::vector<double>& points() const { return points_; }
  const DecoderOptions& options() const { return options_; }

  struct Plan;  // per set of kept peers; defined in the .cc

 private:
  ErrorsAndErasuresDecoder(std::vector<double> points, Matrix generator,
                           std::vector<int> wanted, DecoderOptions options);
  std::shared_ptr<const Plan> GetPlan(uint64_t mask) const;
  StatusOr<DecodeOutcome> DecodeSlow(std::span<const int> peers,
                                     const MatrixRef& results) const;
  // One decode of the answering peers' results (L x R, peer order; `work`
  // with non-finite values zeroed), with the subspace locator or entry by
  // entry only.
  StatusOr<DecodeOutcome> Attempt(const std::vector<int>& answered, const Matrix& original,
                                  const Matrix& work, bool locate) const;
  // Checks peers (known, distinct, one per column, at least K); returns the
  // column of each peer (-1 when it did not answer).
  StatusOr<std::vector<int>> IndexPeers(std::span<const int> peers, size_t columns) const;

  std::vector<double> points_;
  Matrix generator_;
  Matrix chebyshev_;  // P x K Chebyshev basis at the points
  std::vector<int> wanted_;
  DecoderOptions options_;
  mutable std::mutex mu_;
  mutable std::unordered_map<uint64_t, std::shared_ptr<const Plan>> cache_;
};

// Formats peer ids as "1, 4, 7" for messages.
std::string FormatPeers(std::span<const int> peers);

}  // namespace polyguard

#endif  // POLYGUARD_CODES_ERRORS_AND_ERASURES_DECODER_H_
