// CompensatedMatrix: a matrix kept in 6 bytes a value instead of 8: its
// float32 rounding, which a float32 peer multiplies as it is, and a 16-bit
// residual that keeps the value itself (docs/codes.md §3.7, "Float32
// storage").
//
// Why not plain float32: every peer stores its own coded shard and rounds its
// own update each step, independently of the others, so plain float32 shards
// leave the common code word by about sqrt(steps) u of their size, and after
// tens of steps the code's checks (3 rho) name honest peers. The residual
// makes each rounding 2^-16 times smaller, and stochastic rounding of it
// (a nonzero seed) keeps the errors of repeated updates from adding up: with
// rounding to nearest, the same update applied again and again rounds off
// the same way every time, and the drift grows with steps, not their square
// root (adversary s21: 2^-28 after 4,096 identical steps; at an equilibrium
// it stopped moving, 2^-41 / (lr x curvature) off).
//
// Contract: after Assign(v) (or ScaleAndAdd giving v), every entry of
// ToDouble() is within 2^-16 ulp_float32(rounded()) of v (half that when
// rounded to nearest): 2^-39 |v| in float32's normal range, 2^-165 absolute
// below it; stochastically rounded, its error has mean zero. rounded() is v
// rounded to a float32 neighbour: the nearest, or the next one up when v is
// within a residual unit below the midpoint between them. Values beyond FLT_MAX become +-Inf (NaN
// stays NaN) with a zero residual: a shard that large is a fault, and the checks name it; -0 reads
// back as +0. Cost: a vectorised pass over the values per call (about a
// double update's memory traffic; stochastic rounding about twice that); no
// allocation once sized.
#ifndef POLYGUARD_BASE_COMPENSATED_MATRIX_H_
#define POLYGUARD_BASE_COMPENSATED_MATRIX_H_

#include <cstdint>
#include <cstring>

#include "polyguard/base/matrix.h"

namespace polyguard {

class CompensatedMatrix {
 public:
  using Residuals = Eigen::Matrix<int16_t, Eigen::Dynamic, Eigen::Dynamic>;

  CompensatedMatrix() = default;
  explicit CompensatedMatrix(const MatrixRef& value) { Assign(value); }

  Eigen::Index rows() const { return rounded_.rows(); }
  Eigen::Index cols() const { return rounded_.cols(); }
  Eigen::Index size() const { return rounded_.size(); }
  // Bytes held: 6 a value.
  int64_t bytes() const { return int64_t(size()) * int64_t(sizeof(float) + sizeof(int16_t)); }

  // The values rounded to float32: what a float32 product multiplies.
  const Eigen::MatrixXf& rounded() const { return rounded_; }
  // The values (float32 value plus residual), in double; or scale times
  // them, into `out` (resized; one pass).
  Matrix ToDouble() const;
  void ToDouble(Matrix* out, double scale = 1.0) const;

  // `seed` 0 rounds the residual to nearest; any other seed rounds it
  // stochastically (up with the probability of its fraction, from a
  // counter-based stream of the seed and the entry: reproducible).
  void Assign(const MatrixRef& value, uint64_t seed = 0);
  // value <- scale * value + delta_scale * delta, with one rounding to the
  // representation (as Assign's). delta must be shaped like the matrix (an
  // invariant of the caller's).
  void ScaleAndAdd(double scale, const MatrixRef& delta, double delta_scale = 1.0,
                   uint64_t seed = 0);

  friend bool operator==(const CompensatedMatrix& a, const CompensatedMatrix& b) {
    return a.rounded_.rows() == b.rounded_.rows() && a.rounded_.cols() == b.rounded_.cols() &&
           a.residuals_ == b.residuals_ &&
           std::memcmp(a.rounded_.data(), b.rounded_.data(), sizeof(float) * a.size()) == 0;
  }

 private:
  Eigen::MatrixXf rounded_;
  Residuals residuals_;
};

}  // namespace polyguard

#endif  // POLYGUARD_BASE_COMPENSATED_MATRIX_H_
