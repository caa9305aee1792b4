#include "polyguard/codes/uncoded_code.h"

#include <string>

#include "polyguard/base/peer_set.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard {

StatusOr<std::unique_ptr<UncodedCode>> UncodedCode::Create(ProductShape shape, int peers) {
  POLYGUARD_RETURN_IF_ERROR(internal::ValidateShape(shape).WithContext("uncoded"));
  if (peers < 1 || peers > kMaxPeers) {
    return InvalidArgumentError("uncoded: peers must be in [1, " + std::to_string(kMaxPeers) +
                                "], got " + std::to_string(peers));
  }
  return std::unique_ptr<UncodedCode>(new UncodedCode(shape, peers));
}

UncodedCode::UncodedCode(ProductShape shape, int peers) : ProductCode(shape, peers) {
  block_rows_ = internal::BlockSize(shape.rows, peers);
}

StatusOr<Matrix> UncodedCode::EncodeShard(const MatrixRef& a, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckA(a).WithContext("uncoded shard"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("uncoded shard"));
  return internal::RowBlock(a, peer, block_rows_);
}

StatusOr<Matrix> UncodedCode::EncodeInput(const MatrixRef& b, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(CheckB(b).WithContext("uncoded input"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("uncoded input"));
  return Matrix(b);
}

StatusOr<DecodedProduct> UncodedCode::Decode(std::span<const PeerResult> results) const {
  POLYGUARD_RETURN_IF_ERROR(CheckResults(results, block_rows_, shape().cols));
  if (static_cast<int>(results.size()) < num_peers()) {
    return UnavailableError("uncoded: needs all " + std::to_string(num_peers()) + " results, got " +
                            std::to_string(results.size()));
  }
  Matrix full(block_rows_ * num_peers(), shape().cols);
  std::vector<int> bad;
  for (const PeerResult& r : results) {
    if (!AllFinite(r.value)) bad.push_back(r.peer);
    full.middleRows(r.peer * block_rows_, block_rows_) = r.value;
  }
  if (!bad.empty()) {
    std::sort(bad.begin(), bad.end());
    return DataLossError("uncoded: non-finite results cannot be corrected; suspect peers: " +
                         FormatPeers(bad));
  }
  DecodedProduct out;
  out.product = full.topRows(shape().rows);
  out.verified = false;
  return out;
}

StatusOr<Matrix> UncodedCode::EncodeTransposeInput(const MatrixRef& d, int peer) const {
  POLYGUARD_RETURN_IF_ERROR(internal::CheckTransposeInput(*this, d).WithContext("uncoded"));
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("uncoded transpose input"));
  return internal::RowBlock(d, peer, block_rows_);
}

StatusOr<DecodedProduct> UncodedCode::DecodeTranspose(std::span<const PeerResult> results) const {
  POLYGUARD_RETURN_IF_ERROR(CheckResults(results, shape().inner, shape().cols));
  if (static_cast<int>(results.size()) < num_peers()) {
    return UnavailableError("uncoded: the transpose needs all " + std::to_string(num_peers()) +
                            " results, got " + std::to_string(results.size()));
  }
  DecodedProduct out;
  out.product = Matrix::Zero(shape().inner, shape().cols);
  for (const PeerResult& r : results) out.product += r.value;
  return out;
}

Status UncodedCode::UpdateShard(Matrix* shard, int peer, const MatrixRef& d, const MatrixRef& x,
                                double eta) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(peer).WithContext("uncoded update"));
  POLYGUARD_RETURN_IF_ERROR(
      internal::CheckUpdate(*this, shard, block_rows_, shape().inner, d, x, eta)
          .WithContext("uncoded update"));
  shard->noalias() -= eta * internal::RowBlock(d, peer, block_rows_) * x.transpose();
  return Status::Ok();
}

StrategyEntry UncodedStrategyEntry() {
  StrategyEntry e;
  e.name = std::string(Strategy::kUncoded.name());
  e.parameters = "(none)";
  e.can = {.trains = true};
  e.make = [](const ProductCodeOptions& o) -> StatusOr<std::unique_ptr<ProductCode>> {
    POLYGUARD_ASSIGN_OR_RETURN(auto code, UncodedCode::Create(o.shape, o.peers));
    return std::unique_ptr<ProductCode>(std::move(code));
  };
  return e;
}

}  // namespace polyguard
