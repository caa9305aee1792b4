#include "polyguard/conv/convolution.h"

#include <cmath>
#include <type_traits>

namespace polyguard {

std::string ConvShape::Describe() const {
  // (Piece by piece: GCC 12 warns falsely on some string concatenations.)
  std::string out = std::to_string(channels);
  for (const auto& [sep, v] : {std::pair<const char*, int>{"x", height},
                               {"x", width},
                               {" * ", filters},
                               {"x", channels},
                               {"x", kernel_h},
                               {"x", kernel_w},
                               {" stride ", stride},
                               {" pad ", pad}}) {
    out.append(sep);
    out.append(std::to_string(v));
  }
  return out;
}

Status ValidateConvShape(const ConvShape& s) {
  auto bad = [&](const std::string& field, const std::string& what) {
    std::string m = "conv ";
    m += s.Describe();
    m += ": ";
    m += field;
    m += " ";
    m += what;
    return InvalidArgumentError(m);
  };
  if (s.channels < 1) return bad("channels", "must be >= 1");
  if (s.height < 1 || s.width < 1) return bad("height and width", "must be >= 1");
  if (s.filters < 1) return bad("filters", "must be >= 1");
  if (s.kernel_h < 1 || s.kernel_w < 1) return bad("kernel", "must be >= 1");
  if (s.stride < 1) return bad("stride", "must be >= 1");
  if (s.pad < 0) return bad("pad", "must be >= 0");
  if (s.kernel_h > s.height + 2 * s.pad || s.kernel_w > s.width + 2 * s.pad)
    return bad("kernel", "is larger than the padded input");
  return Status::Ok();
}

Status CheckConvOperands(const ConvShape& s, const MatrixRef& filters, const MatrixRef& input) {
  POLYGUARD_RETURN_IF_ERROR(ValidateConvShape(s));
  if (filters.rows() != s.filters || filters.cols() != s.filter_size()) {
    return InvalidArgumentError(
        "conv " + s.Describe() + ": filters are " + std::to_string(filters.rows()) + " x " +
        std::to_string(filters.cols()) + ", expected " + std::to_string(s.filters) + " x " +
        std::to_string(s.filter_size()));
  }
  if (input.rows() != s.input_size() || input.cols() < 1) {
    return InvalidArgumentError(
        "conv " + s.Describe() + ": input is " + std::to_string(input.rows()) + " x " +
        std::to_string(input.cols()) + ", expected " + std::to_string(s.input_size()) + " x B");
  }
  return Status::Ok();
}

namespace {

// im2col of one sample: (C kh kw) x (H' W').
void Im2Col(const ConvShape& s, const double* x, Matrix* cols) {
  const int ho = s.out_height(), wo = s.out_width();
  cols->resize(s.filter_size(), int64_t(ho) * wo);
  int64_t row = 0;
  for (int c = 0; c < s.channels; ++c) {
    for (int i = 0; i < s.kernel_h; ++i) {
      for (int j = 0; j < s.kernel_w; ++j, ++row) {
        for (int oy = 0; oy < ho; ++oy) {
          const int y = oy * s.stride + i - s.pad;
          for (int ox = 0; ox < wo; ++ox) {
            const int xx = ox * s.stride + j - s.pad;
            const bool inside = y >= 0 && y < s.height && xx >= 0 && xx < s.width;
            (*cols)(row, int64_t(oy) * wo + ox) =
                inside ? x[(int64_t(c) * s.height + y) * s.width + xx] : 0.0;
          }
        }
      }
    }
  }
}

// The adjoint of Im2Col: scatter-adds cols into one sample's input.
void Col2Im(const ConvShape& s, const MatrixRef& cols, double* x) {
  const int ho = s.out_height(), wo = s.out_width();
  int64_t row = 0;
  for (int c = 0; c < s.channels; ++c) {
    for (int i = 0; i < s.kernel_h; ++i) {
      for (int j = 0; j < s.kernel_w; ++j, ++row) {
        for (int oy = 0; oy < ho; ++oy) {
          const int y = oy * s.stride + i - s.pad;
          if (y < 0 || y >= s.height) continue;
          for (int ox = 0; ox < wo; ++ox) {
            const int xx = ox * s.stride + j - s.pad;
            if (xx < 0 || xx >= s.width) continue;
            x[(int64_t(c) * s.height + y) * s.width + xx] += cols(row, int64_t(oy) * wo + ox);
          }
        }
      }
    }
  }
}

// Sample b of the output (channel-major) as an N x (H' W') matrix view.
Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> OutputOf(
    const ConvShape& s, const MatrixRef& out, Eigen::Index b) {
  return {out.col(b).data(), s.filters, int64_t(s.out_height()) * s.out_width()};
}

}  // namespace

Matrix Im2ColBatch(const ConvShape& s, const MatrixRef& input) {
  const int64_t spatial = int64_t(s.out_height()) * s.out_width();
  Matrix out(s.filter_size(), spatial * input.cols());
  Matrix cols;
  for (Eigen::Index b = 0; b < input.cols(); ++b) {
    Im2Col(s, input.col(b).data(), &cols);
    out.middleCols(b * spatial, spatial) = cols;
  }
  return out;
}

Matrix Col2ImBatch(const ConvShape& s, const MatrixRef& cols, Eigen::Index batch) {
  const int64_t spatial = int64_t(s.out_height()) * s.out_width();
  Matrix x = Matrix::Zero(s.input_size(), batch);
  for (Eigen::Index b = 0; b < batch; ++b)
    Col2Im(s, cols.middleCols(b * spatial, spatial), x.col(b).data());
  return x;
}

Matrix OutputToProductLayout(const ConvShape& s, const MatrixRef& output) {
  const int64_t spatial = int64_t(s.out_height()) * s.out_width();
  Matrix out(s.filters, spatial * output.cols());
  for (Eigen::Index b = 0; b < output.cols(); ++b)
    out.middleCols(b * spatial, spatial) = OutputOf(s, output, b);
  return out;
}

Matrix ProductToOutputLayout(const ConvShape& s, const MatrixRef& product) {
  const int64_t spatial = int64_t(s.out_height()) * s.out_width();
  const Eigen::Index batch = product.cols() / spatial;
  Matrix out(s.output_size(), batch);
  for (Eigen::Index b = 0; b < batch; ++b)
    Eigen::Map<Matrix>(out.col(b).data(), spatial, s.filters) =
        product.middleCols(b * spatial, spatial).transpose();
  return out;
}

namespace {

// The GEMMs in T (double, or float for a float32 peer); im2col and col2im
// only move values.
template <typename T>
Matrix Conv2dIn(const ConvShape& s, const MatrixRef& filters, const MatrixRef& input) {
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const int64_t spatial = int64_t(s.out_height()) * s.out_width();
  Matrix out(s.output_size(), input.cols());
  const M f = filters.transpose().template cast<T>();
  Matrix cols;
  for (Eigen::Index b = 0; b < input.cols(); ++b) {
    Im2Col(s, input.col(b).data(), &cols);
    // (H' W') x N column-major is channel-major: the output column's order.
    if constexpr (std::is_same_v<T, double>) {
      Eigen::Map<Matrix>(out.col(b).data(), spatial, s.filters).noalias() = cols.transpose() * f;
    } else {
      const M c = cols.transpose().template cast<T>();
      Eigen::Map<Matrix>(out.col(b).data(), spatial, s.filters) = (c * f).template cast<double>();
    }
  }
  return out;
}

template <typename T>
Matrix Conv2dInputGradientIn(const ConvShape& s, const MatrixRef& filters,
                             const MatrixRef& grad_output) {
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  Matrix dx = Matrix::Zero(s.input_size(), grad_output.cols());
  const M ft = filters.transpose().template cast<T>();
  Matrix cols;
  for (Eigen::Index b = 0; b < grad_output.cols(); ++b) {
    if constexpr (std::is_same_v<T, double>) {
      cols.noalias() = ft * OutputOf(s, grad_output, b);
    } else {
      const M g = OutputOf(s, grad_output, b).template cast<T>();
      cols = (ft * g).template cast<double>();
    }
    Col2Im(s, cols, dx.col(b).data());
  }
  return dx;
}

}  // namespace

namespace {

// Float32ScaleExponent of m: float32 operands are scaled by it, as
// ProductCode::Multiply scales its operands, so that a float32 peer's
// convolution neither underflows (filters of 1e-43 gave a zero output that
// decoded as verified) nor overflows (1e38 did).
int Float32Exponent(const MatrixRef& m) {
  return Float32ScaleExponent(m.size() > 0 ? m.cwiseAbs().maxCoeff() : 0.0);
}

// f(scaled a, scaled b) scaled back, in double.
template <typename F>
Matrix Float32Scaled(const MatrixRef& a, const MatrixRef& b, F f) {
  const int ea = Float32Exponent(a), eb = Float32Exponent(b);
  if (ea == 0 && eb == 0) return f(a, b);
  const auto [a1, a2] = PowerOfTwoFactors(-ea);
  const auto [b1, b2] = PowerOfTwoFactors(-eb);
  const auto [back1, back2] = PowerOfTwoFactors(ea + eb);
  const Matrix sa = a * a1 * a2, sb = b * b1 * b2;
  return f(sa, sb) * back1 * back2;
}

}  // namespace

Matrix Conv2d(const ConvShape& s, const MatrixRef& filters, const MatrixRef& input,
              Precision precision) {
  if (precision != Precision::kFloat32) return Conv2dIn<double>(s, filters, input);
  return Float32Scaled(filters, input, [&](const MatrixRef& f, const MatrixRef& x) {
    return Conv2dIn<float>(s, f, x);
  });
}

Matrix Conv2dInputGradient(const ConvShape& s, const MatrixRef& filters,
                           const MatrixRef& grad_output, Precision precision) {
  if (precision != Precision::kFloat32)
    return Conv2dInputGradientIn<double>(s, filters, grad_output);
  return Float32Scaled(filters, grad_output, [&](const MatrixRef& f, const MatrixRef& g) {
    return Conv2dInputGradientIn<float>(s, f, g);
  });
}

Matrix Conv2dFilterGradient(const ConvShape& s, const MatrixRef& input,
                            const MatrixRef& grad_output) {
  Matrix df = Matrix::Zero(s.filters, s.filter_size());
  Matrix cols;
  for (Eigen::Index b = 0; b < input.cols(); ++b) {
    Im2Col(s, input.col(b).data(), &cols);
    df.noalias() += OutputOf(s, grad_output, b) * cols.transpose();
  }
  return df;
}

}  // namespace polyguard
