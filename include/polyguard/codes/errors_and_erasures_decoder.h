// The errors-and-erasures decoder of every evaluation code (docs/codes.md §3.3).
//
// The R results that arrived form Y = V C + E: V is the R x K generator
// restricted to the answering peers, C the K coefficient blocks (each
// flattened to length L) and E is nonzero only for wrong peers. Peers that did
// not answer are erasures.
//
// The guarantee, with R results that arrived and recovery threshold K
// (docs: README "What a verified decode guarantees"):
//   (a) At most t = floor((R - K)/2) wrong results in every entry, with
//       any values (identical, proportional, huge beside tiny, NaN, Inf):
//       verified, the product within deviation_bound of the exact one,
//       whichever peers are named. Different entries may have different
//       wrong peers (every peer may be wrong somewhere). Where the points
//       crowd (the ends of Chebyshev points), errors at t peers can be
//       explained by other peers to within roundoff or the values' own
//       noise, and no decoder can tell which: the peers named may then be
//       honest, and deviation_bound covers what that moves the product by
//       (computed from the points' geometry, stragglers counted as left
//       out, lib/codes/
//       mislocation.h; below).
//   (b) At most R - K - 1 wrong results whose errors are generic (drawn
//       from a continuous distribution, e.g. dense errors of a corrupted
//       product) and spread over enough entries that their syndromes span
//       the wrong peers' parity columns (at least as many erroneous entries
//       as wrong peers): the exact product, verified. More than t wrong
//       values confined to fewer entries than wrong peers (one entry, say)
//       may instead give DataLoss (adversary s23: 1,859 of 2,868 such
//       decodes; never a wrong product verified).
//   (c) Anything else: DataLoss naming the suspects, or the exact product —
//       never a wrong product marked verified, except for error patterns that
//       put the received word at least as close to another code word (a
//       result with a NaN, an Inf or an absurd value counts as an erasure,
//       half an error, when the rest decode within 2 errors + erasures <=
//       R - K; Decode and DecodeReference alike):
//       R - K + 1 wrong results whose errors are themselves a code word (zero
//       at the K - 1 other peers; the received word IS another code word, so
//       no decoder can see it), or, in one entry, ceil((R - K)/2) + 1 wrong
//       values placed within floor((R - K)/2) of another code word (the
//       smallest pattern that defeats any decoder correcting floor((R-K)/2)).
//   (d) With exactly R = K results nothing is checked: verified = false.
// Generic errors within about 10^4 of the tolerance can make some of their
// entries pass as roundoff and others not; locating them then fails in a
// few percent of decodes (DataLoss; measured by `polyguard-experiment
// soak`). Smaller errors can pass as roundoff or be put on other peers:
// the checks cannot tell errors at t peers from errors at others when the
// difference of the two patterns is nearly a code word, which at the ends
// of Chebyshev points it can be at thousands of tolerances (P = 16, K = 12)
// and at any size (P = 40, K = 32: errors at 4 edge peers that 2 others
// explain to 1e-9 of the tolerance), and with noise in the data more so
// (adversary s17: mimicking patterns up to 1e4 tolerances hid in noise of
// 0.03 of the tolerance). Under (a) such a decode is verified with the
// product within deviation_bound, which covers that geometry (before
// 2026-12-06 it did not: the adversaries found products 1.5 to 6,400 times
// the former bound off, each now within the bound by its construction:
// tests/codes/mislocation_test.cc tries edge patterns from 1 to 1e12
// tolerances). Where the data allow, the decoder still names the true
// peers: identical or proportional errors in whole results (their syndromes
// span fewer dimensions than there are wrong peers) by the set of peers
// whose parity columns span every syndrome to roundoff, which no other set
// comes within 20 times of (3,000 such patterns at t peers, P 8 to 24, up
// to 3 stragglers, from 300 tolerances: all named exactly); errors at t
// peers scaled to mimic the honest peer between them, in exact data, by
// measuring roundoff on the decode itself (an entry whose fit leaves more
// than 8 times the consistent entries' is searched again, and rows the
// peeled peers do not explain to the rows' own noise are corrected entry
// by entry; docs/codes.md §3.3). A result with a NaN, an Inf or an absurd
// value set aside whole lowers t in every entry: when the others' decode
// corrected something it must agree with the full decode (which takes such
// values as wrong values of their entries), else DataLoss (adversaries s17
// and s18). Each inconsistent entry is first put to an error locator
// (Berlekamp-Welch in the Chebyshev basis; docs/codes.md §3.3): t errors
// per entry at peers of its own (4,096 entries, P 20 to 24), identical
// errors at 6 of 24 peers and two magnitudes of errors at P = 24, K = 18
// take 0.2-0.9 s. Left, as DataLoss after the budget (5 to 20 s):
// identical errors at 4 edge peers of P = 31, K = 23, and whole-result
// errors at t peers with noise of 0.04 of the tolerance on every value.
// A straggler set can leave a peer barely checked (P = 24, K = 8 with 12
// answering: its parity column's norm about 2e-5): an error there below
// the tolerance over that norm cannot be seen by any decoder, and
// deviation_bound covers what it moves the product by.
//
// Float32 results (ProductCode::precision; base/precision.h): the
// tolerance becomes 3 rho, rho = u sqrt(inner) with u = 2^-24, and the
// guarantee above holds with "exact" read as "within float32 roundoff":
// fault-free decodes name no peer (float32 roundoff of the results measured
// within 0.7 rho of the exact code word; none named in 10^6 decodes with
// stragglers of each of Generalized PolyDot P = 8, m = n = 2 and rotation
// points P = 20, K = 16), errors in every wrong entry are located as in
// (a)-(c) from 50 rho (that Generalized PolyDot) and from 200 rho (those
// rotation points; an error in a single entry can still be put on another
// peer up to about 370 rho, 3 of 300 decodes at R = K + 3, and up to about
// 1,600 rho at R = K + 2, where two peers' parity columns can be nearly
// parallel: one_spare_correction), and a verified product's largest deviation was
// measured at 63 rho of the product's RMS when errors were located, and up
// to about 700 rho when a smaller error was absorbed (1e-3 of the product
// at inner 2048: the window above, in float32 units). Measured, not
// proven (`polyguard-experiment codes --precision float32`,
// `polyguard-experiment soak --precision float32`, and the failure
// experiment's float32 row). That deviation is relative to the code word:
// DecodeOutcome::deviation_bound reports it per decode, and a product whose
// code word is much larger than itself (Generalized PolyDot's cross
// products with unbalanced inner blocks) can be far off in float32 while
// verified; CodedProduct recomputes those in float64 (docs/codes.md §3.7),
// and those corrected with a single spare result
// (DecodeOutcome::one_spare_correction).
//
// Roundoff: a value is accepted in entry l when it is within cs_l = tol (g +
// e_l) of the decoded code word, e_l the largest |code word value| of entry l
// over the answering peers and g the RMS of e over entries: scales taken from
// the decoded code word, which no wrong value can raise without showing as a
// deviation of the honest results far above tol times itself. Errors below
// cs_l are roundoff by definition; they move a decoded coefficient by at most
// cs_l times the norm of the decode's row (the pseudo-inverse of the
// agreeing peers' generator rows: about the code's condition number,
// evaluation_points.h).
//
// How: an orthonormal parity check H (H V = 0) gives the syndrome S = H Y =
// H E. First the subspace test: peers whose column of H lies in the span of
// the inconsistent entries' syndrome are set aside (peeled), or the one set
// of at most t peers whose columns span it (when no column does, or a
// single honest column comes close to errors at two others), and
// the rest re-checked, with tolerances from the results still kept (a
// robust scale: the (t + 1)-th largest magnitude of each entry, t =
// floor((R - K)/2)). Entries still inconsistent are corrected one by one:
// a set of at most t values whose removal leaves the rest within roundoff
// (DecoderOptions::clean_fit of the tolerance) of their own code word (a
// greedy set first, then exhaustively), else the smallest set within the
// tolerance (the best fit among those), with the peeled peers as erasures
// or, failing that, as ordinary results. A final
// check compares every result with the decoded code word at that code
// word's scale: at least K + 1 must agree in every entry. If locating whole
// peers went astray, the decode is redone entry by entry from scratch.
// Everything is in a Chebyshev basis of the code space (well conditioned
// where the monomial basis is not).
//
// Cost: without errors, one pass over the R results computing the R - K
// parity combinations and the |wanted| outputs (the exact parity check, so no
// error on at most R - K peers can hide in it); with errors add (R - K) x R x
// L for the syndrome, the final check (K x R x L), and per inconsistent entry
// at most 8,192 least-squares fits of K unknowns, DecoderOptions::max_fits
// in all per decode (2^20: about a second at K up to 16, up to 5 s of CPU
// measured at R = 24 to 32 on a loaded machine): a decode that would need
// more returns DataLoss ("spent its budget"), which a trainer recomputes.
// When the closest peers do not explain the syndromes, every set of up to
// t peers is tried once per locate, if there are at most 32,768 (about 60
// ms). Each inconsistent entry first costs the error locator up to t SVDs
// of R x (K + 2t + 1) (at P = 20, K = 14 about 20 fits' worth).
// Decode plans (parity checks, pseudo-inverses) are cached per set of
// answering peers.
//
// Thread safety: Decode is const and may be called from several threads at
// once; the plan cache is guarded by a mutex.
#ifndef POLYGUARD_CODES_ERRORS_AND_ERASURES_DECODER_H_
#define POLYGUARD_CODES_ERRORS_AND_ERASURES_DECODER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "polyguard/base/matrix.h"
#include "polyguard/base/peer_set.h"
#include "polyguard/base/precision.h"
#include "polyguard/base/status.h"

