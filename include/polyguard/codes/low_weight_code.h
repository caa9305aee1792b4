// Sparsity-preserving low-weight codes (docs/codes.md §5) for C = A B with sparse
// A (and B), on n peers with s = n - K stragglers tolerated.
//
// A is split into k_a row blocks A_i, B into k_b column blocks B_j (zero
// padded). Peer r stores A~_r = sum_{i in S_a(r)} a_ri A_i, receives
// B~_r = sum_{j in S_b(r)} b_rj B_j and returns A~_r B~_r, which mixes the
// K = k_a k_b blocks C_ij = A_i B_j with coefficients a_ri b_rj. Any K
// peers' results decode C; more are used to locate and correct wrong ones
// (linear_code_decoder.h). k_b = 1 is the matrix-vector (or matrix times
// replicated batch) case.
//
// Weight. A coded block that mixes w of the blocks has about w times the
// nonzeros of one block (a dense MDS code: k times), and the peer's sparse
// product costs about that many times one block product.
//   * Matrix-vector (k_b = 1): every block must reach s + 1 peers, or s
//     stragglers could hide it, so sum_r |S_a(r)| >= k_a (s + 1) and some
//     peer has weight at least
//         w = ceil(k_a (s + 1) / n).
//     Cyclic supports (peer r takes blocks floor(r k_a / n), ..., + w - 1,
//     mod k_a) meet it with equality.
//   * Matrix-matrix (derived here). Peer r's product mixes
//     w_a(r) w_b(r) blocks C_ij and costs about that many block products.
//     Necessary for any code:
//       (1) block C_ij must reach s + 1 peers:
//           sum_r w_a(r) w_b(r) >= k_a k_b (s + 1);
//       (2) the k_b blocks C_i1..C_ik_b reach only peers with i in S_a(r);
//           after s of them straggle, k_b must remain, so A_i is in at least
//           k_b + s supports:  sum_r w_a(r) >= k_a (k_b + s);
//       (3) the same for B:  sum_r w_b(r) >= k_b (k_a + s).
//     For codes in which every coded block of A has weight w_a and every
//     coded block of B weight w_b (what this file builds, and what keeps
//     every peer's work equal) they give the bound
//         w_a w_b >= ceil(k_a k_b (s + 1) / n),
//         w_a >= ceil(k_a (k_b + s) / n),   w_b >= ceil(k_b (k_a + s) / n);
//     with s >= 1 and k_a, k_b >= 2 the last two force w_a, w_b >= 2, so the
//     product weight is at least 4 even where (1) alone allows less.
//     LowWeightLowerBound returns the pair meeting all three with the least
//     product (then the most balanced). The design reaches it whenever a
//     cyclic family does (searched, verified over every set of K peers) and
//     otherwise takes the next pair and says so in Describe(). Codes whose
//     peers have different weights can have a smaller largest product (n = 5,
//     k_a = k_b = 2: 2 instead of 4, found by exhaustive search in the
//     tests); only (1) bounds them.
//
// Coefficients: Gaussian on the supports; several draws, keeping the one
// with the smallest worst-case condition number over all K-subsets of peers
// (exhaustive up to `max_subsets` subsets, sampled beyond).
//
// Errors corrected: n - K - 1 wrong results under the probabilistic model,
// floor((n - K) / 2) in the worst case (the code is MDS: every K rows of the
// generator are invertible).
//
// Training: a code on row blocks of A says nothing about A^T D, so this
// strategy offers the forward product only (like the 1-D MdsCode):
// supports_training() is false and the training verbs return
// FailedPrecondition. CodedLinear uses it for inference with sparse
// (e.g. pruned) weights.
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CODES_LOW_WEIGHT_CODE_H_
#define POLYGUARD_CODES_LOW_WEIGHT_CODE_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "polyguard/codes/linear_code_decoder.h"
#include "polyguard/codes/product_code.h"

