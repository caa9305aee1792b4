#include "polyguard/nn/coded_layer.h"

#include <algorithm>
#include <string>

#include "polyguard/base/random.h"

namespace polyguard {

Status ValidateTrainingCode(const std::string& what, const ProductCode& code,
                            const CodedProductOptions& product) {
  if (!code.supports_training())
    return InvalidArgumentError(what + ": " + code.Describe() + " cannot train");
  if (code.num_peers() < code.transpose_threshold()) {
    return InvalidArgumentError(what + ": the backward product of " + code.Describe() + " needs " +
                                std::to_string(code.transpose_threshold()) +
                                " peers, the job has " + std::to_string(code.num_peers()));
  }
  return ValidateCodedProductOptions(code, product).WithContext(what);
}

ProductCodeOptions WideCodeOptions(ProductCodeOptions code) {
  code.precision = Precision::kFloat64;
  if (code.decoder.tolerance == DecoderOptions{}.tolerance)
    code.decoder.tolerance = kFloat32StorageWideTolerance;
  return code;
}

Status CodedLayer::InitTraining(const std::string& what, PeerGroup* group, FaultInjector* faults,
                                std::unique_ptr<ProductCode> code, const MatrixRef& initial,
                                const CodedProductOptions& product, int layer,
                                std::unique_ptr<ProductCode> wide) {
  group_ = group;
  faults_ = faults;
  code_ = std::move(code);
  wide_code_ = std::move(wide);
  layer_ = layer;
  if (group->size() != code_->num_peers()) {
    return InvalidArgumentError(what + ": the code is for " + std::to_string(code_->num_peers()) +
                                " peers, the group has " + std::to_string(group->size()));
  }
  POLYGUARD_RETURN_IF_ERROR(ValidateTrainingCode(what, *code_, product));
  POLYGUARD_ASSIGN_OR_RETURN(
      product_, CodedProduct::Create(group, code_.get(), faults, product, wide_code_.get()));
  POLYGUARD_ASSIGN_OR_RETURN(Matrix shard, code_->EncodeShard(initial, group->rank()));
  float32_ = code_->precision() == Precision::kFloat32;
  set_shard(shard);
  set_velocity(Matrix::Zero(shard.rows(), shard.cols()));
  return Status::Ok();
}

void CodedLayer::set_shard(const MatrixRef& shard) {
  shard_sums_.reset();
  if (float32_) {
    shard32_.Assign(shard);
  } else {
    shard_ = shard;
  }
}

void CodedLayer::set_velocity(const MatrixRef& velocity) {
  if (float32_) {
    velocity32_.Assign(velocity);
  } else {
    velocity_ = velocity;
  }
}

int64_t CodedLayer::stored_bytes() const {
  if (float32_) return shard32_.bytes() + velocity32_.bytes();
  return int64_t(sizeof(double)) * int64_t(shard_.size() + velocity_.size());
}

Status CodedLayer::ForwardProduct(int64_t step, Eigen::Index rows) {
  StatusOr<DecodedProduct> s =
      float32_ ? product_->Forward(&shard32_, input_, step, layer_, &ShardSums())
               : product_->Forward(&shard_, input_, step, layer_, &ShardSums());
  if (!s.ok()) {
    // Stay usable for the rest of the step (see the header).
    s_ = Matrix::Zero(rows, input_.cols());
    NoteDecode(DecodedProduct{.verified = true}, /*backward=*/false);
    return s.status();
  }
  NoteDecode(*s, /*backward=*/false);
  s_ = std::move(s->product);
  return Status::Ok();
}

const ShardAbsSums& CodedLayer::ShardSums() {
  if (!shard_sums_)
    shard_sums_ = float32_ ? AbsSumsOfFloat32(shard32_.rounded()) : AbsSumsOf(shard_);
  return *shard_sums_;
}

void CodedLayer::NoteDecode(const DecodedProduct& d, bool backward) {
  const PeerSet wrong = PeerSet::Of(d.wrong_peers);
  if (!d.verified) ++unverified_decodes_;
  if (!backward) {
    last_wrong_ = d.wrong_peers;
    last_wrong_results_ = static_cast<int64_t>(d.wrong_peers.size());
    forward_wrong_ = wrong;
    backward_wrong_ = PeerSet();
    return;
  }
  backward_wrong_ = wrong;
  last_wrong_results_ += static_cast<int64_t>(d.wrong_peers.size());
  for (int p : d.wrong_peers)
    if (std::find(last_wrong_.begin(), last_wrong_.end(), p) == last_wrong_.end())
      last_wrong_.push_back(p);
  std::sort(last_wrong_.begin(), last_wrong_.end());
}

StatusOr<Matrix> CodedLayer::TransposeProduct(int64_t step) {
  POLYGUARD_ASSIGN_OR_RETURN(
      DecodedProduct g, float32_ ? product_->Transpose(&shard32_, ds_, step, layer_, &ShardSums())
                                 : product_->Transpose(&shard_, ds_, step, layer_, &ShardSums()));
  NoteDecode(g, /*backward=*/true);
  return std::move(g.product);
}

Status CodedLayer::Update(const SgdOptions& sgd, int64_t step) {
  if (ds_.size() == 0) {
    return FailedPreconditionError("layer " + std::to_string(layer_) +
                                   ": Update needs a Backward first");
  }
  shard_sums_.reset();
  if (!float32_) {
    POLYGUARD_RETURN_IF_ERROR(
        CodedSgdStep(*code_, group_->rank(), sgd, ds_, input_, &shard_, &velocity_));
    if (faults_ != nullptr) faults_->MaybeCorrupt(step, layer_, StepPoint::kUpdate, &shard_);
    return Status::Ok();
  }
  POLYGUARD_RETURN_IF_ERROR(CodedSgdStep(
      *code_, group_->rank(), sgd, ds_, input_, &shard32_, &velocity32_,
      DeriveSeed(0x5eed, {uint64_t(step), uint64_t(layer_), uint64_t(group_->rank())})));
  // The injector corrupts doubles: only a hit pays for the round trip.
  if (faults_ != nullptr && faults_->Hits(step, layer_, StepPoint::kUpdate)) {
    Matrix shard = shard32_.ToDouble();
    faults_->MaybeCorrupt(step, layer_, StepPoint::kUpdate, &shard);
    shard32_.Assign(shard);
  }
  return Status::Ok();
}

}  // namespace polyguard
