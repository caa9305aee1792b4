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
// The one-pass check squares values: results whose RMS is outside
// [kTinyScale, kHugeScale] go to the slow path, which scales them.
constexpr double kTinyScale = 1e-100;
constexpr double kHugeScale = 1e100;
// Sets of suspects tried per inconsistent entry by an exhaustive search.
constexpr int64_t kMaxSetsPerEntry = 4096;
// Inconsistent entries whose syndromes locate wrong peers on a decoder's fast
// path (DecodeWithoutLocated): errors in whole peers span their parity
// columns in any few of them.
constexpr size_t kLocateSample = 64;
// The binary exponent of the results' typical magnitude: the median over
// peers (g consecutive columns each: a result, or its blocks) of each peer's
// median nonzero finite |value|, from an even sample of about 4096 values
// (robust to fewer than half of the peers wrong, whatever they send, and to
// honest results that are mostly zero); 0 when there is none.
int TypicalExponent(const Matrix& m, int g = 1);
// The same over `cols` (each `length` numbers).
int TypicalExponent(const std::vector<const double*>& cols, int64_t length, int g = 1);

using RowMajorMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// "1, 4, 7" after sorting.
std::string PeerList(const std::vector<int>& peers);
double Median(std::vector<double> v);
// The lower of the two middle values for an even count (0 when empty).
double LowerMedian(std::vector<double> v);
// Per-entry tolerances from values no wrong result can inflate: for results
// yt (L x columns), e_l is the (skip + 1)-th largest |value| of entry l, so
// with at most `skip` wrong values in the entry it is at most an honest
// value's size; cs_l = tol * (RMS over entries of e + e_l). Given a decoded
// code word (skip = 0) the scale is that of the code word itself: a wrong
// value can raise it only by being in the code word, where it shows as a
// deviation of the honest results far above tol times itself. All-zero
// entries (padding) get DBL_MIN: any deviation there is an error. The values
// must be finite (the decoders pass results with non-finite ones zeroed).
// With a declared roundoff floor (ScaleWithFloor), the RMS term is at least
// that floor. Cost: (skip + 1) passes over yt for skip < 8, a selection per
// entry beyond.
Vector RobustTolerances(const Matrix& yt, double tol, int skip, double* global = nullptr,
                        double floor = 0.0);
// The syndromes `raw` (entries x checks) over each entry's tolerance cs, the
// locator's input. A row more than kLargeSyndrome tolerances in its largest
// value is cut to that size (its direction kept): the syndrome's own
// roundoff, about 1e-16 of it, is then still far below the share of a
// tolerance the locator takes as explained (DecoderOptions::clean_fit). An
// entry whose other values are all zero (a product of zeros beside a wrong
// result) has a tolerance of DBL_MIN: a wrong value came to 1e307
// tolerances or overflowed, the locator named nobody, and every entry was
// fitted on its own (0.7 s a decode at each peer in the bundled demo).
constexpr double kLargeSyndrome = 1e12;
Matrix SyndromesInTolerances(const Matrix& raw, const Vector& cs);
// The check's global scale given the results' own robust scale g and the
// peers' declared roundoff floor (PeerResult::roundoff_scale, taken by
// RoundoffFloor in product_code.h): the larger of the two, a non-finite floor
// counting as none. Cancelling data (results much smaller than the sums that
// made them) has honest roundoff far above g. Not capped relative to g: a
// cap of 1,024 g made cancellation beyond it name honest peers, verified
// (adversary s11, F4); RoundoffFloor already keeps fewer than half of the
// peers from raising the floor above 4 times an honest declaration.
double ScaleWithFloor(double g, double floor);
// The fast check's tolerance of entry l of results cols (one pointer per
// result column): tol (rms + the RMS over the columns of their values at l),
// at least DBL_MIN. Its RMS term is what a wrong value can move by only
// about tol times itself, where its own syndrome shows far more.
double EntryTolerance(const std::vector<const double*>& cols, int64_t l, double tol, double rms);
// Results split in two by peer: cols holds g columns per peer (peers[j]'s
// are g j .. g j + g - 1).
struct PeerSplit {
  std::vector<int> kept, aside;  // peer ids, in the order given
  std::vector<const double*> kept_cols, aside_cols;
  int finite_aside = 0;  // SplitUntame: peers set aside whose values are all finite
};
// The peers at the ascending positions `aside` of `peers` set aside.
PeerSplit SplitAt(const std::vector<int>& peers, const std::vector<const double*>& cols, int g,
                  const std::vector<int>& aside);
