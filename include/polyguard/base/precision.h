// The floating-point precision a job's peers compute in: the arithmetic of
// their products and what a tolerance must allow for. Decoding and locating
// always run in double over the results (float64 accumulation over float32
// data), so only the peers' own products carry float32 roundoff.
#ifndef POLYGUARD_BASE_PRECISION_H_
#define POLYGUARD_BASE_PRECISION_H_

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <utility>

#include "polyguard/base/status.h"

namespace polyguard {

enum class Precision { kFloat64, kFloat32 };

// "float64" or "float32".
std::string_view PrecisionName(Precision precision);
// The inverse of PrecisionName; InvalidArgument naming the accepted values.
StatusOr<Precision> ParsePrecision(std::string_view name);

// The unit roundoff u: 2^-53 (float64) or 2^-24 (float32).
double UnitRoundoff(Precision precision);

// The relative tolerance of a check on results computed in `precision` from
// products with inner dimension `inner` (the decoders' DecoderOptions::
// tolerance, relative to an entry's code word scale; see
// errors_and_erasures_decoder.h).
//   float64: kFloat64Tolerance, for any inner dimension.
//   float32: kFloat32ToleranceInRoundoffs x rho, rho = u sqrt(inner) the
//     probabilistic roundoff bound of a length-inner float32 dot product
//     (Higham and Mary 2019) on float32-rounded operands. Honest float32
//     results were measured within 0.7 rho of the exact code word (inner 16
//     to 4096, Generalized PolyDot and rotation codes; docs/codes.md §3.7),
//     and fault-free decodes name no peer from 1 rho up (none in 10^5 of
//     each code at 1 rho, none in 10^6 at 3 rho; at 0.3 rho most do): 3 rho
//     leaves a margin of 3 over that edge. Errors are located from 50 rho (Generalized PolyDot,
//     P = 8) and 200 rho (rotation points, P = 20, K = 16); below, some
//     pass as roundoff or are located as other peers, and the product moves
//     by up to about 700 rho (the decoder's window near its tolerance:
//     errors_and_erasures_decoder.h; docs/codes.md §3.7). It was 8 rho until
//     2026-12-04, with both windows at 2,000 rho.
//
// The float64 tolerance: 2^15 machine epsilons, about 7e-12 (a thousand
// times the roundoff of a product's results). The default of every check on
// float64 results (DecoderOptions, the ABFT and replication codes, the
// trainer's guard).
inline constexpr double kFloat64Tolerance = 32768.0 * DBL_EPSILON;
inline constexpr double kFloat32ToleranceInRoundoffs = 3.0;
// The largest roundoff resolution (DecodedProduct::roundoff_bound: the
// resolution when every result is right) a float32 decode may have, in rho
// of the product's RMS, before CodedProduct computes the product again in
// float64 (runtime/coded_product.h). Fault-free Gaussian
// data gives 70 to 90 rho (Generalized PolyDot P = 8, m = n = 2) and about
// 190 rho (rotation points P = 20, K = 16); the true RMS deviation was at
// most 0.01 of the bound on such data and 0.63 on the worst structured data
// tried (docs/codes.md §3.7). A product kept in float32 is then within
// 1,000 rho RMS of A B, usually far less; its largest entry is not bounded
// by this (an error concentrated in a few entries has a small RMS).
inline constexpr double kFloat32ResolutionLimitInRoundoffs = 1000.0;
// The tolerance of a float32 job's products computed again in float64 (the
// limit above), when left at kFloat64Tolerance: those multiply the shards'
// full values, which a float32 job keeps (shard and velocity) to within
// 2^-40 of each update (CompensatedMatrix), rounded at every peer
// independently; the peers' shards then part by about sqrt(steps) 2^-41 of
// their size, which 2^-30 covers for about 4 million steps
// (kFloat64Tolerance, 2^-37, for about 256). It is still below a 64th of
// float32's 3 rho.
inline constexpr double kFloat32StorageWideTolerance = 0x1p-30;
double RoundoffTolerance(Precision precision, int64_t inner);

// The power of two by which a float32 operand whose largest |value| is
// `largest` is divided before it is rounded to float32, and its product
// multiplied back in double (ProductCode::Multiply, Conv2d): 0 while that is
// within [2^-30, 2^30], where float32 neither overflows nor loses more than
// terms 2^-66 below the largest to underflow (so the unscaled product is
// the scaled one), and for zero, NaN or Inf; ilogb(largest) otherwise.
int Float32ScaleExponent(double largest);
// 2^k as two factors whose product, applied one after the other, scales a
// double by 2^k exactly wherever the result is representable: 2^k alone is
// infinite for k >= 1024, and an operand below 2^-1023 was scaled by it (a
// float32 peer's product of such data came back NaN, adversary s11).
inline std::pair<double, double> PowerOfTwoFactors(int k) {
  return {std::ldexp(1.0, k / 2), std::ldexp(1.0, k - k / 2)};
}

// A decoder's tolerance must be in [DBL_EPSILON, 1): below double roundoff no
// honest decode verifies (1e-300 was accepted and failed every fault-free
// decode). InvalidArgument naming `what` (the decoder) otherwise.
Status ValidateTolerance(double tolerance, std::string_view what);

}  // namespace polyguard

#endif  // POLYGUARD_BASE_PRECISION_H_
