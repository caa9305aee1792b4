#include "polyguard/codes/mds_code.h"

#include <cmath>
#include <numeric>
#include <string>

#include "polyguard/base/peer_set.h"
#include "polyguard/codes/product_mds_code.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard {

StatusOr<std::unique_ptr<MdsCode>> MdsCode::Create(ProductShape shape, MdsOptions o) {
  POLYGUARD_RETURN_IF_ERROR(internal::ValidateShape(shape).WithContext("mds"));
  if (o.points == PointKind::kRotation) {
    return InvalidArgumentError(
        "mds: rotation points are for Polynomial codes (genpolydot, n = 1)");
  }
  if (o.peers < 1 || o.peers > kMaxPeers) {
    return InvalidArgumentError("mds: peers must be in [1, " + std::to_string(kMaxPeers) +
                                "], got " + std::to_string(o.peers));
  }
  if (o.data_blocks < 1 || o.data_blocks > o.peers) {
    return InvalidArgumentError("mds: data blocks Q must be in [1, P = " + std::to_string(o.peers) +
                                "], got " + std::to_string(o.data_blocks));
  }
  auto code = std::unique_ptr<MdsCode>(new MdsCode(shape, o));
  std::vector<int> wanted(static_cast<size_t>(o.data_blocks));
  std::iota(wanted.begin(), wanted.end(), 0);
  POLYGUARD_ASSIGN_OR_RETURN(
      code->decoder_,
      ErrorsAndErasuresDecoder::Create(code->points_, code->generator_, wanted, o.decoder));
  return code;
}

SystematicMds MakeSystematicMds(PointKind kind, int p, int q) {
  // Give the systematic peers 0..Q-1 evenly spread points; parity peers the rest.
  SystematicMds out;
  const std::vector<double> base = MakeEvaluationPoints(kind, p);
  std::vector<bool> used(base.size(), false);
  for (int i = 0; i < q; ++i) {
    const int idx = q == 1 ? p / 2 : static_cast<int>(std::lround(double(i) * (p - 1) / (q - 1)));
    out.points.push_back(base[static_cast<size_t>(idx)]);
    used[static_cast<size_t>(idx)] = true;
  }
  for (int idx = 0; idx < p; ++idx)
    if (!used[static_cast<size_t>(idx)]) out.points.push_back(base[static_cast<size_t>(idx)]);
  const Matrix v = MonomialBasis(out.points, q);
  out.generator = v * v.topRows(q).inverse();
  out.generator.topRows(q).setIdentity();  // exact, not just to roundoff
  return out;
}

MdsCode::MdsCode(ProductShape shape, MdsOptions o) : ProductCode(shape, o.peers), options_(o) {
  block_rows_ = internal::BlockSize(shape.rows, o.data_blocks);
  SystematicMds mds = MakeSystematicMds(o.points, o.peers, o.data_blocks);
  points_ = std::move(mds.points);
  generator_ = std::move(mds.generator);
}

int MdsCode::errors_corrected_probabilistic() const {
  return std::max(0, num_peers() - options_.data_blocks - 1);
}
int MdsCode::errors_corrected_adversarial() const {
  return (num_peers() - options_.data_blocks) / 2;
}

std::string MdsCode::Describe() const {
  return "mds P=" + std::to_string(num_peers()) + " Q=" + std::to_string(options_.data_blocks) +
         " points=" + std::string(PointKindName(options_.points));
}

StatusOr<Matrix> MdsCode::EncodeShard(const MatrixRef& a, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckA(a).WithContext("mds shard"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("mds shard"));
  Matrix shard = Matrix::Zero(block_rows_, a.cols());
  for (int i = 0; i < options_.data_blocks; ++i) {
    const double g = generator_(peer, i);
    if (g != 0.0) shard.noalias() += g * internal::RowBlock(a, i, block_rows_);
  }
  return shard;
}

StatusOr<Matrix> MdsCode::EncodeInput(const MatrixRef& b, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckB(b).WithContext("mds input"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("mds input"));
  return Matrix(b);
}

StatusOr<DecodedProduct> MdsCode::Decode(std::span<const PeerResult> results) const {
  POLYGUARD_RETURN_IF_ERROR(CheckResults(results, block_rows_, shape().cols));
  POLYGUARD_ASSIGN_OR_RETURN(
      DecodeOutcome outcome,
      internal::DecodeResults(*decoder_, results, block_rows_ * shape().cols));
  Matrix full(block_rows_ * options_.data_blocks, shape().cols);
  for (int i = 0; i < options_.data_blocks; ++i)
    full.middleRows(i * block_rows_, block_rows_) =
        outcome.coefficients.col(i).reshaped(block_rows_, shape().cols);
  DecodedProduct out;
  out.product = full.topRows(shape().rows);
  internal::TakeVerdict(&outcome, full.size(), out.product.size(), &out);
  return out;
}

StrategyEntry MdsStrategyEntry() {
  StrategyEntry e;
  e.name = std::string(Strategy::kMds.name());
  e.parameters = "data_blocks, or the layout row_peers, row_blocks, col_peers, col_blocks";
  // Trains with the product-code layout (product_mds_code.h); the 1-D code is forward only.
  e.can = {.trains = true, .corrects_errors = true};
  e.make = [](const ProductCodeOptions& o) -> StatusOr<std::unique_ptr<ProductCode>> {
    if (o.row_blocks > 0) {
      ProductMdsOptions p{.row_peers = o.row_peers,
                          .row_blocks = o.row_blocks,
                          .col_peers = o.col_peers,
                          .col_blocks = o.col_blocks,
                          .points = o.points,
                          .decoder = o.decoder};
      if (ProductMdsPeers(p) != o.peers) {
        return InvalidArgumentError(
            "mds: the product-code layout P_r=" + std::to_string(o.row_peers) +
            " Q_r=" + std::to_string(o.row_blocks) + " P_c=" + std::to_string(o.col_peers) +
            " Q_c=" + std::to_string(o.col_blocks) + " needs Q_r P_c + (P_r - Q_r) Q_c = " +
            std::to_string(ProductMdsPeers(p)) + " peers, got " + std::to_string(o.peers));
      }
      POLYGUARD_ASSIGN_OR_RETURN(auto code, ProductMdsCode::Create(o.shape, p));
      return std::unique_ptr<ProductCode>(std::move(code));
    }
    MdsOptions p{
        .peers = o.peers, .data_blocks = o.data_blocks, .points = o.points, .decoder = o.decoder};
    POLYGUARD_ASSIGN_OR_RETURN(auto code, MdsCode::Create(o.shape, p));
    return std::unique_ptr<ProductCode>(std::move(code));
  };
  // The 1-D code fails beyond its threshold; the product layout's failures
  // depend on where the wrong results sit, so it has no closed form.
  e.failure_by_count = [](const ProductCode& code) -> FailureByWrongCount {
    if (code.supports_training()) return std::nullopt;
    return ThresholdFailureByCount(code);
  };
  return e;
}

}  // namespace polyguard
