// 2-D convolution (cross-correlation, as in ML libraries) on batches, the
// uncoded reference of the coded convolution (docs/conv.md §1).
//
// Layout: a batch of B samples of C x H x W is a (C*H*W) x B matrix, each
// column one sample in channel-major, then row, then column order; filters
// F (N x C x kh x kw) are an N x (C*kh*kw) matrix, each row one filter in the
// same order. The output (N x H' x W' per sample) is (N*H'*W') x B, with
//   H' = floor((H + 2 pad - kh) / stride) + 1  (W' likewise).
// Computed by im2col and one GEMM per sample.
#ifndef POLYGUARD_CONV_CONVOLUTION_H_
#define POLYGUARD_CONV_CONVOLUTION_H_

#include <cstdint>
#include <string>

#include "polyguard/base/matrix.h"
#include "polyguard/base/precision.h"
#include "polyguard/base/status.h"

namespace polyguard {

struct ConvShape {
  int channels = 1;  // C
  int height = 1;    // H
  int width = 1;     // W
  int filters = 1;   // N
  int kernel_h = 1;  // kh
  int kernel_w = 1;  // kw
  int stride = 1;
  int pad = 0;  // zeros on every side

  int out_height() const { return (height + 2 * pad - kernel_h) / stride + 1; }
  int out_width() const { return (width + 2 * pad - kernel_w) / stride + 1; }
  int64_t input_size() const { return int64_t(channels) * height * width; }
  int64_t output_size() const { return int64_t(filters) * out_height() * out_width(); }
  int64_t filter_size() const { return int64_t(channels) * kernel_h * kernel_w; }
  std::string Describe() const;
};

// InvalidArgument naming the field: sizes >= 1, pad >= 0, a kernel that fits
// the padded input.
Status ValidateConvShape(const ConvShape& shape);

// The output of `filters` (N x C kh kw) on `input` ((C H W) x B). Shapes are
// the caller's contract (checked by CheckConvOperands).
// In float32 both operands are rounded to float32 and each GEMM runs in
// float32 (as a float32 peer computes); the output comes back widened. An
// operand whose largest |value| is outside [2^-30, 2^30] is first scaled by
// a power of two that brings it near 1 (exact; scaled back in double), as
// ProductCode::Multiply does: float32's range then holds the terms at any
// data scale. Conv2dInputGradient likewise.
Matrix Conv2d(const ConvShape& shape, const MatrixRef& filters, const MatrixRef& input,
              Precision precision = Precision::kFloat64);
Status CheckConvOperands(const ConvShape& shape, const MatrixRef& filters, const MatrixRef& input);

// The gradients of a convolution's output w.r.t. its input and its filters,
// given grad_output ((N H' W') x B): the input gradient (the transposed
// convolution, (C H W) x B) and the filter gradient (N x C kh kw, summed over
// the batch). Both are linear in grad_output, which is what lets a coded
// layer compute them on coded operands.
// The batch as a product operand: sample b's im2col ((C kh kw) x (H' W'))
// in columns [b H' W', (b + 1) H' W'), so that filters * Im2ColBatch(x) is
// the output as an N x (H' W' B) matrix. Col2ImBatch is its adjoint
// (scatter-adds back into (C H W) x B).
Matrix Im2ColBatch(const ConvShape& shape, const MatrixRef& input);
Matrix Col2ImBatch(const ConvShape& shape, const MatrixRef& cols, Eigen::Index batch);
// The output between the two layouts: (N H' W') x B and N x (H' W' B).
Matrix OutputToProductLayout(const ConvShape& shape, const MatrixRef& output);
Matrix ProductToOutputLayout(const ConvShape& shape, const MatrixRef& product);

Matrix Conv2dInputGradient(const ConvShape& shape, const MatrixRef& filters,
                           const MatrixRef& grad_output, Precision precision = Precision::kFloat64);
Matrix Conv2dFilterGradient(const ConvShape& shape, const MatrixRef& input,
                            const MatrixRef& grad_output);

}  // namespace polyguard

#endif  // POLYGUARD_CONV_CONVOLUTION_H_
