// r-fold replication with agreement voting.
//
// A is split into g = P / r row blocks (zero-padded); peer p stores block
// p mod g, so block b is held by peers b, b + g, b + 2g, ... Every peer
// computes its block times B. A block is trusted when at least two of its
// copies agree and no other group of copies is as large; copies that
// disagree with it are reported wrong.
//
// Threshold: any K = P - r + 1 results cover every block.
// Errors (per block of r copies; all P answering):
//   probabilistic model: r - 2 wrong copies of one block (two honest copies
//     still agree, wrong ones agree with nothing); adversarial: floor((r-1)/2).
//   With r = 2 a disagreement is detected (DataLoss) but not corrected; a
//   block with a single answering copy is returned unverified.
// Costs per peer: stores r*rows*inner/P doubles, sends r*rows*cols/P.
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CODES_REPLICATION_CODE_H_
#define POLYGUARD_CODES_REPLICATION_CODE_H_

#include <memory>
#include <string>

#include "polyguard/codes/product_code.h"

namespace polyguard {

struct ReplicationOptions {
  int peers = 1;     // P, a multiple of replicas
  int replicas = 2;  // r >= 1
  // Two copies agree when every entry differs by at most
  // tolerance * (|x| + |y| + s), s the lower median of the copies' RMS
  // values (a wrong copy cannot widen it). Default as the decoder's.
  double tolerance = kFloat64Tolerance;
};

class ReplicationCode : public ProductCode {
 public:
  static StatusOr<std::unique_ptr<ReplicationCode>> Create(ProductShape shape,
                                                           ReplicationOptions options);

  Strategy strategy() const override { return Strategy::kReplication; }
  int recovery_threshold() const override { return num_peers() - options_.replicas + 1; }
  int errors_corrected_probabilistic() const override { return std::max(0, options_.replicas - 2); }
  int errors_corrected_adversarial() const override { return (options_.replicas - 1) / 2; }
  int64_t stored_doubles_per_peer() const override { return block_rows_ * shape().inner; }
  int64_t result_doubles_per_peer() const override { return block_rows_ * shape().cols; }
  std::string Describe() const override;

  StatusOr<Matrix> EncodeShard(const MatrixRef& a, int peer) const override;
  StatusOr<Matrix> EncodeInput(const MatrixRef& b, int peer) const override;
  StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const override;

  // Training: A^T D sums the voted copies of each block's A_b^T D_b; the
  // update is local; the scrub votes on the probes of each block's replicas,
  // and a corrupted replica is copied from a healthy one.
  bool supports_training() const override { return true; }
  int transpose_threshold() const override { return recovery_threshold(); }
  int transpose_errors_corrected_probabilistic() const override {
    return errors_corrected_probabilistic();
  }
  StatusOr<Matrix> EncodeTransposeInput(const MatrixRef& d, int peer) const override;
  StatusOr<DecodedProduct> DecodeTranspose(std::span<const PeerResult> results) const override;
  Status UpdateShard(Matrix* shard, int peer, const MatrixRef& d, const MatrixRef& x,
                     double eta) const override;
  int64_t probe_length() const override { return shape().inner; }
  StatusOr<std::vector<int>> CheckProbes(std::span<const PeerResult> probes) const override;
  StatusOr<std::vector<int>> RepairSources(int target, std::span<const int> healthy) const override;
  StatusOr<Matrix> RepairShard(int target, std::span<const PeerResult> sources) const override;

  int groups() const { return groups_; }

 private:
  // The value most copies agree on (entry by entry the median of those
  // copies: the first of them may be a liar within the agreement's
  // tolerance); the others join `wrong`. *bound: the RMS over entries of how
  // far the value can be from an honest copy among them (twice the agreement
  // tolerance: a liar agreeing with the group moves small entries by up to
  // tolerance x the copies' RMS, adversary s11), 0 with a single copy.
  StatusOr<Matrix> Vote(std::span<const PeerResult* const> copies, const std::string& what,
                        std::vector<int>* wrong, bool* verified, double* bound) const;
  StatusOr<std::vector<std::vector<const PeerResult*>>> Copies(std::span<const PeerResult> results,
                                                               int64_t rows, int64_t cols) const;
  std::string BlockName(int block) const;
  ReplicationCode(ProductShape shape, ReplicationOptions options);

  ReplicationOptions options_;
  int groups_ = 1;
  int64_t block_rows_ = 0;
};

}  // namespace polyguard

#endif  // POLYGUARD_CODES_REPLICATION_CODE_H_
