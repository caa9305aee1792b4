// Adversarial tests of the decoders' guarantee, through the public ProductCode
// API only (errors_and_erasures_decoder.h, linear_code_decoder.h). With R
// results and threshold K:
//   (a) at most floor((R - K)/2) wrong results in every entry (any values:
//       equal, proportional, huge beside tiny, NaN, Inf): the exact product,
//       verified;
//   (b) at most R - K - 1 wrong results with generic errors (dense random
//       vectors of independent directions, magnitudes 1e-6 .. 1e15 of the
//       data): the exact product, verified;
//   (c) anything else: DataLoss naming suspects, never a wrong product marked
//       verified (except patterns that are themselves at least as close to
//       another code word: ExceptionClass below).
// With R = K nothing is checked: verified = false.
//
// An "entry" here is a symbol of the code: one number of a result for the
// one-row-per-peer codes, and the 4 numbers at the same place of a rotation
// code's 4 blocks (its decoder counts wrong peers per such symbol).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codes/code_test_util.h"
#include "polyguard/base/random.h"
#include "polyguard/codes/evaluation_points.h"
#include "polyguard/codes/low_weight_code.h"
#include "polyguard/codes/mds_code.h"
#include "polyguard/codes/polydot_code.h"
#include "polyguard/codes/rotation_code.h"

