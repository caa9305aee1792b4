// The Polynomial code with rotation-matrix embedded unit-circle points
// (docs/codes.md §4, docs/conv.md §4): numerically stable for P of 20 to 32 where real
// Vandermonde decoding is not.
//
// Complex view: peer r evaluates at z_r = e^(i theta r), theta = 2 pi / q,
// q = P (distinct points on the whole circle). A's row blocks are paired
// into m complex symbols a_i = A_(2i) + i A_(2i+1) and B's column blocks into
// d symbols b_l = B_(2l) + i B_(2l+1); peer r stores A~ = sum_i a_i z^i and
// receives B~ = sum_l b_l z^(m l). Real arithmetic only: multiplying a pair
// by z^e is the 2 x 2 rotation R(e theta) acting across the pair, so peer r
// stores two real blocks [A~_0; A~_1] (the same storage as a real Polynomial
// code, 1/m of A) and computes one real product [A~_0; A~_1] [B~_0 B~_1],
// i.e. the 4 blocks p_ab = A~_a B~_b.
//
// Why all 4 are needed: a complex product carries 2 real combinations; the
// 4 real products of a peer are the complex products A~ B~ (exponents
// i + m l: the "a + b" family) and A~ conj(B~) (exponents i - m l: "a - b").
// Each family is a complex Vandermonde system in m d consecutive exponents
// on the unit circle, and together they give every real product
// A_u B_v. So: threshold K = m d peers (P - m d stragglers), each peer sends
// (rows / m) x (cols / d) numbers like a real Polynomial code, and the
// decode is the real generator (4P x 4md, rows kron(G_A,r, G_B,r)), unitarily
// equivalent to the two complex Vandermonde matrices: its worst-case
// condition number over every K-subset is that of unit-circle Vandermonde
// matrices (tested: under 1e3 at P = 20, K = 16, against 1e7-1e8 for real
// Vandermonde with Chebyshev or equispaced points).
//
// Errors: a peer's result is 4 blocks; LinearCodeDecoder with 4 rows per
// peer locates up to R - K - 1 wrong peers among R results under the
// probabilistic model when each block has at least 4 entries per wrong peer
// (a wrong peer's error spans 4 dimensions of the syndrome), and
// floor((R - K)/2) in the worst case.
//
// MatDot and Generalized PolyDot (derived; verified numerically in
// rotation_code_test.cc): pair the inner dimension (a_ij = A_ij,0 + i A_ij,1,
// b_jk = B_jk,0 + i B_jk,1, so that Re(a conj(b)) = A_0 B_0 + A_1 B_1 is the
// wanted inner product). With PolyDot's usual exponents (A at i n + j, B at
// (n - 1 - j) + k m n) only the a + b family aligns, and it carries
// a b = (A_0 B_0 - A_1 B_1) + i(...), the wrong combination. Flipping B's
// exponents to j + k m n makes the conjugate family align instead: A~
// conj(B~) has the wanted sums sum_j a_ij conj(b_jk) at exponents
// i n - k m n, and garbage (j != j') at i n - k m n + (j - j'), |j - j'| < n,
// which never meets a wanted exponent. The exponents span m n d + n - 1
// consecutive integers: the threshold is unchanged, every peer still stores
// 1/(mn) of A, and it sends 2 real blocks (the real and imaginary parts of
// A~ conj(B~) = (p_00 + p_11) + i (p_10 - p_01)), twice a real PolyDot
// result. Not built here as a strategy: this class is the Polynomial case
// (n = 1) that coded convolution needs.
//
// Thread safety: all methods are const and safe to call concurrently.
#ifndef POLYGUARD_CODES_ROTATION_CODE_H_
#define POLYGUARD_CODES_ROTATION_CODE_H_

#include <memory>
#include <string>

#include "polyguard/codes/linear_code_decoder.h"
#include "polyguard/codes/product_code.h"

namespace polyguard {

struct RotationOptions {
  int peers = 1;  // P, 1..kMaxPeers
  int m = 1;      // complex symbols of A (2m real row blocks)
  int d = 1;      // complex symbols of B (2d real column blocks)
  DecoderOptions decoder;
};

// The 2 x 2 rotation by angle t.
Matrix Rotation(double t);
// Peer r's real encoding of `symbols` pairs with exponents e_s = step * s:
// the 2 x (2 symbols) matrix [R(e_0 t_r) | R(e_1 t_r) | ...], t_r = 2 pi r / q.
Matrix RotationEncoder(int peer, int q, int symbols, int step);
// The real generator of a rotation-embedded product of 2m by 2d blocks on P
// peers with q points: 4P x 4md, peer r's rows 4r + 2a + b (its blocks
// p_ab), column u 2d + v for block (u, v); the rows are kron(G_A,r, G_B,r)
// with G_A,r = RotationEncoder(r, q, m, 1), G_B,r = RotationEncoder(r, q, d, m).
Matrix RotationProductGenerator(int peers, int q, int m, int d);

class RotationCode : public ProductCode {
 public:
  static StatusOr<std::unique_ptr<RotationCode>> Create(ProductShape shape,
                                                        RotationOptions options);

  Strategy strategy() const override { return Strategy::kPolyDot; }
  int recovery_threshold() const override { return options_.m * options_.d; }
  int errors_corrected_probabilistic() const override;
  int errors_corrected_adversarial() const override;
  int64_t stored_doubles_per_peer() const override { return 2 * block_rows_ * shape().inner; }
  int64_t result_doubles_per_peer() const override { return 4 * block_rows_ * block_cols_; }
  std::string Describe() const override;

  StatusOr<Matrix> EncodeShard(const MatrixRef& a, int peer) const override;
  StatusOr<Matrix> EncodeInput(const MatrixRef& b, int peer) const override;
  StatusOr<DecodedProduct> Decode(std::span<const PeerResult> results) const override;

  // The real generator: 4P x 4md, peer r's rows 4r .. 4r + 3 (its blocks
  // p_00, p_01, p_10, p_11), column u 2d + v for the product A_u B_v.
  const Matrix& generator() const { return generator_; }

 private:
  RotationCode(ProductShape shape, RotationOptions options);

  RotationOptions options_;
  int q_ = 1;
  int64_t block_rows_ = 0, block_cols_ = 0;
  Matrix generator_;
  std::unique_ptr<LinearCodeDecoder> decoder_;
};

// The largest condition number of the generator rows of any `peers_needed`
// peers (rows_per_peer rows each): every subset when there are at most
// max_subsets, else that many random ones.
double WorstCasePeerCondition(const Matrix& generator, int rows_per_peer, int peers_needed,
                              int64_t max_subsets, uint64_t seed);

}  // namespace polyguard

#endif  // POLYGUARD_CODES_ROTATION_CODE_H_
