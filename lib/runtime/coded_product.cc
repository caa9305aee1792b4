#include "polyguard/runtime/coded_product.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace polyguard {

StatusOr<std::unique_ptr<CodedProduct>> CodedProduct::Create(PeerGroup* group,
                                                             const ProductCode* code,
                                                             FaultInjector* faults,
                                                             CodedProductOptions options,
                                                             const ProductCode* wide) {
  if (group == nullptr || code == nullptr) {
    return InvalidArgumentError("coded product: needs a peer group and a code");
  }
  if (group->size() != code->num_peers()) {
    return InvalidArgumentError("coded product: the code is for " +
                                std::to_string(code->num_peers()) + " peers, the group has " +
                                std::to_string(group->size()));
  }
  POLYGUARD_RETURN_IF_ERROR(ValidateCodedProductOptions(*code, options));
  if (wide != nullptr) {
    const ProductShape a = code->shape(), b = wide->shape();
    // Describe() names the strategy's parameters and points.
    if (wide->strategy() != code->strategy() || wide->Describe() != code->Describe() ||
        wide->num_peers() != code->num_peers() || a.rows != b.rows || a.inner != b.inner ||
        a.cols != b.cols || wide->precision() != Precision::kFloat64) {
      return InvalidArgumentError("coded product: the float64 code (" + wide->Describe() + ", " +
                                  std::string(PrecisionName(wide->precision())) +
                                  ") is not a float64 build of " + code->Describe());
    }
    if (options.wait_for != 0 && options.wait_for < code->num_peers()) {
      // Each peer decides from its own decode; with different results
      // awaited, peers could decide differently and wait for each other.
      return InvalidArgumentError(
          "coded product: recomputing in float64 needs every result awaited (wait_for 0), got "
          "wait_for " +
          std::to_string(options.wait_for));
    }
  }
  return std::unique_ptr<CodedProduct>(new CodedProduct(group, code, faults, options, wide));
}

Status ValidateCodedProductOptions(const ProductCode& code, const CodedProductOptions& options) {
  const int peers = code.num_peers();
  if (options.wait_for != 0 &&
      (options.wait_for < code.recovery_threshold() || options.wait_for > peers)) {
    return InvalidArgumentError("coded product: wait_for must be 0 (all) or in [K = " +
                                std::to_string(code.recovery_threshold()) +
                                ", P = " + std::to_string(peers) + "], got " +
                                std::to_string(options.wait_for));
  }
  if (options.wait_for != 0 && options.wait_for < peers && !code.decodes_from_any_k()) {
    return InvalidArgumentError(
        "coded product: wait_for " + std::to_string(options.wait_for) +
        " < P = " + std::to_string(peers) + ", but " + code.Describe() +
        " decodes only with every peer of a row or column, not from any K results: it needs "
        "wait_for 0 (all)");
  }
  if (options.deadline.count() <= 0) {
    return InvalidArgumentError("coded product: deadline must be > 0");
  }
  return Status::Ok();
}

int ResultsAwaited(int wait_for, int threshold, int peers) {
  if (wait_for == 0) return peers;
  return std::min(peers, std::max(wait_for, threshold + 1));
}

namespace {
// Float32 peers send their results as float32, two numbers in each double of
// the gather (gloo moves bytes, never reads them): the bytes sent halve, and
// the receiver widens them back for the decode, exactly.
// Both go through a small buffer in chunks (memcpy keeps the types apart):
// a whole-result float copy per peer and exchange cost allocations and page
// faults, 2% of a float32 peer's CPU.
constexpr size_t kPackChunk = 1024;

std::vector<double> PackFloat32(const Matrix& m) {
  const size_t n = static_cast<size_t>(m.size());
  std::vector<double> packed((n + 1) / 2);
  if (n % 2 == 1) packed.back() = 0.0;  // the unused half of the last double
  char* out = reinterpret_cast<char*>(packed.data());
  float chunk[kPackChunk];
  for (size_t i = 0; i < n; i += kPackChunk) {
    const size_t c = std::min(kPackChunk, n - i);
    Eigen::Map<Eigen::VectorXf>(chunk, Eigen::Index(c)) =
        Eigen::Map<const Vector>(m.data() + i, Eigen::Index(c)).cast<float>();
    std::memcpy(out + i * sizeof(float), chunk, c * sizeof(float));
  }
  return packed;
}

Matrix UnpackFloat32(const Matrix& packed, Eigen::Index rows, Eigen::Index cols) {
  const size_t n = static_cast<size_t>(rows * cols);
  Matrix out(rows, cols);
  const char* in = reinterpret_cast<const char*>(packed.data());
  float chunk[kPackChunk];
  for (size_t i = 0; i < n; i += kPackChunk) {
    const size_t c = std::min(kPackChunk, n - i);
    std::memcpy(chunk, in + i * sizeof(float), c * sizeof(float));
    Eigen::Map<Vector>(out.data() + i, Eigen::Index(c)) =
        Eigen::Map<const Eigen::VectorXf>(chunk, Eigen::Index(c)).cast<double>();
  }
  return out;
}
}  // namespace

