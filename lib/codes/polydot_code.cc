#include "polyguard/codes/polydot_code.h"

#include <cmath>
#include <numeric>
#include <string>

#include "polyguard/base/peer_set.h"
#include "polyguard/codes/rotation_code.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard {
using internal::AddBlock;

StatusOr<std::unique_ptr<PolyDotCode>> PolyDotCode::Create(ProductShape shape, PolyDotOptions o) {
  POLYGUARD_RETURN_IF_ERROR(internal::ValidateShape(shape).WithContext("genpolydot"));
  if (o.points == PointKind::kRotation) {
    return InvalidArgumentError(
        "genpolydot: rotation points are built by RotationCode (Polynomial codes, n = 1; "
        "MakeProductCode picks it)");
  }
  if (o.m < 1 || o.n < 1 || o.d < 1) {
    return InvalidArgumentError(
        "genpolydot: m, n and d must be >= 1, got m=" + std::to_string(o.m) +
        " n=" + std::to_string(o.n) + " d=" + std::to_string(o.d));
  }
  const int64_t k = int64_t{o.m} * o.n * o.d + o.n - 1;
  if (o.peers < 1 || o.peers > kMaxPeers) {
    return InvalidArgumentError("genpolydot: peers must be in [1, " + std::to_string(kMaxPeers) +
                                "], got " + std::to_string(o.peers));
  }
  if (o.peers < k) {
    return InvalidArgumentError("genpolydot: too few peers: m=" + std::to_string(o.m) +
                                " n=" + std::to_string(o.n) + " d=" + std::to_string(o.d) +
                                " needs at least K = mnd + n - 1 = " + std::to_string(k) +
                                " peers, got " + std::to_string(o.peers));
  }
  auto code = std::unique_ptr<PolyDotCode>(new PolyDotCode(shape, o));
  std::vector<int> wanted;
  for (int l = 0; l < o.d; ++l)
    for (int i = 0; i < o.m; ++i) wanted.push_back(o.n * i + o.n - 1 + o.m * o.n * l);
  POLYGUARD_ASSIGN_OR_RETURN(
      code->forward_decoder_,
      ErrorsAndErasuresDecoder::Create(code->points_,
                                       MonomialBasis(code->points_, code->forward_threshold_),
                                       wanted, o.decoder));
  if (o.peers >= code->transpose_threshold_) {
    std::vector<int> wanted_t;
    for (int l = 0; l < o.d; ++l)
      for (int j = 0; j < o.n; ++j) wanted_t.push_back(o.n * (o.m - 1) + j + o.m * o.n * l);
    POLYGUARD_ASSIGN_OR_RETURN(
        code->transpose_decoder_,
        ErrorsAndErasuresDecoder::Create(code->points_,
                                         MonomialBasis(code->points_, code->transpose_threshold_),
                                         wanted_t, o.decoder));
  }
  const int mn = o.m * o.n;
  if (o.peers > mn) {
    POLYGUARD_ASSIGN_OR_RETURN(
        code->shard_decoder_, ErrorsAndErasuresDecoder::Create(
                                  code->points_, MonomialBasis(code->points_, mn), {0}, o.decoder));
  }
  return code;
}

PolyDotCode::PolyDotCode(ProductShape shape, PolyDotOptions o)
    : ProductCode(shape, o.peers), options_(o) {
  points_ = MakeEvaluationPoints(o.points, o.peers);
  forward_threshold_ = o.m * o.n * o.d + o.n - 1;
  transpose_threshold_ = o.m * o.n * o.d + o.m * o.n - o.n;
  block_rows_ = internal::BlockSize(shape.rows, o.m);
  block_inner_ = internal::BlockSize(shape.inner, o.n);
  block_cols_ = internal::BlockSize(shape.cols, o.d);
}

int PolyDotCode::errors_corrected_probabilistic() const {
  return std::max(0, num_peers() - forward_threshold_ - 1);
}
int PolyDotCode::errors_corrected_adversarial() const {
  return (num_peers() - forward_threshold_) / 2;
}

std::string PolyDotCode::Describe() const {
  return "genpolydot P=" + std::to_string(num_peers()) + " m=" + std::to_string(options_.m) +
         " n=" + std::to_string(options_.n) + " d=" + std::to_string(options_.d) +
         " K=" + std::to_string(forward_threshold_) +
         " points=" + std::string(PointKindName(options_.points));
}

double PolyDotCode::Power(int peer, int exponent) const {
  return std::pow(points_[static_cast<size_t>(peer)], exponent);
}

