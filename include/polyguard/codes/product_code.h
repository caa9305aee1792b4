// ProductCode: one small interface for every protection strategy of a
// distributed product C = A * B, where A is stored (split and encoded across
// P peers, e.g. a layer's weights) and B is replicated (e.g. a batch).
//
// Every peer r runs the same three verbs; nothing here talks to the network:
//   shard  = code.EncodeShard(A, r)      once, when A is stored
//   piece  = code.EncodeInput(B, r)      per product, local, O(size of B)
//   result = code.PeerProduct(shard, piece)
// and any peer that holds the results of R >= K peers calls
//   code.Decode(results)  ->  C, plus the peers found wrong.
//
// Strategies (see each header for thresholds, errors corrected, costs):
//   PolyDotCode      Generalized PolyDot (Polynomial and MatDot codes too)
//   MdsCode          systematic real (P, Q) MDS code on row blocks of A
//   ReplicationCode  r-fold replication with agreement voting
//   AbftCode         Huang-Abraham checksums on each peer's block
//   UncodedCode      plain split, no protection (the baseline)
//   LowWeightCode    sparsity-preserving low-weight code (sparse A, B)
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CODES_PRODUCT_CODE_H_
#define POLYGUARD_CODES_PRODUCT_CODE_H_

#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "polyguard/base/matrix.h"
#include "polyguard/base/precision.h"
#include "polyguard/base/status.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"
#include "polyguard/codes/evaluation_points.h"
#include "polyguard/codes/strategy.h"

