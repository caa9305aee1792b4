#include "polyguard/train/trainer.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "lib/base/fnv1a.h"
#include "polyguard/base/random.h"
#include "polyguard/nn/softmax_cross_entropy.h"
#include "polyguard/runtime/coded_product.h"
#include "polyguard/runtime/exchange_tags.h"

namespace polyguard {
namespace {

// The trainer's exchanges take their tags from MakeExchangeTag. ScrubAt's
// `tag_layer` names the series of scrubs: the rounds', or SnapshotNow's,
// numbered by snapshot instead of by round (they spend no round), so they
// have tags (ExchangeOp::kSnapshotScrub) and probes of their own.
enum ScrubSeries { kRoundScrubs = 0, kSnapshotScrubs = 1 };
// Evaluation rounds count from here; training rounds never get near it.
constexpr int64_t kEvaluationRounds = int64_t{1} << 48;

// The guard's fingerprint of a decoded copy: kProjections weighted sums with
// weights in [-1, 1) drawn from a hash of the position and a key that
// changes every round (no fault can anticipate them), and the copy's norm.
// A copy differing anywhere gives different sums with probability 1.
constexpr int kProjections = 4;
constexpr int kFingerprint = kProjections + 1;
// The fingerprints' key in `round`; copy i (2 l: layer l's input, 2 l + 1:
// its gradient) uses key + i.
uint64_t FingerprintKey(uint64_t seed, int64_t round) {
  return DeriveSeed(seed, {0x9a4d, uint64_t(round)});
}
// Four entries at a time in GCC/Clang vector extensions (as in
// lib/codes/decode_kernels.cc; no function takes or returns one): the
// scalar loop cost 7% of the demo's CPU, 2.2 times this. A weight is exact
// either way ((w - 32768) / 32768 for the 16-bit w), so only the order of
// the sums differs from the scalar form; every peer runs this one.
typedef double FingerprintLanes __attribute__((vector_size(4 * sizeof(double))));
typedef uint64_t FingerprintHashes __attribute__((vector_size(4 * sizeof(uint64_t))));
// *h = the multiply-xorshift hash of *h (position + key), for one position
// (uint64_t) or four (FingerprintHashes; through a pointer, not by value).
template <typename H>
void FingerprintHash(H* h) {
  *h *= 0x9e3779b97f4a7c15ull;
  *h ^= *h >> 29;
  *h *= 0xbf58476d1ce4e5b9ull;
  *h ^= *h >> 32;
}
void Fingerprint(const Matrix& m, uint64_t key, double* out /* kProjections + 1 */) {
  const double* p = m.data();
  const int64_t n = m.size();
  // One multiply-xorshift hash gives four 16-bit weights. 2^52 + w as a
  // double's bits is the double 2^52 + w: the conversion without a
  // 64-bit integer one (which AVX2 lacks).
  constexpr uint64_t kTwo52Bits = 0x4330000000000000ull;
  constexpr double kOffset = 4503599627370496.0 + 32768.0;  // 2^52 + 32768
  FingerprintLanes f[kProjections] = {}, sq = {};
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    FingerprintHashes h = FingerprintHashes{0, 1, 2, 3} + (uint64_t(k) + key);
    FingerprintHash(&h);
    FingerprintLanes x;
    std::memcpy(&x, p + k, sizeof x);
    for (int j = 0; j < kProjections; ++j) {
      const FingerprintHashes bits = ((h >> (16 * j)) & 0xffff) | kTwo52Bits;
      FingerprintLanes w;
      std::memcpy(&w, &bits, sizeof w);
      f[j] += (w - kOffset) * (1.0 / 32768.0) * x;
    }
    sq += x * x;
  }
  double tail[kProjections] = {}, tail_sq = 0.0;
  for (; k < n; ++k) {
    uint64_t h = uint64_t(k) + key;
    FingerprintHash(&h);
    for (int j = 0; j < kProjections; ++j)
      tail[j] += double(int64_t((h >> (16 * j)) & 0xffff) - 32768) * (1.0 / 32768.0) * p[k];
    tail_sq += p[k] * p[k];
  }
  for (int j = 0; j < kProjections; ++j)
    out[j] = ((f[j][0] + f[j][1]) + (f[j][2] + f[j][3])) + tail[j];
  out[kProjections] = std::sqrt(((sq[0] + sq[1]) + (sq[2] + sq[3])) + tail_sq);
}

std::vector<double> Flatten(const Matrix& a, const Matrix& b) {
  std::vector<double> out(static_cast<size_t>(a.size() + b.size()));
  std::copy(a.data(), a.data() + a.size(), out.begin());
  std::copy(b.data(), b.data() + b.size(), out.begin() + a.size());
  return out;
}

// A 64-bit value (a checksum) as two 32-bit halves, each exact
// in a double, for exchanges of numbers.
void PushHalves(uint64_t v, std::vector<double>* out) {
  out->push_back(double(v & 0xffffffffu));
  out->push_back(double(v >> 32));
}
// The value two halves carry; nothing when they are not halves (a lost
// peer's NaN, a corrupted vote).
std::optional<uint64_t> FromHalves(double lo, double hi) {
  if (!(lo >= 0 && lo < 4294967296.0 && hi >= 0 && hi < 4294967296.0)) return std::nullopt;
  return uint64_t(lo) | (uint64_t(hi) << 32);
}

// The checksum of n numbers' bytes (rebuild pieces, decoded copies).
uint64_t Checksum(const double* data, size_t n) {
  return internal::Fnv1a(std::string_view(reinterpret_cast<const char*>(data), n * sizeof(double)));
}

void Unflatten(const std::vector<double>& in, Matrix* a, Matrix* b) {
  std::copy(in.begin(), in.begin() + a->size(), a->data());
  std::copy(in.begin() + a->size(), in.end(), b->data());
}

}  // namespace

int TrainerWeightCopies(const TrainerOptions& options) {
  return 2 + (options.survive_crashes ? 2 : 0);
}

Status ValidateTrainerOptions(const TrainerOptions& o) {
  POLYGUARD_RETURN_IF_ERROR(ValidateSgdOptions(o.sgd));
  if (o.scrub_interval < 0) {
    return InvalidArgumentError("trainer: scrub_interval must be >= 0, got " +
                                std::to_string(o.scrub_interval));
  }
  if (o.snapshot_interval < 1) {
    return InvalidArgumentError("trainer: snapshot_interval must be >= 1, got " +
                                std::to_string(o.snapshot_interval));
  }
  if (o.max_retries < 0 || o.max_rollbacks < 0) {
    return InvalidArgumentError("trainer: max_retries and max_rollbacks must be >= 0");
  }
  if (!(o.fingerprint_tolerance > 0.0 && o.fingerprint_tolerance < 1.0)) {
    return InvalidArgumentError("trainer: fingerprint_tolerance must be in (0, 1)");
  }
  return Status::Ok();
}

std::string FormatCounters(const TrainingCounters& c) {
  return "steps=" + std::to_string(c.steps) +
         " faults_injected=" + std::to_string(c.faults_injected) +
         " wrong_results=" + std::to_string(c.wrong_results) +
         " located_by_this_peer=" + std::to_string(c.results_located_by_this_peer) +
         " unverified_decodes=" + std::to_string(c.unverified_decodes) +
         " corrected=" + std::to_string(c.results_corrected) +
         " not_awaited=" + std::to_string(c.results_not_awaited) +
         " widened=" + std::to_string(c.products_widened) +
         " uncorrectable_steps=" + std::to_string(c.uncorrectable_steps) +
         " recomputations=" + std::to_string(c.recomputations) +
         " copies_replaced=" + std::to_string(c.copies_replaced) +
         " copies_refused=" + std::to_string(c.copies_refused) +
         " scrubs=" + std::to_string(c.scrubs) +
         " shard_repairs=" + std::to_string(c.shard_repairs) +
         " rollbacks=" + std::to_string(c.rollbacks);
}

