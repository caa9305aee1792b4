#include "polyguard/base/precision.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace polyguard {

std::string_view PrecisionName(Precision precision) {
  return precision == Precision::kFloat32 ? "float32" : "float64";
}

StatusOr<Precision> ParsePrecision(std::string_view name) {
  if (name == "float64") return Precision::kFloat64;
  if (name == "float32") return Precision::kFloat32;
  return InvalidArgumentError("unknown precision '" + std::string(name) + "' (float64 or float32)");
}

double UnitRoundoff(Precision precision) {
  return std::ldexp(1.0, precision == Precision::kFloat32 ? -24 : -53);
}

double RoundoffTolerance(Precision precision, int64_t inner) {
  if (precision == Precision::kFloat64) return kFloat64Tolerance;
  const double rho = UnitRoundoff(precision) * std::sqrt(double(std::max<int64_t>(inner, 1)));
  return kFloat32ToleranceInRoundoffs * rho;
}

int Float32ScaleExponent(double largest) {
  if (!std::isfinite(largest) || !(largest > 0.0)) return 0;
  const int e = std::ilogb(largest);
  return e >= -30 && e <= 30 ? 0 : e;
}

Status ValidateTolerance(double tolerance, std::string_view what) {
  if (tolerance >= DBL_EPSILON && tolerance < 1.0) return Status::Ok();
  return InvalidArgumentError(std::string(what) + ": tolerance must be in [" +
                              std::to_string(DBL_EPSILON) + ", 1) (below double roundoff no " +
                              "honest decode verifies), got " + std::to_string(tolerance));
}

}  // namespace polyguard