void CodedProduct::Fault(int64_t step, int layer, StepPoint point, Matrix* value) {
  if (faults_ != nullptr) faults_->MaybeCorrupt(step, layer, point, value);
}

StatusOr<std::vector<PeerResult>> CodedProduct::Exchange(const Matrix& result,
                                                         double roundoff_scale, int threshold,
                                                         int64_t step, int layer, ExchangeOp op,
                                                         bool narrow) {
  POLYGUARD_ASSIGN_OR_RETURN(const ExchangeTag tag, MakeExchangeTag(op, step, layer));
  // A send fault corrupts only what is sent, so it needs its own copy; only
  // a hit pays for it (a copy per exchange was 3% of the bundled demo's CPU).
  Matrix corrupted;
  const Matrix* sent = &result;
  if (faults_ != nullptr) {
    if (faults_->Hits(step, layer, StepPoint::kSend)) {
      corrupted = result;
      Fault(step, layer, StepPoint::kSend, &corrupted);
      sent = &corrupted;
    }
    std::this_thread::sleep_for(faults_->StragglerDelay(step));
  }
  const int p = group_->size();
  // The transpose may need more results than the forward product, and a
  // decode from exactly K results checks nothing: wait for at least one
  // more whenever the code has one (ResultsAwaited).
  // (After a crash the group has fewer members: a lost peer is an erasure.)
  const int need = std::min(ResultsAwaited(options_.wait_for, threshold, p),
                            static_cast<int>(group_->members().size()));
  // Waiting for everyone is bounded by the group's failure timeout instead.
  const auto deadline = options_.wait_for == 0
                            ? std::chrono::steady_clock::time_point::max()
                            : std::chrono::steady_clock::now() + options_.deadline;
  std::vector<double> wire;
  if (narrow) {
    wire = PackFloat32(*sent);
  } else {
    wire.reserve(size_t(sent->size()) + 1);
    wire.assign(sent->data(), sent->data() + sent->size());
  }
  wire.push_back(roundoff_scale);
  POLYGUARD_ASSIGN_OR_RETURN(GatherResult g, group_->GatherAtLeast(wire, need, deadline, tag));
  if (int(g.peers.size()) < threshold) {
    return UnavailableError("coded product (step " + std::to_string(step) + ", layer " +
                            std::to_string(layer) + "): only " + std::to_string(g.peers.size()) +
                            " of " + std::to_string(p) +
                            " results arrived, need K = " + std::to_string(threshold));
  }
  results_not_awaited_ += p - static_cast<int64_t>(g.peers.size());
  std::vector<PeerResult> results;
  results.reserve(g.peers.size());
  for (int q : g.peers) {
    Matrix& piece = g.pieces[size_t(q)];
    const double scale = piece(piece.rows() - 1, 0);
    if (narrow) {
      results.push_back({q, UnpackFloat32(piece, result.rows(), result.cols()), scale});
      continue;
    }
    // Drop the scale: as one row, dropping its last column reallocates in
    // place (dropping the last row of a column copies the whole piece into a
    // new one: 3% of the bundled demo's CPU). Then reshape (same size).
    piece.resize(1, piece.size());
    piece.conservativeResize(1, piece.cols() - 1);
    piece.resize(result.rows(), result.cols());
    results.push_back({q, std::move(piece), scale});
  }
  return results;
}

namespace {
// A peer whose local copy of an input went non-finite (a soft error) must
// still take part in the exchange, or every other peer would wait for it: it
// encodes a finite stand-in and sends a result that every decoder treats as
// wrong.
bool Sanitize(const MatrixRef& in, Matrix* out) {
  if (AllFinite(in)) return false;
  *out = in.unaryExpr([](double v) { return std::isfinite(v) ? v : 0.0; });
  return true;
}
void Spoil(Matrix* y) { y->setConstant(std::numeric_limits<double>::quiet_NaN()); }
}  // namespace