struct Trainer::Decision {
  bool retry = false;
  // Every wrong result any peer's decodes located this step, once each
  // (per layer, forward and backward decode, and peer), and their peers.
  int64_t wrong_results = 0;
  std::vector<int> wrong_peers;
  bool any_failed = false;
  std::vector<std::vector<int>> stale;  // per layer: peers whose copies are replaced
  std::vector<PeerSet> aligned;         // per layer: the stale peers within tolerance
  std::vector<int> root;                // per layer: a peer with the majority's copies
  // Per layer: the peers holding the root's copies bit for bit, who send
  // them to the stale peers (the root alone with wait_for = 0).
  std::vector<std::vector<int>> sources;
  // Per layer: the root's fingerprints of its input and gradient copies
  // (2 kFingerprint numbers), which every received copy must match.
  std::vector<std::vector<double>> root_prints;
  double loss = 0.0, accuracy = 0.0;
  PeerSet joiners;  // replacements any member saw waiting
};

StatusOr<std::unique_ptr<Trainer>> Trainer::Create(PeerGroup* group, Sequential* model,
                                                   FaultInjector* faults, TrainerOptions options) {
  if (group == nullptr || model == nullptr) {
    return InvalidArgumentError("trainer: needs a peer group and a model");
  }
  POLYGUARD_RETURN_IF_ERROR(ValidateTrainerOptions(options));
  auto t = std::unique_ptr<Trainer>(new Trainer(group, model, faults, options));
  t->TakeSnapshot(0);
  return t;
}

TrainingCounters Trainer::counters() const {
  TrainingCounters c = counters_;
  c.faults_injected = faults_ != nullptr ? faults_->faults_injected() : 0;
  c.results_not_awaited = model_->results_not_awaited();
  c.products_widened = model_->products_widened();
  c.unverified_decodes = model_->unverified_decodes();
  c.generation = group_->generation();
  c.peers_present = static_cast<int64_t>(group_->members().size());
  return c;
}

Trainer::State& Trainer::Own(std::shared_ptr<State>& state) {
  if (state.use_count() > 1) state = std::make_shared<State>(*state);
  return *state;
}

void Trainer::TakeSnapshot(int64_t step) {
  taken_.reset();  // older than this one now
  auto now = std::make_shared<State>(State{.step = step,
                                           .round = round_,
                                           .previous_wrong = previous_wrong_,
                                           .rollbacks_in_a_row = rollbacks_in_a_row_,
                                           .rollback_step = rollback_step_});
  for (int l = 0; l < model_->num_layers(); ++l) {
    now->shards.push_back(model_->layer(l).shard());
    now->velocities.push_back(model_->layer(l).velocity());
  }
  snapshot_ = std::move(now);
}

void Trainer::Restore() {
  stale_layers_.clear();  // every shard is the snapshot's again
  for (int l = 0; l < model_->num_layers(); ++l) {
    model_->layer(l).set_shard(snapshot_->shards[size_t(l)]);
    model_->layer(l).set_velocity(snapshot_->velocities[size_t(l)]);
  }
}

StatusOr<Trainer::Decision> Trainer::Agree(bool failed, double loss, double accuracy,
                                           int64_t round) {
  const int layers = model_->num_layers();
  // The first number: 1 a failed decode, 2 a layer that skipped its update
  // here (stale_layers_: retry after a scrub repairs it; not an
  // uncorrectable step), 0 neither.
  const bool stale_here =
      std::find(stale_layers_.begin(), stale_layers_.end(), true) != stale_layers_.end();
  std::vector<double> mine = {failed ? 1.0 : stale_here ? 2.0 : 0.0, loss, accuracy};
  // Wrong-peer sets, 32 peers per number (exact in a double).
  const int p = group_->size(), set_numbers = PeerSet::NumbersFor(p);
  for (int l = 0; l < layers; ++l) {
    for (const PeerSet* s :
         {&model_->layer(l).last_forward_wrong(), &model_->layer(l).last_backward_wrong()})
      s->AppendTo(p, &mine);
  }
  const Eigen::Index fp_row = static_cast<Eigen::Index>(mine.size());
  constexpr int kBlock = kFingerprint;
  const uint64_t key = FingerprintKey(options_.seed, round);
  std::vector<double> sizes;  // entries of each fingerprinted copy
  for (int l = 0; l < layers; ++l) {
    for (const Matrix* m :
         {model_->layer(l).mutable_saved_input(), model_->layer(l).mutable_saved_gradient()}) {
      double fp[kBlock];
      Fingerprint(*m, key + uint64_t(sizes.size()), fp);
      mine.insert(mine.end(), fp, fp + kBlock);
      sizes.push_back(double(m->size()));
    }
  }
  // With wait_for < P every peer decodes from the results it got first, so
  // copies differ in their last bits, and each peer's update applies its
  // own copies to its shard: the shards leave the code word a little every
  // step until a fault-free job's decodes fail (a bundled-size MLP at step
  // 13). Every peer updates from the root's copies, bit for bit, instead;
  // a checksum of each layer's copies tells who already holds them.
  const bool straggling = model_->options().product.wait_for != 0;
  const Eigen::Index sum_row = static_cast<Eigen::Index>(mine.size());
  if (straggling) {
    for (int l = 0; l < layers; ++l) {
      const Matrix& x = model_->layer(l).saved_input();
      const Matrix& g = model_->layer(l).saved_gradient();
      PushHalves(Checksum(x.data(), size_t(x.size())) ^
                     (Checksum(g.data(), size_t(g.size())) * 0x9e3779b97f4a7c15ull),
                 &mine);
    }
  }
  POLYGUARD_ASSIGN_OR_RETURN(const ExchangeTag tag, MakeExchangeTag(ExchangeOp::kAgree, round));
  // Replacements waiting to join (while peers are missing): one store
  // lookup per missing peer, agreed here with everything else.
  const Eigen::Index join_row = static_cast<Eigen::Index>(mine.size());
  PeerSet waiting;
  if (options_.survive_crashes && int(group_->members().size()) < group_->size())
    waiting = PeerSet::Of(group_->JoinRequests());
  waiting.AppendTo(p, &mine);
  POLYGUARD_ASSIGN_OR_RETURN(Matrix all, group_->AllGather(mine, tag));
  // The set peer q sent from `row` on (empty for a lost peer's NaN column).
  auto set_at = [&](Eigen::Index row, int q) {
    return PeerSet::Read(std::span<const double>(&all(row, q), size_t(set_numbers)), p)
        .value_or(PeerSet());
  };
  // Only members vote (a lost peer's column is NaN).
  std::vector<bool> present(static_cast<size_t>(p), false);
  for (int q : group_->members()) present[size_t(q)] = true;
  const int voters = static_cast<int>(group_->members().size());
  Decision d;
  for (int q = 0; q < p; ++q) {
    if (!present[size_t(q)] || all(0, q) == 0.0) continue;
    d.retry = true;
    d.any_failed = d.any_failed || all(0, q) != 2.0;
  }
  PeerSet any_wrong;
  for (int i = 0; i < 2 * layers; ++i) {
    PeerSet agreed;  // the union over peers: what any decode located
    for (int q = 0; q < p; ++q)
      if (present[size_t(q)]) agreed |= set_at(3 + Eigen::Index(i) * set_numbers, q);
    d.wrong_results += agreed.size();
    any_wrong |= agreed;
  }
  d.wrong_peers = any_wrong.Peers();
  // Copies decoded from the same results are equal bit for bit; from
  // different results (wait_for < P) each entry may differ by the decoder's
  // tolerance, which moves a projection by at most tol sqrt(N) |copy|: the
  // trainer's, or a float32 code's (RoundoffTolerance, for the longer of
  // the copies' rows, as the decoder's uses the longer of its shape's).
  auto tolerance_of = [&](int l) {
    if (!straggling) return 0.0;
    const CodedLayer& layer = model_->layer(l);
    const int64_t rows = std::max(layer.saved_input().rows(), layer.saved_gradient().rows());
    return std::max(options_.fingerprint_tolerance,
                    layer.code().precision() == Precision::kFloat64
                        ? 0.0
                        : RoundoffTolerance(layer.code().precision(), rows));
  };
  // The peers agreeing with the best-supported copy fingerprinted at `row`;
  // empty when no copy has a strict majority.
  auto majority = [&](Eigen::Index row, double entries, double tol) {
    auto agree = [&](int a, int b) {
      const double na = all(row + kProjections, a), nb = all(row + kProjections, b);
      const double limit = tol * std::sqrt(entries) * std::max(na, nb);
      for (int j = 0; j < kProjections; ++j) {
        const double va = all(row + j, a), vb = all(row + j, b);
        if (!std::isfinite(va) || !std::isfinite(vb) || !(std::abs(va - vb) <= limit)) return false;
      }
      return true;
    };
    int best = -1, best_count = 0;
    for (int a = 0; a < p; ++a) {
      if (!present[size_t(a)]) continue;
      int count = 0;
      for (int b = 0; b < p; ++b) count += present[size_t(b)] && agree(a, b) ? 1 : 0;
      if (count > best_count) best = a, best_count = count;
    }
    std::vector<bool> in(static_cast<size_t>(p), false);
    if (best < 0 || 2 * best_count <= voters) return std::vector<bool>();
    for (int b = 0; b < p; ++b) in[size_t(b)] = present[size_t(b)] && agree(best, b);
    return in;
  };
  d.stale.resize(size_t(layers));
  d.root.assign(size_t(layers), 0);
  d.sources.resize(size_t(layers));
  d.aligned.resize(size_t(layers));
  d.root_prints.resize(size_t(layers));
  // Without the guard every present peer's copies count as good (the
  // straggling peers still take the root's).
  for (int l = 0; l < layers && (options_.guard || straggling); ++l) {
    const std::vector<bool> x =
        options_.guard ? majority(fp_row + 2 * kBlock * l, sizes[size_t(2 * l)], tolerance_of(l))
                       : present;
    const std::vector<bool> g = options_.guard ? majority(fp_row + 2 * kBlock * l + kBlock,
                                                          sizes[size_t(2 * l + 1)], tolerance_of(l))
                                               : present;
    if (x.empty() || g.empty()) {
      d.retry = true;
      continue;
    }
    // The root: a peer in both majorities whose copies (by checksum) most
    // of them hold; the lowest rank among equals.
    auto sum_of = [&](int q) {
      return straggling ? FromHalves(all(sum_row + 2 * l, q), all(sum_row + 2 * l + 1, q))
                        : std::optional<uint64_t>(0);
    };
    int root = -1, root_count = 0;
    for (int a = 0; a < p; ++a) {
      if (!present[size_t(a)] || !x[size_t(a)] || !g[size_t(a)] || !sum_of(a)) continue;
      int count = 0;
      for (int b = 0; b < p; ++b)
        count += present[size_t(b)] && x[size_t(b)] && g[size_t(b)] && sum_of(b) == sum_of(a);
      if (count > root_count) root = a, root_count = count;
    }
    if (root < 0) {
      d.retry = true;  // cannot happen with two strict majorities
      continue;
    }
    for (int q = 0; q < p; ++q) {
      if (!present[size_t(q)]) continue;
      if (x[size_t(q)] && g[size_t(q)] && sum_of(q) == sum_of(root)) {
        d.sources[size_t(l)].push_back(q);
      } else {
        d.stale[size_t(l)].push_back(q);
        if (x[size_t(q)] && g[size_t(q)]) d.aligned[size_t(l)].Insert(q);
      }
    }
    d.root[size_t(l)] = root;
    for (Eigen::Index j = 0; j < 2 * kBlock; ++j)
      d.root_prints[size_t(l)].push_back(all(fp_row + 2 * kBlock * l + j, root));
  }
  for (int q : group_->members()) d.joiners |= set_at(join_row, q);
  const int reporter = layers > 0 ? d.root[size_t(layers - 1)] : 0;
  d.loss = all(1, reporter);
  d.accuracy = all(2, reporter);
  return d;
}

