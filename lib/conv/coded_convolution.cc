#include "polyguard/conv/coded_convolution.h"

#include "polyguard/base/peer_set.h"
#include "polyguard/codes/rotation_code.h"

#include <cmath>
#include <numbers>
#include <numeric>

namespace polyguard {

namespace {
// The fewest points q >= P with gcd(k_a, q) = 1: the transpose evaluates at
// w = z^k_a, which must stay distinct; the forward is best conditioned with
// q as close to P as possible (the points then cover the circle evenly).
int PointCount(int peers, int k_a) {
  for (int q = std::max(peers, 1);; ++q)
    if (std::gcd(q, k_a) == 1) return q;
}
}  // namespace

CodedConvolution::CodedConvolution(ConvPartition partition, CodedConvolutionOptions o)
    : ProductCode(
          {partition.full.filters, partition.full.filter_size() + (o.bias ? 1 : 0), o.batch},
          o.peers),
      partition_(std::move(partition)),
      options_(o) {
  q_ = PointCount(o.peers, o.k_a);
  filter_size_ = partition_.full.filter_size();
  shard_generator_.resize(2 * o.peers, 2 * o.k_b);
  for (int r = 0; r < o.peers; ++r)
    shard_generator_.middleRows(2 * r, 2) = RotationEncoder(r, q_, o.k_b, o.k_a);
  group_shape_ = partition_.full;
  group_shape_.filters = partition_.group;
  generator_ = RotationProductGenerator(o.peers, q_, o.k_a, o.k_b);
  // Transpose: y_r = sum_E c_E w_r^(E - (k_b - 1)), w_r = z_r^k_a, E in
  // [0, 2 k_b - 2]; real rows Re y, Im y; columns (Re c_E, Im c_E).
  const int exps = 2 * o.k_b - 1;
  transpose_generator_.resize(2 * o.peers, 2 * exps);
  for (int r = 0; r < o.peers; ++r) {
    for (int e = 0; e < exps; ++e) {
      const int64_t k = (int64_t(r) * o.k_a % q_) * (e - (o.k_b - 1));
      const double phi = 2.0 * std::numbers::pi * double(((k % q_) + q_) % q_) / q_;
      transpose_generator_(2 * r, 2 * e) = std::cos(phi);
      transpose_generator_(2 * r, 2 * e + 1) = -std::sin(phi);
      transpose_generator_(2 * r + 1, 2 * e) = std::sin(phi);
      transpose_generator_(2 * r + 1, 2 * e + 1) = std::cos(phi);
    }
  }
}

StatusOr<std::unique_ptr<CodedConvolution>> CodedConvolution::Create(const ConvShape& shape,
                                                                     CodedConvolutionOptions o) {
  if (o.peers < 1 || o.peers > kMaxPeers) {
    return InvalidArgumentError("coded convolution: peers must be in [1, " +
                                std::to_string(kMaxPeers) + "], got " + std::to_string(o.peers));
  }
  if (o.k_a < 1 || o.k_b < 1 || int64_t{o.k_a} * o.k_b > o.peers) {
    return InvalidArgumentError(
        "coded convolution: k_a, k_b >= 1 with K = k_a k_b <= P = " + std::to_string(o.peers) +
        ", got k_a=" + std::to_string(o.k_a) + " k_b=" + std::to_string(o.k_b));
  }
  if (o.batch < 1) {
    return InvalidArgumentError("coded convolution: batch must be >= 1, got " +
                                std::to_string(o.batch));
  }
  // Each complex symbol is a pair of slabs (filter groups): say so in the
  // caller's k_a and k_b, not in the partition's counts.
  POLYGUARD_RETURN_IF_ERROR(ValidateConvShape(shape));
  if (2 * o.k_a > shape.out_height()) {
    return InvalidArgumentError(
        "coded convolution: conv " + shape.Describe() + " has " +
        std::to_string(shape.out_height()) + " output rows, k_a = " + std::to_string(o.k_a) +
        " needs 2 k_a = " + std::to_string(2 * o.k_a) + " input slabs of at least one row");
  }
  if (2 * o.k_b > shape.filters) {
    return InvalidArgumentError(
        "coded convolution: conv " + shape.Describe() + " has " + std::to_string(shape.filters) +
        " filters, k_b = " + std::to_string(o.k_b) + " needs 2 k_b = " + std::to_string(2 * o.k_b) +
        " filter groups of at least one");
  }
  POLYGUARD_ASSIGN_OR_RETURN(ConvPartition p, PartitionConv(shape, 2 * o.k_a, 2 * o.k_b));
  auto code = std::unique_ptr<CodedConvolution>(new CodedConvolution(std::move(p), o));
  POLYGUARD_ASSIGN_OR_RETURN(code->decoder_,
                             LinearCodeDecoder::Create(code->generator_, o.decoder, 4));
  POLYGUARD_ASSIGN_OR_RETURN(code->transpose_decoder_,
                             LinearCodeDecoder::Create(code->transpose_generator_, o.decoder, 2));
  POLYGUARD_ASSIGN_OR_RETURN(code->shard_decoder_,
                             LinearCodeDecoder::Create(code->shard_generator_, o.decoder, 2));
  return code;
}

int CodedConvolution::errors_corrected_probabilistic() const {
  return std::max(0, num_peers() - recovery_threshold() - 1);
}
int CodedConvolution::errors_corrected_adversarial() const {
  return (num_peers() - recovery_threshold()) / 2;
}
int64_t CodedConvolution::stored_doubles_per_peer() const {
  return 2 * int64_t{partition_.group} * shape().inner;
}
int64_t CodedConvolution::result_doubles_per_peer() const {
  return 4 * partition_.slab.output_size() * options_.batch;
}
std::string CodedConvolution::Describe() const {
  std::string out = "fcdcc P=" + std::to_string(num_peers());
  out += " k_a=" + std::to_string(options_.k_a);
  out += " k_b=" + std::to_string(options_.k_b);
  out += " K=" + std::to_string(recovery_threshold());
  out += " conv " + partition_.full.Describe();
  out += " points=rotation q=" + std::to_string(q_);
  if (options_.bias) out += " bias";
  return out;
}

StatusOr<Matrix> CodedConvolution::EncodeFilters(const MatrixRef& filters, int peer) const {
  const ConvShape& s = partition_.full;
  if (peer < 0 || peer >= options_.peers) {
    return InvalidArgumentError("coded convolution: peer " + std::to_string(peer) +
                                " out of range");
  }
  if (filters.rows() != s.filters || filters.cols() != shape().inner || !AllFinite(filters)) {
    return InvalidArgumentError(
        "coded convolution: filters must be " + std::to_string(s.filters) + " x " +
        std::to_string(shape().inner) + (options_.bias ? " ([F | b])" : "") + " and finite, got " +
        std::to_string(filters.rows()) + " x " + std::to_string(filters.cols()));
  }
  const Matrix g = RotationEncoder(peer, q_, options_.k_b, options_.k_a);
  const int group = partition_.group;
  Matrix shard = Matrix::Zero(2 * group, filters.cols());
  for (int v = 0; v < 2 * options_.k_b; ++v) {
    const Matrix f = KccpGroup(partition_, filters, v);
    for (int b = 0; b < 2; ++b)
      if (g(b, v) != 0.0) shard.middleRows(b * group, group).noalias() += g(b, v) * f;
  }
  return shard;
}

StatusOr<Matrix> CodedConvolution::EncodeInput(const MatrixRef& input, int peer) const {
  const ConvShape& s = partition_.full;
  if (peer < 0 || peer >= options_.peers) {
    return InvalidArgumentError("coded convolution: peer " + std::to_string(peer) +
                                " out of range");
  }
  if (input.rows() != s.input_size() || input.cols() != options_.batch || !AllFinite(input)) {
    return InvalidArgumentError(
        "coded convolution: input must be " + std::to_string(s.input_size()) + " x " +
        std::to_string(options_.batch) + " and finite, got " + std::to_string(input.rows()) +
        " x " + std::to_string(input.cols()));
  }
  const Matrix g = RotationEncoder(peer, q_, options_.k_a, 1);
  const Eigen::Index b = input.cols();
  const int64_t n = partition_.slab.input_size();
  Matrix slabs = Matrix::Zero(n + (options_.bias ? 1 : 0), 2 * b);
  for (int u = 0; u < 2 * options_.k_a; ++u) {
    const Matrix x = ApcpSlab(partition_, input, u);
    for (int a = 0; a < 2; ++a)
      if (g(a, u) != 0.0) slabs.block(0, a * b, n, b).noalias() += g(a, u) * x;
  }
  // The coded constant 1 of each side: what multiplies the coded bias.
  if (options_.bias)
    for (int a = 0; a < 2; ++a) slabs.block(n, a * b, 1, b).setConstant(g.row(a).sum());
  return slabs;
}

Matrix CodedConvolution::PeerConvolution(const MatrixRef& shard, const MatrixRef& slabs) const {
  const Eigen::Index b = slabs.cols() / 2;
  const int group = partition_.group;
  Matrix out(partition_.slab.output_size(), 4 * b);
  // conv(X~_a, F~_b) for both slabs at once: the filters of both groups on
  // both slabs is one convolution with 2 g filters on 2 B samples.
  ConvShape both = partition_.slab;
  both.filters = 2 * group;
  const int64_t n = partition_.slab.input_size();
  const Matrix y = Conv2d(both, shard.leftCols(filter_size_), slabs.topRows(n),
                          precision());  // (2g h W') x 2B
  const int64_t spatial = int64_t(partition_.slab.out_height()) * partition_.slab.out_width();
  const int64_t per_group = group * spatial;
  for (int a = 0; a < 2; ++a)
    for (int f = 0; f < 2; ++f) {
      auto block = out.middleCols((2 * a + f) * b, b);
      block = y.block(f * per_group, a * b, per_group, b);
      if (!options_.bias) continue;
      // + s_a b~_f on every output position of each channel.
      for (Eigen::Index j = 0; j < b; ++j)
        for (int c = 0; c < group; ++c)
          block.col(j).segment(c * spatial, spatial).array() +=
              slabs(n, a * b + j) * shard(f * group + c, filter_size_);
    }
  return out;
}

StatusOr<DecodedProduct> CodedConvolution::Decode(std::span<const PeerResult> results) const {
  const int64_t rows = partition_.slab.output_size();
  std::vector<int> peers;
  Eigen::Index batch = -1;
  std::vector<bool> seen(static_cast<size_t>(options_.peers), false);
  for (const PeerResult& r : results) {
    if (r.peer < 0 || r.peer >= options_.peers || seen[static_cast<size_t>(r.peer)]) {
      return InvalidArgumentError("coded convolution: unknown or repeated peer " +
                                  std::to_string(r.peer));
    }
    seen[static_cast<size_t>(r.peer)] = true;
    if (batch < 0) batch = r.value.cols() / 4;
    if (r.value.rows() != rows || r.value.cols() != 4 * batch || batch < 1) {
      return InvalidArgumentError("coded convolution: result of peer " + std::to_string(r.peer) +
                                  " is " + std::to_string(r.value.rows()) + " x " +
                                  std::to_string(r.value.cols()) + ", expected " +
                                  std::to_string(rows) + " x 4B");
    }
    peers.push_back(r.peer);
  }
  if (static_cast<int>(results.size()) < recovery_threshold()) {
    return UnavailableError("coded convolution: need " + std::to_string(recovery_threshold()) +
                            " results (threshold K), got " + std::to_string(results.size()));
  }
  // Each block (a, b) of a peer is rows x batch, contiguous: one column of
  // rows * batch numbers for the decoder.
  const int64_t l = rows * batch;
  std::vector<const double*> columns;
  for (const PeerResult& r : results)
    for (int c = 0; c < 4; ++c) columns.push_back(r.value.data() + c * l);
  const int kb = 2 * options_.k_b;
  DecodedProduct out;
  out.product.resize(partition_.full.output_size(), batch);
  Matrix coefficients(l, 2 * options_.k_a * kb);
  auto sink = [&](int64_t l0, const MatrixRef& chunk) {
    coefficients.middleRows(l0, chunk.rows()) = chunk;
  };
  POLYGUARD_ASSIGN_OR_RETURN(DecodeOutcome outcome, decoder_->Decode(peers, columns, l, sink));
  for (int u = 0; u < 2 * options_.k_a; ++u)
    for (int v = 0; v < kb; ++v)
      PlaceConvBlock(partition_, u, v, coefficients.col(u * kb + v).reshaped(rows, batch),
                     &out.product);
  internal::TakeVerdict(&outcome, coefficients.size(), out.product.size(), &out);
  return out;
}

StatusOr<Matrix> CodedConvolution::EncodeTransposeInput(const MatrixRef& d, int peer) const {
  const ConvShape& s = partition_.full;
  if (peer < 0 || peer >= options_.peers) {
    return InvalidArgumentError("coded convolution: peer " + std::to_string(peer) +
                                " out of range");
  }
  if (d.rows() != s.output_size() || d.cols() != options_.batch || !AllFinite(d)) {
    return InvalidArgumentError("coded convolution: the output gradient must be " +
                                std::to_string(s.output_size()) + " x " +
                                std::to_string(options_.batch) + " and finite, got " +
                                std::to_string(d.rows()) + " x " + std::to_string(d.cols()));
  }
  const Matrix g = RotationEncoder(peer, q_, options_.k_b, options_.k_a);
  const int64_t per_group = int64_t(partition_.group) * s.out_height() * s.out_width();
  const Eigen::Index b = d.cols();
  Matrix piece = Matrix::Zero(per_group, 2 * b);
  for (int v = 0; v < 2 * options_.k_b; ++v) {
    // Channel group v of dY: rows [v per_group, (v + 1) per_group), zero past N.
    const int64_t first = v * per_group;
    const int64_t count = std::clamp<int64_t>(d.rows() - first, 0, per_group);
    if (count == 0) continue;
    for (int a = 0; a < 2; ++a)
      if (g(a, v) != 0.0)
        piece.block(0, a * b, count, b).noalias() += g(a, v) * d.middleRows(first, count);
  }
  return piece;
}

Matrix CodedConvolution::PeerTransposeProduct(const MatrixRef& shard,
                                              const MatrixRef& piece) const {
  const Eigen::Index b = piece.cols() / 2;
  const int g = partition_.group;
  Matrix p[2][2];
  for (int a = 0; a < 2; ++a)
    for (int f = 0; f < 2; ++f)
      p[a][f] = Conv2dInputGradient(group_shape_, shard.block(f * g, 0, g, filter_size_),
                                    piece.middleCols(a * b, b), precision());
  Matrix out(partition_.full.input_size(), 2 * b);
  out.leftCols(b) = p[0][0] + p[1][1];
  out.rightCols(b) = p[1][0] - p[0][1];
  return out;
}

StatusOr<DecodedProduct> CodedConvolution::DecodeTranspose(
    std::span<const PeerResult> results) const {
  const int64_t rows = partition_.full.input_size();
  const Eigen::Index b = options_.batch;
  std::vector<int> peers;
  std::vector<const double*> columns;
  for (const PeerResult& r : results) {
    if (r.value.rows() != rows || r.value.cols() != 2 * b) {
      return InvalidArgumentError("coded convolution: transpose result of peer " +
                                  std::to_string(r.peer) + " is " + std::to_string(r.value.rows()) +
                                  " x " + std::to_string(r.value.cols()) + ", expected " +
                                  std::to_string(rows) + " x " + std::to_string(2 * b));
    }
    peers.push_back(r.peer);
    columns.push_back(r.value.data());
    columns.push_back(r.value.data() + rows * b);
  }
  POLYGUARD_ASSIGN_OR_RETURN(DecodeOutcome outcome,
                             transpose_decoder_->Decode(peers, columns, rows * b));
  DecodedProduct out;
  out.product = outcome.coefficients.col(2 * (options_.k_b - 1)).reshaped(rows, b);
  internal::TakeVerdict(&outcome, out.product.size(), out.product.size(), &out);
  return out;
}

Status CodedConvolution::UpdateShard(Matrix* shard, int peer, const MatrixRef& d,
                                     const MatrixRef& x, double eta) const {
  const ConvShape& s = partition_.full;
  if (shard == nullptr || shard->rows() != 2 * partition_.group || shard->cols() != shape().inner) {
    return InvalidArgumentError("coded convolution: update needs this code's shard");
  }
  if (x.rows() != s.input_size() || x.cols() != d.cols() || !AllFinite(x) || !std::isfinite(eta)) {
    return InvalidArgumentError("coded convolution: update input must be " +
                                std::to_string(s.input_size()) +
                                " x B like the output gradient, finite");
  }
  POLYGUARD_ASSIGN_OR_RETURN(Matrix piece, EncodeTransposeInput(d, peer));
  const Eigen::Index b = d.cols();
  const int g = partition_.group;
  const int64_t spatial = int64_t(s.out_height()) * s.out_width();
  for (int f = 0; f < 2; ++f) {
    const auto d_f = piece.middleCols(f * b, b);
    shard->block(f * g, 0, g, filter_size_).noalias() -=
        eta * Conv2dFilterGradient(group_shape_, x, d_f);
    // The bias gradient: each channel's sum over positions and samples.
    if (options_.bias)
      for (int c = 0; c < g; ++c)
        (*shard)(f * g + c, filter_size_) -= eta * d_f.middleRows(c * spatial, spatial).sum();
  }
  return Status::Ok();
}

Vector CodedConvolution::ProbeShard(const MatrixRef& shard, const Vector& probe) const {
  const int64_t g = partition_.group, k = probe_columns();
  const Matrix y = shard * probe.reshaped(shape().inner, k);  // 2g x k
  // Block b's g x k numbers contiguous: [vec(y_0); vec(y_1)].
  Vector out(2 * g * k);
  for (int b = 0; b < 2; ++b) out.segment(b * g * k, g * k) = y.middleRows(b * g, g).reshaped();
  return out;
}

StatusOr<std::vector<int>> CodedConvolution::CheckProbes(std::span<const PeerResult> probes) const {
  // Each peer's value: one or more ProbeShard outputs stacked (the trainer
  // probes the shard and the velocity at once), each [block 0; block 1].
  const int64_t half = int64_t{partition_.group} * probe_columns();
  const int64_t rows = probes.empty() ? 0 : probes[0].value.rows();
  if (rows == 0 || rows % (2 * half) != 0) {
    return InvalidArgumentError("coded convolution probes: " + std::to_string(rows) +
                                " numbers per peer, expected a multiple of " +
                                std::to_string(2 * half));
  }
  POLYGUARD_RETURN_IF_ERROR(CheckResults(probes, rows, 1).WithContext("coded convolution probes"));
  const int64_t chunks = rows / (2 * half);
  Matrix blocks(chunks * half, 2 * int64_t(probes.size()));  // per peer: its block 0, block 1
  std::vector<int> peers;
  for (size_t j = 0; j < probes.size(); ++j) {
    peers.push_back(probes[j].peer);
    for (int64_t c = 0; c < chunks; ++c)
      for (int b = 0; b < 2; ++b)
        blocks.col(2 * int64_t(j) + b).segment(c * half, half) =
            probes[j].value.col(0).segment((2 * c + b) * half, half);
  }
  POLYGUARD_ASSIGN_OR_RETURN(DecodeOutcome outcome, shard_decoder_->Decode(peers, blocks));
  return outcome.wrong_peers;
}

StatusOr<std::vector<int>> CodedConvolution::RepairSources(int target,
                                                           std::span<const int> healthy) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(target).WithContext("coded convolution repair"));
  const int k = options_.k_b;
  std::vector<int> candidates;
  for (int p : healthy)
    if (p != target && p >= 0 && p < num_peers()) candidates.push_back(p);
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  if (static_cast<int>(candidates.size()) < k) {
    return FailedPreconditionError("coded convolution repair of peer " + std::to_string(target) +
                                   ": needs k_b = " + std::to_string(k) + " healthy shards, have " +
                                   std::to_string(candidates.size()));
  }
  // Spread around the circle of w = z^k_a: a well-conditioned interpolation.
  auto angle = [&](int p) { return int64_t(p) * options_.k_a % q_; };
  std::sort(candidates.begin(), candidates.end(),
            [&](int a, int b) { return angle(a) < angle(b); });
  std::vector<int> sources;
  for (int i = 0; i < k; ++i)
    sources.push_back(candidates[size_t(int64_t(i) * int64_t(candidates.size()) / k)]);
  std::sort(sources.begin(), sources.end());
  return sources;
}