namespace polyguard {
namespace {
namespace decoder_guarantee_test {

using testing::ForEachSubset;
using testing::RelativeError;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Trial counts are for a Release build; a sanitized build runs an eighth.
int Trials(int n) { return kSanitized ? std::max(1, n / 8) : n; }

// Names the trial being decoded if the decoder crashes (a random test would
// otherwise die without saying which pattern killed it). Not under a
// sanitizer, whose own report says more.
const std::string* current_trial = nullptr;

void OnCrash(int sig) {
  if (current_trial != nullptr) {
    const char head[] = "\n*** decoder crashed on: ";
    [[maybe_unused]] auto n = write(2, head, sizeof(head) - 1);
    n = write(2, current_trial->data(), current_trial->size());
    n = write(2, "\n", 1);
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

class CrashTrace {
 public:
  explicit CrashTrace(const std::string& trace) {
    static const bool installed = [] {
      if (!kSanitized) {
        std::signal(SIGSEGV, OnCrash);
        std::signal(SIGABRT, OnCrash);
      }
      return true;
    }();
    (void)installed;
    current_trial = &trace;
  }
  ~CrashTrace() { current_trial = nullptr; }
  CrashTrace(const CrashTrace&) = delete;
  CrashTrace& operator=(const CrashTrace&) = delete;
};

constexpr double kExactBound = 1e-9;      // relative error of an exact product
constexpr double kNearExactBound = 1e-8;  // when errors are 1e-10 .. 1e-8 of the data
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------
// Codes under test.

enum class Kind { kPolyDot, kMds, kRotation, kLowWeight };

struct CodeSpec {
  const char* name;
  Kind kind;
  int peers;
  int x, y, z;  // PolyDot m, n, d; MDS Q; rotation m, d; low-weight k_a, k_b
  ProductShape shape;
};

const CodeSpec kCodes[] = {
    {"PolyDotP12m2n2d1", Kind::kPolyDot, 12, 2, 2, 1, {16, 12, 8}},
    {"PolyDotP14m2n3d1", Kind::kPolyDot, 14, 2, 3, 1, {32, 12, 8}},
    {"PolynomialP10m3d2", Kind::kPolyDot, 10, 3, 1, 2, {11, 5, 7}},  // padded
    {"MatDotP9n3", Kind::kPolyDot, 9, 1, 3, 1, {6, 9, 5}},
    {"MdsP10Q5", Kind::kMds, 10, 5, 0, 0, {10, 6, 4}},
    {"RotationP8m2d2", Kind::kRotation, 8, 2, 2, 0, {16, 6, 16}},
    {"RotationP10m1d2", Kind::kRotation, 10, 1, 2, 0, {8, 4, 32}},
    {"LowWeightP9ka2kb2", Kind::kLowWeight, 9, 2, 2, 0, {8, 6, 8}},
    {"LowWeightP10ka3kb1", Kind::kLowWeight, 10, 3, 1, 0, {12, 6, 4}},
};

// A code with what the tests need to reason about its code words.
struct CodeUnderTest {
  const CodeSpec* spec = nullptr;
  std::unique_ptr<ProductCode> code;
  int k = 0;
  int g = 1;            // numbers per peer in one symbol
  int64_t symbols = 0;  // L: symbols per result
  Matrix generator;     // (P g) x columns: the code words' column space
  // layout[l g + b]: linear (column-major) index of part b of symbol l.
  std::vector<Eigen::Index> layout;
  Eigen::Index result_rows = 0, result_cols = 0;
  // The decoder's own view, for aiming at its error-free check: the
  // evaluation points (PolyDot, MDS: ErrorsAndErasuresDecoder) or the
  // generator (LinearCodeDecoder).
  bool evaluation = false;
  std::vector<double> points;
};

std::unique_ptr<CodeUnderTest> BuildCode(const CodeSpec& spec) {
  auto s = std::make_unique<CodeUnderTest>();
  s->spec = &spec;
  switch (spec.kind) {
    case Kind::kPolyDot: {
      auto code = PolyDotCode::Create(spec.shape,
                                      {.peers = spec.peers, .m = spec.x, .n = spec.y, .d = spec.z})
                      .value();
      s->points = code->points();
      s->generator = ChebyshevBasis(s->points, code->recovery_threshold());
      s->evaluation = true;
      s->code = std::move(code);
      break;
    }
    case Kind::kMds: {
      auto code = MdsCode::Create(spec.shape, {.peers = spec.peers, .data_blocks = spec.x}).value();
      s->generator = code->generator();
      s->points = MakeSystematicMds(PointKind::kChebyshev, spec.peers, spec.x).points;
      s->evaluation = true;
      s->code = std::move(code);
      break;
    }
    case Kind::kRotation: {
      auto code =
          RotationCode::Create(spec.shape, {.peers = spec.peers, .m = spec.x, .d = spec.y}).value();
      s->generator = code->generator();
      s->g = 4;
      s->code = std::move(code);
      break;
    }
    case Kind::kLowWeight: {
      auto code =
          LowWeightCode::Create(spec.shape, {.peers = spec.peers, .k_a = spec.x, .k_b = spec.y})
              .value();
      s->generator = code->design().generator;
      s->code = std::move(code);
      break;
    }
  }
  s->k = s->code->recovery_threshold();
  const ProductShape sh = spec.shape;
  const Matrix shard = s->code->EncodeShard(Matrix::Zero(sh.rows, sh.inner), 0).value();
  const Matrix piece = s->code->EncodeInput(Matrix::Zero(sh.inner, sh.cols), 0).value();
  const Matrix result = s->code->PeerProduct(shard, piece);
  s->result_rows = result.rows();
  s->result_cols = result.cols();
  if (s->g == 1) {
    s->symbols = result.size();
    for (Eigen::Index i = 0; i < result.size(); ++i) s->layout.push_back(i);
  } else {
    // Rotation: the result is [A~0; A~1] [B~0 B~1], block (a, b) = p_ab,
    // generator row 4 r + 2 a + b.
    const Eigen::Index br = result.rows() / 2, bc = result.cols() / 2;
    s->symbols = br * bc;
    s->layout.resize(static_cast<size_t>(4 * br * bc));
    for (Eigen::Index j = 0; j < bc; ++j) {
      for (Eigen::Index i = 0; i < br; ++i) {
        const Eigen::Index l = i + br * j;
        for (int a = 0; a < 2; ++a) {
          for (int b = 0; b < 2; ++b) {
            s->layout[static_cast<size_t>(4 * l + 2 * a + b)] =
                (a * br + i) + (b * bc + j) * result.rows();
          }
        }
      }
    }
  }
  return s;
}

const CodeUnderTest& GetCode(const CodeSpec& spec) {
  static std::map<std::string, std::unique_ptr<CodeUnderTest>>* cache =
      new std::map<std::string, std::unique_ptr<CodeUnderTest>>();
  auto& slot = (*cache)[spec.name];
  if (!slot) slot = BuildCode(spec);
  return *slot;
}

const CodeSpec& SpecNamed(const std::string& name) {
  for (const CodeSpec& c : kCodes)
    if (name == c.name) return c;
  ADD_FAILURE() << "no code " << name;
  return kCodes[0];
}

// ---------------------------------------------------------------------------
// Trials: random A and B, honest results, then errors.

struct Trial {
  Matrix expected;
  std::vector<PeerResult> honest;   // the answering peers, ascending
  std::vector<PeerResult> results;  // as they arrive: honest plus errors
  double scale = 0.0;               // median RMS of the honest results
  int r() const { return static_cast<int>(results.size()); }
};

Trial MakeTrial(const CodeUnderTest& s, Random& rng, int stragglers, const Matrix* a_in = nullptr,
                const Matrix* b_in = nullptr) {
  Trial t;
  const ProductShape sh = s.code->shape();
  const Matrix a = a_in ? *a_in : rng.NormalMatrix(sh.rows, sh.inner);
  const Matrix b = b_in ? *b_in : rng.NormalMatrix(sh.inner, sh.cols);
  t.expected = a * b;
  const int p = s.code->num_peers();
  std::vector<int> missing = rng.Sample(p, stragglers);
  std::vector<double> rms;
  for (int peer = 0; peer < p; ++peer) {
    if (std::find(missing.begin(), missing.end(), peer) != missing.end()) continue;
    Matrix value = s.code->PeerProduct(s.code->EncodeShard(a, peer).value(),
                                       s.code->EncodeInput(b, peer).value());
    rms.push_back(value.norm() / std::sqrt(double(value.size())));
    t.honest.push_back({peer, std::move(value)});
  }
  std::sort(rms.begin(), rms.end());
  t.scale = rms[rms.size() / 2];
  t.results = t.honest;
  return t;
}

double& At(const CodeUnderTest& s, Trial* t, int j, int64_t symbol, int part) {
  return t->results[static_cast<size_t>(j)]
      .value.data()[s.layout[static_cast<size_t>(symbol * s.g + part)]];
}

double& At(Matrix& m, const CodeUnderTest& s, int64_t symbol, int part) {
  return m.data()[s.layout[static_cast<size_t>(symbol * s.g + part)]];
}

// A dense error of RMS 1 over a whole result.
Matrix DenseError(const CodeUnderTest& s, Random& rng) {
  Matrix e = rng.NormalMatrix(s.result_rows, s.result_cols);
  return e / (e.norm() / std::sqrt(double(e.size())));
}

double Sign(Random& rng) { return rng.Uniform() < 0.5 ? -1.0 : 1.0; }
double Pow10(Random& rng, double lo, double hi) { return std::pow(10.0, rng.Uniform(lo, hi)); }

// How many results are wrong, and the most wrong in one symbol.
struct Damage {
  int per_symbol = 0;
  std::vector<int> peers;  // ids, ascending
};

Damage Count(const CodeUnderTest& s, const Trial& t) {
  Damage d;
  std::vector<int> per(static_cast<size_t>(s.symbols), 0);
  for (size_t j = 0; j < t.results.size(); ++j) {
    bool wrong = false;
    for (int64_t l = 0; l < s.symbols; ++l) {
      bool sym_wrong = false;
      for (int b = 0; b < s.g; ++b) {
        const Eigen::Index i = s.layout[static_cast<size_t>(l * s.g + b)];
        const double got = t.results[j].value.data()[i], want = t.honest[j].value.data()[i];
        if (!(got == want)) sym_wrong = true;
      }
      if (sym_wrong) {
        ++per[static_cast<size_t>(l)];
        wrong = true;
      }
    }
    if (wrong) d.peers.push_back(t.results[j].peer);
  }
  for (int c : per) d.per_symbol = std::max(d.per_symbol, c);
  return d;
}

enum class Promise {
  kExact,      // (a) or (b): the product, verified iff R > K, relative error <= 1e-9
  kNearExact,  // the same within 1e-8 (errors of 1e-10 .. 1e-8 of the data)
  kSafe,       // (c): DataLoss naming suspects, or a verified product that is right
  kAnything,   // exception class: DataLoss or any product (but no crash)
};

const char* PromiseName(Promise p) {
  switch (p) {
    case Promise::kExact:
      return "exact";
    case Promise::kNearExact:
      return "near-exact";
    case Promise::kSafe:
      return "safe";
    case Promise::kAnything:
      return "exception-class";
  }
  return "?";
}

// What the guarantee promises for the errors in `t`: counts wrong values per
// symbol (a); `generic` says every wrong result got an independent dense
// random error of 1e-6 .. 1e15 of the data (b).
Promise Classify(const CodeUnderTest& s, const Trial& t, bool generic, double smallest_error) {
  const Damage d = Count(s, t);
  const int redundancy = t.r() - s.k;
  const int wrong = static_cast<int>(d.peers.size());
  bool exact = d.per_symbol <= redundancy / 2;
  if (generic && wrong <= redundancy - 1 && int64_t{wrong} * s.g <= s.symbols) exact = true;
  if (!exact) return Promise::kSafe;
  return smallest_error < 1e-8 ? Promise::kNearExact : Promise::kExact;
}

// Decodes and checks the promise.
::testing::AssertionResult Check(const CodeUnderTest& s, const Trial& t, Promise promise) {
  auto got = s.code->Decode(t.results);
  const bool redundant = t.r() > s.k;
  if (promise == Promise::kExact || promise == Promise::kNearExact) {
    if (!got.ok()) return ::testing::AssertionFailure() << "no product: " << got.status();
    const double err = RelativeError(got->product, t.expected);
    const double bound = promise == Promise::kExact ? kExactBound : kNearExactBound;
    if (got->verified != redundant || !(err <= bound)) {
      return ::testing::AssertionFailure()
             << "verified=" << got->verified << " relative error " << err;
    }
    return ::testing::AssertionSuccess();
  }
  if (!got.ok()) {
    if (got.status().code() != StatusCode::kDataLoss || got.status().message().empty())
      return ::testing::AssertionFailure() << "expected DataLoss, got " << got.status();
    return ::testing::AssertionSuccess();
  }
  if (got->verified && promise == Promise::kSafe) {
    const double err = RelativeError(got->product, t.expected);
    if (!(err <= kExactBound)) {
      return ::testing::AssertionFailure()
             << "a wrong product marked verified, relative error " << err << ", wrong_peers "
             << FormatPeers(got->wrong_peers);
    }
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// Families of error patterns.

enum class Family {
  kIdentical,     // the same error at several peers (one entry or dense)
  kProportional,  // errors along one direction, different sizes and signs
  kUnequal,       // huge (1e12, 1e15) beside tiny (1, 1e-3, 1e-6) in the same entry
  kMagnitudes,    // 1e-10 .. 1e15 of the data, scattered entries or dense generic
  kNonFinite,     // NaN and Inf beside finite errors
  kNearRoundoff,  // 1e-9 and 1e-8 of the data
  kScattered,     // up to floor((R - K)/2) wrong in each of many entries: all peers wrong
  kStragglers,    // missing peers, then another family
  kBeyond,        // more than the budget: DataLoss or exact, never verified-wrong
};

const Family kFamilies[] = {Family::kIdentical,  Family::kProportional, Family::kUnequal,
                            Family::kMagnitudes, Family::kNonFinite,    Family::kNearRoundoff,
                            Family::kScattered,  Family::kStragglers,   Family::kBeyond};

const char* FamilyName(Family f) {
  switch (f) {
    case Family::kIdentical:
      return "Identical";
    case Family::kProportional:
      return "Proportional";
    case Family::kUnequal:
      return "Unequal";
    case Family::kMagnitudes:
      return "Magnitudes";
    case Family::kNonFinite:
      return "NonFinite";
    case Family::kNearRoundoff:
      return "NearRoundoff";
    case Family::kScattered:
      return "Scattered";
    case Family::kStragglers:
      return "Stragglers";
    case Family::kBeyond:
      return "Beyond";
  }
  return "?";
}

int Clamp(int w, int lo, int hi) { return std::max(lo, std::min(w, hi)); }

struct Pattern {
  Promise promise = Promise::kExact;
  std::string what;
};

bool HasCloserCodeWord(const CodeUnderTest& s, const Trial& t);

// (c) patterns that are themselves as close to another code word as to the
// true one are the exception class: anything but a crash is allowed.
Pattern Exempt(const CodeUnderTest& s, const Trial& t, Pattern p) {
  if (p.promise == Promise::kSafe && HasCloserCodeWord(s, t)) {
    p.promise = Promise::kAnything;
    p.what += " (as close to another code word)";
  }
  return p;
}

// Injects one random pattern of family f into t (made with the family's
// stragglers by MakeFamilyTrial). lo_exp bounds the smallest relative error.
Pattern Inject(Family f, const CodeUnderTest& s, Trial* t, Random& rng, double lo_exp = -10.0) {
  const int r = t->r(), k = s.k, redundancy = r - k, tb = redundancy / 2;
  const int bb = static_cast<int>(std::min<int64_t>(redundancy - 1, s.symbols / s.g));
  const double scale = t->scale;
  bool generic = false;
  double smallest = kInf;
  std::string what = FamilyName(f);
  auto entry = [&](int j, int64_t l, double v) {
    const int part = static_cast<int>(rng.UniformInt(0, s.g - 1));
    double& x = At(s, t, j, l, part);
    x = std::isfinite(v) ? x + v : v;
    if (std::isfinite(v)) smallest = std::min(smallest, std::abs(v) / scale);
  };
  auto dense = [&](int j, const Matrix& e, double mag) {
    t->results[static_cast<size_t>(j)].value += mag * scale * e;
    smallest = std::min(smallest, std::abs(mag));
  };
  auto sym = [&]() { return rng.UniformInt(0, s.symbols - 1); };
  switch (f) {
    case Family::kIdentical:
    case Family::kProportional: {
      const int w = Clamp(static_cast<int>(rng.UniformInt(1, redundancy + 1)), 1, r);
      const std::vector<int> js = rng.Sample(r, w);
      const double mag = Pow10(rng, std::max(lo_exp, -6.0), 12.0) * Sign(rng);
      const bool one_entry = rng.Uniform() < 0.5;
      Matrix e = DenseError(s, rng);
      if (one_entry) {
        e.setZero();
        At(e, s, sym(), static_cast<int>(rng.UniformInt(0, s.g - 1))) = 1.0;
      }
      for (int j : js) {
        double c = f == Family::kIdentical ? 1.0 : Pow10(rng, -3.0, 3.0) * Sign(rng);
        if (std::abs(c * mag) < std::pow(10.0, lo_exp)) c = std::pow(10.0, lo_exp) / mag;
        dense(j, e, c * mag);
      }
      generic = !one_entry && w == 1;
      what += (one_entry ? " one-entry w=" : " dense w=") + std::to_string(w);
      break;
    }
    case Family::kUnequal: {
      const double huge[] = {1e12, 1e15};
      const double tiny[] = {1.0, 1e-3, 1e-6};
      const int mode = static_cast<int>(rng.UniformInt(0, 2));
      if (mode == 0) {  // same entry
        const int w = Clamp(static_cast<int>(rng.UniformInt(2, std::max(2, tb))), 1, r);
        const std::vector<int> js = rng.Sample(r, w);
        const int64_t l = sym();
        for (size_t i = 0; i < js.size(); ++i) {
          const double mag = i == 0 || (i + 1 < js.size() && rng.Uniform() < 0.5)
                                 ? huge[rng.UniformInt(0, 1)]
                                 : tiny[rng.UniformInt(0, 2)];
          entry(js[i], l, Sign(rng) * mag * scale);
        }
        what += " one-entry w=" + std::to_string(w);
      } else if (mode == 1) {  // two proportional huge dense, one small dense
        const std::vector<int> js = rng.Sample(r, std::min(3, r));
        const Matrix e = DenseError(s, rng);
        const double mag = huge[rng.UniformInt(0, 1)];
        dense(js[0], e, mag);
        if (js.size() > 1) dense(js[1], e, -Pow10(rng, -1, 1) * mag);
        if (js.size() > 2) dense(js[2], DenseError(s, rng), tiny[rng.UniformInt(0, 2)]);
        what += " proportional-huge+small-dense";
      } else {  // independent dense, huge and tiny alternating: generic
        const int w = Clamp(static_cast<int>(rng.UniformInt(2, std::max(2, bb))), 1, r);
        const std::vector<int> js = rng.Sample(r, w);
        for (size_t i = 0; i < js.size(); ++i) {
          dense(js[i], DenseError(s, rng),
                i % 2 == 0 ? huge[rng.UniformInt(0, 1)] : tiny[rng.UniformInt(0, 2)]);
        }
        generic = true;
        what += " independent-dense w=" + std::to_string(w);
      }
      break;
    }
    case Family::kMagnitudes: {
      if (rng.Uniform() < 0.5 || bb < 1) {  // one entry per wrong peer
        const int w = static_cast<int>(rng.UniformInt(1, r));
        const std::vector<int> js = rng.Sample(r, w);
        const bool distinct = rng.Uniform() < 0.5 && s.symbols >= w;
        const std::vector<int> ls = rng.Sample(static_cast<int>(s.symbols), distinct ? w : 1);
        for (size_t i = 0; i < js.size(); ++i) {
          const int64_t l = distinct ? ls[i] : sym();
          entry(js[i], l, Sign(rng) * Pow10(rng, lo_exp, 15.0) * scale);
        }
        what += " entries w=" + std::to_string(w);
      } else {  // dense, independent: generic
        const int w = static_cast<int>(rng.UniformInt(1, bb));
        for (int j : rng.Sample(r, w)) dense(j, DenseError(s, rng), Pow10(rng, -6.0, 15.0));
        generic = true;
        what += " dense w=" + std::to_string(w);
      }
      break;
    }
    case Family::kNonFinite: {
      const bool within = rng.Uniform() < 0.75;
      const int w = within ? static_cast<int>(rng.UniformInt(1, std::max(1, tb)))
                           : static_cast<int>(rng.UniformInt(std::min(r, tb + 1), r));
      const std::vector<int> js = rng.Sample(r, w);
      const int64_t shared = sym();
      for (int j : js) {
        const int64_t l = rng.Uniform() < 0.5 ? shared : sym();
        switch (rng.UniformInt(0, 5)) {
          case 0:
            entry(j, l, kNaN);
            break;
          case 1:
            entry(j, l, kInf);
            break;
          case 2:
            entry(j, l, -kInf);
            break;
          case 3:
            t->results[static_cast<size_t>(j)].value.setConstant(kNaN);
            break;
          case 4:
            entry(j, l, Sign(rng) * 1e15 * scale);
            break;
          default:
            dense(j, DenseError(s, rng), Pow10(rng, std::max(lo_exp, -6.0), 12.0));
        }
      }
      what += " w=" + std::to_string(w);
      break;
    }
    case Family::kNearRoundoff: {
      const double mags[] = {1e-9, 1e-8};
      if (bb >= 1 && rng.Uniform() < 0.5) {
        const int w = static_cast<int>(rng.UniformInt(1, bb));
        for (int j : rng.Sample(r, w)) dense(j, DenseError(s, rng), mags[rng.UniformInt(0, 1)]);
        generic = true;
        what += " dense w=" + std::to_string(w);
      } else if (tb >= 1) {  // one entry each, at most one per entry
        const int w = static_cast<int>(rng.UniformInt(1, std::min<int64_t>(r, s.symbols)));
        const std::vector<int> js = rng.Sample(r, w);
        const std::vector<int> ls = rng.Sample(static_cast<int>(s.symbols), w);
        for (size_t i = 0; i < js.size(); ++i)
          entry(js[i], ls[i], Sign(rng) * mags[rng.UniformInt(0, 1)] * scale);
        what += " entries w=" + std::to_string(w);
      }
      break;
    }
    case Family::kScattered: {
      const int per = std::max(1, tb);
      const int64_t touched = rng.UniformInt(1, s.symbols);
      for (int64_t l : rng.Sample(static_cast<int>(s.symbols), static_cast<int>(touched))) {
        const int c = static_cast<int>(rng.UniformInt(1, per));
        for (int j : rng.Sample(r, c)) {
          entry(j, l,
                rng.Uniform() < 0.05
                    ? kNaN
                    : Sign(rng) * Pow10(rng, std::max(lo_exp, -6.0), 15.0) * scale);
        }
      }
      what += " symbols=" + std::to_string(touched) + " per<=" + std::to_string(per);
      break;
    }
    case Family::kStragglers: {
      Family inner = kFamilies[rng.UniformInt(0, 6)];
      if (inner == Family::kNearRoundoff && lo_exp > -8.0) inner = Family::kMagnitudes;
      Pattern p = Inject(inner, s, t, rng, lo_exp);
      p.what = "Stragglers R=" + std::to_string(r) + " + " + p.what;
      return p;
    }
    case Family::kBeyond: {
      const int mode = static_cast<int>(rng.UniformInt(0, 3));
      if (mode == 0) {  // tb + 1 or more in one entry, random values
        const int w = static_cast<int>(rng.UniformInt(tb + 1, r));
        const int64_t l = sym();
        for (int j : rng.Sample(r, w)) entry(j, l, Sign(rng) * Pow10(rng, -5.0, 12.0) * scale);
        what += " one-entry w=" + std::to_string(w);
      } else if (mode == 1) {  // R - K or more independent dense errors
        const int w = static_cast<int>(rng.UniformInt(std::max(1, redundancy), r));
        for (int j : rng.Sample(r, w)) dense(j, DenseError(s, rng), Pow10(rng, -5.0, 12.0));
        what += " dense w=" + std::to_string(w);
      } else if (mode == 2) {  // the same dense error at tb + 1 or more (at least 2)
        const int w = static_cast<int>(rng.UniformInt(std::max(2, tb + 1), r));
        const Matrix e = DenseError(s, rng);
        const double mag = Pow10(rng, -5.0, 12.0);
        for (int j : rng.Sample(r, w)) dense(j, e, mag);
        what += " identical-dense w=" + std::to_string(w);
      } else {  // tb + 1 in each of several entries
        const int64_t touched = rng.UniformInt(1, s.symbols);
        for (int64_t l : rng.Sample(static_cast<int>(s.symbols), static_cast<int>(touched))) {
          for (int j : rng.Sample(r, std::min(r, tb + 1)))
            entry(j, l, Sign(rng) * Pow10(rng, -5.0, 12.0) * scale);
        }
        what += " symbols=" + std::to_string(touched) + " each " + std::to_string(tb + 1);
      }
      Pattern p{Classify(s, *t, false, smallest), what};
      EXPECT_EQ(p.promise, Promise::kSafe) << what;  // the family is what it says
      return Exempt(s, *t, p);
    }
  }
  Pattern p{Classify(s, *t, generic, smallest), what};
  if (f == Family::kNearRoundoff && p.promise == Promise::kExact) p.promise = Promise::kNearExact;
  return Exempt(s, *t, p);
}

Trial MakeFamilyTrial(Family f, const CodeUnderTest& s, Random& rng) {
  const int p = s.code->num_peers();
  int stragglers = 0;
  if (f == Family::kStragglers)
    stragglers = static_cast<int>(rng.UniformInt(1, p - s.k));
  else if (rng.Uniform() < 0.2)
    stragglers = static_cast<int>(rng.UniformInt(1, p - s.k - 1));
  return MakeTrial(s, rng, stragglers);
}

std::string TraceOf(const CodeUnderTest& s, const Trial& t, const Pattern& p, uint64_t seed) {
  const Damage d = Count(s, t);
  return std::string(s.spec->name) + " seed=" + std::to_string(seed) +
         " R=" + std::to_string(t.r()) + " K=" + std::to_string(s.k) + " " + p.what + " wrong={" +
         FormatPeers(d.peers) + "} max-per-entry=" + std::to_string(d.per_symbol) +
         " promise=" + PromiseName(p.promise);
}

// ---------------------------------------------------------------------------
// Reference decoder by exhaustive search (small P), on the code words: the
// results of a set S of peers are consistent in a symbol when its numbers lie
// in the column space of S's generator rows.

class ReferenceDecoder {
 public:
  explicit ReferenceDecoder(const CodeUnderTest& s) : s_(s) {}

  struct Verdict {
    bool within_a = false;   // every symbol has its closest code word within floor((R-K)/2)
    bool within_b = false;   // one smallest set of <= R-K-1 wrong peers, generic errors
    bool conflict = false;   // both, with different products
    Matrix product;          // when within_a or within_b
    std::vector<int> wrong;  // peers found wrong (within_b), ascending
  };

  Verdict Decode(const std::vector<PeerResult>& in, double scale) const {
    std::vector<PeerResult> results = in;
    std::sort(results.begin(), results.end(),
              [](const PeerResult& x, const PeerResult& y) { return x.peer < y.peer; });
    const int r = static_cast<int>(results.size()), k = s_.k, g = s_.g;
    const int64_t len = s_.symbols;
    Matrix y(len, r * g);
    for (int j = 0; j < r; ++j)
      for (int64_t l = 0; l < len; ++l)
        for (int b = 0; b < g; ++b)
          y(l, j * g + b) =
              results[static_cast<size_t>(j)].value.data()[s_.layout[size_t(l * g + b)]];
    const double tol = 1.0;  // residuals are over Tolerances()
    uint64_t all = 0;
    for (const PeerResult& res : results) all |= uint64_t{1} << res.peer;
    auto kept_mask = [&](const std::vector<int>& removed) {
      uint64_t m = all;
      for (int j : removed) m &= ~(uint64_t{1} << results[static_cast<size_t>(j)].peer);
      return m;
    };
    auto kept_cols = [&](uint64_t mask) {
      std::vector<int> cols;
      for (int j = 0; j < r; ++j)
        if (mask >> results[static_cast<size_t>(j)].peer & 1)
          for (int b = 0; b < g; ++b) cols.push_back(j * g + b);
      return cols;
    };
    auto select = [&](const std::vector<int>& cols) {
      Matrix out(len, static_cast<Eigen::Index>(cols.size()));
      for (size_t c = 0; c < cols.size(); ++c) out.col(Eigen::Index(c)) = y.col(cols[c]);
      return out;
    };
    // Per-symbol residual norms of the kept peers.
    // Per-symbol residual norms of the kept peers, over their tolerances.
    auto residuals = [&](uint64_t mask, const std::vector<int>& cols) {
      const Kept& kept = Plan(mask);
      if (kept.null.cols() == 0) return Vector(Vector::Zero(len));
      const Matrix ys = select(cols);
      return Vector((ys * kept.null).rowwise().norm().array() / Tolerances(ys, scale).array());
    };
    auto decode_k = [&](const std::vector<PeerResult>& rs, uint64_t mask) {
      std::vector<PeerResult> some;
      for (const PeerResult& res : rs)
        if ((mask >> res.peer & 1) && static_cast<int>(some.size()) < k) some.push_back(res);
      auto d = s_.code->Decode(some);
      return d.ok() ? d->product : Matrix();
    };
    Verdict v;

    // (a): per symbol, the smallest set of <= floor((R-K)/2) peers to drop.
    const int tb = (r - k) / 2;
    std::vector<int> size_of(static_cast<size_t>(len), -1), count(static_cast<size_t>(len), 0);
    std::vector<uint64_t> chosen(static_cast<size_t>(len), 0);
    for (int e = 0; e <= tb; ++e) {
      ForEachSubset(r, e, [&](const std::vector<int>& removed) {
        const uint64_t mask = kept_mask(removed);
        const Vector res = residuals(mask, kept_cols(mask));
        for (int64_t l = 0; l < len; ++l) {
          const size_t ul = static_cast<size_t>(l);
          if (size_of[ul] >= 0 && size_of[ul] < e) continue;
          if (!(res(l) <= tol)) continue;
          if (size_of[ul] < 0) {
            size_of[ul] = e;
            chosen[ul] = mask;
          }
          ++count[ul];
        }
      });
    }
    v.within_a = r > k;  // with R = K nothing is checked
    for (int64_t l = 0; l < len; ++l)
      if (size_of[size_t(l)] < 0 || count[size_t(l)] != 1) v.within_a = false;
    Matrix product_a;
    if (v.within_a) {
      std::vector<PeerResult> corrected = results;
      for (int64_t l = 0; l < len; ++l) {
        const uint64_t mask = chosen[size_t(l)];
        if (mask == all) continue;
        const std::vector<int> cols = kept_cols(mask);
        Vector ys(static_cast<Eigen::Index>(cols.size()));
        for (size_t c = 0; c < cols.size(); ++c) ys(Eigen::Index(c)) = y(l, cols[c]);
        const Vector fitted = Plan(mask).fit * ys;  // P g numbers
        for (int j = 0; j < r; ++j) {
          const int peer = results[size_t(j)].peer;
          if (mask >> peer & 1) continue;
          for (int b = 0; b < g; ++b) {
            corrected[size_t(j)].value.data()[s_.layout[size_t(l * g + b)]] = fitted(peer * g + b);
          }
        }
      }
      product_a = decode_k(corrected, all);
      if (product_a.size() == 0) v.within_a = false;
    }

    // (b): the smallest set of <= R-K-1 peers whose removal leaves every symbol
    // consistent, if unique, with generic errors.
    std::vector<uint64_t> found;
    for (int e = 0; e <= r - k - 1 && found.empty(); ++e) {
      ForEachSubset(r, e, [&](const std::vector<int>& removed) {
        const uint64_t mask = kept_mask(removed);
        if ((residuals(mask, kept_cols(mask)).array() <= tol).all()) found.push_back(mask);
      });
    }
    Matrix product_b;
    if (found.size() == 1) {
      const uint64_t mask = found[0];
      const std::vector<int> cols = kept_cols(mask);
      std::vector<int> bad_cols;
      for (int j = 0; j < r; ++j) {
        if (mask >> results[size_t(j)].peer & 1) continue;
        v.wrong.push_back(results[size_t(j)].peer);
        for (int b = 0; b < g; ++b) bad_cols.push_back(j * g + b);
      }
      bool generic = true;
      if (!bad_cols.empty()) {
        const Matrix fitted = select(cols) * Plan(mask).fit.transpose();  // len x (P g)
        Matrix err(len, static_cast<Eigen::Index>(bad_cols.size()));
        for (size_t c = 0; c < bad_cols.size(); ++c) {
          const int j = bad_cols[c] / g, b = bad_cols[c] % g;
          err.col(Eigen::Index(c)) =
              y.col(bad_cols[c]) - fitted.col(results[size_t(j)].peer * g + b);
        }
        generic = err.allFinite() && err.rows() >= err.cols();
        if (generic) {
          for (Eigen::Index c = 0; c < err.cols(); ++c) {
            const double n = err.col(c).norm();
            if (!(n > 0.0))
              generic = false;
            else
              err.col(c) /= n;
          }
        }
        if (generic) {
          Eigen::JacobiSVD<Matrix> svd(err);
          generic = svd.singularValues().minCoeff() >= 1e-6;  // independent directions
        }
      }
      if (generic) {
        product_b = decode_k(results, mask);
        v.within_b = product_b.size() > 0;
      }
    }
    if (v.within_a && v.within_b && !(RelativeError(product_a, product_b) <= 1e-8)) {
      v.conflict = true;
      v.within_a = v.within_b = false;
    }
    if (v.within_a)
      v.product = product_a;
    else if (v.within_b)
      v.product = product_b;
    return v;
  }

  // Whether some K + 1 or more results, among them a wrong one, agree with a
  // code word while at most as many results as are wrong disagree with it: a
  // code word other than the true one, at least as close to what arrived.
  bool HasCloserCodeWord(const Trial& t) const {
    const int r = t.r(), k = s_.k, g = s_.g;
    std::vector<int> order(static_cast<size_t>(r));
    for (int j = 0; j < r; ++j) order[size_t(j)] = j;
    std::sort(order.begin(), order.end(),
              [&](int x, int y) { return t.results[size_t(x)].peer < t.results[size_t(y)].peer; });
    // Only the symbols with a wrong value can be inconsistent.
    std::vector<int64_t> dirty;
    std::vector<bool> wrong(static_cast<size_t>(r), false);
    for (int64_t l = 0; l < s_.symbols; ++l) {
      bool any = false;
      for (int j = 0; j < r; ++j) {
        for (int b = 0; b < g; ++b) {
          const Eigen::Index i = s_.layout[size_t(l * g + b)];
          const size_t oj = size_t(order[size_t(j)]);
          if (!(t.results[oj].value.data()[i] == t.honest[oj].value.data()[i])) {
            any = true;
            wrong[size_t(j)] = true;
          }
        }
      }
      if (any) dirty.push_back(l);
    }
    const int d = static_cast<int>(std::count(wrong.begin(), wrong.end(), true));
    bool found = false;
    for (int e = 0; e <= std::min(d, r - k - 1) && !found; ++e) {
      ForEachSubset(r, e, [&](const std::vector<int>& removed) {
        if (found) return;
        uint64_t mask = 0;
        bool has_wrong = false;
        std::vector<int> kept;
        for (int j = 0, w = 0; j < r; ++j) {
          if (w < e && removed[size_t(w)] == j) {
            ++w;
            continue;
          }
          kept.push_back(j);
          mask |= uint64_t{1} << t.results[size_t(order[size_t(j)])].peer;
          has_wrong = has_wrong || wrong[size_t(j)];
        }
        if (!has_wrong) return;
        const Matrix& null = Plan(mask).null;
        Vector y(static_cast<Eigen::Index>(kept.size()) * g);
        for (int64_t l : dirty) {
          for (size_t q = 0; q < kept.size(); ++q)
            for (int b = 0; b < g; ++b)
              y(Eigen::Index(q) * g + b) = t.results[size_t(order[size_t(kept[q])])]
                                               .value.data()[s_.layout[size_t(l * g + b)]];
          // Tight: a code word's own roundoff, so that small errors are not
          // mistaken for one (that would only weaken the promise).
          const double tol = 1e-12 * (t.scale + y.cwiseAbs().maxCoeff());
          if (!((null.transpose() * y).norm() <= tol)) return;
        }
        found = true;
      });
    }
    return found;
  }

 private:
  // Consistency tolerance per symbol: far above roundoff of the kept values
  // (even huge ones), far below the errors the tests inject (>= 1e-6).
  static Vector Tolerances(const Matrix& ys, double scale) {
    return (1e-9 * scale + 1e-11 * ys.cwiseAbs().rowwise().maxCoeff().array()).matrix();
  }

  struct Kept {
    Matrix null;  // (|S| g) x (|S| g - columns): orthonormal, null^T G_S = 0
    Matrix fit;   // (P g) x (|S| g): every peer's numbers from S's
  };

  const Kept& Plan(uint64_t mask) const {
    auto it = cache_.find(mask);
    if (it != cache_.end()) return it->second;
    std::vector<int> rows;
    for (int p = 0; p < s_.code->num_peers(); ++p)
      if (mask >> p & 1)
        for (int b = 0; b < s_.g; ++b) rows.push_back(p * s_.g + b);
    const Eigen::Index n = static_cast<Eigen::Index>(rows.size()), c = s_.generator.cols();
    Matrix gs(n, c);
    for (Eigen::Index i = 0; i < n; ++i) gs.row(i) = s_.generator.row(rows[size_t(i)]);
    Kept kept;
    Eigen::HouseholderQR<Matrix> qr(gs);
    const Matrix q = qr.householderQ() * Matrix::Identity(n, n);
    kept.null = n > c ? Matrix(q.rightCols(n - c)) : Matrix(n, 0);
    kept.fit = s_.generator * gs.completeOrthogonalDecomposition().pseudoInverse();
    return cache_.emplace(mask, std::move(kept)).first->second;
  }

  const CodeUnderTest& s_;
  mutable std::map<uint64_t, Kept> cache_;
};

ReferenceDecoder& ReferenceFor(const CodeUnderTest& s) {
  static std::map<const CodeUnderTest*, std::unique_ptr<ReferenceDecoder>>* refs =
      new std::map<const CodeUnderTest*, std::unique_ptr<ReferenceDecoder>>();
  auto& slot = (*refs)[&s];
  if (!slot) slot = std::make_unique<ReferenceDecoder>(s);
  return *slot;
}

bool HasCloserCodeWord(const CodeUnderTest& s, const Trial& t) {
  return ReferenceFor(s).HasCloserCodeWord(t);
}

// ---------------------------------------------------------------------------
// 0. The test's own model of the codes: honest results are code words.

TEST(DecoderGuaranteeModel, HonestResultsAreCodeWordsAndTheReferenceDecodesThem) {
  for (const CodeSpec& spec : kCodes) {
    if (spec.peers > 10) continue;
    const CodeUnderTest& s = GetCode(spec);
    ReferenceDecoder ref(s);
    Random rng(7);
    for (int i = 0; i < 3; ++i) {
      Trial t = MakeTrial(s, rng, i);
      const ReferenceDecoder::Verdict v = ref.Decode(t.results, t.scale);
      ASSERT_TRUE(v.within_a && v.within_b) << spec.name;
      EXPECT_TRUE(v.wrong.empty()) << spec.name;
      EXPECT_LT(RelativeError(v.product, t.expected), kExactBound) << spec.name;
      // One dense error: found, and its peer named.
      const int j = static_cast<int>(rng.UniformInt(0, t.r() - 1));
      t.results[size_t(j)].value += t.scale * DenseError(s, rng);
      const ReferenceDecoder::Verdict w = ref.Decode(t.results, t.scale);
      ASSERT_TRUE(w.within_b) << spec.name;
      EXPECT_EQ(w.wrong, std::vector<int>{t.results[size_t(j)].peer}) << spec.name;
      EXPECT_LT(RelativeError(w.product, t.expected), kExactBound) << spec.name;
    }
  }
}

// ---------------------------------------------------------------------------
// 1. Known attacks.

// PolyDot P = 12, m = n = 2, d = 1 (K = 5), R = 12: floor(7/2) = 3 wrong values
// per entry are corrected. Peers 3 and 7 get +1e12 in entry 5, peer 10 gets +1:
// three wrong values in one entry.
TEST(DecoderGuaranteeKnownAttack, HugeEqualErrorsBesideAUnitErrorInOneEntry) {
  const CodeUnderTest& s = GetCode(SpecNamed("PolyDotP12m2n2d1"));
  ASSERT_EQ(s.k, 5);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Random rng(seed);
    Trial t = MakeTrial(s, rng, 0);  // A 16 x 12, B 12 x 8, standard normal
    for (PeerResult& res : t.results) {
      if (res.peer == 3 || res.peer == 7) res.value.data()[5] += 1e12;
      if (res.peer == 10) res.value.data()[5] += 1.0;
    }
    ASSERT_EQ(Count(s, t).per_symbol, 3);
    EXPECT_TRUE(Check(s, t, Promise::kExact)) << "seed " << seed;
  }
}

// Two proportional huge dense errors and one small dense error: three wrong
// values in every entry, within floor((12 - 5)/2) = 3.
TEST(DecoderGuaranteeKnownAttack, TwoProportionalHugeDenseErrorsAndASmallOne) {
  const CodeUnderTest& s = GetCode(SpecNamed("PolyDotP12m2n2d1"));
  int failures = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Random rng(seed);
    Trial t = MakeTrial(s, rng, 0);
    const std::vector<int> js = rng.Sample(t.r(), 3);
    const Matrix e = DenseError(s, rng);
    const double huge = seed % 2 ? 1e12 : 1e10, small = seed % 3 ? 1e-3 : 1.0;
    t.results[size_t(js[0])].value += huge * t.scale * e;
    t.results[size_t(js[1])].value += -2.5 * huge * t.scale * e;
    t.results[size_t(js[2])].value += small * t.scale * DenseError(s, rng);
    ASSERT_EQ(Count(s, t).per_symbol, 3);
    const auto ok = Check(s, t, Promise::kExact);
    if (!ok) ++failures;
    EXPECT_TRUE(ok) << "seed " << seed;
  }
  EXPECT_EQ(failures, 0);
}

// P = 14, m = 2, n = 3, d = 1 (K = 8), 2 stragglers (R = 12): 3 wrong peers,
// each wrong in one random entry of a 64 x 8 result, at most 2 in one entry
// (floor(4/2) = 2).
TEST(DecoderGuaranteeKnownAttack, ThreeSingleEntryErrorsWithTwoStragglers) {
  auto code = PolyDotCode::Create({128, 12, 8}, {.peers = 14, .m = 2, .n = 3, .d = 1}).value();
  ASSERT_EQ(code->recovery_threshold(), 8);
  ASSERT_EQ(code->result_doubles_per_peer(), 64 * 8);
  const int trials = Trials(300);
  int failures = 0, shared = 0;
  for (int i = 0; i < trials; ++i) {
    Random rng(1000 + uint64_t(i));
    auto run = testing::RunProduct(*code, &rng, 2, 0, testing::ErrorKind::kEntry, 1.0);
    const std::vector<int> js = rng.Sample(12, 3);
    std::vector<int> entries(3);
    do {
      for (int& e : entries) e = static_cast<int>(rng.UniformInt(0, 64 * 8 - 1));
    } while (entries[0] == entries[1] && entries[1] == entries[2]);
    if (entries[0] == entries[1] || entries[1] == entries[2] || entries[0] == entries[2]) ++shared;
    for (int w = 0; w < 3; ++w) {
      run.results[size_t(js[size_t(w)])].value.data()[entries[size_t(w)]] +=
          Sign(rng) * Pow10(rng, -4.0, 8.0) * std::sqrt(12.0);
    }
    auto got = code->Decode(run.results);
    const bool good =
        got.ok() && got->verified && RelativeError(got->product, run.expected) <= kExactBound;
    if (!good) {
      ++failures;
      ADD_FAILURE() << "trial " << i << " entries " << entries[0] << "," << entries[1] << ","
                    << entries[2] << ": "
                    << (got.ok() ? "relative error " +
                                       std::to_string(RelativeError(got->product, run.expected))
                                 : got.status().ToString());
      if (failures >= 5) break;
    }
  }
  EXPECT_EQ(failures, 0) << "of " << trials << " (" << shared << " with a shared entry)";
}

// The error-free check combines the results with min(2, R - K) probe rows
// drawn from the parity space (seeded by the set of answering peers). Rebuilt
// here from public pieces (the Chebyshev basis, or the generator, and the
// seeded generator) to aim errors at its blind spot: errors in one symbol, at
// 3 numbers, orthogonal to both probes. If the rebuild drifts from the
// library, these are just random triples; the assertions hold for any
// correct decoder either way.
Matrix ProbeRows(const CodeUnderTest& s, const std::vector<int>& peers) {
  uint64_t mask = 0;
  for (int p : peers) mask |= uint64_t{1} << p;
  const int g = s.g;
  const int n = static_cast<int>(peers.size()) * g;
  const Matrix basis = s.evaluation ? ChebyshevBasis(s.points, s.k) : s.generator;
  const int c = static_cast<int>(basis.cols());
  Matrix kept(n, c);
  for (size_t i = 0; i < peers.size(); ++i)
    kept.middleRows(Eigen::Index(i) * g, g) = basis.middleRows(peers[i] * g, g);
  Eigen::HouseholderQR<Matrix> qr(kept);
  const Matrix q = qr.householderQ() * Matrix::Identity(n, n);
  const Matrix parity = q.rightCols(n - c).transpose();
  const int redundancy = n - c, rows = std::max(0, std::min(2, redundancy));
  Matrix probe(rows, n);
  if (rows == 0) return probe;
  Random rng(DeriveSeed(s.evaluation ? 0x5eed : 0x10e1, {mask}));
  const Vector h_norms = parity.colwise().norm().transpose();
  double best = -1.0;
  for (int draw = 0; draw < 16; ++draw) {
    Eigen::HouseholderQR<Matrix> gq(rng.NormalMatrix(redundancy, rows));
    const Matrix w = (gq.householderQ() * Matrix::Identity(redundancy, rows)).transpose() * parity;
    const double score =
        (w.colwise().norm().transpose().array() / h_norms.array().max(DBL_MIN)).minCoeff();
    if (score > best) {
      best = score;
      probe = w;
    }
  }
  return probe;
}

// Adds, in symbol l, errors at 3 numbers (column indices of the probe:
// peer index j g + part) orthogonal to both probe rows, of largest size
// `size` x the data.
void AddProbeNullError(const CodeUnderTest& s, Trial* t, const Matrix& probe, const int (&cols)[3],
                       int64_t l, double size) {
  Eigen::Vector3d u, v;
  for (int i = 0; i < 3; ++i) {
    u(i) = probe(0, cols[i]);
    v(i) = probe.rows() > 1 ? probe(1, cols[i]) : 0.0;
  }
  Eigen::Vector3d e = probe.rows() > 1 ? u.cross(v) : Eigen::Vector3d(u(1), -u(0), 0.0);
  if (probe.rows() == 1 && std::abs(u(0)) + std::abs(u(1)) == 0.0) e = {1.0, 0.0, 0.0};
  e *= size * t->scale / e.cwiseAbs().maxCoeff();
  for (int i = 0; i < 3; ++i) At(s, t, cols[i] / s.g, l, cols[i] % s.g) += e(i);
}

struct ProbeAttackCase {
  const char* code;
  int stragglers;
  bool same_peer;  // the 3 numbers in one peer's symbol (rotation: 4 per symbol)
};

class ProbeAttack : public ::testing::TestWithParam<ProbeAttackCase> {};

TEST_P(ProbeAttack, ErrorsOrthogonalToTheErrorFreeCheck) {
  const ProbeAttackCase c = GetParam();
  const CodeUnderTest& s = GetCode(SpecNamed(c.code));
  const int trials = Trials(60);
  int failures = 0;
  for (int i = 0; i < trials; ++i) {
    const uint64_t seed = 500 + uint64_t(i);
    Random rng(seed);
    Trial t = MakeTrial(s, rng, c.stragglers);
    std::vector<int> peers;
    for (const PeerResult& res : t.results) peers.push_back(res.peer);
    const Matrix probe = ProbeRows(s, peers);
    const int64_t l = rng.UniformInt(0, s.symbols - 1);
    int cols[3];
    if (c.same_peer) {
      const int j = static_cast<int>(rng.UniformInt(0, t.r() - 1));
      const std::vector<int> parts = rng.Sample(s.g, 3);
      for (int q = 0; q < 3; ++q) cols[q] = j * s.g + parts[size_t(q)];
    } else {
      const std::vector<int> js = rng.Sample(t.r(), 3);
      for (int q = 0; q < 3; ++q)
        cols[q] = js[size_t(q)] * s.g + static_cast<int>(rng.UniformInt(0, s.g - 1));
    }
    // Half the trials aim at the probes; the others are random triples.
    if (i % 2 == 0 && probe.rows() > 0) {
      AddProbeNullError(s, &t, probe, cols, l, Pow10(rng, -2.0, 3.0));
    } else {
      for (int q = 0; q < 3; ++q)
        At(s, &t, cols[q] / s.g, l, cols[q] % s.g) += Sign(rng) * Pow10(rng, -3, 3) * t.scale;
    }
    const Pattern p =
        Exempt(s, t, {Classify(s, t, false, 1.0), i % 2 == 0 ? "probe-null" : "random"});
    const auto ok = Check(s, t, p.promise);
    if (!ok) ++failures;
    EXPECT_TRUE(ok) << TraceOf(s, t, p, seed);
    if (failures >= 5) break;
  }
}

INSTANTIATE_TEST_SUITE_P(
    DecoderGuarantee, ProbeAttack,
    ::testing::Values(ProbeAttackCase{"PolyDotP12m2n2d1", 0, false},    // 3 <= floor(7/2)
                      ProbeAttackCase{"PolyDotP12m2n2d1", 2, false},    // 3 > floor(5/2)
                      ProbeAttackCase{"MdsP10Q5", 0, false},            // 3 > floor(5/2)
                      ProbeAttackCase{"LowWeightP10ka3kb1", 0, false},  // 3 <= floor(7/2)
                      ProbeAttackCase{"RotationP10m1d2", 0, false},     // 3 <= floor(8/2)
                      ProbeAttackCase{"RotationP8m2d2", 0, true},       // one wrong peer
                      ProbeAttackCase{"RotationP10m1d2", 2, true}),     // one wrong peer
    [](const ::testing::TestParamInfo<ProbeAttackCase>& info) {
      return std::string(info.param.code) + "Stragglers" + std::to_string(info.param.stragglers) +
             (info.param.same_peer ? "OnePeer" : "");
    });

// R = K + 1 results, every one wrong in one entry (no value can be checked:
// floor(1/2) = 0): DataLoss, or an exact product. The old LinearCodeDecoder
// peeled every peer and crashed (JacobiSVD of an empty generator); run in a
// child process so that a crash fails this test only.
int AllAnsweringWrongFailures(const char* name) {
  const CodeUnderTest& s = GetCode(SpecNamed(name));
  int failures = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Random rng(seed);
    Trial t = MakeTrial(s, rng, s.code->num_peers() - s.k - 1);
    const std::vector<int> ls = rng.Sample(static_cast<int>(s.symbols), t.r());
    for (int j = 0; j < t.r(); ++j) {
      At(s, &t, j, ls[size_t(j)], static_cast<int>(rng.UniformInt(0, s.g - 1))) +=
          Sign(rng) * Pow10(rng, -3.0, 6.0) * t.scale;
    }
    if (!Check(s, t, Exempt(s, t, {Classify(s, t, false, 1.0), ""}).promise)) ++failures;
  }
  return failures;
}

class CrashDeathTest : public ::testing::TestWithParam<const char*> {};

TEST_P(CrashDeathTest, EveryAnsweringResultWrongIsNotACrash) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::_Exit(std::min(AllAnsweringWrongFailures(GetParam()), 100)),
              ::testing::ExitedWithCode(0), "");
}

INSTANTIATE_TEST_SUITE_P(DecoderGuarantee, CrashDeathTest,
                         ::testing::Values("RotationP10m1d2", "RotationP8m2d2", "LowWeightP9ka2kb2",
                                           "LowWeightP10ka3kb1", "PolyDotP12m2n2d1", "MdsP10Q5"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);
                         });

// ---------------------------------------------------------------------------
// 2. Structured families, every code.

struct FamilyCase {
  const CodeSpec* code;
  Family family;
};

std::vector<FamilyCase> AllFamilyCases() {
  std::vector<FamilyCase> cases;
  for (const CodeSpec& c : kCodes)
    for (Family f : kFamilies) cases.push_back({&c, f});
  return cases;
}

class Families : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(Families, KeepsThePromise) {
  const FamilyCase c = GetParam();
  const CodeUnderTest& s = GetCode(*c.code);
  const int trials = Trials(50);
  int failures = 0;
  for (int i = 0; i < trials && failures < 5; ++i) {
    const uint64_t seed = DeriveSeed(static_cast<uint64_t>(c.family), {uint64_t(i), 17});
    Random rng(seed);
    Trial t = MakeFamilyTrial(c.family, s, rng);
    const Pattern p = Inject(c.family, s, &t, rng);
    const std::string trace = TraceOf(s, t, p, seed);
    const CrashTrace crash_trace(trace);
    const auto ok = Check(s, t, p.promise);
    if (!ok) ++failures;
    EXPECT_TRUE(ok) << trace;
  }
}

INSTANTIATE_TEST_SUITE_P(DecoderGuarantee, Families, ::testing::ValuesIn(AllFamilyCases()),
                         [](const ::testing::TestParamInfo<FamilyCase>& info) {
                           return std::string(info.param.code->name) + "_" +
                                  FamilyName(info.param.family);
                         });

// With exactly K results nothing can be checked, errors or not.
TEST(DecoderGuarantee, ExactlyKResultsAreNeverVerified) {
  for (const CodeSpec& spec : kCodes) {
    const CodeUnderTest& s = GetCode(spec);
    Random rng(3);
    Trial t = MakeTrial(s, rng, s.code->num_peers() - s.k);
    auto clean = s.code->Decode(t.results);
    ASSERT_TRUE(clean.ok()) << spec.name << ": " << clean.status();
    EXPECT_FALSE(clean->verified) << spec.name;
    EXPECT_LT(RelativeError(clean->product, t.expected), kExactBound) << spec.name;
    t.results[0].value += t.scale * DenseError(s, rng);
    auto dirty = s.code->Decode(t.results);
    if (dirty.ok()) {
      EXPECT_FALSE(dirty->verified) << spec.name;
    }
  }
}

// ---------------------------------------------------------------------------
// 3. Differential test against the exhaustive reference (P <= 10), and the
// CI-size random sweep over every code and family.

TEST(DecoderGuarantee, AgreesWithTheExhaustiveReference) {
  std::vector<const CodeSpec*> small;
  for (const CodeSpec& c : kCodes)
    if (c.peers <= 10) small.push_back(&c);
  const int trials = Trials(2000);
  int failures = 0, within = 0, loss = 0;
  for (int i = 0; i < trials && failures < 10; ++i) {
    const uint64_t seed = DeriveSeed(99, {uint64_t(i)});
    Random rng(seed);
    const CodeSpec* spec = small[size_t(rng.UniformInt(0, int64_t(small.size()) - 1))];
    const CodeUnderTest& s = GetCode(*spec);
    const ReferenceDecoder& ref = ReferenceFor(s);
    // Errors well above the reference's tolerance (1e-9 of the data).
    Family f = kFamilies[rng.UniformInt(0, 8)];
    if (f == Family::kNearRoundoff) f = Family::kMagnitudes;
    Trial t = MakeFamilyTrial(f, s, rng);
    const Pattern p = Inject(f, s, &t, rng, -5.0);
    const ReferenceDecoder::Verdict v = ref.Decode(t.results, t.scale);
    const std::string trace = "trial " + std::to_string(i) + " " + TraceOf(s, t, p, seed) +
                              " ref a=" + std::to_string(v.within_a) +
                              " b=" + std::to_string(v.within_b) +
                              " conflict=" + std::to_string(v.conflict);
    const CrashTrace crash_trace(trace);
    auto got = s.code->Decode(t.results);
    bool good = true;
    if (p.promise != Promise::kAnything) {
      EXPECT_FALSE(v.conflict) << trace;
    }
    // The reference and the classification agree on what is promised.
    if ((p.promise == Promise::kExact || p.promise == Promise::kNearExact) && t.r() > s.k) {
      EXPECT_TRUE(v.within_a || v.within_b) << trace;
    }
    if (p.promise == Promise::kAnything) {
      good = got.ok() || got.status().code() == StatusCode::kDataLoss;
    } else if (v.within_a || v.within_b) {
      ++within;
      // Random patterns are never exception-class: the reference finds the truth.
      EXPECT_LT(RelativeError(v.product, t.expected), kExactBound) << trace;
      good = got.ok() && got->verified == (t.r() > s.k) &&
             RelativeError(got->product, v.product) <= kExactBound;
    } else if (got.ok()) {
      good = !got->verified || RelativeError(got->product, t.expected) <= kExactBound;
    } else {
      ++loss;
      good = got.status().code() == StatusCode::kDataLoss;
    }
    if (!good) {
      ++failures;
      ADD_FAILURE() << trace << ": decoder "
                    << (got.ok()
                            ? "verified=" + std::to_string(got->verified) + " relative error " +
                                  std::to_string(RelativeError(got->product, t.expected))
                            : got.status().ToString());
    }
  }
  RecordProperty("within", within);
  RecordProperty("data_loss", loss);
}

TEST(DecoderGuarantee, RandomSweep) {
  const int trials = Trials(5000);
  int failures = 0;
  int tally[4] = {0, 0, 0, 0};  // one per Promise
  for (int i = 0; i < trials && failures < 10; ++i) {
    const uint64_t seed = DeriveSeed(2024, {uint64_t(i)});
    Random rng(seed);
    const CodeSpec& spec = kCodes[rng.UniformInt(0, std::size(kCodes) - 1)];
    const CodeUnderTest& s = GetCode(spec);
    const Family f = kFamilies[rng.UniformInt(0, 8)];
    Trial t = MakeFamilyTrial(f, s, rng);
    const Pattern p = Inject(f, s, &t, rng);
    ++tally[static_cast<int>(p.promise)];
    const std::string trace = TraceOf(s, t, p, seed);
    const CrashTrace crash_trace(trace);
    const auto ok = Check(s, t, p.promise);
    if (!ok) {
      ++failures;
      ADD_FAILURE() << trace << ": " << ok.message();
    }
  }
  EXPECT_GT(tally[0] + tally[1], trials / 3);  // most patterns are within the budget
  EXPECT_GT(tally[2], trials / 20);
}

// ---------------------------------------------------------------------------
// 4. The exception class: errors that are themselves a code word. PolyDot
// P = 8, m = n = 2, d = 1 (K = 5), all 8 answer. D is a code word that
// vanishes at K - 1 = 4 honest peers (in every entry: a polynomial of degree
// K - 1 with roots at their points, times a random matrix); it is what the
// results of another product look like there. Added to the other R - K + 1 =
// 4 peers, the received word IS the code word of C + dC: no decoder can tell,
// and this one returns C + dC as verified with no wrong peer. Added to only
// R - K = 3 of them, the received word is 1 result from C + dC and 3 from C:
// C cannot be verified (only K results agree with it), so the decoder either
// gives up or "corrects" to C + dC naming the fourth peer.
// The set-up of the exception-class tests: the code, A, B, every peer's
// result and the code word dC that vanishes at the honest peers.
struct AnotherCodeWord {
  // Not symmetric about 0: with roots +-x the polynomial is even and only
  // changes PolyDot's garbage coefficients, not C.
  static constexpr int kHonest[] = {0, 1, 2, 5};
  std::unique_ptr<PolyDotCode> code =
      PolyDotCode::Create({8, 6, 4}, {.peers = 8, .m = 2, .n = 2, .d = 1}).value();
  Matrix a, b, alpha;
  std::vector<PeerResult> clean;
  double rms = 0.0;