Status Trainer::ReplaceStaleCopies(const Decision& d, int64_t round, std::vector<bool>* refused) {
  refused->assign(size_t(model_->num_layers()), false);
  const int p = group_->size(), me = group_->rank();
  for (int l = 0; l < model_->num_layers(); ++l) {
    const std::vector<int>& stale = d.stale[size_t(l)];
    if (stale.empty()) continue;
    CodedLayer& layer = model_->layer(l);
    Matrix* x = layer.mutable_saved_input();
    Matrix* g = layer.mutable_saved_gradient();
    // The sources take turns, so that no one peer sends every copy.
    const std::vector<int>& sources = d.sources[size_t(l)];
    std::vector<std::vector<double>> to(static_cast<size_t>(p));
    std::vector<int64_t> from(static_cast<size_t>(p), 0);
    int my_source = -1;
    std::vector<double> copy;
    for (size_t i = 0; i < stale.size(); ++i) {
      const int source = sources[i % sources.size()];
      if (source == me) {
        if (copy.empty()) {
          copy = Flatten(*x, *g);
          if (faults_ != nullptr && faults_->Hits(round, kCopiesFaultLayer + l, StepPoint::kSend)) {
            Matrix sent = Eigen::Map<const Matrix>(copy.data(), Eigen::Index(copy.size()), 1);
            faults_->MaybeCorrupt(round, kCopiesFaultLayer + l, StepPoint::kSend, &sent);
            std::copy(sent.data(), sent.data() + sent.size(), copy.begin());
          }
        }
        to[size_t(stale[i])] = copy;
      }
      if (stale[i] == me) my_source = source;
    }
    if (my_source >= 0) from[size_t(my_source)] = x->size() + g->size();
    POLYGUARD_ASSIGN_OR_RETURN(const ExchangeTag tag, MakeExchangeTag(ExchangeOp::kFix, round, l));
    POLYGUARD_ASSIGN_OR_RETURN(auto got, group_->SendRecv(to, from, tag));
    if (my_source < 0) continue;
    // The source was chosen for the checksum or fingerprint it voted; what
    // arrived must be the root's copies bit for bit, or it is not applied.
    Matrix got_x(x->rows(), x->cols()), got_g(g->rows(), g->cols());
    Unflatten(got[size_t(my_source)], &got_x, &got_g);
    const uint64_t key = FingerprintKey(options_.seed, round) + uint64_t(2 * l);
    double prints[2 * kFingerprint];
    Fingerprint(got_x, key, prints);
    Fingerprint(got_g, key + 1, prints + kFingerprint);
    const std::vector<double>& want = d.root_prints[size_t(l)];
    if (!std::equal(prints, prints + 2 * kFingerprint, want.begin(), want.end())) {
      ++counters_.copies_refused;
      // An aligned peer's own copies are within the guard's tolerance: it
      // updates from them (off the others' by that much, this once). A peer
      // whose own copies are off skips this layer's update, and the next
      // agreement has its shard repaired. Never the other way round: when
      // every stale peer is aligned (all but the root), skipping would leave
      // the majority's shards stale and the scrub would "repair" the root.
      if (!d.aligned[size_t(l)].Contains(me)) (*refused)[size_t(l)] = true;
      continue;
    }
    *x = std::move(got_x);
    *g = std::move(got_g);
    ++(d.aligned[size_t(l)].Contains(me) ? counters_.copies_aligned : counters_.copies_replaced);
  }
  return Status::Ok();
}

