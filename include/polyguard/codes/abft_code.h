// Huang-Abraham checksum ABFT for a product split over P peers.
//
// A is split into P row blocks A_r (zero-padded). Peer r stores A_r with a
// checksum row appended, [A_r; 1^T A_r], and multiplies by B with a checksum
// column appended, [B, B 1]. Its result carries row and column checksums:
// one wrong entry of a peer's block is located (its row and column disagree
// with the checksums) and corrected; more wrong entries in one block are
// detected (DataLoss naming the peer).
//
// Threshold K = P (no peer is redundant: a missing peer is Unavailable).
// Wrong results corrected: 0 whole results (a soft error that spoils a whole
// result is detected, not corrected); one wrong entry per peer's result.
// Costs per peer: stores (rows/P + 1) * inner doubles, multiplies
// (rows/P + 1 x inner) by (inner x cols + 1), sends (rows/P + 1)(cols + 1).
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CODES_ABFT_CODE_H_
#define POLYGUARD_CODES_ABFT_CODE_H_

#include <cfloat>
#include <memory>

#include "polyguard/codes/product_code.h"

namespace polyguard {

struct AbftOptions {
  int peers = 1;  // P, 1..64
  // A checksum disagrees when it differs from the sum by more than
  // tolerance * (sum of |entries| + |checksum|). Default as the decoder's.
  double tolerance = 32768.0 * DBL_EPSILON;
};

class AbftCode : public ProductCode {
 public:
  static StatusOr<std::unique_ptr<AbftCode>> Create(ProductShape shape, AbftOptions options);

  Strategy strategy() const override { return Strategy::kAbft; }
  int recovery_threshold() const override { return num_peers(); }
  int errors_corrected_probabilistic() const override { return 0; }
  int errors_corrected_adversarial() const override { return 0; }
  int64_t stored_doubles_per_peer() const override { return (block_rows_ + 1) * shape().inner; }
  int64_t result_doubles_per_peer() const override { return (block_rows_ + 1) * (shape().cols + 1); }
  std::string Describe() const override;

  StatusOr<Matrix> EncodeShard(const MatrixRef& a, int peer) const override;
  StatusOr<Matrix> EncodeInput(const MatrixRef& b, int peer) const override;
  StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const override;

 private:
  AbftCode(ProductShape shape, AbftOptions options);
  // Checks one peer's result; corrects one wrong entry in place.
  // Returns true when an entry was corrected; DataLoss when more are wrong.
  StatusOr<bool> CheckAndCorrect(Matrix* result, int peer) const;

  AbftOptions options_;
  int64_t block_rows_ = 0;
};

}  // namespace polyguard

#endif  // POLYGUARD_CODES_ABFT_CODE_H_
