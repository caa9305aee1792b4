// The errors-and-erasures decoder of any real MDS code given by its generator
// (docs/codes.md §3.4), for codes that are not evaluation codes, such as the
// low-weight codes of low_weight_code.h.
//
// The R results that arrived form Y = G_R C + E: G_R is the R x K generator
// restricted to the answering peers, C the K coefficient blocks (each
// flattened to length L), E nonzero only at wrong peers. The generator must
// be MDS: every K of its rows invertible (then its dual is MDS too, which is
// what locating errors needs).
//
// A peer's result may be several blocks (rows_per_peer = g, e.g. the four
// products of a rotation-embedded code): generator rows g p .. g p + g - 1
// are peer p's, the threshold K is ceil(columns / g) peers, and a wrong peer
// is one whose blocks disagree (the guarantees below count peers).
//
// Guarantees, with R results and K = the threshold in peers: those of
// errors_and_erasures_decoder.h — (a) at most floor((R - K)/2) wrong peers
// in every entry, any values; (b) generic errors in at most R - K - 1 peers
// when each block of a result has at least g (R - K - 1) entries (fewer
// entries cannot span the errors' directions; a mix of dense and one-entry
// errors in that many 4-block peers is missed in about 5 of 10^4 decodes,
// as DataLoss); (c) otherwise
// DataLoss, never a wrong product marked verified, except for errors that
// put the received word at least as close to another code word. With
// exactly K results nothing is checked. NaN, Inf and absurdly large values
// (above 1e150 times the results' typical magnitude, the median of a
// sample) are wrong values of their entries; so honest values more than
// 1e150 times the typical one (data spanning more than 150 decades in one
// product) are not decoded (DataLoss). A result set aside for a finite
// absurd value counts as an error the code itself must locate
// (UntameWithinRadius), so liars cannot outvote such honest results.
//
// How: an orthonormal parity check H (H G_R = 0, from a QR of G_R) gives the
// syndrome S = H Y = H E; the peers whose columns of H meet the span of S
// are set aside; then the smallest set of suspects that explains every
// inconsistent entry (at most 20,000 sets; each kept value held to
// sqrt(1 - h) of the tolerance, h its leverage in the rest's fit), then
// entry by entry (at most
// 4,096 sets each); a final check against the decoded code word at its own
// scale, as in errors_and_erasures_decoder.h. The decode is G_R's
// pseudo-inverse, whose conditioning is what the code's design minimised
// (low_weight_code.h).
//
// Cost: without errors, one pass over the R results computing K + (R - K)
// combinations of them (the exact parity check); with errors add (R - K) x
// R x L for the syndrome and the final check, a search over sets of suspect
// peers of at most 500,000 entry fits, and entry by entry at most 8,192
// least-squares fits per inconsistent entry and DecoderOptions::max_fits
// (2^20) per decode (then DataLoss). A fit costs about rows x unknowns^2:
// at K = 16 with rotation points (64 unknowns, 128 rows) about 4 ms, so
// many inconsistent entries can make one decode take up to a minute.
// Plans are cached per set of answering peers.
//
// Thread safety: Decode is const and may be called concurrently.
#ifndef POLYGUARD_CODES_LINEAR_CODE_DECODER_H_
#define POLYGUARD_CODES_LINEAR_CODE_DECODER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "polyguard/base/matrix.h"
#include "polyguard/base/peer_set.h"
#include "polyguard/base/status.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"

namespace polyguard {

namespace internal {
class MislocationGains;  // lib/codes/mislocation.h
}  // namespace internal

class LinearCodeDecoder {
 public:
  // generator: P x K (1 <= K <= P <= kMaxPeers), finite. Its MDS property is the
  // caller's (the code design's) responsibility; a subset of rows that is
  // singular makes Decode return DataLoss for that subset.
  static StatusOr<std::unique_ptr<LinearCodeDecoder>> Create(Matrix generator,
                                                             DecoderOptions options = {},
                                                             int rows_per_peer = 1);