StatusOr<std::vector<int>> Trainer::ScrubAt(int64_t round, int tag_layer, bool* repairable) {
  *repairable = true;
  ++counters_.scrubs;
  const int p = group_->size(), me = group_->rank();
  const int layers = model_->num_layers();
  // Every layer's probes go out in one exchange (one message per peer pair
  // instead of one per layer: scrubs were a sixth of the bundled demo's
  // exchanges). Layer l's numbers are rows [starts[l], starts[l + 1]) of
  // every peer's column: the probes of its shard, of its velocity, and
  // whether this peer's shard of the layer is known stale (it skipped an
  // update: stale_layers_). Stale shards are erasures: not checked,
  // repaired. Located, they could be confused with the healthy ones when
  // they are many.
  std::vector<double> mine;
  std::vector<Eigen::Index> starts;
  for (int l = 0; l < layers; ++l) {
    const CodedLayer& layer = model_->layer(l);
    // (SnapshotNow's probes come from a stream of their own.)
    Random rng(tag_layer == kRoundScrubs
                   ? DeriveSeed(options_.seed, {0x5c7b, uint64_t(round), uint64_t(l)})
                   : DeriveSeed(options_.seed, {0x5c7c, uint64_t(round), uint64_t(l)}));
    const Vector probe = rng.NormalMatrix(layer.code().probe_length(), 1).col(0);
    const Vector a = layer.code().ProbeShard(layer.shard(), probe);
    const Vector b = layer.code().ProbeShard(layer.velocity(), probe);
    const bool stale = size_t(l) < stale_layers_.size() && stale_layers_[size_t(l)];
    starts.push_back(static_cast<Eigen::Index>(mine.size()));
    mine.insert(mine.end(), a.data(), a.data() + a.size());
    mine.insert(mine.end(), b.data(), b.data() + b.size());
    mine.push_back(stale ? 1.0 : 0.0);
  }
  starts.push_back(static_cast<Eigen::Index>(mine.size()));
  POLYGUARD_ASSIGN_OR_RETURN(
      const ExchangeTag probe_tag,
      MakeExchangeTag(tag_layer == kRoundScrubs ? ExchangeOp::kScrub : ExchangeOp::kSnapshotScrub,
                      round, 0));
  // A crash injected in a scrub (before its probes go out: the others lose
  // it in this exchange, after the step's update), or in a repair (below):
  // training rounds only.
  const bool crash_here =
      faults_ != nullptr && tag_layer == kRoundScrubs && round < kEvaluationRounds;
  if (crash_here && faults_->ShouldCrash(round, FaultModel::CrashPoint::kScrub)) {
    std::_Exit(FaultInjector::kCrashExitCode);
  }
  POLYGUARD_ASSIGN_OR_RETURN(const Matrix all, group_->AllGather(mine, probe_tag));
  std::vector<int> corrupted;
  for (int l = 0; l < layers; ++l) {
    CodedLayer& layer = model_->layer(l);
    const ProductCode& code = layer.code();
    const bool stale = size_t(l) < stale_layers_.size() && stale_layers_[size_t(l)];
    std::vector<PeerResult> probes;  // the members' (a lost peer's shard is an erasure)
    std::vector<int> erased;         // members whose shard is known stale
    const Eigen::Index first = starts[size_t(l)], flag = starts[size_t(l) + 1] - 1;
    for (int q : group_->members()) {
      if (all(flag, q) != 0.0) {
        erased.push_back(q);
      } else {
        probes.push_back({q, all.col(q).segment(first, flag - first)});
      }
    }
    StatusOr<std::vector<int>> wrong = code.CheckProbes(probes);
    if (!wrong.ok()) {
      if (wrong.status().code() != StatusCode::kDataLoss) return wrong.status();
      *repairable = false;  // more corrupted shards than the code can tell apart
      return corrupted;
    }
    wrong->insert(wrong->end(), erased.begin(), erased.end());
    std::sort(wrong->begin(), wrong->end());
    if (wrong->empty()) continue;
    corrupted.insert(corrupted.end(), wrong->begin(), wrong->end());
    if (tag_layer == kSnapshotScrubs) continue;  // SnapshotNow only looks (see there)
    std::vector<int> healthy;
    for (int q : group_->members())
      if (!std::binary_search(wrong->begin(), wrong->end(), q)) healthy.push_back(q);
    // Every peer computes every target's sources: the same plan everywhere.
    std::vector<std::vector<int>> sources;
    for (int t : *wrong) {
      StatusOr<std::vector<int>> s = code.RepairSources(t, healthy);
      if (!s.ok()) {
        *repairable = false;
        return corrupted;
      }
      sources.push_back(std::move(s).value());
    }
    const Matrix shard = layer.shard(), velocity = layer.velocity();
    std::vector<std::vector<double>> to(static_cast<size_t>(p));
    std::vector<int64_t> from(static_cast<size_t>(p), 0);
    int my_target = -1;
    for (size_t i = 0; i < wrong->size(); ++i) {
      const int t = (*wrong)[i];
      for (int s : sources[i]) {
        if (s == me) to[size_t(t)] = Flatten(shard, velocity);
        if (t == me) from[size_t(s)] = shard.size() + velocity.size();
      }
      if (t == me) my_target = int(i);
    }
    const bool involved = my_target >= 0 || std::any_of(to.begin(), to.end(),
                                                        [](const auto& v) { return !v.empty(); });
    if (crash_here && involved && faults_->ShouldCrash(round, FaultModel::CrashPoint::kRepair)) {
      std::_Exit(FaultInjector::kCrashExitCode);
    }
    POLYGUARD_ASSIGN_OR_RETURN(const ExchangeTag repair_tag,
                               MakeExchangeTag(ExchangeOp::kRepair, round, l));
    POLYGUARD_ASSIGN_OR_RETURN(auto got, group_->SendRecv(to, from, repair_tag));
    if (my_target >= 0) {
      std::vector<PeerResult> shards, velocities;
      for (int s : sources[size_t(my_target)]) {
        Matrix sh(shard.rows(), shard.cols()), ve(velocity.rows(), velocity.cols());
        Unflatten(got[size_t(s)], &sh, &ve);
        shards.push_back({s, std::move(sh)});
        velocities.push_back({s, std::move(ve)});
      }
      POLYGUARD_ASSIGN_OR_RETURN(const Matrix repaired, code.RepairShard(me, shards));
      POLYGUARD_ASSIGN_OR_RETURN(const Matrix repaired_velocity, code.RepairShard(me, velocities));
      layer.set_shard(repaired);
      layer.set_velocity(repaired_velocity);
      if (stale) stale_layers_[size_t(l)] = false;
    }
    counters_.shard_repairs += static_cast<int64_t>(wrong->size());
  }
  std::sort(corrupted.begin(), corrupted.end());
  corrupted.erase(std::unique(corrupted.begin(), corrupted.end()), corrupted.end());
  return corrupted;
}

Trainer::State Trainer::LastSnapshot() const {
  if (!taken_) return *snapshot_;
  // A rollback in the run without SnapshotNow would return to the periodic
  // snapshot, and the next periodic snapshot counts from it: a run resumed
  // from the state SnapshotNow took needs it too. (Kept once, in snapshot_.)
  State state = *taken_;
  state.periodic_step = snapshot_->step;
  state.periodic_shards = snapshot_->shards;
  state.periodic_velocities = snapshot_->velocities;
  return state;
}

Status Trainer::Resume(const State& state) {
  const int layers = model_->num_layers();
  const bool periodic = !state.periodic_shards.empty() || !state.periodic_velocities.empty();
  std::vector<const std::vector<Matrix>*> parts = {&state.shards, &state.velocities};
  if (periodic) parts.insert(parts.end(), {&state.periodic_shards, &state.periodic_velocities});
  for (const std::vector<Matrix>* v : parts) {
    if (static_cast<int>(v->size()) != layers) {
      return InvalidArgumentError("resume: the state has " + std::to_string(v->size()) +
                                  " layers, the model " + std::to_string(layers));
    }
  }
  for (int l = 0; l < layers; ++l) {
    const Eigen::Index rows = model_->layer(l).shard_rows(), cols = model_->layer(l).shard_cols();
    std::vector<const Matrix*> all = {&state.shards[size_t(l)], &state.velocities[size_t(l)]};
    if (periodic) {
      all.push_back(&state.periodic_shards[size_t(l)]);
      all.push_back(&state.periodic_velocities[size_t(l)]);
    }
    for (const Matrix* m : all) {
      if (m->rows() != rows || m->cols() != cols) {
        return InvalidArgumentError("resume: layer " + std::to_string(l) + " state is " +
                                    std::to_string(m->rows()) + " x " + std::to_string(m->cols()) +
                                    ", this peer's shard is " + std::to_string(rows) + " x " +
                                    std::to_string(cols));
      }
    }
  }
  if (state.step < 0 || state.round < 0 || state.rollbacks_in_a_row < 0 ||
      state.rollback_step < 0) {
    return InvalidArgumentError("resume: negative step, round or rollback count");
  }
  if (periodic && !(state.periodic_step >= 0 && state.periodic_step <= state.step)) {
    return InvalidArgumentError("resume: the periodic snapshot's step " +
                                std::to_string(state.periodic_step) + " is not in [0, " +
                                std::to_string(state.step) + "]");
  }
  for (int l = 0; l < layers; ++l) {
    model_->layer(l).set_shard(state.shards[size_t(l)]);
    model_->layer(l).set_velocity(state.velocities[size_t(l)]);
  }
  round_ = state.round;
  previous_wrong_ = state.previous_wrong;
  rollbacks_in_a_row_ = state.rollbacks_in_a_row;
  rollback_step_ = state.rollback_step;
  stale_layers_.clear();  // snapshots are taken from consistent shards only
  taken_.reset();
  if (periodic) {
    // (Its round and scrub decisions are never needed: a rollback restores
    // weights only, and LastSnapshot returns `state` until the next one.)
    snapshot_ = std::make_shared<State>(State{.step = state.periodic_step,
                                              .shards = state.periodic_shards,
                                              .velocities = state.periodic_velocities});
    taken_ = std::make_shared<State>(state);
    taken_->periodic_step = 0;
    taken_->periodic_shards.clear();
    taken_->periodic_velocities.clear();
  } else {
    snapshot_ = std::make_shared<State>(state);
  }
  return Status::Ok();
}

