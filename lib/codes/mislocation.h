// The resolution of a decode whose located values may not be the wrong ones
// (DecodeOutcome::deviation_bound; docs/codes.md §3.6).
//
// Under the guarantee's (a) at most t of an entry's R values are wrong. A
// decode whose code word agrees with all but `off` of them within the
// entry's tolerance cs may still have put the errors on honest peers: the
// exact and the decoded code word then differ by a code word that is within
// 2 cs of zero at every peer outside the t wrong ones and the off ones.
// Where the points crowd (the ends of Chebyshev points) such a code word can
// be large at the left-out peers and in its coefficients while the checks
// see nothing: errors at t edge peers that other peers explain to roundoff
// (adversary s18: 3,800 times the old bound at P = 40, K = 32). The bound
// below is what the geometry allows, computed once per decoder over every peer,
// so that a verified product is within deviation_bound under (a) whatever
// the errors' values, instead of a measured window of exceptions.
#ifndef POLYGUARD_LIB_CODES_MISLOCATION_H_
#define POLYGUARD_LIB_CODES_MISLOCATION_H_

#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "polyguard/base/matrix.h"

namespace polyguard::internal {

// What two code words within d of each other at all but `drop` of R peers
// can differ by, per unit of d: in a wanted coefficient (`decode`: max_w
// ||row w of the least-squares decode from the rest||_1) and at the
// left-out peers (`reach`: max over their rows of ||that row of the rest's
// code word||_1).
struct DropGains {
  double decode = 0.0;
  double reach = 0.0;
};

// rows: (R g) x K, the generator rows of the R peers, g per peer, in an
// order where neighbours are alike (evaluation points sorted; a circle's
// points in turn); wanted: the coefficients returned (empty: all K). The
// largest of each gain over every set of `drop` peers when there are at
// most kExhaustiveDropSets. Else a search: the sets that are worst for
// points on a line or a circle (every split of `drop` between the two ends,
// a circle's runs across its end, and every run of neighbours), then up to
// 8 moves of one left-out peer to a neighbouring position while one makes
// the gain worse, times kSearchMargin: the worst set can lie elsewhere
// (beside a straggler subset's gaps the search came within 5% of it; 0.6%
// in 286 random subsets; mislocation_test compares it with every set).
// Infinite when the rest do not determine the coefficients. Cost: one QR of
// ((R - drop) g) x K per set: up to 256 sets, or R + 1 and 2 drop per move.
inline constexpr int64_t kExhaustiveDropSets = 256;
inline constexpr double kSearchMargin = 2.0;
DropGains GainsWithout(const Matrix& rows, int rows_per_peer, const std::vector<int>& wanted,
                       int drop);

// GainsWithout of a code's P peers (every one, in the order above), each
// drop computed when first asked: a decoder keeps one. A decode from R of
// them counts the P - R missing as left out too: the worst sets of the full
// point set bound those of every subset (the sets left are subsets of the
// full set's), so one table serves every straggler set, at the price of a
// looser bound when the stragglers are not where crowding hurts. Thread-safe
// after Set.
class MislocationGains {
 public:
  // Once, while the decoder is built.
  void Set(Matrix rows, int rows_per_peer, std::vector<int> wanted) {
    rows_ = std::move(rows);
    rows_per_peer_ = rows_per_peer;
    wanted_ = std::move(wanted);
  }
  DropGains operator()(int drop) const;

  // What entry l's decode can be off by in a wanted coefficient, per unit
  // of its tolerance cs, when at most t of its values are wrong, `missing`
  // of the P peers did not answer, and `off` values disagree with the
  // decoded code word, the least of them by `smallest`: 2 decode(missing +
  // t) when the off values must be among the wrong ones, else 2
  // decode(missing + min(off, t) + t). They must when the smallest exceeds
  // cs (1 + 2 reach(missing + min(off, t) + t)): an honest one among them
  // would be that far from the decoded code word, farther than a code word
  // within 2 cs of it at the rest can reach. More than t off is beyond (a):
  // generic errors of (b), whose located set is right. 0 when t = 0 (R = K
  // + 1: the plain resolution stands).
  double EntryGain(int t, int missing, int off, double smallest, double cs) const {
    const OffGains g = ForOff(t, missing, off);
    return smallest > cs * g.threshold ? g.located : g.mislocated;
  }
  // EntryGain's outcomes for a number of off values, for loops over many
  // entries: `located` when smallest > cs x threshold, else `mislocated`.
  struct OffGains {
    double located = 0.0, mislocated = 0.0, threshold = 0.0;
  };
  OffGains ForOff(int t, int missing, int off) const;

 private:
  Matrix rows_;
  int rows_per_peer_ = 1;
  std::vector<int> wanted_;
  mutable std::mutex mu_;
  mutable std::vector<std::pair<bool, DropGains>> gains_;  // by drop: computed, gains
};

// EntryGain over the entries of one decode (t and missing fixed), the
// gains of each count of off values computed once.
class EntryGains {
 public:
  EntryGains(const MislocationGains& gains, int t, int missing)
      : gains_(gains), t_(t), missing_(missing) {}
  double operator()(int off, double smallest, double cs) {
    const size_t i = static_cast<size_t>(off);
    if (by_off_.size() <= i) by_off_.resize(i + 1);
    if (!by_off_[i].first) by_off_[i] = {true, gains_.ForOff(t_, missing_, off)};
    const MislocationGains::OffGains& g = by_off_[i].second;
    return smallest > cs * g.threshold ? g.located : g.mislocated;
  }

 private:
  const MislocationGains& gains_;
  int t_, missing_;
  std::vector<std::pair<bool, MislocationGains::OffGains>> by_off_;  // computed, gains
};

// What a decode that passed its final check can be off by, RMS over
// entries: entry l's tolerance cs(l) times its EntryGain, with
// kept_off[l] + aside_off[l] values off, the least of them by smallest(l).
double MislocationBound(const MislocationGains& gains, int t, int missing, const Vector& cs,
                        const std::vector<int>& kept_off, const std::vector<int>& aside_off,
                        const Vector& smallest);

}  // namespace polyguard::internal

#endif  // POLYGUARD_LIB_CODES_MISLOCATION_H_
