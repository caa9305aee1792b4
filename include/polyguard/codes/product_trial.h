// A coded product computed the way the peers compute it (each peer encodes
// its shard and input piece and multiplies them), for trials, experiments
// and tests that then make some results wrong and decode. Errors are scaled
// to the typical result, so that "an error of magnitude 1" means the same
// thing for every code and shape.
//
// Thread safety: free functions. Cost: one encode and peer product per peer.
#ifndef POLYGUARD_CODES_PRODUCT_TRIAL_H_
#define POLYGUARD_CODES_PRODUCT_TRIAL_H_

#include <span>
#include <vector>

#include "polyguard/codes/product_code.h"

namespace polyguard {

struct CleanProduct {
  Matrix expected;                  // A * B
  std::vector<PeerResult> results;  // in the order of the peers asked for
  double scale = 1.0;               // TypicalResultScale(results)
};

// The results of `peers` (every peer when empty) for A * B. The code's
// errors (shapes, peer ids) pass through.
StatusOr<CleanProduct> ComputeCleanProduct(const ProductCode& code, const MatrixRef& a,
                                           const MatrixRef& b, std::span<const int> peers = {});

// The median RMS of the results (1 for none). The median, not the mean,
// since some peers' results are nearly zero (a point near 0 where only
// padding remains) and one huge wrong result must not set the scale. It is 0
// when most results are zero: ApplySoftError then scales each error to the
// value it corrupts (or 1).
double TypicalResultScale(std::span<const PeerResult> results);

// The relative (Frobenius) error within which a trial counts a decoded
// product as the exact one: 1e-6 for float64 codes; for float32 codes 1,000
// roundoff levels of the product, 1e3 u sqrt(max(rows, inner)) with u =
// 2^-24 (2e-3 at 1024), still far below a wrong value that got through (the
// trials inject errors of 0.1 of the typical result and up).
double ExactProductTolerance(const ProductCode& code);

}  // namespace polyguard

#endif  // POLYGUARD_CODES_PRODUCT_TRIAL_H_