// The peers with a non-finite or absurdly large value (above kHuge times
// 2^TypicalExponent of the results) set aside: wrong outright. One pass over
// each result.
PeerSplit SplitUntame(const std::vector<int>& peers, const std::vector<const double*>& cols, int g,
                      int64_t length);
// Whether a decode of the tame results that named `wrong_kept` of them wrong
// may also name the untame ones wrong. A non-finite value is wrong outright
// (an erasure), but a finite absurd one may be the product's own (data
// spanning more than kHuge): those peers count as errors the code must have
// located itself, 2 (finite aside + wrong kept) + non-finite aside <= total -
// k. Beyond that a larger set of results may agree on another product (liars
// zeroing the huge entries of honest results outvoted them, adversary s10).
bool UntameWithinRadius(const PeerSplit& untame, size_t wrong_kept, int total, int k);
// Corrects one entry whose values y (one per basis row; a peer owns
// rows_per_peer consecutive rows) should be basis * c for some c: finds a set
// of at most t_max peers whose values, set aside, leave the rest within
// tolerance of their least-squares code word (tolerance as in
// RobustTolerances, from that code word: tol * (global + max |code word|)).
// Candidate sets: greedy (set aside the farthest from the rest's fit, t_max
// times), then every set by size while at most max_sets are tried, then
// random samples of just enough peers to fit (up to 2 max_sets; seeded by
// the values, so deterministic). The search ends at the first set whose fit
// leaves the rest within clean_share of the tolerance (honest roundoff stays
// below it). A set that passes only above that is a candidate, not the
// answer: where some code word is nearly zero at K peers and larger
// elsewhere, errors at t peers also fit within the tolerance with t other
// peers set aside (adversary s14: identical errors at two peers of P = 16,
// K = 12, up to 8,000 tolerances, put on two honest ones), and only the true
// set leaves nothing but roundoff. When no set is within clean_share, the
// candidate with the fewest peers set aside (the best fit among those) is
// taken, and no larger set is tried after one is found (without
// `candidates`, nothing but a clean fit is taken). On success y holds the
// code word's values at the set-aside peers, wrong gets those that deviate,
// and *taken_ratio the fit's largest residual over its tolerance. Every fit
// tried spends one of *budget (a whole decode's, shared by its entries, so
// that many inconsistent entries cannot make a decode take minutes); once it
// is spent, the best candidate so far or kNone.
enum class EntryFit {
  kNone,             // no set of at most t_max peers passes (y unchanged)
  kWithinTolerance,  // the best candidate, above clean_share
  kClean,            // within clean_share: the rest is roundoff
};
struct EntrySearch {
  // A decode's: tolerance and clean_share from its options, the global
  // scale of its kept results, up to max_sets sets per entry.
  static EntrySearch Of(double tol, double clean_share, double global, int64_t max_sets) {
    EntrySearch search;
    search.tol = tol;
    search.clean_share = clean_share;
    search.global = global;
    search.max_sets = max_sets;
    return search;
  }
  int t_max = 0;
  double tol = 0.0, global = 0.0;
  double clean_share = 0.05;
  bool candidates = true;
  int64_t max_sets = 4096;
  // Evaluation codes (one row per peer): the Chebyshev basis of degree
  // < K + t_max at the peers' points, for LocatorGuess after the greedy pass.
  const Matrix* locator_basis = nullptr;
  // Its guesses are taken within this share of the tolerance (and
  // clean_share): the decode's noise (CorrectEntries).
  double guess_share = 0.0;
};
// Berlekamp-Welch in the Chebyshev basis, for an evaluation code of K
// coefficients at the points whose Chebyshev basis of degree < K + t is
// `basis` (R x (K + t), R >= K + 2t): the d <= t peers where an error
// locator E of degree d vanishes, from the null vector of [T_(<K+d) |
// -y T_(<=d)] (Q = y E at every point), for the largest d whose null vector
// stands kLocatorGap times clear of the next singular vector. With d errors
// in exact arithmetic they are exactly the wrong peers; in floating point a
// guess, which the caller fits and checks like any other set. Without the
// gap no guess: two locators nearly fit (the errors near the noise, or a
// code so ill-conditioned that errors at 4 edge peers of P = 31, K = 23
// are explained to roundoff at 4 others, where a guess without the gap
// named those, verified, 460 times deviation_bound off). Up to t SVDs of
// R x (K + 2d + 1): at P = 20, K = 14 about as much as 20 fits, where every
// set of up to 3 peers is 1,351 (adversary s16: 3 errors per entry in 4,096
// entries spent a decode's budget of 2^20 fits, DataLoss after 4.4 s).
// Empty when y is not finite or zero.
inline constexpr double kLocatorGap = 100.0;
std::vector<int> LocatorGuess(const Matrix& basis, const Vector& y, int k, int t);
EntryFit CorrectEntry(const Matrix& basis, int rows_per_peer, Eigen::Ref<Vector> y,
                      const EntrySearch& search, int64_t* budget, std::vector<int>* wrong,
                      double* taken_ratio = nullptr);
