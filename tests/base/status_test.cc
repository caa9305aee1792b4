#include "polyguard/base/status.h"

#include <gtest/gtest.h>

namespace polyguard {
namespace {
namespace status_test {

StatusOr<int> Half(int x) {
  if (x % 2) return InvalidArgumentError("x = " + std::to_string(x) + " is odd");
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  POLYGUARD_ASSIGN_OR_RETURN(int h, Half(x));
  POLYGUARD_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Status, CarriesCodeAndMessage) {
  EXPECT_TRUE(Status().ok());
  Status s = DataLossError("suspect peers: 3");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.ToString(), "DataLoss: suspect peers: 3");
  EXPECT_EQ(s.WithContext("decode").message(), "decode: suspect peers: 3");
  EXPECT_EQ(Status().WithContext("x"), Status());
}

TEST(StatusOr, PropagatesErrors) {
  EXPECT_EQ(Quarter(8).value(), 2);
  auto bad = Quarter(6);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "x = 3 is odd");
  StatusOr<int> from_ok = Status();
  EXPECT_EQ(from_ok.status().code(), StatusCode::kInternal);
}

TEST(StatusOrDeathTest, ValueOfErrorAborts) {
  EXPECT_DEATH({ (void)Half(3).value(); }, "odd");
}

}  // namespace status_test
}  // namespace
}  // namespace polyguard
