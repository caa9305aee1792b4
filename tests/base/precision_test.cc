#include "polyguard/base/precision.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>

#include "polyguard/codes/errors_and_erasures_decoder.h"

namespace polyguard {
namespace {
namespace precision_test {

TEST(Precision, NamesRoundTrip) {
  for (Precision p : {Precision::kFloat64, Precision::kFloat32})
    EXPECT_EQ(ParsePrecision(PrecisionName(p)).value(), p);
}

TEST(Precision, AnUnknownNameIsRefusedNamingTheChoices) {
  for (const char* bad : {"", "float16", "Float32", "fp32", "double"}) {
    auto p = ParsePrecision(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find("float64 or float32"), std::string::npos);
  }
}

TEST(Precision, UnitRoundoffIsHalfTheMachineEpsilon) {
  EXPECT_EQ(UnitRoundoff(Precision::kFloat64), DBL_EPSILON / 2);
  EXPECT_EQ(UnitRoundoff(Precision::kFloat32), double(FLT_EPSILON) / 2);
}

TEST(Precision, Float64KeepsTheDecodersDefaultTolerance) {
  for (int64_t inner : {1, 64, 1 << 20})
    EXPECT_EQ(RoundoffTolerance(Precision::kFloat64, inner), DecoderOptions{}.tolerance);
}

TEST(Precision, Float32ToleranceIsThreeRoundoffLevelsOfTheDotProduct) {
  const double u = std::ldexp(1.0, -24);
  EXPECT_DOUBLE_EQ(RoundoffTolerance(Precision::kFloat32, 1024), 3 * u * 32);
  EXPECT_DOUBLE_EQ(RoundoffTolerance(Precision::kFloat32, 0), 3 * u);  // as inner 1
  // Always a relative tolerance a decoder accepts, for any real inner size.
  EXPECT_LT(RoundoffTolerance(Precision::kFloat32, int64_t{1} << 40), 1.0);
}

}  // namespace precision_test
}  // namespace
}  // namespace polyguard