StatusOr<Matrix> CodedConvolution::RepairShard(int target,
                                               std::span<const PeerResult> sources) const {
  POLYGUARD_RETURN_IF_ERROR(CheckPeer(target).WithContext("coded convolution repair"));
  const int k = options_.k_b;
  if (static_cast<int>(sources.size()) != k) {
    return InvalidArgumentError(
        "coded convolution repair: needs exactly k_b = " + std::to_string(k) +
        " source shards, got " + std::to_string(sources.size()));
  }
  const int64_t g = partition_.group;
  POLYGUARD_RETURN_IF_ERROR(CheckResults(sources, 2 * g, sources[0].value.cols())
                                .WithContext("coded convolution repair"));
  Matrix gs(2 * k, 2 * k);
  for (int s = 0; s < k; ++s) {
    if (sources[size_t(s)].peer == target)
      return InvalidArgumentError("coded convolution repair: target among sources");
    gs.middleRows(2 * s, 2) = shard_generator_.middleRows(2 * sources[size_t(s)].peer, 2);
  }
  // target = G_t G_S^-1 [sources' blocks]: 2 x 2k weights on the blocks.
  const Eigen::FullPivLU<Matrix> lu(gs);
  if (!lu.isInvertible()) return DataLossError("coded convolution repair: singular source set");
  const Matrix w = shard_generator_.middleRows(2 * target, 2) * lu.inverse();
  Matrix out = Matrix::Zero(2 * g, sources[0].value.cols());
  for (int b = 0; b < 2; ++b)
    for (int s = 0; s < k; ++s)
      for (int h = 0; h < 2; ++h)
        out.middleRows(b * g, g).noalias() +=
            w(b, 2 * s + h) * sources[size_t(s)].value.middleRows(h * g, g);
  return out;
}

}  // namespace polyguard
