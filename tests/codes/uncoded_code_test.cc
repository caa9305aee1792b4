#include "polyguard/codes/uncoded_code.h"

#include <gtest/gtest.h>

#include "codes/code_test_util.h"

namespace polyguard {
namespace {
namespace uncoded_code_test {

using testing::ErrorKind;
using testing::RelativeError;
using testing::RunProduct;

TEST(UncodedCode, SplitsAndConcatenates) {
  Random rng(1);
  auto code = UncodedCode::Create({11, 4, 3}, 4).value();
  auto run = RunProduct(*code, &rng, 0, 0, ErrorKind::kDense, 0);
  auto decoded = code->Decode(run.results);
  ASSERT_TRUE(decoded.ok());
  EXPECT_FALSE(decoded->verified);
  EXPECT_LT(RelativeError(decoded->product, run.expected), 1e-15);
}

TEST(UncodedCode, CannotSeeWrongValuesButReportsNaN) {
  Random rng(2);
  auto code = UncodedCode::Create({8, 4, 3}, 4).value();
  auto dense = RunProduct(*code, &rng, 0, 1, ErrorKind::kDense, 1.0);
  auto decoded = code->Decode(dense.results);
  ASSERT_TRUE(decoded.ok());
  EXPECT_FALSE(decoded->verified);
  EXPECT_GT(RelativeError(decoded->product, dense.expected), 1e-3);
  auto nan = RunProduct(*code, &rng, 0, 1, ErrorKind::kNaN, 0);
  EXPECT_EQ(code->Decode(nan.results).status().code(), StatusCode::kDataLoss);
  auto missing = RunProduct(*code, &rng, 1, 0, ErrorKind::kDense, 0);
  EXPECT_EQ(code->Decode(missing.results).status().code(), StatusCode::kUnavailable);
}

}  // namespace uncoded_code_test
}  // namespace
}  // namespace polyguard
