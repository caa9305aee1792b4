// Coded distributed convolution (FCDCC, docs/conv.md §4, §5): APCP input slabs and KCCP
// filter groups encoded with rotation-matrix embedded unit-circle points
// (NSCTC), so that any k_a k_b of P peers' small convolutions decode the
// exact output and wrong ones are located and corrected.
//
// The filters are cut into 2 k_b groups and the input into 2 k_a slabs
// (apcp_kccp.h); groups pair into k_b complex symbols, slabs into k_a.
// Peer r stores two coded filter groups [F~_0; F~_1] = G_F,r applied to the
// groups (rotations R(k_a l theta_r), as the Polynomial code's B side), forms
// two coded slabs [X~_0, X~_1] from the replicated input (rotations
// R(i theta_r)), and computes the 4 convolutions conv(X~_a, F~_b): a bilinear
// map, so its 4 results combine the 4 k_a k_b true blocks conv(slab_u,
// group_v) with the coefficients kron(G_X,r, G_F,r) of rotation_code.h. The
// same decoder therefore applies (LinearCodeDecoder, 4 blocks per peer):
// threshold K = k_a k_b, P - K - 1 wrong peers located under the
// probabilistic model, floor((P - K)/2) in the worst case, and the
// conditioning of unit-circle Vandermonde matrices.
//
// Costs per peer: stores 2/(2 k_b) = 1/k_b of the filters; computes 4
// convolutions of one slab (about 1/k_a of the input's rows, plus the
// kernel overlap) with 1/(2 k_b) of the filters, i.e. 1/(k_a k_b) of the
// layer's work; sends 4 blocks, 1/(k_a k_b) of the output.
//
// Backward (derived in rotation_code.h for MatDot, here over filter groups):
// the input gradient dX = sum_v convT(dY_v, F_v) sums over the 2 k_b
// groups. Peer r encodes dY's channel groups with the shard's exponents
// (D~ = G_F,r applied to them), computes the 4 full-size transposed
// convolutions p_ab = convT(D~_a, F~_b) and sends (p_00 + p_11) and
// (p_10 - p_01): the conjugate family, whose coefficient at exponent 0 has
// real part dX among 2 k_b - 1 exponents k_a (l - l'). Threshold 2 k_b - 1;
// the points must have gcd(k_a, q) = 1 or peers' w = z^k_a collide, so q is
// the smallest such q >= P (P itself when coprime to k_a; at P = 20, k_a = 4:
// q = 21, worst forward condition 1.6e3 instead of 463 at q = P; the
// smallest prime, 23, would give 1.2e4). The filter update is local: F~_b -=
// eta corr(X, D~_b), since the filter gradient is linear in dY.
//
// Bias (options.bias): the stored matrix is [F | b] (N x (C kh kw + 1)), as
// CodedLinear folds b into W. The bias column is coded with its filter
// group, and each coded slab pair carries the coded constant 1 (s_a, the sum
// of its slab coefficients), so a peer adds s_a b~_b to conv(X~_a, F~_b): the
// coded form of conv(slab_u, group_v) + b_v. The bias is decoded, checked,
// updated (by the spatial sums of D~_b) and repaired with the filters.
//
// Scrub and repair: a peer's shard is the filter-side code alone, a
// unit-circle code of k_b complex symbols at w_r = z_r^k_a (distinct since
// gcd(k_a, q) = 1), so any k_b shards regenerate any other (RepairShard,
// sources spread around the circle) and a probe of every shard locates up to
// P - k_b - 1 corrupted ones (probabilistic model).
//
// It is a ProductCode that supports training: the filters are the stored
// "A" (shape() rows = N, inner = C kh kw (+ 1 with the bias)), the batch the
// replicated "B" (cols = B, its rows C H W), and the decoded product is the
// layer's output ((N H' W') x B). So CodedProduct runs it across peers over
// gloo, with the fault points of any product.
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CONV_CODED_CONVOLUTION_H_
#define POLYGUARD_CONV_CODED_CONVOLUTION_H_

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "polyguard/codes/linear_code_decoder.h"
#include "polyguard/codes/product_code.h"
#include "polyguard/conv/apcp_kccp.h"

namespace polyguard {

struct CodedConvolutionOptions {
  int peers = 1;      // P, 1..kMaxPeers
  int k_a = 1;        // complex input symbols: 2 k_a slabs (2 k_a <= H')
  int k_b = 1;        // complex filter symbols: 2 k_b groups (2 k_b <= N)
  int batch = 1;      // B: samples per call (the ProductCode's cols)
  bool bias = false;  // the stored matrix is [F | b] (see above)
  DecoderOptions decoder;
};

class CodedConvolution : public ProductCode {
 public:
  // InvalidArgument names the bad option (shape, too few output rows or
  // filters for the split, K = k_a k_b > P).
  static StatusOr<std::unique_ptr<CodedConvolution>> Create(const ConvShape& shape,
                                                            CodedConvolutionOptions options);

