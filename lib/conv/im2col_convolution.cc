#include "polyguard/conv/im2col_convolution.h"

#include <cmath>

#include "polyguard/codes/product_mds_code.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard {

Im2ColConvolution::Im2ColConvolution(const ConvShape& shape, int batch, int peers)
    : ProductCode({shape.filters, shape.filter_size() + 1, batch}, peers),
      conv_(shape),
      batch_(batch) {}

StatusOr<std::unique_ptr<Im2ColConvolution>> Im2ColConvolution::Create(const ConvShape& shape,
                                                                       int batch,
                                                                       ProductCodeOptions o) {
  POLYGUARD_RETURN_IF_ERROR(ValidateConvShape(shape));
  if (batch < 1)
    return InvalidArgumentError("im2col convolution: batch must be >= 1, got " +
                                std::to_string(batch));
  if (!CapabilitiesOf(o.strategy).trains) {
    return InvalidArgumentError("im2col convolution: the " + std::string(o.strategy.name()) +
                                " strategy is forward only and cannot train");
  }
  const int64_t spatial = int64_t(shape.out_height()) * shape.out_width();
  o.shape = {shape.filters, shape.filter_size() + 1, spatial * batch};
  POLYGUARD_RETURN_IF_ERROR(UseDefaultProductMdsLayout(&o));
  auto code = std::unique_ptr<Im2ColConvolution>(new Im2ColConvolution(shape, batch, o.peers));
  POLYGUARD_ASSIGN_OR_RETURN(code->inner_, MakeProductCode(o));
  return code;
}

std::string Im2ColConvolution::Describe() const {
  std::string out = inner_->Describe();
  out += " on im2col of conv ";
  out += conv_.Describe();
  return out;
}

StatusOr<Matrix> Im2ColConvolution::Columns(const MatrixRef& input) const {
  if (input.rows() != conv_.input_size() || input.cols() != batch_ || !AllFinite(input)) {
    return InvalidArgumentError(
        "im2col convolution: input must be " + std::to_string(conv_.input_size()) + " x " +
        std::to_string(batch_) + " and finite, got " + std::to_string(input.rows()) + " x " +
        std::to_string(input.cols()));
  }
  const Matrix cols = Im2ColBatch(conv_, input);
  Matrix out(cols.rows() + 1, cols.cols());
  out.topRows(cols.rows()) = cols;
  out.bottomRows(1).setOnes();
  return out;
}

StatusOr<Matrix> Im2ColConvolution::EncodeInput(const MatrixRef& input, int peer) const {
  POLYGUARD_ASSIGN_OR_RETURN(Matrix cols, Columns(input));
  return inner_->EncodeInput(cols, peer);
}

StatusOr<DecodedProduct> Im2ColConvolution::Decode(std::span<const PeerResult> results) const {
  POLYGUARD_ASSIGN_OR_RETURN(DecodedProduct out, inner_->Decode(results));
  out.product = ProductToOutputLayout(conv_, out.product);
  return out;
}

StatusOr<Matrix> Im2ColConvolution::EncodeTransposeInput(const MatrixRef& d, int peer) const {
  if (d.rows() != conv_.output_size() || d.cols() != batch_) {
    return InvalidArgumentError("im2col convolution: the output gradient must be " +
                                std::to_string(conv_.output_size()) + " x " +
                                std::to_string(batch_) + ", got " + std::to_string(d.rows()) +
                                " x " + std::to_string(d.cols()));
  }
  return inner_->EncodeTransposeInput(OutputToProductLayout(conv_, d), peer);
}

StatusOr<DecodedProduct> Im2ColConvolution::DecodeTranspose(
    std::span<const PeerResult> results) const {
  POLYGUARD_ASSIGN_OR_RETURN(DecodedProduct out, inner_->DecodeTranspose(results));
  // Drop the bias row; scatter the columns back onto the input.
  const double columns = double(out.product.size());
  out.product = Col2ImBatch(conv_, out.product.topRows(conv_.filter_size()), batch_);
  // Each input entry sums at most kh kw column entries, so the squared
  // deviation grows at most kh kw times, spread over fewer entries.
  if (out.product.size() > 0) {
    const double grows = std::sqrt(double(conv_.kernel_h) * double(conv_.kernel_w) * columns /
                                   double(out.product.size()));
    out.deviation_bound *= grows;
    out.roundoff_bound *= grows;
  }
  return out;
}

Status Im2ColConvolution::UpdateShard(Matrix* shard, int peer, const MatrixRef& d,
                                      const MatrixRef& x, double eta) const {
  if (d.rows() != conv_.output_size() || d.cols() != x.cols()) {
    return InvalidArgumentError("im2col convolution: update's output gradient must be " +
                                std::to_string(conv_.output_size()) + " x B like the input");
  }
  POLYGUARD_ASSIGN_OR_RETURN(Matrix cols, Columns(x));
  return inner_->UpdateShard(shard, peer, OutputToProductLayout(conv_, d), cols, eta);
}

}  // namespace polyguard
