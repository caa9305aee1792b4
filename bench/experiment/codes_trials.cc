#include "experiment/codes_trials.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ostream>
#include <sstream>

#include "polyguard/base/memory.h"
#include "polyguard/base/random.h"
#include "polyguard/codes/product_trial.h"

namespace polyguard::experiment {
namespace {

StatusOr<int64_t> ParseInt(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
  int64_t x = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || ptr != v.data() + v.size() || x < lo || x > hi) {
    return InvalidArgumentError("--" + flag + ": expected an integer in [" + std::to_string(lo) +
                                ", " + std::to_string(hi) + "], got '" + v + "'");
  }
  return x;
}

StatusOr<double> ParseDouble(const std::string& flag, const std::string& v, double lo, double hi) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size() || !(x >= lo && x <= hi)) {
    return InvalidArgumentError("--" + flag + ": expected a number in [" + std::to_string(lo) +
                                ", " + std::to_string(hi) + "], got '" + v + "'");
  }
  return x;
}

std::vector<std::string> SplitComma(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  if (!v.empty() && v.back() == ',') out.push_back("");
  return out;
}

SparseMatrix RandomSparse(int64_t rows, int64_t cols, double density, Random& rng) {
  std::vector<Eigen::Triplet<double>> t;
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r)
      if (rng.Uniform() < density) t.emplace_back(int(r), int(c), rng.Normal());
  SparseMatrix m(rows, cols);
  m.setFromTriplets(t.begin(), t.end());
  return m;
}

// One trial: fresh data, random stragglers and wrong peers.
void RunTrial(const ProductCode& code, const CodesTrialOptions& o, int errors, double rate,
              Random& rng, CodesTrialRow& row) {
  const ProductShape s = code.shape();
  const bool sparse = o.density < 1.0;
  SparseMatrix sa, sb;
  Matrix a, b;
  if (sparse) {
    sa = RandomSparse(s.rows, s.inner, o.density, rng);
    sb = RandomSparse(s.inner, s.cols, o.density, rng);
  } else {
    a = rng.NormalMatrix(s.rows, s.inner);
    b = rng.NormalMatrix(s.inner, s.cols);
  }
  const Matrix expected = sparse ? Matrix(sa * sb) : Matrix(a * b);
  const int p = code.num_peers();
  std::vector<int> order = rng.Sample(p, p);
  std::vector<PeerResult> results;
  for (int i = o.stragglers; i < p; ++i) {
    const int peer = order[static_cast<size_t>(i)];
    // Each result with its declared roundoff scale, as CodedProduct sends it.
    if (sparse) {
      const SparseMatrix shard = code.EncodeSparseShard(sa, peer).value();
      const SparseMatrix piece = code.EncodeSparseInput(sb, peer).value();
      row.shard_nonzeros += double(shard.nonZeros()) / double(p - o.stragglers) / o.trials;
      results.push_back({peer, code.SparsePeerProduct(shard, piece), RoundoffScale(shard, piece)});
    } else {
      const Matrix shard = code.EncodeShard(a, peer).value();
      const Matrix piece = code.EncodeInput(b, peer).value();
      results.push_back({peer, code.PeerProduct(shard, piece), RoundoffScale(shard, piece)});
    }
  }
  const double scale = TypicalResultScale(results);
  for (size_t i = 0; i < results.size(); ++i) {
    const bool wrong = rate > 0 ? rng.Uniform() < rate : int(i) < errors;
    if (wrong) ApplySoftError(&results[i].value, o.error_kind, o.error_magnitude, &rng, scale);
  }
  ++row.trials;
  auto decoded = code.Decode(results);
  if (!decoded.ok()) {
    ++row.detected_uncorrectable;
    return;
  }
  const double denom = std::max(expected.norm(), 1e-300);
  double rel = (decoded->product - expected).norm() / denom;
  if (!std::isfinite(rel)) rel = std::numeric_limits<double>::infinity();
  row.max_rel_error = std::max(row.max_rel_error, rel);
  if (rel <= ExactProductTolerance(code))
    ++row.corrected;
  else
    ++row.undetected_wrong;
}

}  // namespace