  // columns[j g + b]: the `length` numbers of block b of peer peers[j]'s
  // result. Returns all generator-column coefficients (L x columns). Errors: InvalidArgument
  // (unknown or duplicated peer), Unavailable (fewer than K results), DataLoss (uncorrectable).
  // scale_floor: the peers' declared roundoff floor, as for
  // ErrorsAndErasuresDecoder::Decode (0 for none).
  StatusOr<DecodeOutcome> Decode(std::span<const int> peers, std::span<const double* const> columns,
                                 int64_t length, double scale_floor = 0.0) const;
  // The same, handing the coefficients to `sink` in row chunks (rows l0 ..
  // l0 + chunk.rows() - 1 of the L x K coefficients) instead of returning
  // them (DecodeOutcome::coefficients stays empty): a caller that lays C out
  // differently saves writing and copying an L x K matrix. Chunks may be
  // handed over more than once (a later pass overwrites an earlier one), and
  // only a successful decode's last pass counts.
  using CoefficientSink = std::function<void(int64_t l0, const MatrixRef& chunk)>;
  StatusOr<DecodeOutcome> Decode(std::span<const int> peers, std::span<const double* const> columns,
                                 int64_t length, const CoefficientSink& sink,
                                 double scale_floor = 0.0) const;
  // The same for results given as the columns of an L x (R g) matrix.
  StatusOr<DecodeOutcome> Decode(std::span<const int> peers, const MatrixRef& results,
                                 double scale_floor = 0.0) const;

  int num_peers() const { return static_cast<int>(generator_.rows()) / rows_per_peer_; }
  int rows_per_peer() const { return rows_per_peer_; }
  // K: the fewest peers whose results determine the coefficients.
  int recovery_threshold() const {
    return (static_cast<int>(generator_.cols()) + rows_per_peer_ - 1) / rows_per_peer_;
  }
  const Matrix& generator() const { return generator_; }

  struct Plan;  // per set of answering peers; defined in the .cc

  ~LinearCodeDecoder();

 private:
  LinearCodeDecoder(Matrix generator, DecoderOptions options, int rows_per_peer);
  std::shared_ptr<const Plan> GetPlan(const std::vector<int>& peers) const;
  StatusOr<DecodeOutcome> DecodeSlow(const std::vector<int>& peers, const Matrix& results,
                                     double scale_floor) const;
  // The fast path's error case, when the errors are in whole peers: locates
  // them from `dirty` (syndromes of a few inconsistent entries, each over its
  // tolerance; own_share: each tolerance's part from its entry's magnitude,
  // internal::OwnShares), then decodes from the rest in one more pass that
  // must pass the fast check, handing its coefficients to `sink`, and names
  // the set-aside peers off the code word. Nothing when the errors are not
  // of that kind (the full decode then runs, and overwrites what was handed).
  std::optional<DecodeOutcome> DecodeWithoutLocated(
      const std::vector<int>& peers, const std::vector<const double*>& cols, int64_t length,
      const Plan& plan, const std::vector<Vector>& dirty, const std::vector<double>& own_share,
      double scale_floor, const CoefficientSink& sink) const;
  // One decode: with the subspace locator and peer-wide search, or entry by
  // entry only. Its entry search spends *budget, shared with the other
  // attempt.
  // The floor is in the scaled results' units.
  StatusOr<DecodeOutcome> Attempt(const std::vector<int>& peers, const Matrix& original,
                                  bool locate, double floor, int64_t* budget) const;

  Matrix generator_;
  DecoderOptions options_;
  int rows_per_peer_ = 1;
  // What results the checks cannot see or tell from the ones named can move
  // the product by (DecodeOutcome::deviation_bound), over every peer.
  std::unique_ptr<internal::MislocationGains> mislocation_;
  mutable std::mutex mu_;
  mutable std::unordered_map<PeerSet, std::shared_ptr<const Plan>, PeerSetHash> cache_;
};

}  // namespace polyguard

#endif  // POLYGUARD_CODES_LINEAR_CODE_DECODER_H_