StatusOr<bool> Trainer::SnapshotNow(int64_t step) {
  // Advancing the round here would shift every later step by one round (its
  // faults, probes and tags) against a run without this call, so that a run
  // resumed from the snapshot would not replay the uninterrupted one. Scrubs
  // inject no faults; they need only tags no other exchange uses. And the
  // scrub only looks: repairing damage now rather than at the training's own
  // next scrub would change the weights from there on.
  bool repairable = true;
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<int> found,
                             ScrubAt(++snapshot_scrubs_, kSnapshotScrubs, &repairable));
  if (!repairable || !found.empty()) return false;
  State now{.step = step,
            .round = round_,
            .previous_wrong = previous_wrong_,
            .rollbacks_in_a_row = rollbacks_in_a_row_,
            .rollback_step = rollback_step_};
  bool same = step == snapshot_->step && round_ == snapshot_->round;
  for (int l = 0; l < model_->num_layers(); ++l) {
    now.shards.push_back(model_->layer(l).shard());
    now.velocities.push_back(model_->layer(l).velocity());
    same = same && now.shards.back() == snapshot_->shards[size_t(l)] &&
           now.velocities.back() == snapshot_->velocities[size_t(l)];
  }
  if (same) {
    taken_.reset();  // the periodic snapshot is this state
  } else {
    taken_ = std::make_shared<State>(std::move(now));  // (LastSnapshot adds the periodic one)
  }
  return true;
}

StatusOr<int> Trainer::Evaluate(const MatrixRef& x, std::span<const int> labels, int count) {
  const SequentialOptions& mo = model_->options();
  if (x.rows() != mo.layers.front().inputs || x.cols() != mo.batch || count < 0 ||
      count > mo.batch || static_cast<int>(labels.size()) < count) {
    return InvalidArgumentError("evaluate: needs a " + std::to_string(mo.layers.front().inputs) +
                                " x " + std::to_string(mo.batch) + " batch and labels for the " +
                                std::to_string(count) + " counted columns");
  }
  // As many attempts as a training step gets before the job gives up: each
  // attempt is a fresh draw of faults, and a code that can only detect
  // fails about as often here as in training, which rolls back instead.
  const int attempts = (options_.max_retries + 1) * (options_.max_rollbacks + 1);
  for (int attempt = 0; attempt < attempts; ++attempt) {
    // Numbered apart from the training rounds: evaluating must not shift the
    // rounds (tags, fault decisions) of the steps after it.
    const int64_t round = kEvaluationRounds + ++evaluation_rounds_;
    Matrix logits;
    Status forward = model_->Forward(x, round, &logits);
    if (!forward.ok() && forward.code() != StatusCode::kDataLoss) return forward;
    int correct = 0;
    for (int j = 0; j < count; ++j) {
      Eigen::Index best = 0;
      logits.col(j).maxCoeff(&best);
      correct += static_cast<int>(best) == labels[size_t(j)] ? 1 : 0;
    }
    // Every peer must take the same decision: agree on failure, on the
    // count, and on whether any decode located wrong peers.
    const std::vector<double> mine = {forward.ok() ? 0.0 : 1.0, double(correct),
                                      model_->last_wrong_results() > 0 ? 1.0 : 0.0};
    POLYGUARD_ASSIGN_OR_RETURN(const ExchangeTag tag, MakeExchangeTag(ExchangeOp::kAgree, round));
    POLYGUARD_ASSIGN_OR_RETURN(Matrix all, group_->AllGather(mine, tag));
    bool failed = false, located = false;
    std::vector<double> counts;  // the members' (a lost peer's column is NaN)
    for (int q : group_->members()) {
      failed = failed || all(0, q) != 0.0;
      located = located || all(2, q) != 0.0;
      counts.push_back(all(1, q));
    }
    if (failed) {
      // A corrupted stored shard would fail the retry too.
      bool repairable = true;
      POLYGUARD_RETURN_IF_ERROR(ScrubAt(round, kRoundScrubs, &repairable).status());
      if (!repairable) break;
      continue;
    }
    if (located) {
      // Evaluation runs many forwards and no updates: a shard hit during it
      // must not wait for the next training step's scrub, or hits pile up
      // past what the code corrects. (This result is already correct.)
      bool repairable = true;
      POLYGUARD_RETURN_IF_ERROR(ScrubAt(round, kRoundScrubs, &repairable).status());
    }
    // The count most peers computed (a peer's local copy may be wrong).
    std::sort(counts.begin(), counts.end());
    return static_cast<int>(counts[counts.size() / 2]);
  }
  return DataLossError("evaluate: uncorrectable errors in " + std::to_string(attempts) +
                       " attempts (or stored shards beyond repair)");
}

namespace {
// A scrub that found a layer with more corrupted shards than its code can
// locate (ScrubAt: `found`, the peers located in the layers before it).
std::string BeyondRepair(const std::vector<int>& found) {
  return "more stored shards of a layer are corrupted than the code can locate and repair" +
         (found.empty() ? std::string()
                        : " (located in the layers before it: peers " + FormatPeers(found) + ")");
}
}  // namespace

StatusOr<std::vector<int>> Trainer::Scrub() {
  bool repairable = true;
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<int> found, ScrubAt(++round_, kRoundScrubs, &repairable));
  if (!repairable) {
    return DataLossError("scrub: " + BeyondRepair(found));
  }
  return found;
}

StatusOr<StepResult> Trainer::Step(int64_t step, const MatrixRef& x, std::span<const int> labels) {
  const SequentialOptions& mo = model_->options();
  const int classes = mo.layers.back().outputs;
  if (step < 1)
    return InvalidArgumentError("trainer: steps count from 1, got " + std::to_string(step));
  if (x.rows() != mo.layers.front().inputs || x.cols() != mo.batch) {
    return InvalidArgumentError("trainer: batch is " + std::to_string(x.rows()) + " x " +
                                std::to_string(x.cols()) + ", the model takes " +
                                std::to_string(mo.layers.front().inputs) + " x " +
                                std::to_string(mo.batch));
  }
  if (static_cast<int>(labels.size()) != mo.batch) {
    return InvalidArgumentError("trainer: " + std::to_string(labels.size()) +
                                " labels for a batch of " + std::to_string(mo.batch));
  }
  for (int label : labels) {
    if (label < 0 || label >= classes) {
      return InvalidArgumentError("trainer: label " + std::to_string(label) + " outside [0, " +
                                  std::to_string(classes) + ")");
    }
  }
  const std::vector<int> label_vec(labels.begin(), labels.end());
  if (!options_.survive_crashes) return Attempt(step, x, label_vec);
  if (!undo_ || undo_->step != step) {
    undo_before_ = std::move(undo_);
    undo_ = CaptureUndo(step);
  }
  while (true) {
    // Replacements the last agreement saw waiting are admitted at the start
    // of a step; a failure there is a loss too.
    const Status admitted = !waiting_joiners_.empty() ? AdmitWaiting(step) : Status::Ok();
    StatusOr<StepResult> r = admitted.ok() ? Attempt(step, x, label_vec) : admitted;
    const StatusCode code = r.status().code();
    if (r.ok() || (code != StatusCode::kUnavailable && code != StatusCode::kDeadlineExceeded)) {
      if (r.ok() && !r->rolled_back && int(group_->members().size()) < group_->size()) {
        ++counters_.degraded_steps;
      }
      return r;
    }
    POLYGUARD_ASSIGN_OR_RETURN(const int64_t next, SurviveLoss(step, r.status()));
    if (next == step) continue;  // recompute this step over the survivors
    return StepResult{.loss = std::numeric_limits<double>::quiet_NaN(),
                      .accuracy = 0.0,
                      .next_step = next,
                      .rolled_back = true};
  }
}

