#include "polyguard/nn/coded_conv2d.h"

#include <algorithm>
#include <string>

#include "polyguard/codes/strategy_registry.h"
#include "polyguard/conv/coded_convolution.h"
#include "polyguard/conv/im2col_convolution.h"

namespace polyguard {

PoolShape PoolAfter(const ConvShape& c, int pool, int pool_stride) {
  PoolShape p;
  p.channels = c.filters;
  p.height = c.out_height();
  p.width = c.out_width();
  p.size = pool;
  p.stride = pool_stride > 0 ? pool_stride : pool;
  return p;
}

int64_t Conv2dLayerOutputs(const CodedConv2dOptions& o) {
  if (o.pool == 0) return o.conv.output_size();
  return PoolAfter(o.conv, o.pool, o.pool_stride).output_size();
}

Status ValidateCodedConv2dOptions(const CodedConv2dOptions& o) {
  POLYGUARD_RETURN_IF_ERROR(ValidateConvShape(o.conv));
  if (o.batch < 1)
    return InvalidArgumentError("conv layer: batch must be >= 1, got " + std::to_string(o.batch));
  if (o.pool < 0 || o.pool_stride < 0)
    return InvalidArgumentError("conv layer: pool and pool_stride must be >= 0");
  if (o.pool > 0) {
    POLYGUARD_RETURN_IF_ERROR(ValidatePoolShape(PoolAfter(o.conv, o.pool, o.pool_stride))
                                  .WithContext("conv layer " + o.conv.Describe() + " pooling"));
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<ProductCode>> MakeCodedConv2dCode(const CodedConv2dOptions& o, int peers) {
  ProductCodeOptions code = o.code;
  code.peers = peers;
  if (o.fcdcc && CapabilitiesOf(code.strategy).coded_convolution) {
    // The inner dimensions: a filter's C kh kw + 1 (forward) and N kh kw
    // (the input gradient).
    const int64_t inner = std::max<int64_t>(
        o.conv.filter_size() + 1, int64_t(o.conv.filters) * o.conv.kernel_h * o.conv.kernel_w);
    CodedConvolutionOptions co{.peers = code.peers,
                               .k_a = code.k_a,
                               .k_b = code.k_b,
                               .batch = o.batch,
                               .bias = true,
                               .decoder = DecoderForPrecision(code.decoder, code.precision, inner)};
    POLYGUARD_ASSIGN_OR_RETURN(auto c, CodedConvolution::Create(o.conv, co));
    c->set_precision(code.precision);
    return std::unique_ptr<ProductCode>(std::move(c));
  }
  POLYGUARD_ASSIGN_OR_RETURN(auto c, Im2ColConvolution::Create(o.conv, o.batch, code));
  c->set_precision(code.precision);  // its inner code computes; this packs the results
  return std::unique_ptr<ProductCode>(std::move(c));
}

StatusOr<std::unique_ptr<CodedConv2d>> CodedConv2d::Create(const CodedConv2dOptions& o,
                                                           PeerGroup* group, FaultInjector* faults,
                                                           const MatrixRef& initial) {
  if (group == nullptr) return InvalidArgumentError("conv layer: no peer group");
  const std::string what = "conv layer " + std::to_string(o.layer);
  POLYGUARD_RETURN_IF_ERROR(ValidateCodedConv2dOptions(o).WithContext(what));
  if (initial.rows() != o.conv.filters || initial.cols() != o.conv.filter_size() + 1) {
    return InvalidArgumentError(
        what + ": initial filters must be N x (C kh kw + 1) = " + std::to_string(o.conv.filters) +
        " x " + std::to_string(o.conv.filter_size() + 1) + " ([F | b]), got " +
        std::to_string(initial.rows()) + " x " + std::to_string(initial.cols()));
  }
  auto layer = std::unique_ptr<CodedConv2d>(new CodedConv2d());
  layer->options_ = o;
  if (o.pool > 0) layer->pool_ = PoolAfter(o.conv, o.pool, o.pool_stride);
  auto made = MakeCodedConv2dCode(o, group->size());
  if (!made.ok()) return made.status().WithContext(what);
  std::unique_ptr<ProductCode> wide;
  if (o.code.precision == Precision::kFloat32) {
    CodedConv2dOptions w = o;
    w.code = WideCodeOptions(o.code);
    auto wide_made = MakeCodedConv2dCode(w, group->size());
    if (!wide_made.ok()) return wide_made.status().WithContext(what);
    wide = std::move(wide_made).value();
  }
  POLYGUARD_RETURN_IF_ERROR(layer->InitTraining(what, group, faults, std::move(made).value(),
                                                initial, o.product, o.layer, std::move(wide)));
  return layer;
}

StatusOr<Matrix> CodedConv2d::Forward(const MatrixRef& x, int64_t step) {
  if (x.rows() != options_.conv.input_size() || x.cols() != options_.batch) {
    return InvalidArgumentError("conv layer " + std::to_string(options_.layer) + ": input is " +
                                std::to_string(x.rows()) + " x " + std::to_string(x.cols()) +
                                ", expected " + std::to_string(options_.conv.input_size()) + " x " +
                                std::to_string(options_.batch));
  }
  input_ = x;
  // After a failed decode s_ is zero: pool it anyway, so that the step's
  // Backward (every peer still runs it) finds window maxima of this batch.
  const Status product = ForwardProduct(step, options_.conv.output_size());
  Matrix a = Activate(options_.activation, s_);
  if (options_.pool > 0) {
    Matrix pooled;
    MaxPool2d(pool_, a, &pooled, &argmax_);
    a = std::move(pooled);
  }
  if (!product.ok()) return product;
  if (faults_ != nullptr) faults_->MaybeCorrupt(step, options_.layer, StepPoint::kActivation, &a);
  return a;
}

StatusOr<Matrix> CodedConv2d::Backward(const MatrixRef& grad_output, int64_t step,
                                       bool need_input_gradient) {
  if (grad_output.rows() != outputs() || grad_output.cols() != options_.batch || s_.size() == 0) {
    return FailedPreconditionError("conv layer " + std::to_string(options_.layer) +
                                   ": Backward needs a Forward of the same batch first and a " +
                                   std::to_string(outputs()) + " x " +
                                   std::to_string(options_.batch) + " output gradient");
  }
  const Matrix da =
      options_.pool > 0 ? MaxPool2dBackward(pool_, grad_output, argmax_) : Matrix(grad_output);
  ds_ = da.cwiseProduct(ActivationDerivative(options_.activation, s_));
  if (faults_ != nullptr) faults_->MaybeCorrupt(step, options_.layer, StepPoint::kHadamard, &ds_);
  if (!need_input_gradient) return Matrix();
  return TransposeProduct(step);
}

}  // namespace polyguard
