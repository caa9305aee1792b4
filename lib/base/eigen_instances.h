// Eigen's kernels that most of polyguard's files instantiate, each compiled
// once (lib/base/eigen_instances.cc) instead of once per file: the GEMM's
// packing and block kernels, in double and float, and the dense
// decompositions the codes take. Declared extern only where POLYGUARD_PCH
// force-includes this (scripts/test, CI): there every file links against the
// one copy. The GEMM's take about 10 s of a code file's 20-60 s under the
// sanitizers (-O1), the decompositions about 11 s of decode_kernels.cc's 52 s
// at -O3.
// The kernels' block sizes come from gebp_traits, so the names follow the
// target's vector width (-march) as Eigen's own do.
#ifndef POLYGUARD_LIB_BASE_EIGEN_INSTANCES_H_
#define POLYGUARD_LIB_BASE_EIGEN_INSTANCES_H_

#include <Eigen/Dense>

// KIND is `extern template` (declarations) or `template` (definitions).
#define POLYGUARD_EIGEN_GEMM_INSTANCES(KIND, S)                                                   \
  KIND struct Eigen::internal::gebp_kernel<                                                       \
      S, S, Eigen::Index,                                                                         \
      Eigen::internal::blas_data_mapper<S, Eigen::Index, Eigen::ColMajor, Eigen::Unaligned, 1>,   \
      Eigen::internal::gebp_traits<S, S>::mr, Eigen::internal::gebp_traits<S, S>::nr, false,      \
      false>;                                                                                     \
  KIND struct Eigen::internal::gemm_pack_lhs<                                                     \
      S, Eigen::Index, Eigen::internal::const_blas_data_mapper<S, Eigen::Index, Eigen::ColMajor>, \
      Eigen::internal::gebp_traits<S, S>::mr, Eigen::internal::gebp_traits<S, S>::LhsProgress,    \
      Eigen::internal::gebp_traits<S, S>::LhsPacket4Packing, Eigen::ColMajor>;                    \
  KIND struct Eigen::internal::gemm_pack_lhs<                                                     \
      S, Eigen::Index, Eigen::internal::const_blas_data_mapper<S, Eigen::Index, Eigen::RowMajor>, \
      Eigen::internal::gebp_traits<S, S>::mr, Eigen::internal::gebp_traits<S, S>::LhsProgress,    \
      Eigen::internal::gebp_traits<S, S>::LhsPacket4Packing, Eigen::RowMajor>;                    \
  KIND struct Eigen::internal::gemm_pack_rhs<                                                     \
      S, Eigen::Index, Eigen::internal::const_blas_data_mapper<S, Eigen::Index, Eigen::ColMajor>, \
      Eigen::internal::gebp_traits<S, S>::nr, Eigen::ColMajor>;                                   \
  KIND struct Eigen::internal::gemm_pack_rhs<                                                     \
      S, Eigen::Index, Eigen::internal::const_blas_data_mapper<S, Eigen::Index, Eigen::RowMajor>, \
      Eigen::internal::gebp_traits<S, S>::nr, Eigen::RowMajor>;

#define POLYGUARD_EIGEN_INSTANCES(KIND)             \
  POLYGUARD_EIGEN_GEMM_INSTANCES(KIND, double)      \
  POLYGUARD_EIGEN_GEMM_INSTANCES(KIND, float)       \
  KIND class Eigen::JacobiSVD<Eigen::MatrixXd>;     \
  KIND class Eigen::HouseholderQR<Eigen::MatrixXd>; \
  KIND class Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>;

#endif  // POLYGUARD_LIB_BASE_EIGEN_INSTANCES_H_
