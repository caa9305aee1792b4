// CodedLayer: what a model and the trainer see of a layer whose weights exist
// only as per-peer coded shards: the step's verbs (Forward, Backward, Update)
// and the state the trainer checks, snapshots and repairs (the shard and the
// velocity in the code's form, and this step's decoded copies the update
// uses). CodedLinear (dense) and CodedConv2d (convolution) are the two kinds.
//
// The base does what both share: the coded product's forward and transpose
// through CodedProduct, the bookkeeping of wrong peers, and the coded SGD
// step on the shard and the velocity (optim/sgd.h). An uncorrectable decode
// (DataLoss) is returned as the error, but the layer stays usable for the
// rest of the step: the decoded value is taken as zero, so the caller keeps
// taking part in the step's exchanges (every peer must) and then recomputes
// the step.
//
// Thread safety: one call at a time (like the PeerGroup it uses).
#ifndef POLYGUARD_NN_CODED_LAYER_H_
#define POLYGUARD_NN_CODED_LAYER_H_

#include <memory>
#include <optional>
#include <vector>

#include "polyguard/base/compensated_matrix.h"
#include "polyguard/base/peer_set.h"
#include "polyguard/codes/product_code.h"
#include "polyguard/fault/fault_injector.h"
#include "polyguard/optim/sgd.h"
#include "polyguard/runtime/coded_product.h"
#include "polyguard/runtime/peer_group.h"

namespace polyguard {

// What InitTraining refuses, without a group: a code that cannot train, a
// backward product with more peers than the code has, or product options the
// code cannot run (ValidateCodedProductOptions). `what` names the layer.
Status ValidateTrainingCode(const std::string& what, const ProductCode& code,
                            const CodedProductOptions& product);

// The options of a float32 layer's code built for float64 (CodedProduct's
// `wide`): precision float64 and, for a tolerance left at its default,
// kFloat32StorageWideTolerance (the layer keeps its shard in float32 with a
// residual, rounded at every peer on its own: base/precision.h).
ProductCodeOptions WideCodeOptions(ProductCodeOptions code);

class CodedLayer {
 public:
  virtual ~CodedLayer() = default;

  // x: inputs() x B. Returns the layer's output, outputs() x B.
  virtual StatusOr<Matrix> Forward(const MatrixRef& x, int64_t step) = 0;
  // grad_output: dLoss/d(output). Returns dLoss/dx (inputs() x B), or an
  // empty matrix when need_input_gradient is false (the first layer).
  virtual StatusOr<Matrix> Backward(const MatrixRef& grad_output, int64_t step,
                                    bool need_input_gradient = true) = 0;
  // The coded SGD step with this step's saved input and gradient.
  virtual Status Update(const SgdOptions& sgd, int64_t step);

  // Values per sample in and out.
  virtual int inputs() const = 0;
  virtual int outputs() const = 0;
  int layer_id() const { return layer_; }
  const ProductCode& code() const { return *code_; }
  // This peer's stored state: its shard and velocity (the momentum buffer,
  // same coded form), in double. Snapshots and repair replace them. A
  // float32 layer (its code's precision) keeps both in float32 with a 16-bit
  // residual (CompensatedMatrix: 6 bytes a value, not 8; float32 alone would
  // let the peers' shards drift off the code word), multiplies the float32
  // values as they are, and stores what set_* is given to within 2^-40.
  Matrix shard() const { return float32_ ? shard32_.ToDouble() : shard_; }
  Matrix velocity() const { return float32_ ? velocity32_.ToDouble() : velocity_; }
  void set_shard(const MatrixRef& shard);
  void set_velocity(const MatrixRef& velocity);
  Eigen::Index shard_rows() const { return float32_ ? shard32_.rows() : shard_.rows(); }
  Eigen::Index shard_cols() const { return float32_ ? shard32_.cols() : shard_.cols(); }
  // Bytes the shard and velocity take as kept.
  int64_t stored_bytes() const;
  // This step's decoded values that the update uses: the product's input
  // from Forward and the gradient at the product's output from Backward. A
  // peer whose copies disagree with the other peers' replaces them before
  // the update (train/trainer.h).
  const Matrix& saved_input() const { return input_; }
  const Matrix& saved_gradient() const { return ds_; }
  Matrix* mutable_saved_input() { return &input_; }
  Matrix* mutable_saved_gradient() { return &ds_; }
  // Peers found wrong by this layer's last forward and backward decodes.
  const std::vector<int>& last_wrong_peers() const { return last_wrong_; }
  // Wrong results located by those decodes (counted per decode).
  int64_t last_wrong_results() const { return last_wrong_results_; }
  // The same as sets, forward and backward decode apart: what the trainer's
  // agreement round combines into the job's tally.
  const PeerSet& last_forward_wrong() const { return forward_wrong_; }
  const PeerSet& last_backward_wrong() const { return backward_wrong_; }
  // Decodes so far that checked nothing (exactly K results): unprotected.
  int64_t unverified_decodes() const { return unverified_decodes_; }
  // Results this layer's decodes went without (stragglers), so far.
  int64_t results_not_awaited() const { return product_->results_not_awaited(); }
  // Float32 products computed again in float64 (CodedProduct), so far.
  int64_t products_widened() const { return product_->products_widened(); }

 protected:
  CodedLayer() = default;
  // Takes the code, checks it can train on this group, builds the product
  // and this peer's shard of `initial` (zero velocity). `what` names the
  // layer in errors. `wide`: for a float32 code, its float64 build
  // (CodedProduct::Create), or null.
  Status InitTraining(const std::string& what, PeerGroup* group, FaultInjector* faults,
                      std::unique_ptr<ProductCode> code, const MatrixRef& initial,
                      const CodedProductOptions& product, int layer,
                      std::unique_ptr<ProductCode> wide = nullptr);
  // s_ = the decoded product of the shard and input_ (rows x B; zero after a
  // failed decode, whose error is returned).
  Status ForwardProduct(int64_t step, Eigen::Index rows);
  // The decoded transpose product with ds_; adds its wrong peers.
  StatusOr<Matrix> TransposeProduct(int64_t step);
  // Notes a decode's wrong peers (a forward one starts the step's record).
  void NoteDecode(const DecodedProduct& decoded, bool backward);
  // AbsSumsOf the shard, computed again only after the shard changed through
  // Update, InitTraining or set_shard().
  const ShardAbsSums& ShardSums();

  PeerGroup* group_ = nullptr;
  FaultInjector* faults_ = nullptr;
  std::unique_ptr<ProductCode> code_;
  std::unique_ptr<ProductCode> wide_code_;  // code_'s float64 build, for a float32 code
  std::unique_ptr<CodedProduct> product_;
  // The stored state: in double, or (float32_) in float32 with residuals.
  bool float32_ = false;
  Matrix shard_, velocity_;
  CompensatedMatrix shard32_, velocity32_;
  // AbsSumsOf(shard_) since it last changed (ShardSums), for the products'
  // declared roundoff scales.
  std::optional<ShardAbsSums> shard_sums_;
  Matrix input_, s_, ds_;  // this step's decoded values
  std::vector<int> last_wrong_;
  int64_t last_wrong_results_ = 0;
  PeerSet forward_wrong_, backward_wrong_;
  int64_t unverified_decodes_ = 0;
  int layer_ = 0;
};

}  // namespace polyguard

#endif  // POLYGUARD_NN_CODED_LAYER_H_
