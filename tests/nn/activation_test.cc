#include "polyguard/nn/activation.h"

#include <gtest/gtest.h>

#include "polyguard/base/random.h"

namespace polyguard {
namespace {
namespace activation_test {

TEST(Activation, DerivativesMatchFiniteDifferences) {
  Matrix s = Random(1).NormalMatrix(5, 4);
  s(0, 0) = 0.3;  // keep ReLU away from its kink
  const double h = 1e-6;
  for (Activation a :
       {Activation::kIdentity, Activation::kRelu, Activation::kTanh, Activation::kSigmoid}) {
    const Matrix fd = (Activate(a, s.array() + h) - Activate(a, s.array() - h)) / (2 * h);
    EXPECT_LT((fd - ActivationDerivative(a, s)).cwiseAbs().maxCoeff(), 1e-6) << ActivationName(a);
    EXPECT_EQ(ParseActivation(ActivationName(a)).value(), a);
  }
  EXPECT_EQ(Activate(Activation::kRelu, Matrix::Constant(1, 1, -2.0))(0, 0), 0.0);
  EXPECT_FALSE(ParseActivation("gelu").ok());
}

}  // namespace activation_test
}  // namespace
}  // namespace polyguard
