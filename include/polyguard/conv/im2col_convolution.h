// A convolution layer under any strategy of product_code.h, by im2col: the
// layer's output is the plain product [F | b] [im2col(X); 1] (N x (H' W' B)),
// so any ProductCode of that shape (Generalized PolyDot, MDS product layout,
// replication, ABFT, uncoded) protects, trains, scrubs and repairs the
// filters exactly as it does a dense layer's weights. This is the baseline
// beside the coded convolution of coded_convolution.h (FCDCC), and what the
// uncoded, replication, MDS and ABFT strategies run for convolution layers.
//
// The adaptor is itself a ProductCode on the layer's terms: the stored "A"
// is [F | b] (N x (C kh kw + 1)), the replicated "B" the batch ((C H W) x
// B), the decoded product the output ((N H' W') x B), the transpose product
// the input gradient ((C H W) x B), and the update takes the output
// gradient and the batch. Each peer forms the batch's im2col itself (no
// exchange), then runs the inner code's verbs unchanged; thresholds, errors
// corrected and costs are the inner code's (its shape: N x (C kh kw + 1) x
// (H' W' B)).
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CONV_IM2COL_CONVOLUTION_H_
#define POLYGUARD_CONV_IM2COL_CONVOLUTION_H_

#include <memory>
#include <string>

#include "polyguard/codes/product_code.h"
#include "polyguard/conv/convolution.h"

namespace polyguard {

class Im2ColConvolution : public ProductCode {
 public:
  // `inner`: the strategy and its parameters; its shape and peers are set
  // here (the code may not be the low-weight one, which cannot train).
  static StatusOr<std::unique_ptr<Im2ColConvolution>> Create(const ConvShape& shape, int batch,
                                                             ProductCodeOptions inner);

  const ProductCode& inner() const { return *inner_; }
  Strategy strategy() const override { return inner_->strategy(); }
  int recovery_threshold() const override { return inner_->recovery_threshold(); }
  bool decodes_from_any_k() const override { return inner_->decodes_from_any_k(); }
  int errors_corrected_probabilistic() const override {
    return inner_->errors_corrected_probabilistic();
  }
  int errors_corrected_adversarial() const override {
    return inner_->errors_corrected_adversarial();
  }
  int64_t stored_doubles_per_peer() const override { return inner_->stored_doubles_per_peer(); }
  int64_t result_doubles_per_peer() const override { return inner_->result_doubles_per_peer(); }
  std::string Describe() const override;

  StatusOr<Matrix> EncodeShard(const MatrixRef& filters, int peer) const override {
    return inner_->EncodeShard(filters, peer);
  }
  StatusOr<Matrix> EncodeInput(const MatrixRef& input, int peer) const override;
  Matrix PeerProduct(const MatrixRef& shard, const MatrixRef& piece) const override {
    return inner_->PeerProduct(shard, piece);
  }
  Matrix PeerProductFloat32(const Eigen::MatrixXf& shard, const MatrixRef& piece) const override {
    return inner_->PeerProductFloat32(shard, piece);
  }
  StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const override;

  bool supports_training() const override { return inner_->supports_training(); }
  int transpose_threshold() const override { return inner_->transpose_threshold(); }
  int transpose_errors_corrected_probabilistic() const override {
    return inner_->transpose_errors_corrected_probabilistic();
  }
  StatusOr<Matrix> EncodeTransposeInput(const MatrixRef& grad_output, int peer) const override;
  Matrix PeerTransposeProduct(const MatrixRef& shard, const MatrixRef& piece) const override {
    return inner_->PeerTransposeProduct(shard, piece);
  }
  Matrix PeerTransposeProductFloat32(const Eigen::MatrixXf& shard,
                                     const MatrixRef& piece) const override {
    return inner_->PeerTransposeProductFloat32(shard, piece);
  }
  StatusOr<DecodedProduct> DecodeTranspose(std::span<const PeerResult> results) const override;
  Status UpdateShard(Matrix* shard, int peer, const MatrixRef& grad_output, const MatrixRef& input,
                     double eta) const override;

  int64_t probe_length() const override { return inner_->probe_length(); }
  Vector ProbeShard(const MatrixRef& shard, const Vector& probe) const override {
    return inner_->ProbeShard(shard, probe);
  }
  StatusOr<std::vector<int>> CheckProbes(std::span<const PeerResult> probes) const override {
    return inner_->CheckProbes(probes);
  }
  StatusOr<std::vector<int>> RepairSources(int target,
                                           std::span<const int> healthy) const override {
    return inner_->RepairSources(target, healthy);
  }
  StatusOr<Matrix> RepairShard(int target, std::span<const PeerResult> sources) const override {
    return inner_->RepairShard(target, sources);
  }

 private:
  Im2ColConvolution(const ConvShape& shape, int batch, int peers);
  // [im2col(x); 1], checked.
  StatusOr<Matrix> Columns(const MatrixRef& input) const;

  ConvShape conv_;
  int batch_;
  std::unique_ptr<ProductCode> inner_;
};

}  // namespace polyguard

#endif  // POLYGUARD_CONV_IM2COL_CONVOLUTION_H_
