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

// `up` in [0, 1): the residual is rounded down when its fraction is below
// 1 - up; 0.5 rounds to nearest, a uniform `up` rounds stochastically.
inline void Encode(double v, float* f, int16_t* r, double up) {
  // Out of float32's range (a conversion there is undefined) or NaN: +-Inf
  // or NaN, residual 0.
  const bool in_range = std::abs(v) <= double(FLT_MAX);
  const double inside = in_range ? v : 0.0;
  const float h = static_cast<float>(inside);
  // v - h is exact (they are within a float32 ulp), and so is the scaling;
  // the quotient is within +-2^15 (half an ulp is 2^15 units).
  const double q = std::floor((inside - double(h)) * InverseUnitOf(ExponentField(h)) + up);
  // A residual rounded up to +2^15 (the midpoint above h) is held by the next
  // float up instead, as -2^15 of its units (-2^14 where it starts a binade):
  // clamping it to 2^15 - 1 pinned a value just below a midpoint there for
  // good (adversary s21: an equilibrium stuck 0.12 ulp off).
  const uint32_t bits = std::bit_cast<uint32_t>(h);
  const float next = std::bit_cast<float>(h > 0 ? bits + 1 : (h < 0 ? bits - 1 : 1u));
  const double q_next =
      std::floor((inside - double(next)) * InverseUnitOf(ExponentField(next)) + up);
  const bool up_one = q > 32767.0;
  const double kept = std::min(32767.0, std::max(-32768.0, up_one ? q_next : q));
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float beyond =
      std::isnan(v) ? std::numeric_limits<float>::quiet_NaN() : (v > 0 ? kInf : -kInf);
  *f = in_range ? (up_one ? next : h) : beyond;
  *r = static_cast<int16_t>(static_cast<int32_t>(kept));
}

// A uniform number in [0, 1) (24 bits: the residual's fraction needs no
// more) for entry i of a rounding seeded by `seed`: a counter-based 32-bit
// hash of both (lowbias32), so every pass is reproducible; 32-bit lanes
// vectorise where splitmix64's 64-bit products cost 3 to 4 times the pass.
inline double Uniform(uint64_t seed, uint64_t i) {
  uint32_t z = uint32_t(seed) ^ uint32_t(seed >> 32) * 0x85ebca6bu;
  z += uint32_t(i) * 0x9E3779B9u;
  z ^= z >> 16;
  z *= 0x7feb352du;
  z ^= z >> 15;
  z *= 0x846ca68bu;
  z ^= z >> 16;
  return double(z >> 8) * 0x1p-24;
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

namespace {

// Calls encode(j, i, at, up) for entry (i, j) of a rows x cols matrix, at
// storage position `at`, column by column (the values may be a strided Ref),
// with the rounding's `up`: 0.5 (to nearest) for seed 0, else the seed's
// stream.
template <typename EncodeEntry>
void ForEachRounding(Eigen::Index rows, Eigen::Index cols, uint64_t seed, EncodeEntry encode) {
  for (Eigen::Index j = 0; j < cols; ++j) {
    const Eigen::Index k = j * rows;
    if (seed == 0) {
      for (Eigen::Index i = 0; i < rows; ++i) encode(j, i, k + i, 0.5);
    } else {
      for (Eigen::Index i = 0; i < rows; ++i) encode(j, i, k + i, Uniform(seed, uint64_t(k + i)));
    }
  }
}

}  // namespace

void CompensatedMatrix::Assign(const MatrixRef& value, uint64_t seed) {
  rounded_.resize(value.rows(), value.cols());
  residuals_.resize(value.rows(), value.cols());
  float* f = rounded_.data();
  int16_t* r = residuals_.data();
  const double* v = value.data();
  const Eigen::Index stride = value.outerStride();
  ForEachRounding(value.rows(), value.cols(), seed,
                  [&](Eigen::Index j, Eigen::Index i, Eigen::Index at, double up) {
                    Encode(v[j * stride + i], f + at, r + at, up);
                  });
}

void CompensatedMatrix::ScaleAndAdd(double scale, const MatrixRef& delta, double delta_scale,
                                    uint64_t seed) {
  POLYGUARD_CHECK(delta.rows() == rows() && delta.cols() == cols());
  float* f = rounded_.data();
  int16_t* r = residuals_.data();
  const double* d = delta.data();
  const Eigen::Index stride = delta.outerStride();
  ForEachRounding(delta.rows(), delta.cols(), seed,
                  [&](Eigen::Index j, Eigen::Index i, Eigen::Index at, double up) {
                    Encode(scale * Decode(f[at], r[at]) + delta_scale * d[j * stride + i], f + at,
                           r + at, up);
                  });
}

}  // namespace polyguard
