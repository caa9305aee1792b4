// Softmax cross-entropy over a batch: the loss every peer computes itself
// from its decoded logits.
//
// Thread safety: stateless.
#ifndef POLYGUARD_NN_SOFTMAX_CROSS_ENTROPY_H_
#define POLYGUARD_NN_SOFTMAX_CROSS_ENTROPY_H_

#include <span>

#include "polyguard/base/matrix.h"
#include "polyguard/base/status.h"

namespace polyguard {

struct LossAndGradient {
  double loss = 0.0;  // mean over the batch of -log softmax(logits)[label]
  Matrix gradient;    // d loss / d logits = (softmax - onehot) / B
  int correct = 0;    // samples whose largest logit is the label
};

// logits: classes x B; labels: B values in [0, classes). Numerically stable
// (the column maximum is subtracted). InvalidArgument on a label out of range,
// a size mismatch, or non-finite logits.
StatusOr<LossAndGradient> SoftmaxCrossEntropy(const MatrixRef& logits, std::span<const int> labels);

}  // namespace polyguard

#endif  // POLYGUARD_NN_SOFTMAX_CROSS_ENTROPY_H_