StatusOr<DecodedProduct> CodedProduct::Forward(Matrix* shard, const MatrixRef& b, int64_t step,
                                               int layer, const ShardAbsSums* sums) {
  if (faults_ != nullptr && faults_->ShouldCrash(step)) std::_Exit(FaultInjector::kCrashExitCode);
  Fault(step, layer, StepPoint::kShard, shard);
  return Product(shard, nullptr, b, /*transpose=*/false, step, layer, sums);
}

StatusOr<DecodedProduct> CodedProduct::Transpose(Matrix* shard, const MatrixRef& d, int64_t step,
                                                 int layer, const ShardAbsSums* sums) {
  return Product(shard, nullptr, d, /*transpose=*/true, step, layer, sums);
}

StatusOr<DecodedProduct> CodedProduct::Forward(CompensatedMatrix* shard, const MatrixRef& b,
                                               int64_t step, int layer, const ShardAbsSums* sums) {
  if (faults_ != nullptr && faults_->ShouldCrash(step)) std::_Exit(FaultInjector::kCrashExitCode);
  // The injector corrupts doubles: only a hit pays for the round trip.
  if (faults_ != nullptr && faults_->Hits(step, layer, StepPoint::kShard)) {
    Matrix value = shard->ToDouble();
    Fault(step, layer, StepPoint::kShard, &value);
    shard->Assign(value);
  }
  return Product(nullptr, shard, b, /*transpose=*/false, step, layer, sums);
}

StatusOr<DecodedProduct> CodedProduct::Transpose(CompensatedMatrix* shard, const MatrixRef& d,
                                                 int64_t step, int layer,
                                                 const ShardAbsSums* sums) {
  return Product(nullptr, shard, d, /*transpose=*/true, step, layer, sums);
}

StatusOr<DecodedProduct> CodedProduct::Product(const Matrix* f64, const CompensatedMatrix* f32,
                                               const MatrixRef& input, bool transpose, int64_t step,
                                               int layer, const ShardAbsSums* sums) {
  const int r = group_->rank();
  Matrix clean;
  const bool spoiled = Sanitize(input, &clean);
  const MatrixRef in = spoiled ? MatrixRef(clean) : input;
  POLYGUARD_ASSIGN_OR_RETURN(
      Matrix piece, transpose ? code_->EncodeTransposeInput(in, r) : code_->EncodeInput(in, r));
  Fault(step, layer, StepPoint::kEncode, &piece);
  // A float64 code multiplies a float32-kept shard's full values.
  Matrix full;
  if (f32 != nullptr && code_->precision() != Precision::kFloat32) {
    full = f32->ToDouble();
    f64 = &full;
    f32 = nullptr;
  }
  Matrix y;
  double scale = 0.0;
  if (f32 != nullptr) {
    y = transpose ? code_->PeerTransposeProductFloat32(f32->rounded(), piece)
                  : code_->PeerProductFloat32(f32->rounded(), piece);
    scale =
        RoundoffScale(sums != nullptr ? *sums : AbsSumsOfFloat32(f32->rounded()), piece, transpose);
  } else {
    y = transpose ? code_->PeerTransposeProduct(*f64, piece) : code_->PeerProduct(*f64, piece);
    scale = sums != nullptr ? RoundoffScale(*sums, piece, transpose)
                            : RoundoffScale(*f64, piece, transpose);
  }
  POLYGUARD_ASSIGN_OR_RETURN(
      DecodedProduct decoded,
      ExchangeAndDecode(*code_, std::move(y), scale, spoiled, transpose, step, layer));
  if (wide_ != nullptr && !Resolves(*code_, decoded)) {
    ++products_widened_;
    if (f32 != nullptr) {
      full = f32->ToDouble();
      f64 = &full;
    }
    const Matrix& shard = *f64;
    Matrix y64 =
        transpose ? wide_->PeerTransposeProduct(shard, piece) : wide_->PeerProduct(shard, piece);
    POLYGUARD_ASSIGN_OR_RETURN(
        decoded, ExchangeAndDecode(*wide_, std::move(y64), scale, spoiled, transpose, step, layer));
  }
  Fault(step, layer, StepPoint::kDecode, &decoded.product);
  return decoded;
}