namespace polyguard {

// C (rows x cols) = A (rows x inner) * B (inner x cols).
struct ProductShape {
  int64_t rows = 0;
  int64_t inner = 0;
  int64_t cols = 0;
};

// One peer's result as it arrived.
struct PeerResult {
  int peer = 0;
  Matrix value;
  // The roundoff scale the peer declares for its result's entries
  // (RoundoffScale of its shard and piece; CodedProduct sends it with the
  // result), 0 for none. The evaluation and linear-code strategies take the
  // RoundoffFloor of the declarations as the least scale of their checks.
  double roundoff_scale = 0.0;
};

// The roundoff scale of a local product shard * piece (shard^T * piece when
// `transpose`): the mean over the result's entries of sum_k |a_k| |b_k|
// (the terms of the entry's dot product), over sqrt(inner). A float32 dot
// product's roundoff grows like its partial sums, a random walk of steps
// |a_k b_k|: on data without structure this is about the result's own RMS;
// when the terms cancel (results far smaller than their terms: inputs of
// zero mean against weights with a common offset) it stays at the terms'
// size, which is what sets the roundoff. 0 for empty operands. Cost: one
// pass over each operand (the mean needs only A's column sums and B's row
// sums of |values|). Finite whenever the mean is, however large or small the
// operands (sums that would overflow are scaled by a power of two first).
double RoundoffScale(const MatrixRef& shard, const MatrixRef& piece, bool transpose = false);
// What RoundoffScale needs of a shard: its sums of |values| down each column
// (for shard * piece) and along each row (for shard^T * piece). A shard
// changes once a step but takes part in two products, so a layer keeps these
// (one pass over the shard) and each declaration then costs one pass over
// its piece only.
// Sums of data near DBL_MAX would overflow: they are then of the |values|
// times 2^-exponent (exact), and finite whenever the shard is.
struct ShardAbsSums {
  Vector columns;  // shard.cols() sums
  Vector rows;     // shard.rows() sums
  int exponent = 0;
};
ShardAbsSums AbsSumsOf(const MatrixRef& shard);
// Of a shard kept in float32: summed in double, which cannot overflow there.
ShardAbsSums AbsSumsOfFloat32(const Eigen::MatrixXf& shard);
// The same as RoundoffScale(shard, piece, transpose), from AbsSumsOf(shard).
double RoundoffScale(const ShardAbsSums& shard, const MatrixRef& piece, bool transpose = false);
double RoundoffScale(const SparseMatrix& shard, const SparseMatrix& piece);
double RoundoffScale(const SparseMatrix& shard, const MatrixRef& piece);
// The floor a decode takes from R results' declarations (the decoders'
// scale_floor): the (t + 1)-th largest, t = floor((R - threshold) / 2), but
// at most kRoundoffFloorOverMedian times their median (NaN counts as the
// largest). t liars cannot raise it above an honest declaration, and fewer
// than half of the peers cannot raise it above 4 times an honest one: with
// the (t + 1)-th largest alone, one liar at R = K + 1 (t = 0) set the floor
// and loosened the check that should have seen its error (adversary s8).
// The decoders count it in full, in their checks and in the resolution (a
// non-finite floor counts as none). Declarations from half of the peers or
// more can loosen the checks as far as they declare: beyond the guarantee,
// as any majority of wrong peers is.
inline constexpr double kRoundoffFloorOverMedian = 4.0;
// The least floor RoundoffFloor returns, 2^-1000 (about 9e-302): below it
// double arithmetic rounds to an absolute quantum (2^-1074), not relative to
// the values, and products of data at 1e-313 carried roundoff above the
// relative tolerance: fault-free decodes named honest peers or returned
// DataLoss (adversary s20 F4). Results that small are checked to tolerance
// x 2^-1000 (7e-313 in float64; 2^37 quanta), and their deviation_bound
// says so.
inline constexpr double kLeastRoundoffFloor = 0x1p-1000;
double RoundoffFloor(std::span<const PeerResult> results, int threshold);

struct DecodedProduct {
  Matrix product;                // rows x cols
  std::vector<int> wrong_peers;  // sorted; peers whose results were wrong
  // True when the result was checked by redundancy (at least one more
  // consistent result than needed). False for unprotected strategies and for
  // decodes from exactly K results.
  bool verified = false;
  // The decode's resolution (DecodeOutcome::deviation_bound): how far, RMS
  // over C's entries, C can be from A B while every result decoded is
  // within the decoder's tolerance of the code word. Computed by every
  // strategy with an evaluation or linear-code decoder, by replication
  // (twice its agreement tolerance: a copy within it of the others may be a
  // liar's) and by ABFT (its checks' tolerance, entry by entry); 0 for
  // uncoded, whose product is a peer's own result. It matters
  // for Generalized PolyDot with n > 1 (m > 1 for the transpose): its
  // results also hold the cross products A_ik B_k'l
  // (k != k'), and they, not the product, set the scale of the check and of
  // the results' roundoff. With A's inner blocks of unequal size (or B's)
  // they can dwarf the product: in float32 the bound then reaches a sizeable
  // fraction of C, and the product really is that far off (CodedProduct
  // recomputes such products in float64). Codes that combine only the
  // product's own blocks have a code word of C's size.
  double deviation_bound = 0.0;
  // The part of deviation_bound that assumes every result decoded is right
  // (DecodeOutcome::roundoff_bound): what roundoff alone moves C by. Equal
  // to it for the codes without hidden results (uncoded, replication, ABFT).
  double roundoff_bound = 0.0;
  // A correction checked by a single spare result
  // (DecodeOutcome::one_spare_correction): Resolves() is false in float32.
  bool one_spare_correction = false;
};

class ProductCode {
 public:
  virtual ~ProductCode() = default;

  virtual Strategy strategy() const = 0;
  const ProductShape& shape() const { return shape_; }
  int num_peers() const { return peers_; }
  // K: the fewest results from which Decode can return C.
  virtual int recovery_threshold() const = 0;
  // Whether ANY R >= K results decode (and any R >= transpose_threshold()
  // the transpose): straggler mode (wait_for < P) relies on it. False for a
  // layout whose decode needs every peer of a group (ProductMdsCode's rows).
  virtual bool decodes_from_any_k() const { return true; }
  // Wrong results among all P that are always corrected, under the
  // probabilistic model (continuous errors) and in the worst case.
  virtual int errors_corrected_probabilistic() const = 0;
  virtual int errors_corrected_adversarial() const = 0;
  // Doubles each peer stores for A, and sends as its result.
  virtual int64_t stored_doubles_per_peer() const = 0;
  virtual int64_t result_doubles_per_peer() const = 0;
  // One-line description with the parameters, e.g. "genpolydot P=8 m=2 n=2 d=1".
  virtual std::string Describe() const = 0;