// The inconsistent entries `rows` of a decode (out of `length`), each
// corrected on its own: read through each try in turn (a try is one way to
// see the entry: the peers kept with the set-aside ones as erasures, then
// every result), the first clean fit taken, else the first
// try's candidate (CorrectEntry, t_max = floor((peers of the try - K) / 2)).
// values(i, row) gives the entry's values in try i's rows, write(i, row, y)
// takes the corrected ones.
// Then a second look, where a clean fit is measured on the decode itself:
// clean_share is the tolerance's calibration for the worst honest roundoff,
// and errors at several peers can mimic one honest peer within it (adversary
// s16: errors at peers 0, 2, 3 of P = 20, K = 14 in the ratio that puts
// their syndrome within a sine of 3e-4 of peer 1's column fit with peer 1
// set aside to 0.007 of the tolerance at 300 tolerances, to 0.7 at 3e4, and
// were absorbed, the product 2,000 times deviation_bound off). The decode's
// noise is the lower median of up to kNoiseSamples consistent entries'
// residuals (nothing set aside) when there are a quarter of that many
// (errors cannot raise it: 36 mimicking entries of 4,096 made a median over
// corrected entries theirs, adversary s17), else of those and every
// corrected entry's fit; at least epsilon / tol, a fit's own roundoff. The
// error locator's guesses are taken within kEntrySeparation times it. An
// entry whose fit left more than kEntrySeparation times the noise is
// searched again, every result first (the peers peeled may be what made
// the first fit pass, and with them as erasures too few checks are left),
// for a set of up to t_max peers that leaves kEntrySeparation times less
// than the first fit (not "within the noise": the true set's fit carries
// the entry's own roundoff); the first found is taken instead (a superset
// of the true set fits so too, and is harmless: the honest values set aside
// move by roundoff). A decode whose entries all carry such a pattern has
// no noise to measure it by, and keeps the first fits, as does one whose
// budget is spent in the second look.
inline constexpr int kNoiseSamples = 32;
inline constexpr double kEntrySeparation = 8.0;
struct EntriesOutcome {
  enum Outcome { kCorrected, kBudgetSpent, kBeyond } outcome = kCorrected;
  int64_t done = 0;  // kBudgetSpent, kBeyond: the entries corrected before
  int64_t row = 0;   // kBeyond: the entry no set corrects
};
// One way to read an inconsistent entry (see CorrectEntries).
struct EntryTry {
  Matrix basis;    // rows_per_peer rows per peer of the try
  Matrix locator;  // evaluation codes: EntrySearch::locator_basis; else empty
};
EntriesOutcome CorrectEntries(const std::vector<EntryTry>& tries, int rows_per_peer, int k,
                              int64_t length, const std::vector<Eigen::Index>& rows,
                              const std::function<Vector(size_t, Eigen::Index)>& values,
                              const std::function<void(size_t, Eigen::Index, const Vector&)>& write,
                              EntrySearch search, int64_t* budget);
// The DataLoss of a decode whose entry search spent its budget (of
// DecoderOptions::max_fits fits).
Status BudgetSpentError(int64_t budget, int64_t entries_done, int64_t entries,
                        const std::vector<int>& suspects);
// The final check of a decode, given per entry how many of the `kept`
// results and of the `finite` - `kept` set aside disagree with the decoded
// code word: every entry needs either at most floor((kept - K)/2) kept ones
// off (the rest are erasures there) or at most floor((finite - K)/2) off in
// all. Either way at least K + 1 results agree in every entry. DataLoss
// naming the entry and the suspects otherwise. *one_spare: whether some
// entry with a disagreeing result has at most K + 1 agreeing
// (DecodeOutcome::one_spare_correction).
Status CheckAgreement(const std::vector<int>& kept_off, const std::vector<int>& aside_off, int kept,
                      int finite, int k, const std::vector<int>& suspects, bool* one_spare);
// Advances idx (ascending, size t, values < n) to the next combination.
bool NextCombination(std::vector<int>* idx, int n);
// C(n, k), saturated at the largest int64.
int64_t Binomial(int n, int k);
// out (length x m.cols(), col-major) = [cols] * m, in one pass over the
// results: cols[r] points at `length` numbers. With sumsq, also the sum of
// the squares of every result value (in the same pass).
void FusedProduct(const std::vector<const double*>& cols, int64_t length, const RowMajorMatrix& m,
                  Matrix* out, double* sumsq = nullptr);