StatusOr<DecodedProduct> CodedProduct::DecodedWithFault(StatusOr<DecodedProduct> decoded,
                                                        int64_t step, int layer) {
  if (decoded.ok()) Fault(step, layer, StepPoint::kDecode, &decoded->product);
  return decoded;
}

StatusOr<DecodedProduct> CodedProduct::ExchangeAndDecode(const ProductCode& code, Matrix y,
                                                         double roundoff_scale, bool spoiled,
                                                         bool transpose, int64_t step, int layer) {
  if (spoiled) Spoil(&y);
  Fault(step, layer, StepPoint::kProduct, &y);
  const int threshold = transpose ? code.transpose_threshold() : code.recovery_threshold();
  const bool wide = &code == wide_;
  const ExchangeOp op = transpose ? (wide ? ExchangeOp::kTransposeWide : ExchangeOp::kTranspose)
                                  : (wide ? ExchangeOp::kForwardWide : ExchangeOp::kForward);
  POLYGUARD_ASSIGN_OR_RETURN(auto results, Exchange(y, roundoff_scale, threshold, step, layer, op,
                                                    code.precision() == Precision::kFloat32));
  return transpose ? code.DecodeTranspose(results) : code.Decode(results);
}

void CodedProduct::FaultSparse(int64_t step, int layer, StepPoint point, SparseMatrix* value) {
  if (faults_ == nullptr || value->nonZeros() == 0 || !faults_->Hits(step, layer, point)) return;
  Matrix values = Eigen::Map<const Vector>(value->valuePtr(), value->nonZeros());
  if (faults_->MaybeCorrupt(step, layer, point, &values))
    Eigen::Map<Vector>(value->valuePtr(), value->nonZeros()) = values;
}

StatusOr<DecodedProduct> CodedProduct::ForwardSparse(SparseMatrix* shard, const MatrixRef& b,
                                                     int64_t step, int layer) {
  if (faults_ != nullptr && faults_->ShouldCrash(step)) std::_Exit(FaultInjector::kCrashExitCode);
  FaultSparse(step, layer, StepPoint::kShard, shard);
  Matrix clean;
  const bool spoiled = Sanitize(b, &clean);
  POLYGUARD_ASSIGN_OR_RETURN(Matrix piece,
                             code_->EncodeInput(spoiled ? MatrixRef(clean) : b, group_->rank()));
  Fault(step, layer, StepPoint::kEncode, &piece);
  return DecodedWithFault(
      ExchangeAndDecode(*code_, code_->SparsePeerProduct(*shard, piece),
                        RoundoffScale(*shard, piece), spoiled, false, step, layer),
      step, layer);
}

StatusOr<DecodedProduct> CodedProduct::ForwardSparse(SparseMatrix* shard, const SparseMatrix& b,
                                                     int64_t step, int layer) {
  if (faults_ != nullptr && faults_->ShouldCrash(step)) std::_Exit(FaultInjector::kCrashExitCode);
  FaultSparse(step, layer, StepPoint::kShard, shard);
  // As for dense inputs: a non-finite input still takes part (see Sanitize).
  bool spoiled = !AllFinite(Eigen::Map<const Vector>(b.valuePtr(), b.nonZeros()));
  SparseMatrix clean;
  if (spoiled) {
    clean = b;
    for (Eigen::Index i = 0; i < clean.nonZeros(); ++i)
      if (!std::isfinite(clean.valuePtr()[i])) clean.valuePtr()[i] = 0.0;
  }
  POLYGUARD_ASSIGN_OR_RETURN(SparseMatrix piece,
                             code_->EncodeSparseInput(spoiled ? clean : b, group_->rank()));
  FaultSparse(step, layer, StepPoint::kEncode, &piece);
  spoiled = spoiled || !AllFinite(Eigen::Map<const Vector>(piece.valuePtr(), piece.nonZeros()));
  return DecodedWithFault(
      ExchangeAndDecode(*code_, code_->SparsePeerProduct(*shard, piece),
                        RoundoffScale(*shard, piece), spoiled, false, step, layer),
      step, layer);
}

Status CodedProduct::Update(Matrix* shard, const MatrixRef& d, const MatrixRef& x, double eta,
                            int64_t step, int layer) {
  POLYGUARD_RETURN_IF_ERROR(code_->UpdateShard(shard, group_->rank(), d, x, eta));
  Fault(step, layer, StepPoint::kUpdate, shard);
  return Status::Ok();
}

}  // namespace polyguard