StatusOr<Matrix> PolyDotCode::EncodeShard(const MatrixRef& a, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckA(a).WithContext("genpolydot shard"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("genpolydot shard"));
  const int m = options_.m, n = options_.n;
  Matrix shard = Matrix::Zero(block_rows_, block_inner_);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      AddBlock(&shard, Power(peer, n * i + j), a, i, j, block_rows_, block_inner_);
  return shard;
}

StatusOr<Matrix> PolyDotCode::EncodeInput(const MatrixRef& b, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckB(b).WithContext("genpolydot input"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("genpolydot input"));
  const int m = options_.m, n = options_.n, d = options_.d;
  Matrix piece = Matrix::Zero(block_inner_, block_cols_);
  for (int k = 0; k < n; ++k)
    for (int l = 0; l < d; ++l)
      AddBlock(&piece, Power(peer, (n - 1 - k) + m * n * l), b, k, l, block_inner_, block_cols_);
  return piece;
}

StatusOr<Matrix> PolyDotCode::EncodeTransposeInput(const MatrixRef& dm, int peer) const {
  if (!transpose_decoder_) {
    return FailedPreconditionError(
        "genpolydot: the transpose product needs K_t = " + std::to_string(transpose_threshold_) +
        " peers, code has " + std::to_string(num_peers()));
  }
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("genpolydot transpose input"));
  POLYGUARD_RETURN_IF_ERROR(internal::CheckTransposeInput(*this, dm).WithContext("genpolydot"));
  const int m = options_.m, n = options_.n, d = options_.d;
  Matrix piece = Matrix::Zero(block_rows_, block_cols_);
  for (int i = 0; i < m; ++i)
    for (int l = 0; l < d; ++l)
      AddBlock(&piece, Power(peer, n * (m - 1 - i) + m * n * l), dm, i, l, block_rows_,
               block_cols_);
  return piece;
}

Status PolyDotCode::UpdateShard(Matrix* shard, int peer, const MatrixRef& dm, const MatrixRef& x,
                                double eta) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("genpolydot update"));
  POLYGUARD_RETURN_IF_ERROR(
      internal::CheckUpdate(*this, shard, block_rows_, block_inner_, dm, x, eta)
          .WithContext("genpolydot update"));
  const int m = options_.m, n = options_.n;
  const int64_t b = dm.cols();
  Matrix left = Matrix::Zero(block_rows_, b), right = Matrix::Zero(block_inner_, b);
  for (int i = 0; i < m; ++i) AddBlock(&left, Power(peer, n * i), dm, i, 0, block_rows_, b);
  for (int j = 0; j < n; ++j) AddBlock(&right, Power(peer, j), x, j, 0, block_inner_, b);
  shard->noalias() -= eta * left * right.transpose();
  return Status::Ok();
}

StatusOr<DecodedProduct> PolyDotCode::DecodeWith(const ErrorsAndErasuresDecoder& decoder,
                                                 std::span<const PeerResult> results,
                                                 int64_t block_r, int64_t block_c, int grid_r,
                                                 int grid_c, int64_t out_r, int64_t out_c) const {
  POLYGUARD_RETURN_IF_ERROR(CheckResults(results, block_r, block_c));
  POLYGUARD_ASSIGN_OR_RETURN(DecodeOutcome outcome,
                             internal::DecodeResults(decoder, results, block_r * block_c));
  // Block (r, c) of the product is wanted coefficient r + grid_r * c; only
  // the part inside the (unpadded) product is copied.
  DecodedProduct out;
  out.product.resize(out_r, out_c);
  for (int c = 0; c < grid_c; ++c) {
    for (int r = 0; r < grid_r; ++r) {
      const int64_t r0 = r * block_r, c0 = c * block_c;
      const int64_t nr = std::min(block_r, out_r - r0), nc = std::min(block_c, out_c - c0);
      if (nr <= 0 || nc <= 0) continue;
      const auto block = outcome.coefficients.col(r + grid_r * c).reshaped(block_r, block_c);
      out.product.block(r0, c0, nr, nc) = block.topLeftCorner(nr, nc);
    }
  }
  internal::TakeVerdict(&outcome, block_r * block_c * grid_r * grid_c, out.product.size(), &out);
  return out;
}

StatusOr<DecodedProduct> PolyDotCode::Decode(std::span<const PeerResult> results) const {
  return DecodeWith(*forward_decoder_, results, block_rows_, block_cols_, options_.m, options_.d,
                    shape().rows, shape().cols);
}

StatusOr<DecodedProduct> PolyDotCode::DecodeTranspose(std::span<const PeerResult> results) const {
  if (!transpose_decoder_) {
    return FailedPreconditionError(
        "genpolydot: the transpose product needs K_t = " + std::to_string(transpose_threshold_) +
        " peers, code has " + std::to_string(num_peers()));
  }
  return DecodeWith(*transpose_decoder_, results, block_inner_, block_cols_, options_.n, options_.d,
                    shape().inner, shape().cols);
}

