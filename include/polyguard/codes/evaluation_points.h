// Evaluation points of the polynomial (evaluation) codes, and basis matrices.
//
// Every coded result a peer returns is a matrix polynomial evaluated at the
// peer's point a_r. Which points are used decides the conditioning of the
// decode (docs/codes.md §4). Points are an option of each code, not a new type.
//
// Numerical safety: worst-case condition number of the monomial basis over
// every choice of exactly K answering peers (WorstCaseConditionNumber; the
// test EvaluationPointsSafety checks the P = 16 and P = 20 rows):
//     P   K   Chebyshev   equispaced
//     8   5   3.4e2       3.2e2
//    12   8   1.7e4       2.3e4
//    16   9   2.0e6       9.7e5
//    16  11   8.2e5       1.7e6
//    20  15   2.1e7       1.2e8
//    24   8   1.2e9       2.5e7
//    24  12   1.6e10      1.7e9
// The decode's relative error is about cond x 1e-16, so decoding from exactly
// K results is safe (<= ~1e-10) for P <= 16; at P = 20 to 24 it is safe when
// a few more than K results arrive (least squares over R > K rows is far
// better conditioned than the worst square subset) and loses digits when
// only K clustered peers answer. Chebyshev nodes crowd at +-1, which hurts at
// large P and small K; equispaced points are then the better choice.
// The errors-and-erasures decoder locates errors in a well-conditioned
// (Chebyshev-polynomial) basis, so *locating* wrong peers does not depend on
// these numbers; only the accuracy of the returned product does.
//
// A rotation-matrix embedding (unit-circle points acting on pairs of blocks,
// docs/codes.md §4) is the stable option for P of 20 to 32; it will join PointKind.
#ifndef POLYGUARD_CODES_EVALUATION_POINTS_H_
#define POLYGUARD_CODES_EVALUATION_POINTS_H_

#include <string_view>
#include <vector>

#include "polyguard/base/matrix.h"
#include "polyguard/base/status.h"

namespace polyguard {

enum class PointKind {
  kChebyshev,   // a_r = cos((2r + 1) pi / (2P)), first-kind Chebyshev nodes
  kEquispaced,  // a_r = -1 + 2r / (P - 1) (a_0 = 0 when P = 1)
  // Unit-circle points e^(2 pi i r / q) embedded as 2 x 2 rotations acting on
  // pairs of blocks (rotation_code.h): no real points. Only the Polynomial
  // code takes it; codes built on real points refuse it.
  kRotation,
};

std::string_view PointKindName(PointKind kind);
StatusOr<PointKind> ParsePointKind(std::string_view name);

// P distinct points in [-1, 1]. P must be at least 1.
std::vector<double> MakeEvaluationPoints(PointKind kind, int peers);

// P x K matrix with entry (r, e) = a_r^e.
Matrix MonomialBasis(const std::vector<double>& points, int k);

// P x K matrix with entry (r, e) = T_e(a_r), the Chebyshev polynomials: the
// same column space as MonomialBasis, far better conditioned on [-1, 1].
Matrix ChebyshevBasis(const std::vector<double>& points, int k);

// 2-norm condition number of a matrix (ratio of extreme singular values).
double ConditionNumber(const MatrixRef& m);

// Worst-case condition number of MonomialBasis rows over every K-subset of
// the P points (exhaustive; use for P <= 24).
double WorstCaseConditionNumber(const std::vector<double>& points, int k);

}  // namespace polyguard

#endif  // POLYGUARD_CODES_EVALUATION_POINTS_H_
