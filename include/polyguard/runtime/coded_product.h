// The coded distributed product: what every peer runs for one layer's
// products, with no master. Peer r takes its stored shard and the replicated
// input, encodes its input piece, multiplies, exchanges its result with every
// peer, and decodes for itself while locating and correcting wrong results
// (docs/codes.md §1, §3). Forward (A B), transpose (A^T D) and the coded update
// (A -= eta D X^T, local to each shard) are all here.
//
// Faults: an optional FaultInjector is consulted at the step points this
// layer owns: kShard (the stored shard, before use: a hit persists), kEncode,
// kProduct, kSend (only what is sent), kDecode (this peer's decoded copy) and
// kUpdate (the shard after its update). Stragglers sleep before sending. A
// peer told to crash (FaultModel::crash_step) exits the process with
// FaultInjector::kCrashExitCode at the start of that step's forward product.
//
// Agreement: when every result is awaited (wait_for = 0, the default), every
// peer decodes the same P results, so every honest peer ends with the same
// product and the same wrong peers. With wait_for < P, peers decode from the
// first results that arrive; products agree to roundoff, but a wrong result
// that reached only some peers is reported only by those.
//
// Precision: with a float32 code (ProductCode::precision) the products are
// float32 and so is what is sent: half the bytes of a float64 result (a
// sparse product's result too). Each receiver widens the results to double
// and decodes in double.
//
// A float32 product the decode cannot resolve is computed again in float64:
// when its decode does not resolve it (Resolves in product_code.h: the
// decode's roundoff_bound above 1,000 rho of the product's RMS), every peer multiplies its shard
// and piece again in float64, exchanges the doubles and decodes them with the float64 build of the
// code given to Create (`wide`). Every peer decides from the same decode (every result is awaited:
// Create refuses `wide` with wait_for < P), so all do it or none.
// This is Generalized PolyDot's case with unequal inner blocks (product_code.h): there the float32
// product would be off by up to the bound, and an error below it would pass as roundoff. Without
// `wide` the float32 decode is returned as it is.
//
// Thread safety: one product at a time per CodedProduct (like its PeerGroup).
#ifndef POLYGUARD_RUNTIME_CODED_PRODUCT_H_
#define POLYGUARD_RUNTIME_CODED_PRODUCT_H_

#include <chrono>
#include <memory>

#include "polyguard/base/compensated_matrix.h"
#include "polyguard/codes/product_code.h"
#include "polyguard/fault/fault_injector.h"
#include "polyguard/runtime/exchange_tags.h"
#include "polyguard/runtime/peer_group.h"

namespace polyguard {

struct CodedProductOptions {
  // Results to wait for before decoding: 0 means all P; otherwise in [K, P]
  // (a straggler-tolerant step). Default 0.
  int wait_for = 0;
  // How long a straggler-tolerant step waits for `wait_for` results before
  // decoding what arrived (if at least K). Default 10 s.
  std::chrono::milliseconds deadline{10000};
};

// The results a decode with recovery threshold K waits for among P:
// every one with wait_for = 0, else max(wait_for, K + 1), at most P. A
// decode from exactly K results would check nothing, so a straggler-tolerant
// product still waits for one redundant result when there is one.
int ResultsAwaited(int wait_for, int threshold, int peers);

// What Create refuses, without a group: `options` against `code` on its own
// num_peers(). InvalidArgument naming wait_for or deadline.
Status ValidateCodedProductOptions(const ProductCode& code, const CodedProductOptions& options);

class CodedProduct {
 public:
  // `group`, `code`, `faults` (may be null) and `wide` (may be null) must
  // outlive the product. `wide`: for a float32 `code`, the same code built
  // for float64 (MakeProductCode with precision float64), used to recompute
  // products the float32 decode cannot resolve (above). InvalidArgument when
  // it differs from `code` in strategy, parameters and points (Describe()),
  // shape or peers, or is not float64, and with wait_for < P (every peer
  // must decide from the same results). Its decoder options are the
  // caller's: build it from the same ProductCodeOptions (a float64 code
  // with a loose tolerance would verify what it should not).
  static StatusOr<std::unique_ptr<CodedProduct>> Create(PeerGroup* group, const ProductCode* code,
                                                        FaultInjector* faults,
                                                        CodedProductOptions options = {},
                                                        const ProductCode* wide = nullptr);

