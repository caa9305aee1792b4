// Max pooling on batches in the convolution layout (conv/convolution.h): a
// batch of C x H x W samples is a (C H W) x B matrix; the output is
// (C H' W') x B with H' = floor((H - size) / stride) + 1. Flattening for a
// following dense layer is the identity in this layout (each column already
// is the sample's C H' W' values), so there is no flatten step.
//
// Pooling acts on each peer's decoded copy of the activations; the fault
// injector's activation point covers it in the layers that use it.
#ifndef POLYGUARD_NN_MAX_POOL_H_
#define POLYGUARD_NN_MAX_POOL_H_

#include <cstdint>
#include <vector>

#include "polyguard/base/matrix.h"
#include "polyguard/base/status.h"

namespace polyguard {

struct PoolShape {
  int channels = 1, height = 1, width = 1;
  int size = 2;  // window (size x size)
  int stride = 2;
  int out_height() const { return (height - size) / stride + 1; }
  int out_width() const { return (width - size) / stride + 1; }
  int64_t input_size() const { return int64_t(channels) * height * width; }
  int64_t output_size() const { return int64_t(channels) * out_height() * out_width(); }
};

// InvalidArgument naming the field: sizes >= 1, window within the input.
Status ValidatePoolShape(const PoolShape& shape);

// out = the maximum of each window; argmax (same shape as out) keeps the
// input row of each maximum for the backward pass. x must be
// input_size() x B (the caller's contract, see ValidatePoolShape).
void MaxPool2d(const PoolShape& shape, const MatrixRef& x, Matrix* out,
               std::vector<int64_t>* argmax);
// The gradient w.r.t. the input: each output gradient goes to its window's
// maximum (ties: the first in row-major order).
Matrix MaxPool2dBackward(const PoolShape& shape, const MatrixRef& grad_out,
                         const std::vector<int64_t>& argmax);

}  // namespace polyguard

#endif  // POLYGUARD_NN_MAX_POOL_H_
