#include "experiment/decode_soak.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <sstream>

#include "polyguard/base/random.h"
#include "polyguard/codes/low_weight_code.h"
#include "polyguard/codes/mds_code.h"
#include "polyguard/codes/polydot_code.h"
#include "polyguard/codes/product_trial.h"
#include "polyguard/codes/rotation_code.h"
#include "polyguard/codes/strategy_registry.h"
#include "polyguard/conv/coded_convolution.h"

namespace polyguard::experiment {
namespace {

struct SoakCode {
  std::string name;
  std::unique_ptr<ProductCode> code;
  // Results are one block per peer, so that the same flat index of two
  // peers' results is the same entry of the decoder and no other is.
  bool single_block = true;
  int64_t input_rows = 0;  // rows of B when not shape().inner (a convolution's input)
};

StatusOr<std::vector<SoakCode>> MakeCodes(Precision precision) {
  std::vector<SoakCode> codes;
  auto add = [&](std::string name, auto made, bool single_block, int64_t input_rows = 0) -> Status {
    if (!made.ok()) return made.status().WithContext(name);
    codes.push_back({std::move(name), std::move(made).value(), single_block, input_rows});
    return Status::Ok();
  };
  if (precision == Precision::kFloat32) {
    ProductCodeOptions polydot;
    polydot.shape = {64, 256, 32};
    polydot.peers = 8;
    polydot.m = polydot.n = 2;
    polydot.precision = Precision::kFloat32;
    ProductCodeOptions rotation = polydot;
    rotation.shape = {64, 256, 64};
    rotation.points = PointKind::kRotation;
    rotation.peers = 20;
    rotation.m = rotation.d = 4;
    rotation.n = 1;
    POLYGUARD_RETURN_IF_ERROR(add("genpolydot P=8 m=n=2 float32", MakeProductCode(polydot), true));
    POLYGUARD_RETURN_IF_ERROR(
        add("rotation points P=20 K=16 float32", MakeProductCode(rotation), false));
    return codes;
  }
  POLYGUARD_RETURN_IF_ERROR(add("genpolydot P=12 m=n=2",
                                PolyDotCode::Create({16, 12, 8}, {.peers = 12, .m = 2, .n = 2}),
                                true));
  POLYGUARD_RETURN_IF_ERROR(add("genpolydot P=14 m=2 n=3",
                                PolyDotCode::Create({32, 18, 8}, {.peers = 14, .m = 2, .n = 3}),
                                true));
  POLYGUARD_RETURN_IF_ERROR(
      add("mds P=10 Q=6", MdsCode::Create({24, 10, 6}, {.peers = 10, .data_blocks = 6}), true));
  // Generic errors in w peers of g blocks are told apart when each block has
  // at least w g entries: 8 x 8 per block here.
  POLYGUARD_RETURN_IF_ERROR(add("rotation P=10 m=d=2",
                                RotationCode::Create({32, 10, 32}, {.peers = 10, .m = 2, .d = 2}),
                                false));
  POLYGUARD_RETURN_IF_ERROR(
      add("lowweight P=10 k_a=k_b=2",
          LowWeightCode::Create({16, 10, 12}, {.peers = 10, .k_a = 2, .k_b = 2}), true));
  ConvShape conv{
      .channels = 2, .height = 10, .width = 10, .filters = 8, .kernel_h = 3, .kernel_w = 3};
  POLYGUARD_RETURN_IF_ERROR(
      add("conv (FCDCC) P=10 k_a=k_b=2",
          CodedConvolution::Create(conv, {.peers = 10, .k_a = 2, .k_b = 2, .batch = 2}), false,
          conv.input_size()));
  return codes;
}

// One error pattern: which answering peers get which additions.
struct Pattern {
  std::vector<int> wrong;  // positions in the answering list
};

enum class Family {
  kClean,
  kSameEntry,
  kIdentical,
  kProportional,
  kHugeBesideSmall,
  kNonFinite,
  kScattered,
  kDense,
  kMixed,
  kNearRoundoff,
  kBeyondSameEntry,
  kBeyondDense,
  kBeyondProportional,
};
constexpr Family kFamilies[] = {Family::kClean,
                                Family::kSameEntry,
                                Family::kIdentical,
                                Family::kProportional,
                                Family::kHugeBesideSmall,
                                Family::kNonFinite,
                                Family::kScattered,
                                Family::kDense,
                                Family::kMixed,
                                Family::kNearRoundoff,
                                Family::kBeyondSameEntry,
                                Family::kBeyondDense,
                                Family::kBeyondProportional};

const char* FamilyName(Family f) {
  switch (f) {
    case Family::kClean:
      return "clean (stragglers only)";
    case Family::kSameEntry:
      return "<= t in one entry";
    case Family::kIdentical:
      return "<= t identical, one entry";
    case Family::kProportional:
      return "<= t proportional dense";
    case Family::kHugeBesideSmall:
      return "<= t huge beside small, one entry";
    case Family::kNonFinite:
      return "<= t NaN/Inf with finite";
    case Family::kScattered:
      return "every peer, <= t per entry";
    case Family::kDense:
      return "claimed generic, dense, 1e-6..1e12";
    case Family::kMixed:
      return "claimed generic, dense and sparse";
    case Family::kNearRoundoff:
      return "claimed generic, 1e-12..1e-8";
    case Family::kBeyondSameEntry:
      return "beyond: > t in one entry";
    case Family::kBeyondDense:
      return "beyond: >= R-K dense";
    case Family::kBeyondProportional:
      return "beyond: > t proportional";
  }
  return "?";
}

char Guarantee(Family f) {
  switch (f) {
    case Family::kDense:
    case Family::kMixed:
      return 'b';
    case Family::kNearRoundoff:
      return 'n';
    case Family::kBeyondSameEntry:
    case Family::kBeyondDense:
    case Family::kBeyondProportional:
      return 'c';
    default:
      return 'a';
  }
}

double LogUniform(Random& rng, double lo, double hi) {
  return std::exp(rng.Uniform(std::log(lo), std::log(hi))) * (rng.Uniform() < 0.5 ? -1.0 : 1.0);
}

// Adds family f's errors to the answering results (values[i] is the result
// of answering peer i). R answering, threshold K, scale: the results' RMS.
// generic: the wrong peers with generic errors the code claims to correct
// from these results (its P-result claim less the results missing). floor:
// the smallest error, relative to scale (1e-6; float32: 200 rho, the
// float32 tests' window).
void Inject(Family f, Random& rng, int k, int generic, double scale, double floor,
            std::vector<Matrix>* values) {
  const int r = static_cast<int>(values->size());
  const int t = (r - k) / 2;
  const Eigen::Index len = (*values)[0].size();
  auto pick = [&](int w) { return rng.Sample(r, std::clamp(w, 0, r)); };
  auto at = [&](int i, Eigen::Index e) -> double& { return (*values)[size_t(i)].data()[e]; };
  const Eigen::Index entry = rng.UniformInt(0, len - 1);
  switch (f) {
    case Family::kClean:
      return;
    case Family::kSameEntry:
      for (int i : pick(t)) at(i, entry) += LogUniform(rng, floor, 1e12) * scale;
      return;
    case Family::kIdentical: {
      const double e = LogUniform(rng, floor, 1e12) * scale;
      for (int i : pick(t)) at(i, entry) += e;
      return;
    }
    case Family::kProportional:
    case Family::kBeyondProportional: {
      const int w =
          f == Family::kProportional ? t : int(rng.UniformInt(t + 1, std::max(t + 1, r - k)));
      const Matrix dir = rng.NormalMatrix((*values)[0].rows(), (*values)[0].cols());
      for (int i : pick(w)) (*values)[size_t(i)] += LogUniform(rng, floor, 1e12) * scale * dir;
      return;
    }
    case Family::kHugeBesideSmall: {
      const std::vector<int> w = pick(t);
      for (size_t j = 0; j < w.size(); ++j) {
        at(w[j], entry) += (j == 0 || (j == 1 && rng.Uniform() < 0.5))
                               ? LogUniform(rng, 1e12, 1e15) * scale
                               : LogUniform(rng, 1e-7, 1.0) * scale;
      }
      return;
    }
    case Family::kNonFinite: {
      const std::vector<int> w = pick(t);
      for (size_t j = 0; j < w.size(); ++j) {
        const double u = rng.Uniform();
        at(w[j], entry) += u < 0.3   ? std::numeric_limits<double>::quiet_NaN()
                           : u < 0.5 ? std::numeric_limits<double>::infinity()
                                     : LogUniform(rng, floor, 1e12) * scale;
        if (rng.Uniform() < 0.3)
          (*values)[size_t(w[j])] += rng.NormalMatrix(1, 1)(0, 0) * scale *
                                     Matrix::Ones((*values)[0].rows(), (*values)[0].cols());
      }
      return;
    }
    case Family::kScattered: {
      // A few entries, each with up to t wrong peers: every peer may be hit.
      const int entries = int(rng.UniformInt(1, std::min<Eigen::Index>(len, 2 * r)));
      for (int l : rng.Sample(int(std::min<Eigen::Index>(len, 1 << 20)), entries)) {
        for (int i : pick(int(rng.UniformInt(0, t))))
          at(i, l) += LogUniform(rng, floor, 1e12) * scale;
      }
      return;
    }
    case Family::kDense:
    case Family::kNearRoundoff:
      for (int i : pick(generic)) {
        const double m =
            f == Family::kDense ? LogUniform(rng, floor, 1e12) : LogUniform(rng, 1e-12, 1e-8);
        (*values)[size_t(i)] +=
            m * scale * rng.NormalMatrix((*values)[0].rows(), (*values)[0].cols());
      }
      return;
    case Family::kMixed: {
      // Dense peers and sparse ones, each sparse peer in entries of its own
      // (so that the error vectors stay independent).
      const std::vector<int> w = pick(generic);
      const std::vector<int> entries = rng.Sample(int(std::min<Eigen::Index>(len, 1 << 20)),
                                                  std::min<int>(int(w.size()), int(len)));
      for (size_t j = 0; j < w.size(); ++j) {
        if (j % 2 == 0 || j >= entries.size()) {
          (*values)[size_t(w[j])] += LogUniform(rng, floor, 1e12) * scale *
                                     rng.NormalMatrix((*values)[0].rows(), (*values)[0].cols());
        } else {
          at(w[j], entries[j]) += LogUniform(rng, 1e-3, 1e12) * scale;
        }
      }
      return;
    }
    case Family::kBeyondSameEntry:
      for (int i : pick(int(rng.UniformInt(t + 1, r))))
        at(i, entry) += LogUniform(rng, floor, 1e12) * scale;
      return;
    case Family::kBeyondDense:
      for (int i : pick(int(rng.UniformInt(std::min(r, r - k), r))))
        (*values)[size_t(i)] += LogUniform(rng, floor, 1e12) * scale *
                                rng.NormalMatrix((*values)[0].rows(), (*values)[0].cols());
      return;
  }
}

double RelativeError(const Matrix& got, const Matrix& want) {
  if (got.rows() != want.rows() || got.cols() != want.cols()) return INFINITY;
  const double d = (got - want).norm();
  return std::isfinite(d) ? d / std::max(want.norm(), 1e-300) : INFINITY;
}

}  // namespace

bool Failed(const SoakRow& row) {
  if (row.verified_wrong > 0 || row.other > 0 || row.false_positives > 0) return true;
  return (row.guarantee == 'a' || row.guarantee == 'b') && row.exact != row.decodes;
}

StatusOr<std::vector<SoakRow>> RunDecodeSoak(const SoakOptions& o,
                                             const std::function<void(int64_t)>& progress) {
  if (o.decodes < 0 || o.data_every < 1 || !(o.exact_tolerance > 0)) {
    return InvalidArgumentError("soak: decodes >= 0, data_every >= 1, exact_tolerance > 0");
  }
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<SoakCode> codes, MakeCodes(o.precision));
  const bool narrow = o.precision == Precision::kFloat32;
  std::vector<std::vector<Family>> families(codes.size());
  std::vector<SoakRow> rows;
  std::vector<std::vector<size_t>> row_of(codes.size());
  for (size_t c = 0; c < codes.size(); ++c) {
    for (Family f : kFamilies) {
      if (f == Family::kScattered && !codes[c].single_block) continue;
      if (narrow && f != Family::kClean && f != Family::kDense && f != Family::kBeyondDense)
        continue;
      if (o.clean_only && f != Family::kClean) continue;
      families[c].push_back(f);
      row_of[c].push_back(rows.size());
      rows.push_back({.code = codes[c].name,
                      .family = narrow && f == Family::kDense
                                    ? "claimed generic, dense, 200 rho..1e12"
                                    : FamilyName(f),
                      .guarantee = Guarantee(f)});
    }
  }
  Random rng(DeriveSeed(o.seed, {0x50a4}));
  struct Data {
    Matrix reference;                 // the clean decode of all P results
    std::vector<PeerResult> results;  // every peer's clean result
    double scale = 1.0;
  };
  std::vector<Data> data(codes.size());
  std::vector<int64_t> uses(codes.size(), 0);
  for (int64_t i = 0; i < o.decodes; ++i) {
    const size_t c = size_t(i % int64_t(codes.size()));
    const ProductCode& code = *codes[c].code;
    const int p = code.num_peers(), k = code.recovery_threshold();
    Data& d = data[c];
    if (uses[c]++ % o.data_every == 0) {
      const ProductShape s = code.shape();
      const int64_t b_rows = codes[c].input_rows > 0 ? codes[c].input_rows : s.inner;
      const Matrix a = rng.NormalMatrix(s.rows, s.inner), b = rng.NormalMatrix(b_rows, s.cols);
      d.results.clear();
      std::vector<double> rms;
      for (int q = 0; q < p; ++q) {
        POLYGUARD_ASSIGN_OR_RETURN(Matrix shard, code.EncodeShard(a, q));
        POLYGUARD_ASSIGN_OR_RETURN(Matrix piece, code.EncodeInput(b, q));
        // With its declared roundoff scale, as CodedProduct sends it.
        d.results.push_back({q, code.PeerProduct(shard, piece), RoundoffScale(shard, piece)});
        rms.push_back(d.results.back().value.norm() /
                      std::sqrt(double(std::max<Eigen::Index>(1, d.results.back().value.size()))));
      }
      std::sort(rms.begin(), rms.end());
      d.scale = rms[rms.size() / 2];
      if (narrow) {
        d.reference = a * b;
      } else {
        POLYGUARD_ASSIGN_OR_RETURN(DecodedProduct clean, code.Decode(d.results));
        d.reference = std::move(clean.product);
      }
    }
    const size_t fi = size_t((i / int64_t(codes.size())) % int64_t(families[c].size()));
    const Family f = families[c][fi];
    SoakRow& row = rows[row_of[c][fi]];
    // Stragglers: any number that leaves at least K + 1 results.
    const int missing = int(rng.UniformInt(0, std::max(0, p - k - 1)));
    const std::vector<int> order = rng.Sample(p, p);
    std::vector<PeerResult> arrived;
    std::vector<Matrix> values;
    for (int j = missing; j < p; ++j) values.push_back(d.results[size_t(order[size_t(j)])].value);
    const int generic = std::max(0, code.errors_corrected_probabilistic() - missing);
    const int64_t inner = std::max(code.shape().rows, code.shape().inner);
    const double floor = narrow ? 200 * UnitRoundoff(o.precision) * std::sqrt(double(inner)) : 1e-6;
    Inject(f, rng, k, generic, d.scale, floor, &values);
    for (int j = missing; j < p; ++j)
      arrived.push_back({order[size_t(j)], std::move(values[size_t(j - missing)])});
    StatusOr<DecodedProduct> got = code.Decode(arrived);
    ++row.decodes;
    bool failure = false;
    const double exact_tolerance = narrow ? ExactProductTolerance(code) : o.exact_tolerance;
    if (got.ok()) {
      const double err = RelativeError(got->product, d.reference);
      if (f == Family::kClean && !got->wrong_peers.empty()) {
        ++row.false_positives;
        failure = true;
      }
      if (!got->verified) {
        ++row.unverified;
        failure = failure || row.guarantee == 'a' || row.guarantee == 'b';
      } else if (err <= exact_tolerance) {
        ++row.exact;
        row.worst_exact = std::max(row.worst_exact, err);
      } else {
        ++row.verified_wrong;
        failure = true;
      }
    } else if (got.status().code() == StatusCode::kDataLoss) {
      ++row.data_loss;
      failure = row.guarantee == 'a' || row.guarantee == 'b';
    } else {
      ++row.other;
      failure = true;
    }
    if (failure && row.first_failure.empty()) {
      std::ostringstream why;
      why << "decode " << i << " (seed " << o.seed << "), " << arrived.size() << " results: "
          << (got.ok() ? (!got->wrong_peers.empty() && f == Family::kClean
                              ? "named an honest peer"
                              : (got->verified ? "verified wrong" : "unverified"))
                       : got.status().ToString());
      row.first_failure = why.str();
    }
    if (progress && (i + 1) % 10000 == 0) progress(i + 1);
  }
  return rows;
}