StatusOr<std::vector<CodesTrialRow>> RunCodesTrials(const CodesTrialOptions& o) {
  POLYGUARD_ASSIGN_OR_RETURN(auto code, MakeProductCode(o.code));
  if (o.stragglers < 0 || o.stragglers >= code->num_peers()) {
    return InvalidArgumentError("--stragglers must be in [0, " +
                                std::to_string(code->num_peers() - 1) + "], got " +
                                std::to_string(o.stragglers));
  }
  // A, B, the exact product, every peer's shard, input and result (and the
  // decoder's copies of the results): refused before the first allocation.
  const ProductShape sh = code->shape();
  const double p = code->num_peers();
  const double doubles =
      double(sh.rows) * double(sh.inner) + double(sh.inner) * double(sh.cols) +
      2.0 * double(sh.rows) * double(sh.cols) + p * double(code->stored_doubles_per_peer()) +
      p * double(sh.inner) * double(sh.cols) + 3.0 * p * double(code->result_doubles_per_peer());
  POLYGUARD_RETURN_IF_ERROR(
      CheckMemory("a trial with A " + std::to_string(sh.rows) + " x " + std::to_string(sh.inner) +
                      " and B " + std::to_string(sh.inner) + " x " + std::to_string(sh.cols) +
                      " on " + std::to_string(code->num_peers()) + " peers",
                  8.0 * doubles, AvailableMemoryBytes()));
  const int answering = code->num_peers() - o.stragglers;
  std::vector<CodesTrialRow> rows;
  Random rng(o.seed);
  if (!o.error_rates.empty()) {
    for (double rate : o.error_rates) {
      CodesTrialRow row;
      std::ostringstream name;
      name << "eps=" << rate;
      row.errors = name.str();
      for (int t = 0; t < o.trials; ++t) RunTrial(*code, o, 0, rate, rng, row);
      rows.push_back(row);
    }
    return rows;
  }
  for (int e : o.errors) {
    if (e < 0 || e > answering) {
      return InvalidArgumentError("--errors: " + std::to_string(e) + " wrong results but only " +
                                  std::to_string(answering) + " peers answer");
    }
    CodesTrialRow row;
    row.errors = std::to_string(e);
    for (int t = 0; t < o.trials; ++t) RunTrial(*code, o, e, 0.0, rng, row);
    rows.push_back(row);
  }
  return rows;
}

std::string CodesUsage() {
  return "usage: polyguard-experiment codes [options]\n"
         "  --strategy genpolydot|mds|replication|abft|lowweight|uncoded   (default genpolydot)\n"
         "  --peers P            (default 8)\n"
         "  --m M --n N --d D    Generalized PolyDot splits (default 2, 2, 1)\n"
         "  --data-blocks Q      MDS data blocks (default m*n: the same storage per peer)\n"
         "  --replicas R         replication factor (default 2)\n"
         "  --points chebyshev|equispaced|rotation\n"
         "  --precision float64|float32   the peers' arithmetic (default float64)\n"
         "  --stragglers S       peers that do not answer (default 0)\n"
         "  --errors E[,E...]    wrong results per trial, one row each (default 0)\n"
         "  --error-rate X[,X...] each answering peer wrong with probability X instead\n"
         "  --error-kind dense|entry|bitflip|nan|inf   (default dense)\n"
         "  --error-magnitude X  relative to the typical result (default 1)\n"
         "  --trials T           (default 100)\n"
         "  --rows R --cols C --batch B   A is R x C, B is C x B (default 64, 64, 8)\n"
         "  --seed S             (default 1)\n";
}