namespace polyguard {

namespace internal {
class MislocationGains;  // lib/codes/mislocation.h
}  // namespace internal

struct DecoderOptions {
  // Relative tolerance. A value disagrees with the decoded code word when its
  // deviation exceeds tolerance x (that entry's largest code word magnitude +
  // the RMS of those over entries); see the header comment. Default 2^15
  // machine epsilons (about 7e-12): a thousand times the roundoff of the
  // products and encodings that make the results.
  double tolerance = kFloat64Tolerance;
  // Fall back to the per-entry decode when the subspace locator cannot
  // isolate the errors. Default true.
  bool entry_fallback = true;
  // Number of decode plans (one per set of answering peers) kept. Default 4096.
  int cache_capacity = 4096;
  // Least-squares fits the entry-by-entry search may try in one decode, over
  // all its entries: the bound on the error path's cost (2^20 by default,
  // about a second for fits of up to about 16 unknowns; a fit costs about
  // rows x unknowns^2, so rotation points at K = 16, 64 unknowns in 128
  // rows, took up to a minute). A decode that would need more is DataLoss
  // ("spent its budget"), which a trainer recomputes. Positive.
  int64_t max_fits = int64_t{1} << 20;
  // The share of the tolerance honest roundoff can take in the fit of a
  // corrected entry, in (0, 1]. The entry-by-entry search ends at the first
  // set of suspects whose removal leaves the rest this close to their code
  // word; a set that leaves them only within the tolerance may be the wrong
  // one where the code is ill-conditioned, so the search goes on and takes
  // the best fit. Default 0.05 (float64 results' roundoff is about 1e-3 of
  // the default tolerance); float32 codes 0.5 (theirs reaches about 0.25).
  // Smaller only costs fits.
  double clean_fit = 0.05;
};

struct DecodeOutcome {
  // L x |wanted|: column w is the wanted coefficient `wanted[w]`, flattened.
  Matrix coefficients;
  // Sorted ids of the peers whose results disagree with the decoded code word.
  std::vector<int> wrong_peers;
  // True when at least K + 1 results agree with the decoded code word in
  // every entry (the guarantee in the header comment).
  bool verified = false;
  // The decode's resolution: how far (RMS over entries) a coefficient can
  // be from the exact one while every result kept is within the tolerance
  // of the code word: tolerance x (g + s) x max_w ||row w of the kept
  // peers' decode||_1, g the results' RMS and s the RMS over entries of each
  // entry's 2-norm over the results (after a correction, 2 g with g the
  // code word's scale of the final check). Every value is read (no sample).
  // When larger, the gain is instead that of one error the checks cannot
  // see: max_w max_j |decode(w, j)| / ||h_j|| (||h_j||^2 after a
  // correction), h_j peer j's column of the parity check, small for a peer
  // that a straggler set leaves barely checked. And it covers up to t
  // wrong results that the checks cannot see or cannot tell from the ones
  // named (the guarantee's (a)): the gain is at least 2 max_w ||row w of
  // the decode from the results left without t peers||_1 (the worst t;
  // with the s_l values named wrong in entry l, without s_l + t, unless
  // they are too far off for an honest value among them), per unit of
  // tolerance, entry by entry (lib/codes/mislocation.h). That is what
  // crowded points cost, against the plain gain, for Chebyshev points and
  // every peer answering: 2.5 to 4 times at P = 8 to 20 (K = P - 4 and P
  // = 8, K = 5), up to 30 at P = 24 to 28; after one value per entry is
  // corrected 5 to 90 times; after t, 5 at P = 8 and 100 to 4e6 at P = 12
  // to 40 (rotation points, P = 20, K = 16: 5.5 without corrections). The
  // product is then really that uncertain: errors at 4 edge peers of P =
  // 40, K = 32 that 2 other peers explain to 1e-9 of the tolerance named
  // those 2, the product 3,800 times the former bound off (adversary s18).
  // Deviations below the tolerance are roundoff by definition, so nothing
  // smaller than this is guaranteed; it is small beside the coefficients
  // when the code word is of their size, and large when the results hold
  // much larger terms that the wanted coefficients do not (Generalized
  // PolyDot's cross products; polydot_code.h). Errors located and removed
  // do not count.
  double deviation_bound = 0.0;
  // The part of deviation_bound that assumes every result kept is right
  // (the plain and hidden gains above, without the t results the checks
  // cannot see or tell apart): what roundoff alone moves the product by.
  // At most deviation_bound. Resolves() (product_code.h) compares this.
  double roundoff_bound = 0.0;
  // True when some entry was corrected with a single result to spare: at
  // most K + 1 results agree there with the decoded code word, so its check
  // has one degree of freedom. Results wrong at one more peer than were
  // corrected, with errors that (nearly) line up with the corrected ones,
  // pass such a check: identical or proportional errors at R - K peers
  // whose parity columns happen to sum close to another peer's, or, for two
  // generic errors in one entry, a chance that falls like tol / |error|
  // (Generalized PolyDot's transpose at R - K = 2: 150 of 2,000 decodes
  // verified at 1,000 tolerances, 3 at 33,000; the rest DataLoss). The
  // decode is then verified but off by about the errors' size, beyond
  // deviation_bound. In float32 Resolves() (product_code.h) counts no such
  // product as resolved, and CodedProduct computes it again in float64; in
  // float64 the errors that can pass are 2^29 times smaller (one entry moved
  // by at most 2e-6 of the product's RMS, measured). With two or more
  // results to spare the same needs two coincidences (a chance of about
  // (tol / |error|)^2).
  bool one_spare_correction = false;
};

class ErrorsAndErasuresDecoder {
 public:
  // points: the P evaluation points (distinct, in [-1, 1]); generator: P x K,
  // row r gives how peer r's result combines the K coefficients (its column
  // space must be that of polynomials of degree < K at the points: monomial
  // or systematic Vandermonde); wanted: which coefficients Decode returns.
  static StatusOr<std::unique_ptr<ErrorsAndErasuresDecoder>> Create(std::vector<double> points,
                                                                    Matrix generator,
                                                                    std::vector<int> wanted,
                                                                    DecoderOptions options = {});

