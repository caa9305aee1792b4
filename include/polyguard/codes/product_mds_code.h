// The MDS-coded training layout of CodeNet (docs/codes.md §2): a 2-D product code
// with an L-shaped peer grid. This is the MDS strategy of training (the 1-D
// MdsCode cannot run the backward pass).
//
// A (rows x inner) is cut into a Q_r x Q_c grid of blocks A_ab. Peers sit at
// grid positions (i, j): the top Q_r rows of a P_r x P_c grid (columns
// j < Q_c hold data blocks, j >= Q_c column parities coded with G_c), plus
// (P_r - Q_r) x Q_c row-parity peers (coded with G_r); no corner. Peer ids
// count the top rows row by row (i * P_c + j), then the row-parity rows
// (Q_r * P_c + (i - Q_r) * Q_c + j). G_r (P_r x Q_r) and G_c (P_c x Q_c) are
// systematic real MDS generators. Peer (i, j) stores
//   A~_ij = sum_ab G_r[i,a] G_c[j,b] A_ab.
// Forward A B: peers in the first Q_c columns multiply by B's row block j;
// the sum across a row is sum_a G_r[i,a] (A B)_a, a (P_r, Q_r) code word of
// the product's row blocks, decoded with errors and erasures. Column-parity
// peers are idle (they send zeros).
// Transpose A^T D: peers in the top Q_r rows multiply their shard transposed
// by D's row block i; the sum down a column is a (P_c, Q_c) code word of the
// row blocks of A^T D. Row-parity peers are idle.
// Update: A~_ij -= eta (sum_a G_r[i,a] D_a)(sum_b G_c[j,b] X_b)^T, local.
//
// Errors: a wrong result spoils its row sum (forward) or column sum
// (transpose), so P_r - Q_r - 1 wrong rows (P_c - Q_c - 1 wrong columns) are
// corrected under the probabilistic model; the decode cannot tell which peer
// of a wrong row was wrong, so it reports all of them. The code length is only
// about sqrt(P): Generalized PolyDot tolerates far more with the same peers.
// Scrub: every row of the top block is a (P_c, Q_c) code word of the shards'
// probes and every data column a (P_r, Q_r) one; a corrupted shard breaks
// its row and column. Repair from Q_c healthy peers of its row (or Q_r of its
// column).
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CODES_PRODUCT_MDS_CODE_H_
#define POLYGUARD_CODES_PRODUCT_MDS_CODE_H_

#include <memory>
#include <vector>

#include "polyguard/codes/product_code.h"

namespace polyguard {

struct ProductMdsOptions {
  int row_peers = 3, row_blocks = 2;  // P_r > = Q_r >= 1
  int col_peers = 3, col_blocks = 2;  // P_c >= Q_c >= 1
  PointKind points = PointKind::kChebyshev;
  DecoderOptions decoder;
};

// The peers the layout needs: Q_r P_c + (P_r - Q_r) Q_c.
int ProductMdsPeers(const ProductMdsOptions& options);
// A layout with one parity row and column for `peers` peers and the most
// data blocks (the smallest shards), or InvalidArgument when none fits.
StatusOr<ProductMdsOptions> DefaultProductMdsLayout(int peers);
// Training needs the product layout (the 1-D MDS code has no backward): for
// the mds strategy with no layout given (row_blocks 0), fills in
// DefaultProductMdsLayout(options->peers). Other strategies are left alone.
Status UseDefaultProductMdsLayout(ProductCodeOptions* options);

class ProductMdsCode : public ProductCode {
 public:
  static StatusOr<std::unique_ptr<ProductMdsCode>> Create(ProductShape shape,
                                                          ProductMdsOptions options);

  Strategy strategy() const override { return Strategy::kMds; }
  int recovery_threshold() const override { return o_.row_blocks * o_.col_blocks; }
  // A missing peer spoils its row's sum (forward) or its column's (transpose).
  bool decodes_from_any_k() const override { return false; }
  int errors_corrected_probabilistic() const override {
    return std::max(0, o_.row_peers - o_.row_blocks - 1);
  }
  int errors_corrected_adversarial() const override { return (o_.row_peers - o_.row_blocks) / 2; }
  int64_t stored_doubles_per_peer() const override { return block_rows_ * block_inner_; }
  int64_t result_doubles_per_peer() const override { return block_rows_ * shape().cols; }
  std::string Describe() const override;

  StatusOr<Matrix> EncodeShard(const MatrixRef& a, int peer) const override;
  StatusOr<Matrix> EncodeInput(const MatrixRef& b, int peer) const override;
  Matrix PeerProduct(const MatrixRef& shard, const MatrixRef& piece) const override;
  Matrix PeerProductFloat32(const Eigen::MatrixXf& shard, const MatrixRef& piece) const override;
  StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const override;

  bool supports_training() const override { return true; }
  int transpose_threshold() const override { return recovery_threshold(); }
  int transpose_errors_corrected_probabilistic() const override {
    return std::max(0, o_.col_peers - o_.col_blocks - 1);
  }
  StatusOr<Matrix> EncodeTransposeInput(const MatrixRef& d, int peer) const override;
  Matrix PeerTransposeProduct(const MatrixRef& shard, const MatrixRef& piece) const override;
  Matrix PeerTransposeProductFloat32(const Eigen::MatrixXf& shard,
                                     const MatrixRef& piece) const override;
  StatusOr<DecodedProduct> DecodeTranspose(std::span<const PeerResult> results) const override;
  Status UpdateShard(Matrix* shard, int peer, const MatrixRef& d, const MatrixRef& x,
                     double eta) const override;
  int64_t probe_length() const override { return block_inner_; }
  StatusOr<std::vector<int>> CheckProbes(std::span<const PeerResult> probes) const override;
  StatusOr<std::vector<int>> RepairSources(int target, std::span<const int> healthy) const override;
  StatusOr<Matrix> RepairShard(int target, std::span<const PeerResult> sources) const override;

  // Grid position of a peer, and the peer at a position (-1: none).
  std::pair<int, int> Position(int peer) const;
  int PeerAt(int i, int j) const;

 private:
  ProductMdsCode(ProductShape shape, ProductMdsOptions options);
  // Sums of the results along rows (forward) or columns (transpose) and
  // their decode by the line code.
  StatusOr<DecodedProduct> DecodeLines(std::span<const PeerResult> results, bool rows) const;

  ProductMdsOptions o_;
  int64_t block_rows_ = 0, block_inner_ = 0;
  Matrix g_r_, g_c_;  // P_r x Q_r, P_c x Q_c
  std::unique_ptr<ErrorsAndErasuresDecoder> row_decoder_, col_decoder_;
};

}  // namespace polyguard

#endif  // POLYGUARD_CODES_PRODUCT_MDS_CODE_H_
