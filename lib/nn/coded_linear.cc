#include "polyguard/nn/coded_linear.h"

#include <algorithm>
#include <string>

#include "polyguard/codes/product_mds_code.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard {

StatusOr<std::unique_ptr<ProductCode>> MakeCodedLinearCode(const CodedLinearOptions& o, int peers) {
  ProductCodeOptions code = o.code;
  code.shape = {o.outputs, o.inputs + 1, o.batch};
  code.peers = peers;
  POLYGUARD_RETURN_IF_ERROR(UseDefaultProductMdsLayout(&code));
  return MakeProductCode(code);
}

StatusOr<std::unique_ptr<CodedLinear>> CodedLinear::Create(const CodedLinearOptions& o,
                                                           PeerGroup* group, FaultInjector* faults,
                                                           const MatrixRef& initial_weights) {
  if (group == nullptr) return InvalidArgumentError("coded linear: no peer group");
  if (o.inputs < 1 || o.outputs < 1 || o.batch < 1) {
    return InvalidArgumentError("coded linear: inputs, outputs and batch must be >= 1, got " +
                                std::to_string(o.inputs) + ", " + std::to_string(o.outputs) + ", " +
                                std::to_string(o.batch));
  }
  if (initial_weights.rows() != o.outputs || initial_weights.cols() != o.inputs + 1) {
    return InvalidArgumentError("coded linear: initial weights must be outputs x (inputs + 1) = " +
                                std::to_string(o.outputs) + " x " + std::to_string(o.inputs + 1) +
                                " ([W | b]), got " + std::to_string(initial_weights.rows()) +
                                " x " + std::to_string(initial_weights.cols()));
  }
  auto layer = std::unique_ptr<CodedLinear>(new CodedLinear());
  layer->options_ = o;
  POLYGUARD_ASSIGN_OR_RETURN(std::unique_ptr<ProductCode> made,
                             MakeCodedLinearCode(o, group->size()));
  if (CapabilitiesOf(o.code.strategy).keeps_sparsity) {
    layer->sparse_ = true;
    layer->group_ = group;
    layer->faults_ = faults;
    layer->layer_ = o.layer;
    layer->code_ = std::move(made);
    POLYGUARD_ASSIGN_OR_RETURN(layer->product_,
                               CodedProduct::Create(group, layer->code_.get(), faults, o.product));
    POLYGUARD_ASSIGN_OR_RETURN(
        layer->sparse_shard_,
        layer->code_->EncodeSparseShard(SparseMatrix(initial_weights.sparseView()), group->rank()));
    return layer;
  }
  std::unique_ptr<ProductCode> wide;
  if (o.code.precision == Precision::kFloat32) {
    CodedLinearOptions w = o;
    w.code = WideCodeOptions(o.code);
    POLYGUARD_ASSIGN_OR_RETURN(wide, MakeCodedLinearCode(w, group->size()));
  }
  POLYGUARD_RETURN_IF_ERROR(
      layer->InitTraining("coded linear (layer " + std::to_string(o.layer) + ")", group, faults,
                          std::move(made), initial_weights, o.product, o.layer, std::move(wide)));
  return layer;
}

StatusOr<Matrix> CodedLinear::Forward(const MatrixRef& x, int64_t step) {
  if (x.rows() != options_.inputs || x.cols() != options_.batch) {
    return InvalidArgumentError(
        "coded linear (layer " + std::to_string(options_.layer) + "): input is " +
        std::to_string(x.rows()) + " x " + std::to_string(x.cols()) + ", expected " +
        std::to_string(options_.inputs) + " x " + std::to_string(options_.batch));
  }
  input_.resize(options_.inputs + 1, options_.batch);
  input_.topRows(options_.inputs) = x;
  input_.row(options_.inputs).setOnes();
  if (sparse_) {
    StatusOr<DecodedProduct> s =
        product_->ForwardSparse(&sparse_shard_, input_, step, options_.layer);
    if (!s.ok()) return s.status();
    NoteDecode(*s, /*backward=*/false);
    s_ = std::move(s->product);
  } else {
    POLYGUARD_RETURN_IF_ERROR(ForwardProduct(step, options_.outputs));
  }
  Matrix a = Activate(options_.activation, s_);
  if (faults_ != nullptr) faults_->MaybeCorrupt(step, options_.layer, StepPoint::kActivation, &a);
  return a;
}

namespace {
Status ForwardOnly(const CodedLinear& layer) {
  return FailedPreconditionError(
      "coded linear (layer " + std::to_string(layer.options().layer) +
      "): " + layer.code().Describe() +
      " is forward only (sparse weights for inference): a code on row blocks of W says nothing "
      "about W^T dS");
}
}  // namespace

StatusOr<Matrix> CodedLinear::Backward(const MatrixRef& grad_output, int64_t step,
                                       bool need_input_gradient) {
  if (sparse_) return ForwardOnly(*this);
  if (grad_output.rows() != s_.rows() || grad_output.cols() != s_.cols() || s_.size() == 0) {
    return FailedPreconditionError("coded linear (layer " + std::to_string(options_.layer) +
                                   "): Backward needs a Forward of the same batch first");
  }
  ds_ = grad_output.cwiseProduct(ActivationDerivative(options_.activation, s_));
  if (faults_ != nullptr) faults_->MaybeCorrupt(step, options_.layer, StepPoint::kHadamard, &ds_);
  if (!need_input_gradient) return Matrix();
  POLYGUARD_ASSIGN_OR_RETURN(Matrix g, TransposeProduct(step));
  return Matrix(g.topRows(options_.inputs));
}

Status CodedLinear::Update(const SgdOptions& sgd, int64_t step) {
  if (sparse_) return ForwardOnly(*this);
  return CodedLayer::Update(sgd, step);
}

}  // namespace polyguard
