#include "polyguard/fault/soft_error.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace polyguard {

std::string_view SoftErrorKindName(SoftErrorKind kind) {
  switch (kind) {
    case SoftErrorKind::kDense:
      return "dense";
    case SoftErrorKind::kEntry:
      return "entry";
    case SoftErrorKind::kBitflip:
      return "bitflip";
    case SoftErrorKind::kNaN:
      return "nan";
    case SoftErrorKind::kInf:
      return "inf";
  }
  return "unknown";
}

StatusOr<SoftErrorKind> ParseSoftErrorKind(std::string_view name) {
  for (SoftErrorKind k : {SoftErrorKind::kDense, SoftErrorKind::kEntry, SoftErrorKind::kBitflip,
                          SoftErrorKind::kNaN, SoftErrorKind::kInf}) {
    if (name == SoftErrorKindName(k)) return k;
  }
  return InvalidArgumentError("unknown error kind '" + std::string(name) +
                              "' (expected dense, entry, bitflip, nan or inf)");
}

void ApplySoftError(Matrix* value, SoftErrorKind kind, double magnitude, Random* rng, double scale,
                    Eigen::Index entry) {
  if (value->size() == 0) return;
  double s = scale > 0.0 ? scale : value->norm() / std::sqrt(double(value->size()));
  if (!(s > 0.0) || !std::isfinite(s)) s = 1.0;
  if (entry < 0 || entry >= value->size())
    entry = static_cast<Eigen::Index>(rng->UniformInt(0, value->size() - 1));
  double& x = value->data()[entry];
  switch (kind) {
    case SoftErrorKind::kDense:
      *value += magnitude * s * rng->NormalMatrix(value->rows(), value->cols());
      break;
    case SoftErrorKind::kEntry: {
      const double sign = rng->Uniform() < 0.5 ? -1.0 : 1.0;
      x += sign * magnitude * s * rng->Uniform(0.5, 1.5);
      break;
    }
    case SoftErrorKind::kBitflip: {
      // High bits only (top mantissa and exponent): low mantissa flips are
      // below roundoff and indistinguishable from honest results.
      uint64_t bits;
      std::memcpy(&bits, &x, sizeof bits);
      bits ^= uint64_t{1} << rng->UniformInt(40, 62);
      std::memcpy(&x, &bits, sizeof bits);
      break;
    }
    case SoftErrorKind::kNaN:
      x = std::numeric_limits<double>::quiet_NaN();
      break;
    case SoftErrorKind::kInf:
      x = std::numeric_limits<double>::infinity();
      break;
  }
}

void ApplySoftErrorToEntries(Matrix* value, SoftErrorKind kind, double magnitude, int entries,
                             Random* rng, double scale) {
  if (value->size() == 0) return;
  if (kind == SoftErrorKind::kDense) {
    ApplySoftError(value, kind, magnitude, rng, scale);
    return;
  }
  if (scale <= 0.0) scale = value->norm() / std::sqrt(double(value->size()));
  const int k = static_cast<int>(std::min<Eigen::Index>(std::max(entries, 1), value->size()));
  for (int e : rng->Sample(static_cast<int>(value->size()), k))
    ApplySoftError(value, kind, magnitude, rng, scale, e);
}

}  // namespace polyguard
