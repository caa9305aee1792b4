// A systematic real (P, Q) MDS code on the row blocks of A (docs/codes.md §2).
//
// A (rows x inner) is split into Q row blocks A_i (zero-padded). Peer r stores
//   A~_r = sum_i G_ri A_i,   G = V V_s^-1 (P x Q),
// where V is the Vandermonde matrix of the points and V_s its rows at the Q
// systematic peers 0..Q-1 (so G's top Q rows are the identity: those peers
// store A_i itself). Peer r computes A~_r B; any Q results give A B.
//
// Threshold K = Q. Errors: R - Q - 1 corrected under the probabilistic model,
// floor((R - Q)/2) in the worst case (ErrorsAndErasuresDecoder).
// Costs per peer: stores rows*inner/Q doubles, multiplies (rows/Q x inner) by
// (inner x cols), sends rows*cols/Q doubles. The input is not split.
// Numerical safety as for Generalized PolyDot with K = Q (table in
// evaluation_points.h); the systematic peers get well-spread points to keep
// G's parity rows small.
//
// This is the 1-D MDS code for one product; the row/column product-code
// layout used for training (CodeNet) builds on it in the training engine.
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CODES_MDS_CODE_H_
#define POLYGUARD_CODES_MDS_CODE_H_

#include <memory>
#include <vector>

#include "polyguard/codes/product_code.h"

namespace polyguard {

struct MdsOptions {
  int peers = 1;        // P, 1..kMaxPeers
  int data_blocks = 1;  // Q, 1..P
  PointKind points = PointKind::kChebyshev;
  DecoderOptions decoder;
};

// A systematic real (P, Q) MDS code: the first Q peers get evenly spread
// points and identity rows, the others parity rows of G = V V_Q^-1.
struct SystematicMds {
  std::vector<double> points;  // per peer
  Matrix generator;            // P x Q
};
SystematicMds MakeSystematicMds(PointKind kind, int peers, int data_blocks);

class MdsCode : public ProductCode {
 public:
  static StatusOr<std::unique_ptr<MdsCode>> Create(ProductShape shape, MdsOptions options);

  Strategy strategy() const override { return Strategy::kMds; }
  int recovery_threshold() const override { return options_.data_blocks; }
  int errors_corrected_probabilistic() const override;
  int errors_corrected_adversarial() const override;
  int64_t stored_doubles_per_peer() const override { return block_rows_ * shape().inner; }
  int64_t result_doubles_per_peer() const override { return block_rows_ * shape().cols; }
  std::string Describe() const override;

  StatusOr<Matrix> EncodeShard(const MatrixRef& a, int peer) const override;
  StatusOr<Matrix> EncodeInput(const MatrixRef& b, int peer) const override;
  StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const override;

  // P x Q systematic generator.
  const Matrix& generator() const { return generator_; }

 private:
  MdsCode(ProductShape shape, MdsOptions options);

  MdsOptions options_;
  int64_t block_rows_ = 0;
  std::vector<double> points_;  // per peer
  Matrix generator_;
  std::unique_ptr<ErrorsAndErasuresDecoder> decoder_;
};

}  // namespace polyguard

#endif  // POLYGUARD_CODES_MDS_CODE_H_