  // results: L x R, column j is the flattened result of peer `peers[j]`.
  // Errors: InvalidArgument (unknown or duplicated peer, size mismatch),
  // Unavailable (fewer than K results), DataLoss (more errors than can be
  // corrected; the message names the suspect peers).
  // scale_floor: the roundoff scale the peers declared for their results
  // (RoundoffFloor over PeerResult::roundoff_scale, product_code.h), 0 for
  // none. Every check's global scale is at least this floor (a non-finite
  // one counts as none): cancelling data (results far
  // smaller than the sums that made them) has honest roundoff at the floor's
  // scale, not at the results'. The resolution (deviation_bound) grows with it.
  StatusOr<DecodeOutcome> Decode(std::span<const int> peers, const MatrixRef& results,
                                 double scale_floor = 0.0) const;

  // The same, without copying: columns[j] points at the `length` numbers of
  // peer peers[j]'s result (e.g. a result matrix's data()). The error-free
  // case reads every result once.
  StatusOr<DecodeOutcome> Decode(std::span<const int> peers, std::span<const double* const> columns,
                                 int64_t length, double scale_floor = 0.0) const;

  // The reference decode: the full errors-and-erasures decode of the header
  // comment, without Decode's one-pass error-free path. Decode must return
  // what this returns (the same verified flag and wrong peers, coefficients
  // to roundoff); tests diff the two. Cost: the "with errors" cost above.
  StatusOr<DecodeOutcome> DecodeReference(std::span<const int> peers, const MatrixRef& results,
                                          double scale_floor = 0.0) const;