StatusOr<std::vector<int>> PolyDotCode::CheckProbes(std::span<const PeerResult> probes) const {
  if (!shard_decoder_) return std::vector<int>{};  // P = mn: no redundancy to check with
  POLYGUARD_RETURN_IF_ERROR(CheckResults(probes, probes.empty() ? 0 : probes[0].value.rows(), 1));
  const int64_t length = probes.empty() ? 0 : probes[0].value.rows();
  POLYGUARD_ASSIGN_OR_RETURN(DecodeOutcome outcome,
                             internal::DecodeResults(*shard_decoder_, probes, length));
  return outcome.wrong_peers;
}

StatusOr<std::vector<int>> PolyDotCode::RepairSources(int target,
                                                      std::span<const int> healthy) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(target).WithContext("genpolydot repair"));
  const size_t k = static_cast<size_t>(options_.m * options_.n);
  std::vector<int> sources;
  for (int p : healthy)
    if (p != target && p >= 0 && p < num_peers()) sources.push_back(p);
  if (sources.size() < k) {
    return FailedPreconditionError("genpolydot repair of peer " + std::to_string(target) +
                                   ": needs mn = " + std::to_string(k) + " healthy shards, have " +
                                   std::to_string(sources.size()));
  }
  // The nearest points interpolate best.
  const double at = points_[static_cast<size_t>(target)];
  std::stable_sort(sources.begin(), sources.end(), [&](int a, int b) {
    return std::abs(points_[size_t(a)] - at) < std::abs(points_[size_t(b)] - at);
  });
  sources.resize(k);
  std::sort(sources.begin(), sources.end());
  return sources;
}

StatusOr<Matrix> PolyDotCode::RepairShard(int target, std::span<const PeerResult> sources) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(target).WithContext("genpolydot repair"));
  const int k = options_.m * options_.n;
  if (static_cast<int>(sources.size()) != k) {
    return InvalidArgumentError("genpolydot repair: needs exactly mn = " + std::to_string(k) +
                                " source shards, got " + std::to_string(sources.size()));
  }
  const int64_t rows = sources[0].value.rows(), cols = sources[0].value.cols();
  POLYGUARD_RETURN_IF_ERROR(CheckResults(sources, rows, cols));
  // W(a_t) = sum_s c_s W(a_s) with Lagrange weights c (basis-free; solved in
  // the Chebyshev basis, which is far better conditioned than monomials).
  std::vector<double> src_points;
  for (const PeerResult& r : sources) {
    if (r.peer == target) return InvalidArgumentError("genpolydot repair: target among sources");
    src_points.push_back(points_[static_cast<size_t>(r.peer)]);
  }
  const Matrix basis = ChebyshevBasis(src_points, k);                           // k x k
  const Matrix at = ChebyshevBasis({points_[static_cast<size_t>(target)]}, k);  // 1 x k
  const Vector weights = basis.transpose().colPivHouseholderQr().solve(at.transpose());
  Matrix out = Matrix::Zero(rows, cols);
  for (int s = 0; s < k; ++s) out.noalias() += weights(s) * sources[size_t(s)].value;
  return out;
}

StrategyEntry PolyDotStrategyEntry() {
  StrategyEntry e;
  e.name = std::string(Strategy::kPolyDot.name());
  e.aliases = {"polydot"};
  e.parameters = "m, n, d, points";
  e.can = {.trains = true, .coded_convolution = true, .corrects_errors = true};
  e.make = [](const ProductCodeOptions& o) -> StatusOr<std::unique_ptr<ProductCode>> {
    if (o.points == PointKind::kRotation) {
      if (o.n != 1) {
        return InvalidArgumentError(
            "genpolydot: rotation points are built for the Polynomial code (n = 1), got n = " +
            std::to_string(o.n) + " (rotation_code.h derives the n > 1 case)");
      }
      RotationOptions p{.peers = o.peers, .m = o.m, .d = o.d, .decoder = o.decoder};
      POLYGUARD_ASSIGN_OR_RETURN(auto code, RotationCode::Create(o.shape, p));
      return std::unique_ptr<ProductCode>(std::move(code));
    }
    PolyDotOptions p{
        .peers = o.peers, .m = o.m, .n = o.n, .d = o.d, .points = o.points, .decoder = o.decoder};
    POLYGUARD_ASSIGN_OR_RETURN(auto code, PolyDotCode::Create(o.shape, p));
    return std::unique_ptr<ProductCode>(std::move(code));
  };
  return e;
}

}  // namespace polyguard
