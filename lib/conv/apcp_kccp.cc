#include "polyguard/conv/apcp_kccp.h"

#include <algorithm>

namespace polyguard {

StatusOr<ConvPartition> PartitionConv(const ConvShape& shape, int k_a, int k_b) {
  POLYGUARD_RETURN_IF_ERROR(ValidateConvShape(shape));
  const int ho = shape.out_height();
  if (k_a < 1 || k_a > ho) {
    return InvalidArgumentError("conv " + shape.Describe() + ": k_a (input slabs) must be in [1, " +
                                std::to_string(ho) + "] (output rows), got " + std::to_string(k_a));
  }
  if (k_b < 1 || k_b > shape.filters) {
    return InvalidArgumentError("conv " + shape.Describe() +
                                ": k_b (filter groups) must be in [1, " +
                                std::to_string(shape.filters) + "], got " + std::to_string(k_b));
  }
  ConvPartition p;
  p.full = shape;
  p.k_a = k_a;
  p.k_b = k_b;
  p.rows = (ho + k_a - 1) / k_a;
  p.group = (shape.filters + k_b - 1) / k_b;
  p.slab = shape;
  p.slab.height = (p.rows - 1) * shape.stride + shape.kernel_h;
  p.slab.width = shape.width + 2 * shape.pad;
  p.slab.pad = 0;
  p.slab.filters = p.group;
  return p;
}

Matrix ApcpSlab(const ConvPartition& p, const MatrixRef& input, int i) {
  const ConvShape& s = p.full;
  const int hs = p.slab.height, ws = p.slab.width;
  Matrix slab = Matrix::Zero(int64_t(s.channels) * hs * ws, input.cols());
  const int first = i * p.rows * s.stride;  // first padded input row of the slab
  for (Eigen::Index b = 0; b < input.cols(); ++b) {
    const double* x = input.col(b).data();
    double* out = slab.col(b).data();
    for (int c = 0; c < s.channels; ++c) {
      for (int r = 0; r < hs; ++r) {
        const int y = first + r - s.pad;  // row of the unpadded input
        if (y < 0 || y >= s.height) continue;
        std::copy_n(x + (int64_t(c) * s.height + y) * s.width, s.width,
                    out + (int64_t(c) * hs + r) * ws + s.pad);
      }
    }
  }
  return slab;
}

Matrix KccpGroup(const ConvPartition& p, const MatrixRef& filters, int l) {
  Matrix g = Matrix::Zero(p.group, filters.cols());
  const int first = l * p.group;
  const int count = std::clamp(p.full.filters - first, 0, p.group);
  if (count > 0) g.topRows(count) = filters.middleRows(first, count);
  return g;
}

void PlaceConvBlock(const ConvPartition& p, int i, int l, const MatrixRef& block, Matrix* output) {
  const int ho = p.full.out_height(), wo = p.full.out_width();
  const int rows = std::clamp(ho - i * p.rows, 0, p.rows);
  const int channels = std::clamp(p.full.filters - l * p.group, 0, p.group);
  for (Eigen::Index b = 0; b < block.cols(); ++b) {
    const double* in = block.col(b).data();
    double* out = output->col(b).data();
    for (int n = 0; n < channels; ++n)
      for (int r = 0; r < rows; ++r)
        std::copy_n(in + (int64_t(n) * p.rows + r) * wo, wo,
                    out + (int64_t(l * p.group + n) * ho + i * p.rows + r) * wo);
  }
}

}  // namespace polyguard