StatusOr<StepResult> Trainer::Attempt(int64_t step, const MatrixRef& x,
                                      const std::vector<int>& label_vec) {
  const SequentialOptions& mo = model_->options();
  const int classes = mo.layers.back().outputs;
  bool repairable = true;
  for (int attempt = 0; attempt <= options_.max_retries && repairable; ++attempt) {
    const int64_t round = ++round_;
    Matrix logits;
    Status forward = model_->Forward(x, round, &logits);
    if (!forward.ok() && forward.code() != StatusCode::kDataLoss) return forward;
    if (!forward.ok()) last_failure_ = forward.message();
    bool failed = !forward.ok();
    double loss = std::numeric_limits<double>::quiet_NaN(), accuracy = 0.0;
    Matrix grad;
    StatusOr<LossAndGradient> lg = SoftmaxCrossEntropy(logits, label_vec);
    if (lg.ok()) {
      loss = lg->loss;
      accuracy = double(lg->correct) / double(mo.batch);
      grad = std::move(lg->gradient);
    } else {
      // Non-finite logits here only: the guard replaces this peer's copies.
      grad = Matrix::Constant(classes, mo.batch, std::numeric_limits<double>::quiet_NaN());
      if (forward.ok()) last_failure_ = lg.status().message();
    }
    Status backward = model_->Backward(grad, round);
    if (!backward.ok() && backward.code() != StatusCode::kDataLoss) return backward;
    if (!backward.ok() && forward.ok()) last_failure_ = backward.message();
    failed = failed || !backward.ok();
    counters_.results_located_by_this_peer += model_->last_wrong_results();
    POLYGUARD_ASSIGN_OR_RETURN(Decision d, Agree(failed, loss, accuracy, round));
    counters_.wrong_results += d.wrong_results;
    waiting_joiners_ = d.joiners;  // admitted at the start of the next step
    if (d.retry) {
      ++counters_.recomputations;
      if (d.any_failed) ++counters_.uncorrectable_steps;
      if (on_recompute_) on_recompute_(step, attempt + 1, d.any_failed);
      // A corrupted stored shard would fail the retry too.
      POLYGUARD_RETURN_IF_ERROR(ScrubAt(round, kRoundScrubs, &repairable).status());
      continue;
    }
    std::vector<bool> refused;  // per layer: its received copies were refused
    POLYGUARD_RETURN_IF_ERROR(ReplaceStaleCopies(d, round, &refused));
    Status update = Status::Ok();
    stale_layers_.resize(size_t(model_->num_layers()), false);
    for (int l = 0; l < model_->num_layers() && update.ok(); ++l) {
      if (refused[size_t(l)]) {
        stale_layers_[size_t(l)] = true;  // until a scrub repairs it
      } else {
        update = model_->layer(l).Update(options_.sgd, round);
      }
    }
    if (!update.ok()) {
      return FailedPreconditionError("step " + std::to_string(step) + ": training diverged (" +
                                     update.message() + ")");
    }
    counters_.results_corrected += d.wrong_results;
    ++counters_.steps;
    last_loss_ = d.loss;
    last_loss_step_ = step;
    last_failure_.clear();  // only a failure since the last completed step is told
    if (step > rollback_step_) rollbacks_in_a_row_ = 0;

    // A corrupted stored shard is located again and again. Decided from the
    // agreed wrong peers, so that every peer enters the same exchanges (with
    // wait_for < P peers decode from different results and locate
    // differently).
    const std::vector<int>& wrong = d.wrong_peers;
    bool repeated = false;
    for (int q : wrong)
      repeated = repeated || std::binary_search(previous_wrong_.begin(), previous_wrong_.end(), q);
    previous_wrong_ = wrong;
    const bool snapshot_due = step - snapshot_->step >= options_.snapshot_interval;
    if (repeated || snapshot_due ||
        (options_.scrub_interval > 0 && step % options_.scrub_interval == 0)) {
      POLYGUARD_ASSIGN_OR_RETURN(std::vector<int> found, ScrubAt(round, kRoundScrubs, &repairable));
      if (!repairable) break;
      if (found.empty() && snapshot_due) TakeSnapshot(step);
    }
    return StepResult{
        .loss = d.loss, .accuracy = d.accuracy, .next_step = step + 1, .rolled_back = false};
  }
  // Recomputing did not help (or a shard cannot be repaired): roll back.
  if (++rollbacks_in_a_row_ > options_.max_rollbacks) {
    std::string failure = last_failure_.substr(0, 240);
    if (failure.size() < last_failure_.size()) failure += "...";
    char loss[32];
    std::snprintf(loss, sizeof(loss), "%.6g", last_loss_);
    const std::string last =
        "the last failure: " +
        (failure.empty() ? std::string("none at this peer (another peer's)") : failure) +
        "; the last completed step: " + std::to_string(last_loss_step_) + ", loss " + loss;
    // The job-wide tally (the same at every peer): with nothing ever located,
    // a step that fails every retry the same way is the training's own doing.
    if (counters_.wrong_results == 0) {
      return DataLossError(
          "step " + std::to_string(step) + ": no progress after " +
          std::to_string(options_.max_rollbacks) +
          " rollbacks in a row, and no wrong result was located in this job: the training "
          "diverged (values too large for the products and decodes: lower the learning rate), "
          "or errors struck where no decode sees them (" +
          last + ")");
    }
    return DataLossError("step " + std::to_string(step) + ": no progress after " +
                         std::to_string(options_.max_rollbacks) +
                         " rollbacks in a row (errors beyond what the code corrects; " + last +
                         ")");
  }
  rollback_step_ = std::max(rollback_step_, step);
  Restore();
  ++counters_.rollbacks;
  previous_wrong_.clear();
  return StepResult{.loss = std::numeric_limits<double>::quiet_NaN(),
                    .accuracy = 0.0,
                    .next_step = snapshot_->step + 1,
                    .rolled_back = true};
}

Trainer::Undo Trainer::CaptureUndo(int64_t step) const {
  Undo u{.step = step,
         .previous_wrong = previous_wrong_,
         .stale_layers = stale_layers_,
         .rollbacks_in_a_row = rollbacks_in_a_row_,
         .rollback_step = rollback_step_,
         .snapshot = snapshot_,
         .taken = taken_};
  for (int l = 0; l < model_->num_layers(); ++l) {
    u.shards.push_back(model_->layer(l).shard());
    u.velocities.push_back(model_->layer(l).velocity());
  }
  return u;
}

void Trainer::RestoreUndo(const Undo& u) {
  for (int l = 0; l < model_->num_layers(); ++l) {
    model_->layer(l).set_shard(u.shards[size_t(l)]);
    model_->layer(l).set_velocity(u.velocities[size_t(l)]);
  }
  previous_wrong_ = u.previous_wrong;
  stale_layers_ = u.stale_layers;
  rollbacks_in_a_row_ = u.rollbacks_in_a_row;
  rollback_step_ = u.rollback_step;
  snapshot_ = u.snapshot;
  taken_ = u.taken;
}

Status Trainer::CheckSurvivable(const std::vector<int>& members,
                                const std::vector<int>& lost) const {
  const int present = static_cast<int>(members.size());
  const int wait_for = model_->options().product.wait_for;
  const std::string after = " with peers " + FormatPeers(lost) + " lost (" +
                            std::to_string(present) + " of " + std::to_string(group_->size()) +
                            " peers left)";
  for (int l = 0; l < model_->num_layers(); ++l) {
    const ProductCode& code = model_->layer(l).code();
    const int p = code.num_peers();
    const std::string layer = "layer " + std::to_string(l) + " (" + code.Describe() + "): ";
    if (present < code.recovery_threshold()) {
      return DataLossError(layer + "the forward threshold K = " +
                           std::to_string(code.recovery_threshold()) + " no longer holds" + after);
    }
    if (present < code.transpose_threshold()) {
      return DataLossError(layer + "the backward threshold " +
                           std::to_string(code.transpose_threshold()) + " no longer holds" + after);
    }
    // The errors each decode still corrects with fewer results.
    auto left = [&](int corrected, int threshold) {
      return corrected - (p - std::min(ResultsAwaited(wait_for, threshold, p), present));
    };
    const int budget =
        std::min(left(code.errors_corrected_probabilistic(), code.recovery_threshold()),
                 left(code.transpose_errors_corrected_probabilistic(), code.transpose_threshold()));
    if (std::max(budget, 0) < model_->options().errors_to_correct) {
      return DataLossError(layer + "corrects " + std::to_string(std::max(budget, 0)) +
                           " wrong results per product, the job's errors_to_correct is " +
                           std::to_string(model_->options().errors_to_correct) + after);
    }
    for (int t : members) {
      std::vector<int> others;
      for (int q : members)
        if (q != t) others.push_back(q);
      if (!code.RepairSources(t, others).ok()) {
        return DataLossError(layer + "peer " + std::to_string(t) +
                             "'s shard can no longer be repaired from the others" + after);
      }
    }
  }
  return Status::Ok();
}