  // Peer r's stored shard of A (rows x inner).
  virtual StatusOr<Matrix> EncodeShard(const MatrixRef& a, int peer) const = 0;
  // Peer r's input piece of B (inner x cols).
  virtual StatusOr<Matrix> EncodeInput(const MatrixRef& b, int peer) const = 0;
  // The local product at a peer, in the code's precision. Shapes come from
  // EncodeShard/EncodeInput.
  virtual Matrix PeerProduct(const MatrixRef& shard, const MatrixRef& piece) const {
    return Multiply(shard, piece);
  }
  // The same products from a shard kept in float32 (a float32 job's
  // CompensatedMatrix::rounded()): bit for bit PeerProduct(shard in double,
  // piece) of a float32 code, without narrowing the shard again (a pass over
  // it, and a float copy of it, per product). A strategy that overrides
  // PeerProduct or PeerTransposeProduct overrides these too (a test over
  // every training strategy compares them).
  virtual Matrix PeerProductFloat32(const Eigen::MatrixXf& shard, const MatrixRef& piece) const {
    return MultiplyFloat32(shard, piece);
  }
  virtual Matrix PeerTransposeProductFloat32(const Eigen::MatrixXf& shard,
                                             const MatrixRef& piece) const {
    return MultiplyFloat32(shard.transpose(), piece);
  }

  // The precision the peers compute their products in (PeerProduct,
  // PeerTransposeProduct): float32 rounds both operands to float32 and
  // multiplies in float32 (Eigen's float GEMM), as a float32 peer does; the
  // result comes back widened to double, and decoding runs in double. Sparse
  // products and the update stay in double. Set once, before the code is
  // shared (MakeProductCode sets it from ProductCodeOptions::precision).
  Precision precision() const { return precision_; }
  void set_precision(Precision precision) { precision_ = precision; }
  // C from any R >= K results (missing peers are erasures).
  // InvalidArgument: unknown or duplicate peer, wrong result shape.
  // Unavailable: too few results. DataLoss: uncorrectable errors (the message
  // names the suspect peers).
  virtual StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const = 0;

  // Convenience: every peer's shard.
  StatusOr<std::vector<Matrix>> EncodeShards(const MatrixRef& a) const;

  // --- Sparse A and B (Eigen sparse, column-major). The same verbs on sparse
  // operands: a peer's product is sparse times sparse (or dense) into a dense
  // result, decoded as above. Codes that mix few blocks (LowWeightCode) keep
  // shards sparse; the default encodes densely and keeps the nonzeros, which
  // is what a dense code does to sparsity (and costs O(rows x inner) memory
  // while encoding). ---
  virtual StatusOr<SparseMatrix> EncodeSparseShard(const SparseMatrix& a, int peer) const;
  virtual StatusOr<SparseMatrix> EncodeSparseInput(const SparseMatrix& b, int peer) const;
  Matrix SparsePeerProduct(const SparseMatrix& shard, const SparseMatrix& piece) const {
    return Matrix(shard * piece);
  }
  Matrix SparsePeerProduct(const SparseMatrix& shard, const MatrixRef& piece) const {
    return shard * piece;
  }

  // --- Training (docs/codes.md §1, §2): the transpose product A^T D from the same
  // shards, the coded update, and checks and repair of the stored shards.
  // Strategies that cannot train (the 1-D MdsCode: its row code says nothing
  // about A^T D) return FailedPrecondition from every verb. ---
  virtual bool supports_training() const { return false; }
  // Results needed to decode A^T D, and wrong ones corrected there.
  virtual int transpose_threshold() const { return num_peers(); }
  virtual int transpose_errors_corrected_probabilistic() const { return 0; }
  // Peer r's piece of D (rows x cols) for the transpose product.
  virtual StatusOr<Matrix> EncodeTransposeInput(const MatrixRef& d, int peer) const;
  virtual Matrix PeerTransposeProduct(const MatrixRef& shard, const MatrixRef& piece) const {
    return Multiply(shard.transpose(), piece);
  }
  // A^T D (inner x cols) from any R >= transpose_threshold() results.
  virtual StatusOr<DecodedProduct> DecodeTranspose(std::span<const PeerResult> results) const;
  // Peer r's shard of A -= eta * D X^T (D rows x b, X inner x b, any b >= 1),
  // local: nothing is re-encoded. Any matrix stored in the shard's coded form
  // (a momentum buffer) is updated the same way.
  virtual Status UpdateShard(Matrix* shard, int peer, const MatrixRef& d, const MatrixRef& x,
                             double eta) const;

