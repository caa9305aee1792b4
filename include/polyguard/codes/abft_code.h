// Huang-Abraham checksum ABFT for a product split over P peers.
//
// A is split into P row blocks A_r (zero-padded). Peer r stores A_r with a
// checksum row and column, [A_r, A_r 1; 1^T A_r, 1^T A_r 1], and multiplies
// its first inner columns by B with a checksum column appended, [B, B 1]. Its result carries row
// and column checksums: one wrong entry of a peer's block is located (its row and column disagree
// with the checksums) and corrected; more wrong entries in one block are
// detected (DataLoss naming the peer).
//
// Threshold K = P (no peer is redundant: a missing peer is Unavailable).
// Wrong results corrected: 0 whole results (a soft error that spoils a whole
// result is detected, not corrected, unless it leaves the result consistent
// with its own checksums: all zeros, negated or scaled, which passes as
// verified); one wrong entry per peer's result.
// Training: the transpose product multiplies [A_r^T; (A_r 1)^T] by [D_r, D_r 1],
// so A_r^T D_r carries checksums too and A^T D is their sum; the update
// subtracts eta [D_r; 1^T D_r][X; 1^T X]^T, which keeps every checksum; the
// scrub checks each shard's column checksums through the probe (local: no
// redundancy across peers, so a corrupted shard cannot be regenerated).
// Costs per peer: stores (rows/P + 1) * (inner + 1) doubles, multiplies
// (rows/P + 1 x inner) by (inner x cols + 1), sends (rows/P + 1)(cols + 1).
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CODES_ABFT_CODE_H_
#define POLYGUARD_CODES_ABFT_CODE_H_

#include <memory>

#include "polyguard/codes/product_code.h"

namespace polyguard {

struct AbftOptions {
  int peers = 1;  // P, 1..kMaxPeers
  // A checksum disagrees when it differs from the sum by more than
  // tolerance * (sum of |entries| + |checksum|). Default as the decoder's.
  double tolerance = kFloat64Tolerance;
};

class AbftCode : public ProductCode {
 public:
  static StatusOr<std::unique_ptr<AbftCode>> Create(ProductShape shape, AbftOptions options);

  Strategy strategy() const override { return Strategy::kAbft; }
  int recovery_threshold() const override { return num_peers(); }
  int errors_corrected_probabilistic() const override { return 0; }
  int errors_corrected_adversarial() const override { return 0; }
  int64_t stored_doubles_per_peer() const override {
    return (block_rows_ + 1) * (shape().inner + 1);
  }
  int64_t result_doubles_per_peer() const override {
    return (block_rows_ + 1) * (shape().cols + 1);
  }
  std::string Describe() const override;

  StatusOr<Matrix> EncodeShard(const MatrixRef& a, int peer) const override;
  StatusOr<Matrix> EncodeInput(const MatrixRef& b, int peer) const override;
  Matrix PeerProduct(const MatrixRef& shard, const MatrixRef& piece) const override {
    return Multiply(shard.leftCols(shape().inner), piece);
  }
  Matrix PeerProductFloat32(const Eigen::MatrixXf& shard, const MatrixRef& piece) const override {
    return MultiplyFloat32(shard.leftCols(shape().inner), piece);
  }
  StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const override;

  bool supports_training() const override { return true; }
  StatusOr<Matrix> EncodeTransposeInput(const MatrixRef& d, int peer) const override;
  Matrix PeerTransposeProduct(const MatrixRef& shard, const MatrixRef& piece) const override {
    return Multiply(shard.topRows(block_rows_).transpose(), piece);
  }
  Matrix PeerTransposeProductFloat32(const Eigen::MatrixXf& shard,
                                     const MatrixRef& piece) const override {
    return MultiplyFloat32(shard.topRows(block_rows_).transpose(), piece);
  }
  StatusOr<DecodedProduct> DecodeTranspose(std::span<const PeerResult> results) const override;
  Status UpdateShard(Matrix* shard, int peer, const MatrixRef& d, const MatrixRef& x,
                     double eta) const override;
  int64_t probe_length() const override { return shape().inner + 1; }
  StatusOr<std::vector<int>> CheckProbes(std::span<const PeerResult> probes) const override;

 private:
  AbftCode(ProductShape shape, AbftOptions options);
  // Checks one peer's result (rows x cols of data plus checksums); corrects
  // one wrong entry in place. Returns true when an entry was corrected;
  // DataLoss when more are wrong.
  StatusOr<bool> CheckAndCorrect(Matrix* result, int peer, Eigen::Index rows,
                                 Eigen::Index cols) const;
  // How far, RMS over the data entries, a checked result can be from the
  // true one: a wrong entry passes (or is corrected to within) both its
  // row's and its column's check, tolerance x (sum of |values| + |checksum|)
  // each. Huge values in a row and column let a small entry between them be
  // off by far more than itself (1e80 beside rows of 1e100 came back
  // verified with a bound of 0, adversary s11).
  double DeviationBound(const Matrix& result, Eigen::Index rows, Eigen::Index cols) const;

  AbftOptions options_;
  int64_t block_rows_ = 0;
};

}  // namespace polyguard

#endif  // POLYGUARD_CODES_ABFT_CODE_H_
