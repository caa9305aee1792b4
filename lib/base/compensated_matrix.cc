#include "polyguard/base/compensated_matrix.h"

#include <bit>
#include <cfloat>
#include <cmath>
#include <limits>

#include "polyguard/base/check.h"

namespace polyguard {
namespace {

// Branch-free, so that the loops vectorise (this file is compiled with
// -fno-trapping-math, which lets GCC turn the selects into blends: the
// scalar loops cost 13 ns a value, 30 times a double update).
inline uint32_t ExponentField(float f) { return (std::bit_cast<uint32_t>(f) >> 23) & 0xffu; }
// The residual's unit for a float32 value with biased exponent field `e`
// (0 for zero and subnormals): 2^-16 of its ulp, 2^(max(e, 1) - 166), and its
// inverse; both exact doubles.
inline double UnitOf(uint32_t e) {
  return std::bit_cast<double>(uint64_t((e > 1 ? e : 1) + 857) << 52);
}
inline double InverseUnitOf(uint32_t e) {
  return std::bit_cast<double>(uint64_t(1189 - (e > 1 ? e : 1)) << 52);
}

// Inf and NaN are stored with a zero residual, so this gives them back too.
inline double Decode(float f, int16_t r) {
  return double(f) + double(r) * UnitOf(ExponentField(f));
}

inline void Encode(double v, float* f, int16_t* r) {
  // Out of float32's range (a conversion there is undefined) or NaN: +-Inf
  // or NaN, residual 0.
  const bool in_range = std::abs(v) <= double(FLT_MAX);
  const double inside = in_range ? v : 0.0;
  const float h = static_cast<float>(inside);
  // v - h is exact (they are within a float32 ulp), and so is the scaling;
  // the quotient is within +-2^15, rounded to nearest by the 1.5 2^52 trick.
  constexpr double kRound = 6755399441055744.0;
  double q = (inside - double(h)) * InverseUnitOf(ExponentField(h));
  q = std::min(32767.0, std::max(-32767.0, q));
  q = (q + kRound) - kRound;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float beyond =
      std::isnan(v) ? std::numeric_limits<float>::quiet_NaN() : (v > 0 ? kInf : -kInf);
  *f = in_range ? h : beyond;
  *r = static_cast<int16_t>(static_cast<int32_t>(q));
}

}  // namespace

Matrix CompensatedMatrix::ToDouble() const {
  Matrix out;
  ToDouble(&out);
  return out;
}

void CompensatedMatrix::ToDouble(Matrix* out, double scale) const {
  out->resize(rows(), cols());
  const float* f = rounded_.data();
  const int16_t* r = residuals_.data();
  double* o = out->data();
  const Eigen::Index n = size();
  for (Eigen::Index i = 0; i < n; ++i) o[i] = scale * Decode(f[i], r[i]);
}

void CompensatedMatrix::Assign(const MatrixRef& value) {
  rounded_.resize(value.rows(), value.cols());
  residuals_.resize(value.rows(), value.cols());
  float* f = rounded_.data();
  int16_t* r = residuals_.data();
  const Eigen::Index rows = value.rows();
  for (Eigen::Index j = 0; j < value.cols(); ++j) {
    const double* v = value.col(j).data();
    for (Eigen::Index i = 0; i < rows; ++i) Encode(v[i], f + j * rows + i, r + j * rows + i);
  }
}

void CompensatedMatrix::ScaleAndAdd(double scale, const MatrixRef& delta, double delta_scale) {
  POLYGUARD_CHECK(delta.rows() == rows() && delta.cols() == cols());
  float* f = rounded_.data();
  int16_t* r = residuals_.data();
  const Eigen::Index rows = delta.rows();
  for (Eigen::Index j = 0; j < delta.cols(); ++j) {
    const double* d = delta.col(j).data();
    float* fj = f + j * rows;
    int16_t* rj = r + j * rows;
    for (Eigen::Index i = 0; i < rows; ++i)
      Encode(scale * Decode(fj[i], rj[i]) + delta_scale * d[i], fj + i, rj + i);
  }
}

}  // namespace polyguard