  // Scrub. Every peer reduces its stored shard with the same random probe
  // (ProbeShard); from every peer's reduction CheckProbes names the peers
  // whose shards disagree with the code (sorted; empty when all agree, and
  // always empty for a strategy without redundancy). DataLoss when more are
  // corrupted than can be told apart.
  virtual int64_t probe_length() const { return 0; }
  virtual Vector ProbeShard(const MatrixRef& shard, const Vector& probe) const {
    return shard * probe;
  }
  virtual StatusOr<std::vector<int>> CheckProbes(std::span<const PeerResult> probes) const;
  // Repair: the peers whose shards regenerate `target`'s, chosen from
  // `healthy`; FailedPrecondition when the strategy has no redundancy or too
  // few are healthy. RepairShard rebuilds the target's shard (or any matrix
  // in the same coded form) from those peers' shards.
  virtual StatusOr<std::vector<int>> RepairSources(int target, std::span<const int> healthy) const;
  virtual StatusOr<Matrix> RepairShard(int target, std::span<const PeerResult> sources) const;

 protected:
  ProductCode(ProductShape shape, int peers) : shape_(shape), peers_(peers) {}
  // lhs * rhs in precision(): float32 operands and arithmetic when float32.
  // Each operand is first scaled by a power of two (exact) that brings its
  // largest value near 1, and the product scaled back in double: float32's
  // range then holds the terms whatever the data's scale (products of 1e-30
  // data no longer underflow to a zero that decodes as verified; 1e20 data
  // no longer overflow). Otherwise bit for bit the unscaled product (and
  // unscaled when the data is within 2^+-30 of 1: Narrow). The
  // float copies live in one pair of per-thread buffers (a fresh
  // multi-megabyte one per product cost page faults on the order of 10% of
  // the GEMM); they keep a float copy of the largest operands multiplied.
  template <typename Lhs, typename Rhs>
  Matrix Multiply(const Lhs& lhs, const Rhs& rhs) const {
    if (precision_ == Precision::kFloat64) return lhs * rhs;
    FloatOperands& f = Operands();
    const auto [f1, f2] = PowerOfTwoFactors(Narrow(lhs, &f.lhs) + Narrow(rhs, &f.rhs));
    return (f.lhs * f.rhs).template cast<double>() * f1 * f2;
  }
  // A transposed shard is narrowed as stored and transposed inside the GEMM:
  // narrowing the transpose itself copied it across the cache and made the
  // float32 transpose product 4 times slower than float64's.
  template <typename L, typename Rhs>
  Matrix Multiply(const Eigen::Transpose<L>& lhs, const Rhs& rhs) const {
    if (precision_ == Precision::kFloat64) return lhs * rhs;
    FloatOperands& f = Operands();
    const auto [f1, f2] =
        PowerOfTwoFactors(Narrow(lhs.nestedExpression(), &f.lhs) + Narrow(rhs, &f.rhs));
    return (f.lhs.transpose() * f.rhs).template cast<double>() * f1 * f2;
  }
  // Multiply with an lhs already in float32 (a stored float32 shard, a block
  // or a transpose of one): multiplied as it is, and scaled first only when
  // its largest value is far from 1 (as Narrow would), so the same bits as
  // Multiply of its values in double.
  template <typename L, typename Rhs>
  Matrix MultiplyFloat32(const L& lhs, const Rhs& rhs) const {
    return MultiplyStoredFloat32</*kTransposed=*/false>(lhs, rhs);
  }
  // Scaled, a transposed float32 lhs is copied as stored and transposed in
  // the GEMM, as Multiply does (a GEMM of the transposed copy differs in bits).
  template <typename L, typename Rhs>
  Matrix MultiplyFloat32(const Eigen::Transpose<L>& lhs, const Rhs& rhs) const {
    return MultiplyStoredFloat32</*kTransposed=*/true>(lhs.nestedExpression(), rhs);
  }
  // `stored`, or its transpose, times rhs (MultiplyFloat32).
  template <bool kTransposed, typename S, typename Rhs>
  Matrix MultiplyStoredFloat32(const S& stored, const Rhs& rhs) const {
    FloatOperands& f = Operands();
    const int er = Narrow(rhs, &f.rhs);
    const int el = Float32ScaleExponent(Largest(stored));
    auto times_rhs = [&](const auto& l) -> Eigen::MatrixXf {
      if constexpr (kTransposed) {
        return l.transpose() * f.rhs;
      } else {
        return l * f.rhs;
      }
    };
    if (el == 0) {
      const auto [f1, f2] = PowerOfTwoFactors(er);
      return times_rhs(stored).template cast<double>() * f1 * f2;
    }
    const auto [s1, s2] = PowerOfTwoFactors(-el);
    f.lhs = (stored.template cast<double>() * s1 * s2).template cast<float>();
    const auto [f1, f2] = PowerOfTwoFactors(el + er);
    return times_rhs(f.lhs).template cast<double>() * f1 * f2;
  }
  // The largest |value| of a column in double, and of a matrix column by
  // column as Narrow finds it (a NaN column is passed over): MultiplyFloat32
  // must scale exactly as Multiply does, NaN shards included (adversary s21).
  template <typename C>
  static double ColumnLargest(const C& column) {
    return column.template cast<double>().cwiseAbs().maxCoeff();
  }
  template <typename M>
  static double Largest(const M& m) {
    double largest = 0.0;
    if (m.rows() == 0) return largest;
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      largest = std::max(largest, ColumnLargest(m.col(j)));
    return largest;
  }
  struct FloatOperands {
    Eigen::MatrixXf lhs, rhs;
  };
  // The calling thread's buffers, shared by every Multiply.
  static FloatOperands& Operands() {
    thread_local FloatOperands operands;
    return operands;
  }
  // out = m in float, scaled by 2^-Float32ScaleExponent(its largest |value|)
  // (base/precision.h); returns the exponent taken out. One pass over m in
  // the common case (the cast finds the largest value as it goes; a separate
  // pass for it cost a quarter of the float32 product).
  template <typename M>
  static int Narrow(const M& m, Eigen::MatrixXf* out) {
    out->resize(m.rows(), m.cols());
    double largest = 0.0;
    // Column by column: the second read of a column hits the cache.
    for (Eigen::Index j = 0; j < m.cols(); ++j) {
      out->col(j) = m.col(j).template cast<float>();
      if (m.rows() > 0) largest = std::max(largest, ColumnLargest(m.col(j)));
    }
    const int e = Float32ScaleExponent(largest);
    if (e != 0) {
      const auto [f1, f2] = PowerOfTwoFactors(-e);
      *out = (m * f1 * f2).template cast<float>();
    }
    return e;
  }
  Status CheckA(const MatrixRef& a) const;
  Status CheckB(const MatrixRef& b) const;
  Status CheckSparseA(const SparseMatrix& a) const;
  Status CheckSparseB(const SparseMatrix& b) const;
  Status CheckPeer(int peer) const;
  // Checks peers (known, distinct) and result shapes.
  Status CheckResults(std::span<const PeerResult> results, int64_t rows, int64_t cols) const;

