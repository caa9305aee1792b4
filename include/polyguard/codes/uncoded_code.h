// The uncoded baseline: A split into P row blocks, no redundancy.
//
// Threshold K = P; no errors corrected. A NaN or Inf in a result is detected
// (DataLoss naming the peer); any other wrong value passes unnoticed, so the
// product is never marked verified.
// Costs per peer: stores rows*inner/P doubles, sends rows*cols/P.
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CODES_UNCODED_CODE_H_
#define POLYGUARD_CODES_UNCODED_CODE_H_

#include <memory>

#include "polyguard/codes/product_code.h"

namespace polyguard {

class UncodedCode : public ProductCode {
 public:
  static StatusOr<std::unique_ptr<UncodedCode>> Create(ProductShape shape, int peers);

  Strategy strategy() const override { return Strategy::kUncoded; }
  int recovery_threshold() const override { return num_peers(); }
  int errors_corrected_probabilistic() const override { return 0; }
  int errors_corrected_adversarial() const override { return 0; }
  int64_t stored_doubles_per_peer() const override { return block_rows_ * shape().inner; }
  int64_t result_doubles_per_peer() const override { return block_rows_ * shape().cols; }
  std::string Describe() const override { return "uncoded P=" + std::to_string(num_peers()); }

  StatusOr<Matrix> EncodeShard(const MatrixRef& a, int peer) const override;
  StatusOr<Matrix> EncodeInput(const MatrixRef& b, int peer) const override;
  StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const override;

  // Training: A^T D = sum_r A_r^T D_r (every result needed); the update is
  // local; no redundancy, so the scrub finds nothing and nothing is repaired.
  bool supports_training() const override { return true; }
  StatusOr<Matrix> EncodeTransposeInput(const MatrixRef& d, int peer) const override;
  StatusOr<DecodedProduct> DecodeTranspose(std::span<const PeerResult> results) const override;
  Status UpdateShard(Matrix* shard, int peer, const MatrixRef& d, const MatrixRef& x,
                     double eta) const override;
  int64_t probe_length() const override { return shape().inner; }
  StatusOr<std::vector<int>> CheckProbes(std::span<const PeerResult>) const override {
    return std::vector<int>{};
  }

 private:
  UncodedCode(ProductShape shape, int peers);
  int64_t block_rows_ = 0;
};

}  // namespace polyguard

#endif  // POLYGUARD_CODES_UNCODED_CODE_H_
