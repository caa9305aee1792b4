#include "polyguard/nn/max_pool.h"

#include <string>

namespace polyguard {

Status ValidatePoolShape(const PoolShape& s) {
  if (s.channels < 1 || s.height < 1 || s.width < 1)
    return InvalidArgumentError("max pool: channels, height and width must be >= 1");
  if (s.size < 1 || s.stride < 1)
    return InvalidArgumentError("max pool: size and stride must be >= 1");
  if (s.size > s.height || s.size > s.width) {
    return InvalidArgumentError("max pool: window " + std::to_string(s.size) + " exceeds the " +
                                std::to_string(s.height) + " x " + std::to_string(s.width) +
                                " input");
  }
  return Status::Ok();
}

void MaxPool2d(const PoolShape& s, const MatrixRef& x, Matrix* out, std::vector<int64_t>* argmax) {
  const int ho = s.out_height(), wo = s.out_width();
  out->resize(s.output_size(), x.cols());
  argmax->assign(static_cast<size_t>(out->size()), 0);
  for (Eigen::Index b = 0; b < x.cols(); ++b) {
    for (int c = 0; c < s.channels; ++c) {
      for (int oy = 0; oy < ho; ++oy) {
        for (int ox = 0; ox < wo; ++ox) {
          int64_t best = (int64_t(c) * s.height + oy * s.stride) * s.width + ox * s.stride;
          for (int i = 0; i < s.size; ++i)
            for (int j = 0; j < s.size; ++j) {
              const int64_t at =
                  (int64_t(c) * s.height + oy * s.stride + i) * s.width + ox * s.stride + j;
              // NaN never wins a comparison: a NaN window keeps its first entry.
              if (x(at, b) > x(best, b)) best = at;
            }
          const int64_t o = (int64_t(c) * ho + oy) * wo + ox;
          (*out)(o, b) = x(best, b);
          (*argmax)[static_cast<size_t>(b * out->rows() + o)] = best;
        }
      }
    }
  }
}

Matrix MaxPool2dBackward(const PoolShape& s, const MatrixRef& grad_out,
                         const std::vector<int64_t>& argmax) {
  Matrix dx = Matrix::Zero(s.input_size(), grad_out.cols());
  for (Eigen::Index b = 0; b < grad_out.cols(); ++b)
    for (Eigen::Index o = 0; o < grad_out.rows(); ++o)
      dx(argmax[static_cast<size_t>(b * grad_out.rows() + o)], b) += grad_out(o, b);
  return dx;
}

}  // namespace polyguard
