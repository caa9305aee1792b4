// Soft errors: the ways a peer's numbers go silently wrong. The primitive the
// fault injector (and the trial tools) apply to a matrix.
//
// Thread safety: stateless; the Random passed in is not thread-safe.
#ifndef POLYGUARD_FAULT_SOFT_ERROR_H_
#define POLYGUARD_FAULT_SOFT_ERROR_H_

#include <string_view>

#include "polyguard/base/matrix.h"
#include "polyguard/base/random.h"
#include "polyguard/base/status.h"

namespace polyguard {

enum class SoftErrorKind {
  kDense,    // every entry += magnitude * scale * N(0, 1)
  kEntry,    // k entries += +-magnitude * scale * U(0.5, 1.5)
  kBitflip,  // k entries each have one of their high bits (40..62) flipped
  kNaN,      // k entries become NaN
  kInf,      // k entries become +Inf
};

std::string_view SoftErrorKindName(SoftErrorKind kind);
StatusOr<SoftErrorKind> ParseSoftErrorKind(std::string_view name);

// Applies one soft error to `value`. `scale` is the typical magnitude of the
// data (the error is relative to it; 0 means the RMS of `value`, or 1 if that
// is 0). `entry` picks the entry for the single-entry kinds (-1: random).
void ApplySoftError(Matrix* value, SoftErrorKind kind, double magnitude, Random* rng,
                    double scale = 0.0, Eigen::Index entry = -1);

// The same in `entries` distinct random entries (all of them for kDense).
void ApplySoftErrorToEntries(Matrix* value, SoftErrorKind kind, double magnitude, int entries,
                             Random* rng, double scale = 0.0);

}  // namespace polyguard

#endif  // POLYGUARD_FAULT_SOFT_ERROR_H_