StatusOr<CodesTrialOptions> ParseCodesOptions(const std::vector<std::string>& args) {
  CodesTrialOptions o;
  o.code.peers = 8;
  o.code.m = 2;
  o.code.n = 2;
  o.code.d = 1;
  o.code.replicas = 2;
  o.code.shape = {64, 64, 8};
  int data_blocks = -1, k_a = -1, k_b = -1;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i], value;
    if (flag.rfind("--", 0) != 0) return InvalidArgumentError("unexpected argument '" + flag + "'");
    flag = flag.substr(2);
    const auto eq = flag.find('=');
    if (eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else {
      if (i + 1 >= args.size()) return InvalidArgumentError("--" + flag + " needs a value");
      value = args[++i];
    }
    if (flag == "strategy") {
      POLYGUARD_ASSIGN_OR_RETURN(o.code.strategy, ParseStrategy(value));
    } else if (flag == "peers") {
      POLYGUARD_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, kMaxPeers));
      o.code.peers = int(v);
    } else if (flag == "m" || flag == "n" || flag == "d") {
      POLYGUARD_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, 64));
      (flag == "m" ? o.code.m : flag == "n" ? o.code.n : o.code.d) = int(v);
    } else if (flag == "data-blocks") {
      POLYGUARD_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, 64));
      data_blocks = int(v);
    } else if (flag == "ka" || flag == "kb") {
      POLYGUARD_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, 64));
      (flag == "ka" ? k_a : k_b) = int(v);
    } else if (flag == "weight-a" || flag == "weight-b") {
      POLYGUARD_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 0, 64));
      (flag == "weight-a" ? o.code.weight_a : o.code.weight_b) = int(v);
    } else if (flag == "density") {
      POLYGUARD_ASSIGN_OR_RETURN(o.density, ParseDouble(flag, value, 1e-6, 1.0));
    } else if (flag == "replicas") {
      POLYGUARD_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, 64));
      o.code.replicas = int(v);
    } else if (flag == "points") {
      POLYGUARD_ASSIGN_OR_RETURN(o.code.points, ParsePointKind(value));
    } else if (flag == "precision") {
      POLYGUARD_ASSIGN_OR_RETURN(o.code.precision, ParsePrecision(value));
    } else if (flag == "stragglers") {
      POLYGUARD_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 0, kMaxPeers - 1));
      o.stragglers = int(v);
    } else if (flag == "errors") {
      o.errors.clear();
      for (const std::string& item : SplitComma(value)) {
        POLYGUARD_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, item, 0, kMaxPeers));
        o.errors.push_back(int(v));
      }
    } else if (flag == "error-rate") {
      o.error_rates.clear();
      for (const std::string& item : SplitComma(value)) {
        POLYGUARD_ASSIGN_OR_RETURN(double v, ParseDouble(flag, item, 0.0, 1.0));
        o.error_rates.push_back(v);
      }
    } else if (flag == "error-kind") {
      POLYGUARD_ASSIGN_OR_RETURN(o.error_kind, ParseSoftErrorKind(value));
    } else if (flag == "error-magnitude") {
      POLYGUARD_ASSIGN_OR_RETURN(o.error_magnitude, ParseDouble(flag, value, 1e-300, 1e300));
    } else if (flag == "trials") {
      POLYGUARD_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, 100000000));
      o.trials = int(v);
    } else if (flag == "rows" || flag == "cols" || flag == "batch") {
      POLYGUARD_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, 1 << 20));
      (flag == "rows"   ? o.code.shape.rows
       : flag == "cols" ? o.code.shape.inner
                        : o.code.shape.cols) = v;
    } else if (flag == "seed") {
      POLYGUARD_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 0, INT64_MAX));
      o.seed = uint64_t(v);
    } else {
      return InvalidArgumentError("unknown option --" + flag);
    }
  }
  o.code.data_blocks = data_blocks > 0 ? data_blocks : std::min(o.code.peers, o.code.m * o.code.n);
  o.code.k_a = k_a > 0 ? k_a : o.code.m;
  o.code.k_b = k_b > 0 ? k_b : o.code.d;
  return o;
}

void WriteCodesCsv(std::ostream& out, const CodesTrialOptions& o, int threshold,
                   const std::vector<CodesTrialRow>& rows) {
  out << "strategy,peers,m,n,d,threshold,stragglers,errors,trials,corrected,"
         "detected_uncorrectable,undetected_wrong,max_rel_error,density,shard_nonzeros\n";
  for (const CodesTrialRow& r : rows) {
    // The low-weight code's split is k_a x k_b: its m, n, d columns.
    const bool low = o.code.strategy == Strategy::kLowWeight;
    out << o.code.strategy.name() << ',' << o.code.peers << ',' << (low ? o.code.k_a : o.code.m)
        << ',' << (low ? 1 : o.code.n) << ',' << (low ? o.code.k_b : o.code.d) << ',' << threshold
        << ',' << o.stragglers << ',' << r.errors << ',' << r.trials << ',' << r.corrected << ','
        << r.detected_uncorrectable << ',' << r.undetected_wrong << ',' << r.max_rel_error << ','
        << o.density << ',' << r.shard_nonzeros << '\n';
  }
}

}  // namespace polyguard::experiment
