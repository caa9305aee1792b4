// Eigen type aliases. One scalar type (double) throughout.
#ifndef POLYGUARD_BASE_MATRIX_H_
#define POLYGUARD_BASE_MATRIX_H_

#include <Eigen/Dense>
#include <Eigen/SparseCore>

namespace polyguard {

using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;
using Vector = Eigen::Matrix<double, Eigen::Dynamic, 1>;
using MatrixRef = Eigen::Ref<const Matrix>;
using VectorRef = Eigen::Ref<const Vector>;
// Column-major compressed sparse matrix (low-weight codes on sparse data).
using SparseMatrix = Eigen::SparseMatrix<double>;

// True when every entry is finite (no NaN, no Inf).
inline bool AllFinite(const MatrixRef& m) { return m.allFinite(); }

}  // namespace polyguard

#endif  // POLYGUARD_BASE_MATRIX_H_