// The fast path's check and decode in one pass over the results, for m =
// [probes | wanted] with at most kFusedCheckColumns columns in all: zsq(l) =
// the squared norm of the probe part of row l of [cols] * m, *wanted = the
// rest (length x (m.cols() - probes)), *sumsq = the sum of the squares of
// every result value. The probe part itself is not stored (CombineEntry
// gives it for an entry). False when some output is not finite (a NaN or
// Inf among the results reaches every output of its entry).
// With `rest`, *wanted gets only the first wanted_cols of those columns and
// *rest the others (a decode's coefficients then need no copy); with
// entry_sq, each entry's sum of squares over the results (entry_sq(l) = sum
// over r of cols[r][l]^2, EntryTolerance's sum), in the same pass.
constexpr int kFusedCheckColumns = 12;
bool FusedCheck(const std::vector<const double*>& cols, int64_t length, const RowMajorMatrix& m,
                int probes, Vector* zsq, Matrix* wanted, double* sumsq, int wanted_cols = -1,
                Matrix* rest = nullptr, Vector* entry_sq = nullptr);
// FusedCheck a chunk of kSetAsideChunk entries at a time, for m = [probes |
// wanted | rest] (zsq is 0 without probes): *wanted as FusedCheck's (its first
// wanted_cols columns), and for each chunk from l0 (n entries) `visit` gets
// the chunk's zsq, entry_sq and rest (rest column c at rest + c *
// rest_stride), read while they are in L1, never stored for the whole
// results. Stops, returning false, when visit returns false. No finiteness
// test: for results already known to be finite.
constexpr int64_t kSetAsideChunk = 256;
struct ChunkOfCheck {
  const double* zsq;
  const double* entry_sq;
  const double* rest;
  int64_t rest_stride;
};
bool FusedCheckChunks(
    const std::vector<const double*>& cols, int64_t length, const RowMajorMatrix& m, int probes,
    int wanted_cols, Matrix* wanted, double* sumsq,
    const std::function<bool(int64_t l0, int64_t n, const ChunkOfCheck& chunk)>& visit);
// One chunk (n <= kSetAsideChunk entries from l0) of a decode that set
// peers aside, from its check over `kept` kept results (FusedCheckChunks:
// the check's squared norms, each entry's sum of squares, and in rest the
// decoded code word at each set-aside peer). Entry l's tolerance is
// EntryTolerance's, cs[l - l0] = max(tol (rms + sqrt(entry_sq / kept)),
// DBL_MIN). False when some entry fails the kept check (zsq above both
// (tol rms)^2 and cs^2, or not finite, or its tolerance not finite). Else,
// for set-aside peer q with values given[q] (entry l at given[q][l]; the
// chunk's arrays and the outputs start at l0): a value is off when |given -
// word| exceeds max(tol rms, cs) (NaN is off); off[i] counts the off values
// of entry l0 + i, smallest[i] is the least off deviation (kHuge when none,
// or only NaN), wrong[q] is set when any value of q is off, and *word_sumsq
// gets the sum of the squares of the code word's values. Vectorised: a pass
// per peer over the chunk, which stays in L1.
bool CheckSetAsideChunk(const ChunkOfCheck& chunk, int kept, double tol, double rms, int64_t l0,
                        int64_t n, const std::vector<const double*>& given, double* cs,
                        int64_t* off, double* smallest, int* wrong, double* word_sumsq);
// Row l of [cols] * m, its first `count` columns.
Vector CombineEntry(const std::vector<const double*>& cols, int64_t l, const RowMajorMatrix& m,
                    int count);
// The same product through GEMM on row chunks of the results, each copied
// into a small contiguous block first (faster than FusedProduct when m has
// many columns), handed chunk by chunk to `visit` (rows l0.. of the product)
// instead of being stored: the caller keeps what it needs where it needs it.
// Stops early, returning false, when visit returns false. With sumsq, also
// the sum of the squares of the values read (every one unless stopped).
bool ChunkedProduct(const std::vector<const double*>& cols, int64_t length, const RowMajorMatrix& m,
                    const std::function<bool(int64_t l0, const Matrix& chunk)>& visit,
                    double* sumsq = nullptr);
