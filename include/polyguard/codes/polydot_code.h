// Generalized PolyDot codes (docs/codes.md §1) for C = A * B with A stored.
//
// A (rows x inner) is split into an m x n grid of blocks A_ij, B (inner x
// cols) into n x d blocks B_kl; sizes that do not divide are zero-padded.
// Peer r, with evaluation point a_r, stores and computes
//   shard   A~_r = sum_ij A_ij a_r^(n*i + j)
//   piece   B~_r = sum_kl B_kl a_r^((n-1-k) + m*n*l)
//   result  A~_r B~_r, a matrix polynomial of degree m*n*d + n - 2 whose
//           coefficient of a^(n*i + n-1 + m*n*l) is the block C_il.
// Special cases: n = 1 is a Polynomial code (K = m*d), m = d = 1 is MatDot
// (K = 2n - 1).
//
// Thresholds and errors corrected, with R of the P peers answering:
//   forward   K = m*n*d + n - 1
//   transpose A^T D from the same shard: K_t = m*n*d + m*n - n (2mn - n at d = 1)
//   errors: R - K - 1 located and corrected under the probabilistic model
//           (generic errors), floor((R - K)/2) in the worst case
//           (ErrorsAndErasuresDecoder).
// Costs per peer: stores rows*inner/(m*n) doubles (an uncoded 1/(mn) split);
// multiplies a (rows/m x inner/n) block by an (inner/n x cols/d) block; sends
// rows*cols/(m*d) doubles (forward) or inner*cols/(n*d) (transpose).
// Encoding B~_r is O(inner * cols) per peer; the decode's cost is in
// errors_and_erasures_decoder.h.
// Numerically safe (relative error <= ~1e-10 even from exactly K results) for
// P <= 16 with Chebyshev points; at P = 20 to 24 when a few more than K answer.
// Table in evaluation_points.h.
//
// Coded update (SGD on the coded A, no re-encoding): A_ij -= eta D_i X_j^T
// becomes at every peer the local rank-B update
//   A~_r -= eta (sum_i D_i a_r^(n*i)) (sum_j X_j a_r^j)^T.
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CODES_POLYDOT_CODE_H_
#define POLYGUARD_CODES_POLYDOT_CODE_H_

#include <algorithm>
#include <memory>

#include "polyguard/codes/product_code.h"

namespace polyguard {

struct PolyDotOptions {
  int peers = 1;            // P, 1..kMaxPeers, at least K
  int m = 1, n = 1, d = 1;  // splits, each >= 1
  PointKind points = PointKind::kChebyshev;
  DecoderOptions decoder;
};

class PolyDotCode : public ProductCode {
 public:
  static StatusOr<std::unique_ptr<PolyDotCode>> Create(ProductShape shape, PolyDotOptions options);

  Strategy strategy() const override { return Strategy::kPolyDot; }
  int recovery_threshold() const override { return forward_threshold_; }
  int errors_corrected_probabilistic() const override;
  int errors_corrected_adversarial() const override;
  int64_t stored_doubles_per_peer() const override { return block_rows_ * block_inner_; }
  int64_t result_doubles_per_peer() const override { return block_rows_ * block_cols_; }
  std::string Describe() const override;

  StatusOr<Matrix> EncodeShard(const MatrixRef& a, int peer) const override;
  StatusOr<Matrix> EncodeInput(const MatrixRef& b, int peer) const override;
  StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const override;

  // --- Training: A^T D from the same shard (D is rows x cols; needs P >=
  // transpose_threshold(), else FailedPrecondition), the coded update
  // A -= eta D X^T on one shard, and the scrub: the shard is one evaluation
  // of W(a) = sum_ij A_ij a^(n*i + j), so every peer's shard times the same
  // probe is a code word of degree mn - 1 (threshold mn), checked by the
  // locator; a corrupted shard is interpolated from mn healthy ones. ---
  bool supports_training() const override { return true; }
  int transpose_threshold() const override { return transpose_threshold_; }
  int transpose_errors_corrected_probabilistic() const override {
    return std::max(0, num_peers() - transpose_threshold_ - 1);
  }
  StatusOr<Matrix> EncodeTransposeInput(const MatrixRef& d, int peer) const override;
  StatusOr<DecodedProduct> DecodeTranspose(std::span<const PeerResult> results) const override;
  Status UpdateShard(Matrix* shard, int peer, const MatrixRef& d, const MatrixRef& x,
                     double eta) const override;
  int64_t probe_length() const override { return block_inner_; }
  StatusOr<std::vector<int>> CheckProbes(std::span<const PeerResult> probes) const override;
  StatusOr<std::vector<int>> RepairSources(int target, std::span<const int> healthy) const override;
  StatusOr<Matrix> RepairShard(int target, std::span<const PeerResult> sources) const override;

  int m() const { return options_.m; }
  int n() const { return options_.n; }
  int d() const { return options_.d; }
  const std::vector<double>& points() const { return points_; }

 private:
  PolyDotCode(ProductShape shape, PolyDotOptions options);
  double Power(int peer, int exponent) const;
  StatusOr<DecodedProduct> DecodeWith(const ErrorsAndErasuresDecoder& decoder,
                                      std::span<const PeerResult> results, int64_t block_r,
                                      int64_t block_c, int grid_r, int grid_c, int64_t out_r,
                                      int64_t out_c) const;

  PolyDotOptions options_;
  std::vector<double> points_;
  int forward_threshold_ = 0;    // K
  int transpose_threshold_ = 0;  // K_t
  int64_t block_rows_ = 0, block_inner_ = 0, block_cols_ = 0;
  std::unique_ptr<ErrorsAndErasuresDecoder> forward_decoder_;
  std::unique_ptr<ErrorsAndErasuresDecoder> transpose_decoder_;  // null if P < K_t
  std::unique_ptr<ErrorsAndErasuresDecoder> shard_decoder_;      // null if P <= mn
};

}  // namespace polyguard

#endif  // POLYGUARD_CODES_POLYDOT_CODE_H_