  Strategy strategy() const override { return Strategy::kPolyDot; }
  int recovery_threshold() const override { return options_.k_a * options_.k_b; }
  int errors_corrected_probabilistic() const override;
  int errors_corrected_adversarial() const override;
  int64_t stored_doubles_per_peer() const override;
  int64_t result_doubles_per_peer() const override;
  std::string Describe() const override;
  bool supports_training() const override { return true; }
  int transpose_threshold() const override { return 2 * options_.k_b - 1; }
  int transpose_errors_corrected_probabilistic() const override {
    return std::max(0, num_peers() - transpose_threshold() - 1);
  }
  // q: the points are e^(2 pi i r / q), q the smallest >= P coprime to k_a.
  int point_count() const { return q_; }
  const ConvPartition& partition() const { return partition_; }
  const Matrix& generator() const { return generator_; }

  // Peer r's stored shard: its two coded filter groups stacked, (2 g) x
  // (C kh kw (+ 1)); filters are N x (C kh kw (+ 1)), [F | b] with the bias.
  StatusOr<Matrix> EncodeFilters(const MatrixRef& filters, int peer) const;
  StatusOr<Matrix> EncodeShard(const MatrixRef& filters, int peer) const override {
    return EncodeFilters(filters, peer);
  }
  // Peer r's two coded slabs of a batch ((C H W) x B), side by side:
  // (C Hs (W + 2 pad) (+ 1: the coded constant, with the bias)) x (2 B).
  StatusOr<Matrix> EncodeInput(const MatrixRef& input, int peer) const override;
  // The peer's 4 convolutions; its result, blocks p_00, p_01, p_10, p_11
  // side by side: (g h W') x (4 B).
  Matrix PeerConvolution(const MatrixRef& shard, const MatrixRef& slabs) const;
  Matrix PeerProduct(const MatrixRef& shard, const MatrixRef& slabs) const override {
    return PeerConvolution(shard, slabs);
  }
  // Convolutions narrow per filter block: from the float32 shard's values in
  // double (exact; a shard of filters is small).
  Matrix PeerProductFloat32(const Eigen::MatrixXf& shard, const MatrixRef& slabs) const override {
    return PeerConvolution(shard.cast<double>(), slabs);
  }
  // The layer's output ((N H' W') x B) from any R >= K results (missing
  // peers are erasures), with the peers found wrong. Errors as for
  // ProductCode::Decode.
  StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const override;

  // Peer r's coded output gradient: dY ((N H' W') x B) in 2 k_b channel
  // groups, encoded as the shard: [D~_0, D~_1], (g H' W') x 2B.
  StatusOr<Matrix> EncodeTransposeInput(const MatrixRef& grad_output, int peer) const override;
  // (p_00 + p_11, p_10 - p_01), side by side: (C H W) x 2B.
  Matrix PeerTransposeProduct(const MatrixRef& shard, const MatrixRef& piece) const override;
  Matrix PeerTransposeProductFloat32(const Eigen::MatrixXf& shard,
                                     const MatrixRef& piece) const override {
    return PeerTransposeProduct(shard.cast<double>(), piece);
  }
  // dX ((C H W) x B) from any R >= 2 k_b - 1 results.
  StatusOr<DecodedProduct> DecodeTranspose(std::span<const PeerResult> results) const override;
  // shard -= eta * (coded filter gradient of input x and grad_output d).
  Status UpdateShard(Matrix* shard, int peer, const MatrixRef& grad_output, const MatrixRef& input,
                     double eta) const override;

  // Scrub and repair (see above). A probe is `probe_columns()` random
  // vectors of length inner, so that each of a peer's two blocks gives at
  // least 2P numbers: locating e wrong peers needs that many independent
  // entries, and a block has only g = ceil(N / 2 k_b) rows. RepairSources
  // returns k_b healthy peers spread around the circle; RepairShard rebuilds
  // the target's shard (or velocity) from exactly those.
  int64_t probe_length() const override { return shape().inner * probe_columns(); }
  int probe_columns() const { return (2 * num_peers() + partition_.group - 1) / partition_.group; }
  Vector ProbeShard(const MatrixRef& shard, const Vector& probe) const override;
  StatusOr<std::vector<int>> CheckProbes(std::span<const PeerResult> probes) const override;
  StatusOr<std::vector<int>> RepairSources(int target, std::span<const int> healthy) const override;
  StatusOr<Matrix> RepairShard(int target, std::span<const PeerResult> sources) const override;

 private:
  CodedConvolution(ConvPartition partition, CodedConvolutionOptions options);

  ConvPartition partition_;
  CodedConvolutionOptions options_;
  int q_ = 1;
  ConvShape group_shape_;  // the full convolution with one group's g filters
  Matrix generator_;       // 4P x (2 k_a)(2 k_b), as RotationCode's
  std::unique_ptr<LinearCodeDecoder> decoder_;
  Matrix transpose_generator_;  // 2P x 2(2 k_b - 1): real, imaginary parts
  std::unique_ptr<LinearCodeDecoder> transpose_decoder_;
  Matrix shard_generator_;  // 2P x 2 k_b: peer r's rows RotationEncoder(r, q, k_b, k_a)
  std::unique_ptr<LinearCodeDecoder> shard_decoder_;
  int64_t filter_size_ = 0;  // C kh kw (the shard's columns without the bias)
};

}  // namespace polyguard

#endif  // POLYGUARD_CONV_CODED_CONVOLUTION_H_