  int num_peers() const { return static_cast<int>(points_.size()); }
  int recovery_threshold() const { return static_cast<int>(generator_.cols()); }
  const std::vector<int>& wanted() const { return wanted_; }
  const std::vector<double>& points() const { return points_; }
  const DecoderOptions& options() const { return options_; }

  struct Plan;  // per set of kept peers; defined in the .cc

  ~ErrorsAndErasuresDecoder();

 private:
  ErrorsAndErasuresDecoder(std::vector<double> points, Matrix generator, std::vector<int> wanted,
                           DecoderOptions options);
  std::shared_ptr<const Plan> GetPlan(const PeerSet& kept) const;
  // One decode of the answering peers' results (L x R, peer order; `work`
  // with non-finite values zeroed), with the subspace locator or entry by
  // entry only.
  // The reference decode of `original` (L x R, column i from peer answered[i],
  // ascending), which it scales in place.
  StatusOr<DecodeOutcome> DecodeOwned(const std::vector<int>& answered, Matrix original,
                                      double scale_floor) const;
  // Its entry search spends *budget, shared with the other attempt. The
  // floor is in the scaled results' units.
  StatusOr<DecodeOutcome> Attempt(const std::vector<int>& answered, const Matrix& original,
                                  const Matrix& work, bool locate, double floor,
                                  int64_t* budget) const;
  // The fast path's error case, when the errors are in whole peers: locates
  // them from the syndromes of a few inconsistent entries (`dirty`: entry
  // and tolerance), then decodes from the rest in one more pass, which must
  // pass the fast check, and names the set-aside peers off the code word. Nothing when the errors
  // are not of that kind (the full decode then runs).
  std::optional<DecodeOutcome> DecodeWithoutLocated(
      const std::vector<int>& peers, const std::vector<const double*>& cols, int64_t length,
      const Plan& plan, const std::vector<std::pair<int64_t, double>>& dirty,
      double scale_floor) const;
  // Checks peers (known, distinct, one per column, at least K); returns the
  // column of each peer (-1 when it did not answer).
  StatusOr<std::vector<int>> IndexPeers(std::span<const int> peers, size_t columns) const;

  std::vector<double> points_;
  Matrix generator_;
  Matrix chebyshev_;  // P x K Chebyshev basis at the points
  std::vector<int> wanted_;
  DecoderOptions options_;
  // What results the checks cannot see or tell from the ones named can move
  // the product by (DecodeOutcome::deviation_bound), over every peer.
  std::unique_ptr<internal::MislocationGains> mislocation_;
  mutable std::mutex mu_;
  mutable std::unordered_map<PeerSet, std::shared_ptr<const Plan>, PeerSetHash> cache_;
};

// Formats peer ids as "1, 4, 7" for messages.
std::string FormatPeers(std::span<const int> peers);

}  // namespace polyguard

#endif  // POLYGUARD_CODES_ERRORS_AND_ERASURES_DECODER_H_