namespace polyguard {

struct LowWeightPair {
  int weight_a = 0;
  int weight_b = 0;
};

// The least weights any code on n peers with k_a x k_b blocks and threshold
// K = k_a k_b can have (header comment). InvalidArgument unless
// 1 <= K <= n.
StatusOr<LowWeightPair> LowWeightLowerBound(int peers, int k_a, int k_b);

struct LowWeightOptions {
  int peers = 1;  // n, 1..kMaxPeers
  int k_a = 1;    // row blocks of A
  int k_b = 1;    // column blocks of B (1: matrix-vector)
  // Weights to use; 0 means the lower bound. A larger weight up to k_a (k_b)
  // gives a denser code (at k: as dense as an MDS code).
  int weight_a = 0, weight_b = 0;
  int draws = 8;                 // coefficient sets tried, >= 1
  uint64_t seed = 0x10e1;        // the coefficients are a pure function of it
  int64_t max_subsets = 100000;  // K-subsets checked exhaustively, at most
  DecoderOptions decoder;
};

// A code design: supports, coefficients and its conditioning.
struct LowWeightDesign {
  int peers = 0, k_a = 0, k_b = 0;
  int weight_a = 0, weight_b = 0;                      // the weights used
  std::vector<std::vector<int>> support_a, support_b;  // per peer, ascending
  Matrix coef_a;                                       // n x k_a, zero off the supports
  Matrix coef_b;                                       // n x k_b
  Matrix generator;              // n x (k_a k_b): row r is kron(coef_a.row(r), coef_b.row(r))
  double worst_condition = 0.0;  // over the K-subsets checked
  bool exhaustive = false;       // every K-subset was checked
};

// Supports at the requested weights (cyclic, searched), then the best of
// `draws` coefficient sets. InvalidArgument names the bad option;
// FailedPrecondition when no cyclic family at those weights decodes from
// every K-subset (then ask for larger weights).
StatusOr<LowWeightDesign> DesignLowWeightCode(const LowWeightOptions& options);

// The largest condition number (2-norm) of the K x K submatrices of a
// generator (n x K) over all row subsets, or over `max_subsets` random ones
// when there are more (then *exhaustive = false). Singular subsets give inf.
// Stops early, returning a value above it, once the worst exceeds stop_above.
double WorstCaseCondition(const Matrix& generator, int64_t max_subsets, uint64_t seed,
                          bool* exhaustive = nullptr,
                          double stop_above = std::numeric_limits<double>::infinity());

class LowWeightCode : public ProductCode {
 public:
  static StatusOr<std::unique_ptr<LowWeightCode>> Create(ProductShape shape,
                                                         LowWeightOptions options);

  Strategy strategy() const override { return Strategy::kLowWeight; }
  int recovery_threshold() const override { return design_.k_a * design_.k_b; }
  int errors_corrected_probabilistic() const override;
  int errors_corrected_adversarial() const override;
  // Dense counts; a sparse shard holds about weight_a x nnz(A) / k_a.
  int64_t stored_doubles_per_peer() const override { return block_rows_ * shape().inner; }
  int64_t result_doubles_per_peer() const override { return block_rows_ * block_cols_; }
  std::string Describe() const override;

  StatusOr<Matrix> EncodeShard(const MatrixRef& a, int peer) const override;
  StatusOr<Matrix> EncodeInput(const MatrixRef& b, int peer) const override;
  StatusOr<SparseMatrix> EncodeSparseShard(const SparseMatrix& a, int peer) const override;
  StatusOr<SparseMatrix> EncodeSparseInput(const SparseMatrix& b, int peer) const override;
  StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const override;

  const LowWeightDesign& design() const { return design_; }

 private:
  LowWeightCode(ProductShape shape, LowWeightDesign design);

  LowWeightDesign design_;
  int64_t block_rows_ = 0, block_cols_ = 0;
  std::unique_ptr<LinearCodeDecoder> decoder_;
};

}  // namespace polyguard

#endif  // POLYGUARD_CODES_LOW_WEIGHT_CODE_H_