  // A B, from this peer's shard of A (which a kShard fault may corrupt).
  // `sums`, when given, is AbsSumsOf(*shard) kept by the caller since the
  // shard last changed (its declared roundoff scale then costs no pass over
  // the shard); a fault injected here leaves it as it was.
  StatusOr<DecodedProduct> Forward(Matrix* shard, const MatrixRef& b, int64_t step, int layer,
                                   const ShardAbsSums* sums = nullptr);
  // A^T D, from the same shard.
  StatusOr<DecodedProduct> Transpose(Matrix* shard, const MatrixRef& d, int64_t step, int layer,
                                     const ShardAbsSums* sums = nullptr);
  // The same from a shard kept in float32 with its residual (a float32
  // job's storage): a float32 code multiplies its float32 values as they are
  // (ProductCode::PeerProductFloat32), a product computed again in float64
  // (and any product of a float64 code) its full values. `sums`, if given,
  // is AbsSumsOfFloat32(shard->rounded()).
  StatusOr<DecodedProduct> Forward(CompensatedMatrix* shard, const MatrixRef& b, int64_t step,
                                   int layer, const ShardAbsSums* sums = nullptr);
  StatusOr<DecodedProduct> Transpose(CompensatedMatrix* shard, const MatrixRef& d, int64_t step,
                                     int layer, const ShardAbsSums* sums = nullptr);
  // A B from a sparse shard (ProductCode::EncodeSparseShard; a low-weight
  // code keeps it sparse): the peer's product is sparse times dense B, or
  // sparse times sparse B; the exchange and decode are as for Forward. A
  // kShard fault hits the shard's stored nonzeros.
  StatusOr<DecodedProduct> ForwardSparse(SparseMatrix* shard, const MatrixRef& b, int64_t step,
                                         int layer);
  StatusOr<DecodedProduct> ForwardSparse(SparseMatrix* shard, const SparseMatrix& b, int64_t step,
                                         int layer);
  // shard of A -= eta * shard of D X^T: local, no communication.
  Status Update(Matrix* shard, const MatrixRef& d, const MatrixRef& x, double eta, int64_t step,
                int layer);

  // Results decoded without waiting for them (straggler-tolerant steps), so far.
  int64_t results_not_awaited() const { return results_not_awaited_; }
  // Float32 products computed again in float64 (above), so far.
  int64_t products_widened() const { return products_widened_; }

 private:
  CodedProduct(PeerGroup* group, const ProductCode* code, FaultInjector* faults,
               CodedProductOptions options, const ProductCode* wide)
      : group_(group), code_(code), wide_(wide), faults_(faults), options_(options) {}
  void Fault(int64_t step, int layer, StepPoint point, Matrix* value);
  // Encode, multiply, exchange and decode: A B, or A^T D when `transpose`,
  // from the shard in double (f64) or kept in float32 (f32): one is given.
  StatusOr<DecodedProduct> Product(const Matrix* f64, const CompensatedMatrix* f32,
                                   const MatrixRef& input, bool transpose, int64_t step, int layer,
                                   const ShardAbsSums* sums);
  // Faults the local result, exchanges it and decodes with `code` (code_,
  // or wide_ for a product computed again in float64); no kDecode fault.
  // roundoff_scale: this peer's declaration (RoundoffScale), sent with y.
  StatusOr<DecodedProduct> ExchangeAndDecode(const ProductCode& code, Matrix y,
                                             double roundoff_scale, bool spoiled, bool transpose,
                                             int64_t step, int layer);
  // The decode with this peer's kDecode fault, if any.
  StatusOr<DecodedProduct> DecodedWithFault(StatusOr<DecodedProduct> decoded, int64_t step,
                                            int layer);
  // A fault at `point` on a sparse matrix's stored nonzeros.
  void FaultSparse(int64_t step, int layer, StepPoint point, SparseMatrix* value);
  // `narrow`: send float32 (a float32 code's results). The roundoff scale
  // travels as one more double after the values.
  StatusOr<std::vector<PeerResult>> Exchange(const Matrix& result, double roundoff_scale,
                                             int threshold, int64_t step, int layer, ExchangeOp op,
                                             bool narrow);

  PeerGroup* group_;
  const ProductCode* code_;
  const ProductCode* wide_;
  FaultInjector* faults_;
  CodedProductOptions options_;
  int64_t results_not_awaited_ = 0;
  int64_t products_widened_ = 0;
};

}  // namespace polyguard

#endif  // POLYGUARD_RUNTIME_CODED_PRODUCT_H_