// The RMS magnitude of the results, estimated from evenly spaced runs of each
// (median over peers).
double SampledRms(const std::vector<const double*>& cols, int64_t length);
// Whether every value of the results is exactly zero (a product of zeros:
// a layer takes its value as zero after a failed decode). The fast paths
// take such results only through this test, their sampled scale being 0.
bool AllZero(const std::vector<const double*>& cols, int64_t length);
// For each of num_peers peers, the position of its result in `peers` (-1
// when it did not answer). InvalidArgument names an unknown or repeated
// peer; Unavailable when fewer than `threshold` answered.
StatusOr<std::vector<int>> IndexPeers(std::span<const int> peers, int num_peers, int threshold);
// The subspace locator (docs/codes.md §3.1): given the syndrome rows of the dirty
// entries (each scaled by its tolerance; dirty x parity rows) and the
// orthonormal parity check (parity rows x peers * rows_per_peer), the
// positions of the peers whose parity columns lie in the syndrome's span.
// Wrong peers sit in the span up to roundoff; honest ones can come close to
// it (at R - K - 1 errors the span is a hyperplane), so the closest are taken
// only when clearly separated from the rest, and otherwise only peers in the
// span beyond doubt. Empty when the errors are not separable this way.
// When the errors are in more peers than their syndromes have dimensions
// (identical or proportional errors in whole results: the span then holds
// no wrong peer's column alone), or the closest peers may be a smaller set
// that explains them as well within the tolerance, LocateBySets decides.
// With one row per peer, the peers taken for being closest must also span
// most dirty rows to within clean_share (of the tolerance each row is
// scaled by: honest roundoff stays below it, DecoderOptions::clean_fit);
// else nobody is.
// *unexplained (when given) gets the rows the peers returned leave more than
// that: errors of other peers in single entries, or errors there that only
// mimic a returned peer's column (adversary s16: peeling that peer made the
// entry consistent with errors at t others in it): the caller corrects them
// entry by entry whether or not they look consistent after the peel.
// own_share (when given, one per row, from OwnShares): the part of each row's
// tolerance its own entry's magnitude makes, which honest roundoff follows;
// rows' noise is compared in those units (SpanMostRows).
std::vector<int> LocateBySpan(Matrix dirty_syndrome, const Matrix& parity, int rows_per_peer,
                              double clean_share, std::vector<Eigen::Index>* unexplained = nullptr,
                              const std::vector<double>* own_share = nullptr);
// The part of each dirty row's tolerance that honest roundoff follows:
// tol m_l / cs_l, m_l the entry's own magnitude as no t wrong values can raise
// it (RobustMagnitude; RobustTolerances' e_l) and cs_l its tolerance, within
// [kLeastOwnShare, 1]; 1 where cs_l is not positive. An honest entry's
// roundoff grows with its own magnitude, not with the results' common
// scale: float32 results of a layer's backward product, beside a wrong peer,
// left 3e-6 to 0.06 of their tolerances, and the rule of 20 times the median
// named honest rows unexplained (then 10-60 ms a decode at every peer,
// against 1 ms).
inline constexpr double kLeastOwnShare = 1.0 / 64;
std::vector<double> OwnShares(const std::vector<double>& tolerances,
                              const std::vector<double>& magnitudes, double tol);
// OwnShares of rows whose tolerances came from RobustTolerances with this
// tol and global scale: there cs_l = tol (e_l + global), so e_l needs no
// second pass over the results.
std::vector<double> OwnSharesOfRobust(const std::vector<double>& tolerances, double tol,
                                      double global);
// The (skip + 1)-th largest |value| of entry l over the columns (the smallest
// when there are fewer).
double RobustMagnitude(const std::vector<const double*>& cols, int64_t l, int skip);
// The set of at least `smallest` and at most floor(parity rows / 2) peers
// whose parity columns span every row of `rows` (the dirty syndromes, or
// any matrix with their row space and singular values): every set up to
// that size is tried (kTooMany beyond kMaxLocateSets sets), and the answer
// is the smallest set within twice the best residual (max with
// `roundoff`), which must be within `explained` (Frobenius; kUnexplained
// otherwise), with every other set of its size or smaller at least
// kLocateSeparation times farther (kAmbiguous otherwise).
inline constexpr int64_t kMaxLocateSets = 32768;  // about 60 ms
inline constexpr double kLocateSeparation = 20.0;
struct SetSearch {
  enum Outcome { kFound, kAmbiguous, kUnexplained, kTooMany } outcome;
  std::vector<int> peers;  // kFound: the set, ascending
};
SetSearch LocateBySets(const Matrix& rows, const Matrix& parity, int rows_per_peer, int smallest,
                       double explained, double roundoff);
Matrix SelectColumns(const Matrix& m, const std::vector<int>& cols);

}  // namespace polyguard::internal

#endif  // POLYGUARD_LIB_CODES_DECODE_KERNELS_H_
