// Element-wise activations and their derivatives. They act on decoded,
// full-size pre-activations: every peer applies them to its own copy.
//
// Thread safety: stateless.
#ifndef POLYGUARD_NN_ACTIVATION_H_
#define POLYGUARD_NN_ACTIVATION_H_

#include <string_view>

#include "polyguard/base/matrix.h"
#include "polyguard/base/status.h"

namespace polyguard {

enum class Activation { kIdentity, kRelu, kTanh, kSigmoid };

std::string_view ActivationName(Activation activation);
StatusOr<Activation> ParseActivation(std::string_view name);

// f(s), entry by entry.
Matrix Activate(Activation activation, const MatrixRef& s);
// f'(s), entry by entry (ReLU: 1 where s > 0, else 0).
Matrix ActivationDerivative(Activation activation, const MatrixRef& s);

}  // namespace polyguard

#endif  // POLYGUARD_NN_ACTIVATION_H_