StatusOr<int64_t> Trainer::SurviveLoss(int64_t step, const Status& cause) {
  const auto start = std::chrono::steady_clock::now();
  auto stop = [&](const Status& why) {
    return Status(why.code(), why.message() + " (after: " + cause.message() + ")");
  };
  StatusOr<std::vector<int>> lost = group_->AgreeOnLost(group_->timeout() * 3 / 2);
  if (!lost.ok()) return stop(lost.status());
  if (lost->empty()) return cause;  // nobody is gone: the exchange failed for another reason
  // (An agreement some survivors missed: the next one sees them again.)
  waiting_joiners_ = {};
  std::vector<int> members;
  for (int q : group_->members())
    if (!std::binary_search(lost->begin(), lost->end(), q)) members.push_back(q);
  if (Status s = CheckSurvivable(members, *lost); !s.ok()) return stop(s);
  if (Status s = group_->Reform(members, group_->generation() + 1); !s.ok()) return stop(s);
  counters_.peers_lost += static_cast<int64_t>(lost->size());
  // Survivors may be a step apart (a peer that got a lost peer's last piece
  // finished the step): all return to the start of the earliest one.
  // And a rejoin whose joiner's report reached some of them only (Welcome):
  // if any recorded it, all do (as when the joiner is lost a moment later).
  const std::vector<double> mine = {double(step), double(round_), double(peer_rejoins_.size())};
  POLYGUARD_ASSIGN_OR_RETURN(const ExchangeTag tag, MakeExchangeTag(ExchangeOp::kAgree, 0));
  StatusOr<Matrix> all = group_->AllGather(mine, tag);
  if (!all.ok()) return stop(all.status());
  int64_t earliest = step;
  double rounds = double(round_), recorded = double(peer_rejoins_.size());
  for (int q : members) {
    earliest = std::min(earliest, int64_t((*all)(0, q)));
    rounds = std::max(rounds, (*all)(1, q));
    recorded = std::max(recorded, (*all)(2, q));
  }
  if (recorded > double(peer_rejoins_.size())) CommitRejoin();
  pending_rejoin_.reset();
  if (earliest == step && undo_ && undo_->step == step) {
    RestoreUndo(*undo_);
  } else if (earliest == step - 1 && undo_before_ && undo_before_->step == earliest) {
    RestoreUndo(*undo_before_);
    undo_ = std::move(undo_before_);
    undo_before_.reset();
  } else {
    return stop(DataLossError("survivors cannot return to a common step: this peer is at " +
                              std::to_string(step) + ", another at " + std::to_string(earliest)));
  }
  round_ = int64_t(rounds);  // fresh rounds: no tag or fault decision repeats
  peer_losses_.push_back(
      {earliest, *lost, group_->generation(),
       std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()});
  return earliest;
}

namespace {

// The job's state handed to a replacement: numbers, and lists with their
// lengths before them. Every value is an integer below 2^53 or a time.
class StateWriter {
 public:
  void Add(double v) { out_.push_back(v); }
  void AddList(const std::vector<int>& v) {
    Add(double(v.size()));
    for (int q : v) Add(q);
  }
  std::vector<double> Take() { return std::move(out_); }

 private:
  std::vector<double> out_;
};

class StateReader {
 public:
  explicit StateReader(const std::vector<double>& in) : in_(in) {}
  double Next() { return at_ < in_.size() ? in_[at_++] : (bad_ = true, 0.0); }
  int64_t Int() { return int64_t(Next()); }
  std::vector<int> List() {
    const int64_t n = Int();
    std::vector<int> v;
    if (n < 0 || n > int64_t(in_.size())) return bad_ = true, v;
    for (int64_t i = 0; i < n; ++i) v.push_back(int(Next()));
    return v;
  }
  bool ok() const { return !bad_ && at_ == in_.size(); }

 private:
  const std::vector<double>& in_;
  size_t at_ = 0;
  bool bad_ = false;
};

}  // namespace

std::vector<double> Trainer::EncodeState(int64_t step, const std::vector<int>& old_members) const {
  StateWriter w;
  w.Add(double(step));
  w.AddList(old_members);
  for (int64_t v :
       {round_, snapshot_scrubs_, evaluation_rounds_, int64_t(rollbacks_in_a_row_), rollback_step_})
    w.Add(double(v));
  w.AddList(previous_wrong_);
  for (const State* st : {snapshot_.get(), taken_.get()}) {
    w.Add(st != nullptr ? 1.0 : 0.0);
    if (st == nullptr) continue;
    for (int64_t v : {st->step, st->round, int64_t(st->rollbacks_in_a_row), st->rollback_step})
      w.Add(double(v));
    w.AddList(st->previous_wrong);
  }
  const TrainingCounters& c = counters_;
  for (int64_t v : {c.steps, c.wrong_results, c.results_corrected, c.uncorrectable_steps,
                    c.recomputations, c.scrubs, c.shard_repairs, c.rollbacks, c.peers_lost,
                    c.degraded_steps, c.rejoins, c.rebuild_bytes})
    w.Add(double(v));
  w.Add(double(peer_losses_.size()));
  for (const PeerLoss& l : peer_losses_) {
    w.Add(double(l.step));
    w.Add(double(l.generation));
    w.Add(l.seconds);
    w.AddList(l.peers);
  }
  w.Add(double(peer_rejoins_.size()));
  for (const PeerRejoin& j : peer_rejoins_) {
    w.Add(double(j.step));
    w.Add(double(j.generation));
    w.Add(j.seconds);
    w.Add(double(j.bytes));
    w.AddList(j.peers);
    w.AddList(j.repaired);
  }
  return w.Take();
}

StatusOr<int64_t> Trainer::DecodeState(const std::vector<double>& state,
                                       std::vector<int>* old_members) {
  StateReader r(state);
  const int64_t step = r.Int();
  *old_members = r.List();
  round_ = r.Int();
  snapshot_scrubs_ = r.Int();
  evaluation_rounds_ = r.Int();
  rollbacks_in_a_row_ = int(r.Int());
  rollback_step_ = r.Int();
  previous_wrong_ = r.List();
  taken_.reset();
  for (int which = 0; which < 2; ++which) {
    if (r.Int() == 0) continue;
    State st;
    st.step = r.Int();
    st.round = r.Int();
    st.rollbacks_in_a_row = int(r.Int());
    st.rollback_step = r.Int();
    st.previous_wrong = r.List();
    // (Shards and velocities: rebuilt next.)
    (which == 0 ? snapshot_ : taken_) = std::make_shared<State>(std::move(st));
  }
  TrainingCounters& c = counters_;
  for (int64_t* v : {&c.steps, &c.wrong_results, &c.results_corrected, &c.uncorrectable_steps,
                     &c.recomputations, &c.scrubs, &c.shard_repairs, &c.rollbacks, &c.peers_lost,
                     &c.degraded_steps, &c.rejoins, &c.rebuild_bytes})
    *v = r.Int();
  peer_losses_.clear();
  for (int64_t i = 0, n = r.Int(); i < n && i < int64_t(state.size()); ++i) {
    PeerLoss l;
    l.step = r.Int();
    l.generation = r.Int();
    l.seconds = r.Next();
    l.peers = r.List();
    peer_losses_.push_back(std::move(l));
  }
  peer_rejoins_.clear();
  for (int64_t i = 0, n = r.Int(); i < n && i < int64_t(state.size()); ++i) {
    PeerRejoin j;
    j.step = r.Int();
    j.generation = r.Int();
    j.seconds = r.Next();
    j.bytes = r.Int();
    j.peers = r.List();
    j.repaired = r.List();
    peer_rejoins_.push_back(std::move(j));
  }
  if (!r.ok() || step < 1) {
    return DataLossError("rejoin: the job's state from the members is malformed (" +
                         std::to_string(state.size()) + " numbers)");
  }
  return step;
}

Status Trainer::AdmitWaiting(int64_t step) {
  std::vector<int> joiners;  // any member saw it: its request is in the store
  for (int q = 0; q < group_->size(); ++q) {
    const bool absent = !std::binary_search(group_->members().begin(), group_->members().end(), q);
    if (absent && waiting_joiners_.Contains(q)) joiners.push_back(q);
  }
  waiting_joiners_ = {};
  if (joiners.empty()) return Status::Ok();
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int> old_members = group_->members();
  POLYGUARD_ASSIGN_OR_RETURN(const std::vector<int> admitted, group_->Admit(joiners));
  if (admitted.empty()) return Status::Ok();  // they did not come: go on without them
  return Welcome(step, old_members, nullptr, start).status();
}