  explicit AnotherCodeWord(uint64_t seed) {
    Random rng(seed);
    a = rng.NormalMatrix(8, 6);
    b = rng.NormalMatrix(6, 4);
    alpha = rng.NormalMatrix(4, 4);
    for (int p = 0; p < 8; ++p)
      clean.push_back({p, code->EncodeShard(a, p).value() * code->EncodeInput(b, p).value()});
    rms = clean[0].value.norm() / 4.0;
  }
  // dC at peer p.
  Matrix Delta(int p) const {
    double q = 1.0;
    for (int h : kHonest) q *= code->points()[size_t(p)] - code->points()[size_t(h)];
    return rms * q * alpha;
  }
};

TEST(DecoderGuaranteeExceptionClass, ErrorsThatAreAnotherCodeWord) {
  const AnotherCodeWord w(11);
  const auto& code = w.code;
  ASSERT_EQ(code->recovery_threshold(), 5);
  const Matrix &a = w.a, &b = w.b;
  const std::vector<PeerResult>& clean = w.clean;
  auto delta = [&](int p) { return w.Delta(p); };
  const std::vector<int> wrong = {3, 4, 6, 7};
  for (int h : AnotherCodeWord::kHonest) {
    EXPECT_EQ(delta(h).norm(), 0.0);
  }

  // The full code word: indistinguishable from C + dC.
  std::vector<PeerResult> received = clean;
  for (int w : wrong) received[size_t(w)].value += delta(w);
  std::vector<PeerResult> k_of_them(received.begin(), received.begin() + 5);
  const Matrix alternative = code->Decode(k_of_them).value().product;
  ASSERT_GT(RelativeError(alternative, a * b), 1e-3);
  auto full = code->Decode(received);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_TRUE(full->verified);
  EXPECT_TRUE(full->wrong_peers.empty());
  EXPECT_LT(RelativeError(full->product, alternative), kExactBound);

  // R - K of the 4: closer to C + dC (distance 1) than to C (distance 3).
  received = clean;
  for (int w : {3, 4, 6}) received[size_t(w)].value += delta(w);
  auto partial = code->Decode(received);
  if (partial.ok()) {
    RecordProperty("partial", "verified=" + std::to_string(partial->verified) +
                                  " wrong=" + FormatPeers(partial->wrong_peers));
    if (partial->verified) {
      EXPECT_LT(RelativeError(partial->product, alternative), kExactBound)
          << "C cannot be verified: only K results agree with it";
      EXPECT_EQ(partial->wrong_peers, std::vector<int>{7});
    }
  } else {
    RecordProperty("partial", partial.status().ToString());
    EXPECT_EQ(partial.status().code(), StatusCode::kDataLoss) << partial.status();
  }
}

// The same code word dC with peer 7 a straggler (R = 7, R - K = 2, t = 1):
// added to 2 of the 3 other answering peers, the received word is 1 result
// from C + dC and 2 from C, and the decoder "corrects" the third, verified
// (the smallest pattern that defeats any decoder correcting t, in the
// guarantee's exception class). Only K + 1 results agree then, and the
// decode says so (one_spare_correction): float32 products so decoded are not
// resolved. Two errors that nearly line up so pass too, up to about
// tolerance / (how far from lined up) in size. A single error corrected at
// R = 7 is flagged the same way (the check cannot tell the two apart); at
// R = 8 it has two spare results and is not.
TEST(DecoderGuaranteeExceptionClass, ACorrectionWithOneSpareResultIsFlagged) {
  const AnotherCodeWord w(12);
  const auto& code = w.code;
  const Matrix &a = w.a, &b = w.b;
  const std::vector<PeerResult>& clean = w.clean;
  const double rms = w.rms;
  auto delta = [&](int p) { return w.Delta(p); };
  const std::vector<PeerResult> seven(clean.begin(), clean.begin() + 7);

  std::vector<PeerResult> received = seven;
  for (int w : {3, 4}) received[size_t(w)].value += delta(w);
  auto masquerade = code->Decode(received);
  ASSERT_TRUE(masquerade.ok()) << masquerade.status();
  ASSERT_TRUE(masquerade->verified);
  EXPECT_EQ(masquerade->wrong_peers, std::vector<int>{6});
  EXPECT_GT(RelativeError(masquerade->product, a * b), 1e-3);
  EXPECT_TRUE(masquerade->one_spare_correction);

  for (int r : {7, 8}) {
    std::vector<PeerResult> one_error(clean.begin(), clean.begin() + r);
    one_error[3].value(2, 1) += rms;
    auto d = code->Decode(one_error);
    ASSERT_TRUE(d.ok()) << d.status() << " R = " << r;
    EXPECT_EQ(d->wrong_peers, std::vector<int>{3}) << "R = " << r;
    EXPECT_LT(RelativeError(d->product, a * b), kExactBound) << "R = " << r;
    EXPECT_EQ(d->one_spare_correction, r == 7) << "R = " << r;
    // Two peers wrong in different entries: each entry keeps its spares
    // (the whole-peer shortcut at R = 8 sets both aside, K + 1 kept).
    std::vector<PeerResult> apart = one_error;
    apart[4].value(0, 3) -= 2.0 * rms;
    auto two = code->Decode(apart);
    ASSERT_TRUE(two.ok()) << two.status() << " R = " << r;
    EXPECT_EQ(two->wrong_peers, (std::vector<int>{3, 4})) << "R = " << r;
    EXPECT_LT(RelativeError(two->product, a * b), kExactBound) << "R = " << r;
    EXPECT_EQ(two->one_spare_correction, r == 7) << "two apart, R = " << r;
    auto reference = code->Decode(std::vector<PeerResult>(clean.begin(), clean.begin() + r));
    ASSERT_TRUE(reference.ok());
    EXPECT_FALSE(reference->one_spare_correction) << "clean, R = " << r;
  }
}

}  // namespace decoder_guarantee_test
}  // namespace
}  // namespace polyguard