 private:
  ProductShape shape_;
  int peers_;
  Precision precision_ = Precision::kFloat64;
};

// Everything needed to build any strategy.
struct ProductCodeOptions {
  Strategy strategy = Strategy::kPolyDot;
  ProductShape shape;
  int peers = 1;            // P
  int m = 1, n = 1, d = 1;  // PolyDot split of A (m x n) and B (n x d)
  int data_blocks = 1;      // Q of the 1-D MDS code
  // The MDS product-code layout for training (product_mds_code.h): used when
  // row_blocks > 0, else the 1-D MDS code with data_blocks.
  int row_peers = 0, row_blocks = 0, col_peers = 0, col_blocks = 0;
  int replicas = 2;  // r of replication
  // Low-weight code (low_weight_code.h): A in k_a row blocks, B in k_b column
  // blocks, weights 0 = the lower bound.
  int k_a = 1, k_b = 1, weight_a = 0, weight_b = 0;
  PointKind points = PointKind::kChebyshev;
  // The peers' arithmetic (ProductCode::precision). float32 also sets a
  // decoder tolerance left at its default to RoundoffTolerance(float32,
  // the longer of the shape's rows and inner: the forward and the transpose
  // product's inner dimensions).
  Precision precision = Precision::kFloat64;
  DecoderOptions decoder;
};

// Whether `decoded`, a decode of `code`'s results, resolves its product:
// always for a float64 code; for a float32 one, when roundoff_bound is at
// most kFloat32ResolutionLimitInRoundoffs rho of the product's RMS (rho = u
// sqrt(the longer of the code's rows and inner), u = 2^-24; a zero product
// needs a zero bound) and no correction was checked by a single spare
// result (one_spare_correction). A product that is not resolved can be off
// by up to the bound, or after such a correction by more (CodedProduct
// computes it again in float64). A resolved one is within deviation_bound
// under the decoders' (a): results the checks cannot see are faults, not
// roundoff, and float64 would not see them either.
bool Resolves(const ProductCode& code, const DecodedProduct& decoded);

// Validates the options once and builds the code with the registered
// strategy's factory (strategy_registry.h); the error names the field.
StatusOr<std::unique_ptr<ProductCode>> MakeProductCode(const ProductCodeOptions& options);

// The decoder options for results computed in `precision` with inner
// dimension `inner`: a tolerance left at its default becomes
// RoundoffTolerance(precision, inner) (base/precision.h), and a float32
// code's clean_fit left at its default 0.5; anything else is kept. (MakeProductCode and the coded
// convolution's factory.)
DecoderOptions DecoderForPrecision(DecoderOptions decoder, Precision precision, int64_t inner);

namespace internal {
// Splits [0, total) into `parts` equal blocks of ceil(total / parts) (the last
// ones zero-padded); returns the block size.
int64_t BlockSize(int64_t total, int64_t parts);
// out += coef * (block (i, j) of size br x bc of m), where the block is
// zero-padded past m's edge: only the part inside m is read.
void AddBlock(Matrix* out, double coef, const MatrixRef& m, int64_t i, int64_t j, int64_t br,
              int64_t bc);
// Row block i of m (zero-padded to `block` rows).
Matrix RowBlock(const MatrixRef& m, int64_t i, int64_t block);
Status ValidateShape(const ProductShape& shape);
// D for a transpose product: rows x cols, finite.
Status CheckTransposeInput(const ProductCode& code, const MatrixRef& d);
// An update's operands: shard (shard_rows x shard_cols), D (rows x b),
// X (inner x b), b >= 1, all finite.
Status CheckUpdate(const ProductCode& code, const Matrix* shard, int64_t shard_rows,
                   int64_t shard_cols, const MatrixRef& d, const MatrixRef& x, double eta);
// Writes rows l0.. of decoded coefficients (chunk: rows x (row_blocks *
// col_blocks), coefficient u * col_blocks + v being block (u, v) of C,
// flattened column-major br x bc) into C, cropping the padding.
void ScatterBlockChunk(Matrix* c, int64_t l0, const MatrixRef& chunk, int row_blocks,
                       int col_blocks, int64_t br, int64_t bc);
// A deviation bound that holds as an RMS over `decoded` entries, for the
// `kept` of them a product keeps (padding cropped): the squares left can
// only be fewer, spread over fewer entries.
double CroppedBound(double bound, int64_t decoded, int64_t kept);
// A decoder's verdict on `out`, whose product keeps `kept` of the `decoded`
// entries: wrong peers (moved out of `outcome`), verified, the cropped
// deviation bound and one_spare_correction.
void TakeVerdict(DecodeOutcome* outcome, int64_t decoded, int64_t kept, DecodedProduct* out);
// Decodes results with an evaluation decoder, without copying them: each
// result matrix is one column of `length` numbers.
StatusOr<DecodeOutcome> DecodeResults(const ErrorsAndErasuresDecoder& decoder,
                                      std::span<const PeerResult> results, int64_t length);
}  // namespace internal

}  // namespace polyguard

#endif  // POLYGUARD_CODES_PRODUCT_CODE_H_
