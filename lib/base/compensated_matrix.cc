#include "polyguard/base/compensated_matrix.h"

#include <bit>
#include <cfloat>
#include <cmath>
#include <limits>

#include "polyguard/base/check.h"

namespace polyguard {
namespace {

// The residual's unit for a float32 value with biased exponent field `e`
// (0 for zero and subnormals): 2^-16 of its ulp, 2^(max(e, 1) - 166), and its
// inverse; both exact doubles.
inline double UnitOf(uint32_t e) {
  return std::bit_cast<double>(uint64_t(std::max<uint32_t>(e, 1) + 1023 - 166) << 52);
}
inline double InverseUnitOf(uint32_t e) {
  return std::bit_cast<double>(uint64_t(166 - std::max<uint32_t>(e, 1) + 1023) << 52);
}
inline uint32_t ExponentField(float f) { return (std::bit_cast<uint32_t>(f) >> 23) & 0xffu; }

inline double Decode(float f, int16_t r) {
  const uint32_t e = ExponentField(f);
  return e == 0xffu ? double(f) : double(f) + double(r) * UnitOf(e);
}

// v outside float32's range (a plain conversion there is undefined) or NaN.
inline float OutOfRange(double v) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  return std::isnan(v) ? std::numeric_limits<float>::quiet_NaN() : (v > 0 ? kInf : -kInf);
}

inline void Encode(double v, float* f, int16_t* r) {
  if (!(std::abs(v) <= double(FLT_MAX))) {
    *f = OutOfRange(v);
    *r = 0;
    return;
  }
  const float h = static_cast<float>(v);
  const uint32_t e = ExponentField(h);
  // v - h is exact (they are within a float32 ulp), and so is the scaling; the
  // quotient is within +-2^15: rounded to nearest by the 1.5 2^52 trick
  // (vectorises, unlike nearbyint).
  constexpr double kRound = 6755399441055744.0;
  double q = ((v - double(h)) * InverseUnitOf(e) + kRound) - kRound;
  q = std::min(32767.0, std::max(-32767.0, q));
  *f = h;
  *r = static_cast<int16_t>(q);
}

}  // namespace

Matrix CompensatedMatrix::ToDouble() const {
  Matrix out(rows(), cols());
  const float* f = rounded_.data();
  const int16_t* r = residuals_.data();
  double* o = out.data();
  for (Eigen::Index i = 0; i < size(); ++i) o[i] = Decode(f[i], r[i]);
  return out;
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

void CompensatedMatrix::ScaleAndAdd(double scale, const MatrixRef& delta) {
  POLYGUARD_CHECK(delta.rows() == rows() && delta.cols() == cols());
  float* f = rounded_.data();
  int16_t* r = residuals_.data();
  const Eigen::Index rows = delta.rows();
  for (Eigen::Index j = 0; j < delta.cols(); ++j) {
    const double* d = delta.col(j).data();
    for (Eigen::Index i = 0; i < rows; ++i) {
      const Eigen::Index k = j * rows + i;
      Encode(scale * Decode(f[k], r[k]) + d[i], f + k, r + k);
    }
  }
}

}  // namespace polyguard