StatusOr<int64_t> Trainer::Rejoin(const std::function<void(int layer)>& on_layer) {
  if (!options_.survive_crashes) {
    return FailedPreconditionError("rejoin: the job does not survive crashes (survive_crashes)");
  }
  POLYGUARD_ASSIGN_OR_RETURN(const int64_t step,
                             Welcome(-1, {}, on_layer, std::chrono::steady_clock::now()));
  return step;
}

StatusOr<int64_t> Trainer::Welcome(int64_t step, std::vector<int> old_members,
                                   const std::function<void(int layer)>& on_layer,
                                   std::chrono::steady_clock::time_point start) {
  const bool joining = step < 0;
  const int p = group_->size(), me = group_->rank();
  // The first exchanges of the new generation: tags from step 0.
  POLYGUARD_ASSIGN_OR_RETURN(const ExchangeTag state_tag, MakeExchangeTag(ExchangeOp::kWelcome));
  POLYGUARD_ASSIGN_OR_RETURN(
      auto states,
      group_->AllGatherV(joining ? std::vector<double>() : EncodeState(step, old_members),
                         state_tag));
  if (joining) {
    const auto from = std::find_if(states.begin(), states.end(),
                                   [](const std::vector<double>& v) { return !v.empty(); });
    if (from == states.end()) return DataLossError("rejoin: no member sent the job's state");
    POLYGUARD_ASSIGN_OR_RETURN(step, DecodeState(*from, &old_members));
  }
  std::vector<int> joiners;
  for (int q : group_->members())
    if (!std::binary_search(old_members.begin(), old_members.end(), q)) joiners.push_back(q);
  const bool i_join = std::binary_search(joiners.begin(), joiners.end(), me);
  const size_t layers = size_t(model_->num_layers());
  // The old members' shards are checked before any is copied. A shard hit
  // and not yet scrubbed would make the joiner's rebuilt shard consistent
  // with it (rebuilt from it): then two explanations of the probes fit as
  // well as each other, and no scrub can tell which shards are wrong. So the
  // scrub's probe runs first with the joiners' shards as erasures (stale): it
  // locates and repairs the old members' wrong shards, and rebuilds the
  // joiners' shards and velocities from checked sources.
  if (i_join) stale_layers_.assign(layers, true);
  bool repairable = true;
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<int> found, ScrubAt(round_, kRoundScrubs, &repairable));
  if (!repairable) {
    return DataLossError("rejoin: before rebuilding peers " + FormatPeers(joiners) + ", " +
                         BeyondRepair(found));
  }
  found.erase(
      std::remove_if(found.begin(), found.end(),
                     [&](int q) { return std::binary_search(joiners.begin(), joiners.end(), q); }),
      found.end());
  // Every layer: the joiners' snapshot copies, each rebuilt from the code's
  // repair sources among the old members (snapshots are taken from checked
  // shards).
  int64_t bytes = 0;
  State& snapshot = Own(snapshot_);
  State* taken = taken_ ? &Own(taken_) : nullptr;
  if (i_join) {  // (DecodeState left the snapshots' matrices to rebuild)
    for (State* st : {&snapshot, taken}) {
      if (st == nullptr) continue;
      st->shards.resize(layers);
      st->velocities.resize(layers);
    }
  }
  for (int l = 0; l < model_->num_layers(); ++l) {
    CodedLayer& layer = model_->layer(l);
    const ProductCode& code = layer.code();
    std::vector<Matrix*> parts = {&snapshot.shards[size_t(l)], &snapshot.velocities[size_t(l)]};
    if (taken) {
      parts.push_back(&taken->shards[size_t(l)]);
      parts.push_back(&taken->velocities[size_t(l)]);
    }
    const Eigen::Index rows = layer.shard_rows(), cols = layer.shard_cols();
    const int64_t n = int64_t(parts.size()) * rows * cols;
    std::vector<std::vector<double>> to(static_cast<size_t>(p));
    std::vector<int64_t> from(static_cast<size_t>(p), 0);
    std::vector<int> my_sources;
    for (int t : joiners) {
      StatusOr<std::vector<int>> sources = code.RepairSources(t, old_members);
      if (!sources.ok()) {
        return DataLossError("rejoin: layer " + std::to_string(l) + " (" + code.Describe() +
                             "): peer " + std::to_string(t) +
                             "'s shard cannot be rebuilt from peers " + FormatPeers(old_members) +
                             ": " + sources.status().message());
      }
      for (int s : *sources) {
        // (With the shard and velocity the probe check sent.)
        bytes += (n + 2 + 2 * rows * cols) * int64_t(sizeof(double));
        if (t == me) from[size_t(s)] = n + 2;
        if (s != me) continue;
        std::vector<double>& piece = to[size_t(t)];
        piece.reserve(size_t(n + 2));
        for (const Matrix* m : parts) piece.insert(piece.end(), m->data(), m->data() + m->size());
        PushHalves(Checksum(piece.data(), piece.size()), &piece);
      }
      if (t == me) my_sources = *sources;
    }
    POLYGUARD_ASSIGN_OR_RETURN(const ExchangeTag tag, MakeExchangeTag(ExchangeOp::kRebuild, 0, l));
    POLYGUARD_ASSIGN_OR_RETURN(auto got, group_->SendRecv(to, from, tag));
    if (!i_join) continue;
    std::vector<std::vector<PeerResult>> pieces(parts.size());
    for (int s : my_sources) {
      const std::vector<double>& piece = got[size_t(s)];
      // (Its length first: a short piece must not be read past its end.)
      if (int64_t(piece.size()) != n + 2 ||
          FromHalves(piece[size_t(n)], piece[size_t(n) + 1]) != Checksum(piece.data(), size_t(n))) {
        return DataLossError("rejoin: layer " + std::to_string(l) + ": the piece from peer " +
                             std::to_string(s) + " failed its checksum");
      }
      for (size_t i = 0; i < parts.size(); ++i) {
        Matrix m(rows, cols);
        std::copy_n(piece.data() + int64_t(i) * rows * cols, rows * cols, m.data());
        pieces[i].push_back({s, std::move(m)});
      }
    }
    for (size_t i = 0; i < parts.size(); ++i) {
      POLYGUARD_ASSIGN_OR_RETURN(*parts[i], code.RepairShard(me, pieces[i]));
    }
    if (on_layer) on_layer(l);
  }
  // The joiners report that they rebuilt: the members only send in the
  // rebuild, and would otherwise count one that died in it as rejoined. A
  // joiner dying while it reports reaches some members only: the record
  // waits here until the report completed, and after a loss the survivors
  // agree on it (SurviveLoss).
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  pending_rejoin_ = PeerRejoin{step, joiners, group_->generation(), seconds, bytes, found};
  POLYGUARD_ASSIGN_OR_RETURN(const ExchangeTag done_tag, MakeExchangeTag(ExchangeOp::kWelcome, 1));
  POLYGUARD_RETURN_IF_ERROR(group_->AllGather(std::vector<double>{1.0}, done_tag).status());
  CommitRejoin();
  return step;
}

void Trainer::CommitRejoin() {
  if (!pending_rejoin_) return;
  counters_.rejoins += int64_t(pending_rejoin_->peers.size());
  counters_.rebuild_bytes += pending_rejoin_->bytes;
  counters_.rebuild_seconds += pending_rejoin_->seconds;
  peer_rejoins_.push_back(std::move(*pending_rejoin_));
  pending_rejoin_.reset();
}

Status Trainer::Train(int64_t steps, const BatchFn& batch, const StepFn& on_step) {
  Matrix x;
  std::vector<int> labels;
  for (int64_t step = 1; step <= steps;) {
    POLYGUARD_RETURN_IF_ERROR(
        batch(step, &x, &labels).WithContext("batch of step " + std::to_string(step)));
    POLYGUARD_ASSIGN_OR_RETURN(StepResult r, Step(step, x, labels));
    if (!r.rolled_back && on_step) on_step(step, r);
    step = r.next_step;
  }
  return Status::Ok();
}

}  // namespace polyguard
