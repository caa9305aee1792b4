#include "polyguard/nn/activation.h"

#include <string>

namespace polyguard {

std::string_view ActivationName(Activation a) {
  switch (a) {
    case Activation::kIdentity:
      return "identity";
    case Activation::kRelu:
      return "relu";
    case Activation::kTanh:
      return "tanh";
    case Activation::kSigmoid:
      return "sigmoid";
  }
  return "unknown";
}

StatusOr<Activation> ParseActivation(std::string_view name) {
  for (Activation a :
       {Activation::kIdentity, Activation::kRelu, Activation::kTanh, Activation::kSigmoid}) {
    if (name == ActivationName(a)) return a;
  }
  return InvalidArgumentError("unknown activation '" + std::string(name) +
                              "' (expected identity, relu, tanh or sigmoid)");
}

Matrix Activate(Activation a, const MatrixRef& s) {
  switch (a) {
    case Activation::kIdentity:
      return s;
    case Activation::kRelu:
      return s.cwiseMax(0.0);
    case Activation::kTanh:
      return s.array().tanh().matrix();
    case Activation::kSigmoid:
      return (1.0 / (1.0 + (-s.array()).exp())).matrix();
  }
  return s;
}

Matrix ActivationDerivative(Activation a, const MatrixRef& s) {
  switch (a) {
    case Activation::kIdentity:
      return Matrix::Ones(s.rows(), s.cols());
    case Activation::kRelu:
      return (s.array() > 0.0).cast<double>().matrix();
    case Activation::kTanh:
      return (1.0 - s.array().tanh().square()).matrix();
    case Activation::kSigmoid: {
      const auto sig = 1.0 / (1.0 + (-s.array()).exp());
      return (sig * (1.0 - sig)).matrix();
    }
  }
  return Matrix::Ones(s.rows(), s.cols());
}

}  // namespace polyguard