std::string FormatSoakTable(const std::vector<SoakRow>& rows) {
  std::ostringstream out;
  out << "| code | family | guarantee | decodes | exact | DataLoss | unverified | verified wrong "
         "| false positives | worst exact error |\n|---|---|---|---|---|---|---|---|---|---|\n";
  SoakRow total;
  int failed = 0;
  for (const SoakRow& r : rows) {
    char worst[32];
    std::snprintf(worst, sizeof worst, "%.1e", r.worst_exact);
    out << "| " << r.code << " | " << r.family << " | " << r.guarantee << " | " << r.decodes
        << " | " << r.exact << " | " << r.data_loss << " | " << r.unverified << " | "
        << r.verified_wrong << (Failed(r) ? " **FAILED**" : "") << " | " << r.false_positives
        << " | " << worst << " |\n";
    total.decodes += r.decodes;
    total.exact += r.exact;
    total.data_loss += r.data_loss;
    total.unverified += r.unverified;
    total.verified_wrong += r.verified_wrong;
    total.false_positives += r.false_positives;
    failed += Failed(r) ? 1 : 0;
  }
  out << "\n"
      << total.decodes << " decodes: " << total.exact << " exact, " << total.data_loss
      << " DataLoss, " << total.unverified << " unverified, " << total.verified_wrong
      << " verified wrong, " << total.false_positives << " false positives; " << failed << " of "
      << rows.size() << " rows broke the guarantee\n";
  for (const SoakRow& r : rows)
    if (!r.first_failure.empty())
      out << "- " << r.code << ", " << r.family << ": " << r.first_failure << "\n";
  return out.str();
}

}  // namespace polyguard::experiment
