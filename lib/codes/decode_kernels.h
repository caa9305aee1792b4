// Kernels shared by the decoders (errors_and_erasures_decoder.cc for
// evaluation codes, linear_code_decoder.cc for any real MDS generator):
// tolerances, the one-pass combination of results, and small helpers.
// Private to lib/.
#ifndef POLYGUARD_LIB_CODES_DECODE_KERNELS_H_
#define POLYGUARD_LIB_CODES_DECODE_KERNELS_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "polyguard/base/matrix.h"
#include "polyguard/base/status.h"

namespace polyguard::internal {

// Results this large are treated as wrong outright: no product of sane data
// gets there, and squaring them would overflow.
constexpr double kHuge = 1e150;

using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// "1, 4, 7" after sorting.
std::string PeerList(const std::vector<int>& peers);
double Median(std::vector<double> v);
// Per-entry tolerances: tol * (rms + |entry across peers| / sqrt(R)), for
// results yt (L x R). An error inflates its own entry's tolerance only by the
// factor tol; all-zero entries (padding) get DBL_MIN.
Vector EntryTolerances(const Matrix& yt, double tol);
// out (length x m.cols(), col-major) = [cols] * m, in one pass over the
// results: cols[r] points at `length` numbers.
void FusedProduct(const std::vector<const double*>& cols, int64_t length,
                  const RowMajorMatrix& m, Matrix* out);
// The same product through GEMM on row chunks of the results, each copied
// into a small contiguous block first (faster than FusedProduct when m has
// many columns), handed chunk by chunk to `visit` (rows l0.. of the product)
// instead of being stored: the caller keeps what it needs where it needs it.
// Stops early, returning false, when visit returns false.
bool ChunkedProduct(const std::vector<const double*>& cols, int64_t length,
                    const RowMajorMatrix& m,
                    const std::function<bool(int64_t l0, const Matrix& chunk)>& visit);
// The RMS magnitude of the results, estimated from evenly spaced runs of each
// (median over peers).
double SampledRms(const std::vector<const double*>& cols, int64_t length);
uint64_t MaskOf(const std::vector<int>& peers);
// For each of num_peers peers, the position of its result in `peers` (-1
// when it did not answer). InvalidArgument names an unknown or repeated
// peer; Unavailable when fewer than `threshold` answered.
StatusOr<std::vector<int>> IndexPeers(std::span<const int> peers, int num_peers, int threshold);
// The subspace locator (codes.md §3): given the syndrome rows of the dirty
// entries (each scaled by its tolerance; dirty x parity rows) and the
// orthonormal parity check (parity rows x peers * rows_per_peer), the
// positions of the peers whose parity columns lie in the syndrome's span.
// Wrong peers sit in the span up to roundoff; honest ones can come close to
// it (at R - K - 1 errors the span is a hyperplane), so the closest are taken
// only when clearly separated from the rest, and otherwise only peers in the
// span beyond doubt. Empty when the errors are not separable this way.
std::vector<int> LocateBySpan(Matrix dirty_syndrome, const Matrix& parity, int rows_per_peer);
Matrix SelectColumns(const Matrix& m, const std::vector<int>& cols);

}  // namespace polyguard::internal

#endif  // POLYGUARD_LIB_CODES_DECODE_KERNELS_H_
