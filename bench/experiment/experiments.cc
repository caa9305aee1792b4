#include "experiment/experiments.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "experiment/analytic.h"
#include "experiment/results.h"
#include "polyguard/codes/product_mds_code.h"
#include "polyguard/fault/fault_injector.h"

namespace polyguard::experiment {
namespace {

namespace pb = google::protobuf;

class Collector : public pb::io::ErrorCollector {
 public:
  explicit Collector(std::string file) : file_(std::move(file)) {}
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (first_.empty()) {
      first_ = file_;
      first_ += ":" + std::to_string(line + 1);
      first_ += ":" + std::to_string(column + 1);
      first_ += ": " + message;
    }
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string file_;
  std::string first_;
};

Status Bad(const std::string& file, const std::string& field, const std::string& what) {
  std::string m = file;
  m += ": ";
  m += field;
  m += ": ";
  m += what;
  return InvalidArgumentError(m);
}

Status CheckShape(const std::string& file, const std::string& field, const proto::Shape& s) {
  if (s.rows() < 1 || s.inner() < 1 || s.cols() < 1 || s.rows() * s.inner() > (1 << 24)) {
    return Bad(file, field, "rows, inner and cols must be >= 1 (and rows x inner at most 2^24)");
  }
  return Status::Ok();
}

Status CheckCode(const std::string& file, const std::string& field, const proto::Code& c) {
  auto s = ParseStrategy(c.strategy());
  if (!s.ok()) return Bad(file, field + ".strategy", std::string(s.status().message()));
  if (!c.points().empty()) {
    auto p = ParsePointKind(c.points());
    if (!p.ok()) return Bad(file, field + ".points", std::string(p.status().message()));
  }
  return Status::Ok();
}

ProductShape ShapeOf(const proto::Shape& s) { return {s.rows(), s.inner(), s.cols()}; }

Status Validate(const proto::Experiment& e, const std::string& file) {
  if (e.name().empty() || e.name().find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") !=
                              std::string::npos) {
    return Bad(file, "name", "required, lowercase letters, digits, '-' and '_' only");
  }
  switch (e.kind_case()) {
    case proto::Experiment::kCorrection: {
      const auto& c = e.correction();
      POLYGUARD_RETURN_IF_ERROR(CheckCode(file, "correction.code", c.code()));
      POLYGUARD_RETURN_IF_ERROR(CheckShape(file, "correction.shape", c.shape()));
      if (c.peers().empty()) return Bad(file, "correction.peers", "at least one P");
      if (c.trials() < 1) return Bad(file, "correction.trials", "must be >= 1");
      return Status::Ok();
    }
    case proto::Experiment::kFailure: {
      const auto& f = e.failure();
      if (f.codes().empty()) return Bad(file, "failure.codes", "at least one code");
      for (int i = 0; i < f.codes_size(); ++i) {
        POLYGUARD_RETURN_IF_ERROR(CheckCode(file, "failure.codes[" + std::to_string(i) + "]", f.codes(i)));
        if (f.codes(i).peers() != f.codes(0).peers())
          return Bad(file, "failure.codes[" + std::to_string(i) + "].peers", "every code needs the same P");
      }
      for (double r : f.error_rates())
        if (!(r > 0.0 && r < 1.0)) return Bad(file, "failure.error_rates", "each in (0, 1)");
      if (f.error_rates().empty()) return Bad(file, "failure.error_rates", "at least one");
      if (f.trials() < 1) return Bad(file, "failure.trials", "must be >= 1");
      return CheckShape(file, "failure.shape", f.shape());
    }
    case proto::Experiment::kTolerable: {
      const auto& t = e.tolerable();
      if (t.peers().empty()) return Bad(file, "tolerable.peers", "at least one P");
      for (int p : t.peers())
        if (p < 8 || p > 64 || p % 4 != 0)
          return Bad(file, "tolerable.peers", "each P a multiple of 4 in [8, 64] (storage 1/4: replication P/4, PolyDot m = n = 2, MDS product 2 x 2)");
      if (!(t.target_failure() >= 0.0 && t.target_failure() < 1.0))
        return Bad(file, "tolerable.target_failure", "in [0, 1) (0: the default 1e-3)");
      return CheckShape(file, "tolerable.shape", t.shape());
    }
    case proto::Experiment::kTraining: {
      const auto& t = e.training();
      if (t.codes().empty()) return Bad(file, "training.codes", "at least one code");
      for (int i = 0; i < t.codes_size(); ++i)
        POLYGUARD_RETURN_IF_ERROR(CheckCode(file, "training.codes[" + std::to_string(i) + "]", t.codes(i)));
      if (t.batch() < 1 || t.steps() < 1 || t.eval_every() < 1)
        return Bad(file, "training", "batch, steps and eval_every must be >= 1");
      if (t.steps() / t.eval_every() > 200)
        return Bad(file, "training.eval_every", "at most 200 evaluations per run");
      if (!(t.error_rate() >= 0.0 && t.error_rate() <= 1.0))
        return Bad(file, "training.error_rate", "in [0, 1]");
      for (const std::string& p : t.points())
        if (!ParseStepPoint(p).ok()) return Bad(file, "training.points", "unknown step point '" + p + "'");
      return Status::Ok();
    }
    case proto::Experiment::kStragglers: {
      const auto& s = e.stragglers();
      if (s.codes().empty()) return Bad(file, "stragglers.codes", "at least one code");
      for (int i = 0; i < s.codes_size(); ++i)
        POLYGUARD_RETURN_IF_ERROR(CheckCode(file, "stragglers.codes[" + std::to_string(i) + "]", s.codes(i)));
      if (s.delayed().empty() || s.steps() < 1 || !(s.delay_ms() > 0))
        return Bad(file, "stragglers", "delayed (at least one count), steps >= 1 and delay_ms > 0 are required");
      return CheckShape(file, "stragglers.shape", s.shape());
    }
    case proto::Experiment::kTrainingSoak: {
      const auto& t = e.training_soak();
      POLYGUARD_RETURN_IF_ERROR(CheckCode(file, "training_soak.code", t.code()));
      if (t.batch() < 1 || t.steps() < 1 || t.eval_every() < 1)
        return Bad(file, "training_soak", "batch, steps and eval_every must be >= 1");
      if (t.steps() / t.eval_every() > 100)
        return Bad(file, "training_soak.eval_every", "at most 100 evaluations per run");
      if (t.features() < 0 || t.classes() < 0 || t.features() == 1 || t.classes() == 1)
        return Bad(file, "training_soak", "features and classes must be >= 2 (0: default)");
      for (int h : t.hidden())
        if (h < 1) return Bad(file, "training_soak.hidden", "each width >= 1");
      if (!(t.error_rate() >= 0.0 && t.error_rate() <= 1.0))
        return Bad(file, "training_soak.error_rate", "in [0, 1]");
      if (!(t.tolerance() >= 0.0 && t.tolerance() < 1.0))
        return Bad(file, "training_soak.tolerance", "in [0, 1) (0: the default 1e-6)");
      if (t.segment_steps() < 0)
        return Bad(file, "training_soak.segment_steps", ">= 1 (0: the default 2000)");
      return Status::Ok();
    }
    case proto::Experiment::KIND_NOT_SET:
      break;
  }
  return Bad(file, "kind",
             "one of correction, failure, tolerable, training, stragglers or training_soak is "
             "required");
}

}  // namespace

StatusOr<proto::Experiment> ParseExperiment(const std::string& text, const std::string& file) {
  proto::Experiment e;
  pb::TextFormat::Parser parser;
  Collector errors(file);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &e)) return InvalidArgumentError(errors.first());
  POLYGUARD_RETURN_IF_ERROR(Validate(e, file));
  return e;
}

StatusOr<proto::Experiment> LoadExperiment(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path + ": cannot read the experiment spec");
  std::stringstream text;
  text << in.rdbuf();
  return ParseExperiment(text.str(), path);
}

std::string CodeLabel(const proto::Code& c) { return c.label().empty() ? c.strategy() : c.label(); }

StatusOr<ProductCodeOptions> CodeOptions(const proto::Code& c, int peers, ProductShape shape) {
  ProductCodeOptions o;
  POLYGUARD_ASSIGN_OR_RETURN(o.strategy, ParseStrategy(c.strategy()));
  o.shape = shape;
  o.peers = peers;
  o.m = c.m() > 0 ? c.m() : 2;
  o.n = c.n() > 0 ? c.n() : 2;
  o.d = c.d() > 0 ? c.d() : 1;
  o.replicas = c.replicas() > 0 ? c.replicas() : 2;
  o.data_blocks = std::min(peers, o.m * o.n);
  o.row_peers = c.row_peers();
  o.row_blocks = c.row_blocks();
  o.col_peers = c.col_peers();
  o.col_blocks = c.col_blocks();
  o.k_a = c.k_a() > 0 ? c.k_a() : o.m;
  o.k_b = c.k_b() > 0 ? c.k_b() : o.d;
  o.weight_a = c.weight_a();
  o.weight_b = c.weight_b();
  if (!c.points().empty()) {
    POLYGUARD_ASSIGN_OR_RETURN(o.points, ParsePointKind(c.points()));
  }
  POLYGUARD_RETURN_IF_ERROR(UseDefaultProductMdsLayout(&o));
  return o;
}

StatusOr<RunResult> RunExperiment(const proto::Experiment& spec, const std::string& out_dir) {
  RunResult r;
  r.dir = out_dir + "/" + spec.name();
  std::error_code ec;
  std::filesystem::create_directories(r.dir, ec);
  if (ec) return InternalError(r.dir + ": " + ec.message());
  StatusOr<std::string> summary = InvalidArgumentError("no experiment kind");
  switch (spec.kind_case()) {
    case proto::Experiment::kCorrection: summary = RunCorrection(spec, r.dir, &r.plotted); break;
    case proto::Experiment::kFailure: summary = RunFailure(spec, r.dir, &r.plotted); break;
    case proto::Experiment::kTolerable: summary = RunTolerable(spec, r.dir, &r.plotted); break;
    case proto::Experiment::kTraining: summary = RunTraining(spec, r.dir, &r.plotted); break;
    case proto::Experiment::kStragglers: summary = RunStragglers(spec, r.dir, &r.plotted); break;
    case proto::Experiment::kTrainingSoak:
      summary = RunTrainingSoak(spec, r.dir, &r.plotted);
      break;
    case proto::Experiment::KIND_NOT_SET: break;
  }
  if (!summary.ok()) return summary.status();
  r.summary = *summary;
  POLYGUARD_RETURN_IF_ERROR(WriteText(r.dir + "/summary.md", r.summary));
  return r;
}

// ---- 1. Wrong results corrected against redundancy ----

StatusOr<std::string> RunCorrection(const proto::Experiment& spec, const std::string& dir,
                                    bool* plotted) {
  const auto& c = spec.correction();
  POLYGUARD_ASSIGN_OR_RETURN(ResultTable table,
                             ResultTable::Open(dir + "/" + spec.name() + ".csv",
                                               {"point", "peers", "threshold", "redundancy", "model",
                                                "wrong", "trials", "corrected", "detected", "silent"}));
  struct Config {
    int p;
    std::unique_ptr<ProductCode> code;
  };
  std::vector<Config> configs;
  int total = 0;
  for (int p : c.peers()) {
    POLYGUARD_ASSIGN_OR_RETURN(ProductCodeOptions o, CodeOptions(c.code(), p, ShapeOf(c.shape())));
    auto code = MakeProductCode(o);
    if (!code.ok()) return Bad("spec " + spec.name(), "correction.peers", "P = " + std::to_string(p) + ": " + std::string(code.status().message()));
    total += 2 * (p - (*code)->recovery_threshold() + 1);
    configs.push_back({p, std::move(code).value()});
  }
  Progress progress(spec.name(), total);
  const char* models[] = {"probabilistic", "adversarial"};
  auto point = [&](int p, int model, int wrong) {
    std::string key = "P=" + std::to_string(p);
    key += ";model=";
    key += models[model];
    key += ";wrong=" + std::to_string(wrong);
    return key;
  };
  for (const Config& cfg : configs) {
    const int k = cfg.code->recovery_threshold();
    for (int mi = 0; mi < 2; ++mi) {
      for (int t = 0; t <= cfg.p - k; ++t) {
        const std::string key = point(cfg.p, mi, t);
        if (table.Has(key)) {
          progress.Done(key, true);
          continue;
        }
        Random rng(DeriveSeed(spec.seed(), {uint64_t(cfg.p), uint64_t(mi), uint64_t(t)}));
        int counts[3] = {0, 0, 0};
        std::vector<int> all(static_cast<size_t>(cfg.p));
        for (int i = 0; i < cfg.p; ++i) all[static_cast<size_t>(i)] = i;
        for (int trial = 0; trial < c.trials(); ++trial) {
          const CleanProduct clean = MakeCleanProduct(*cfg.code, &rng);
          const std::vector<int> wrong = rng.Sample(cfg.p, t);
          const Outcome out = DecodeWithErrors(*cfg.code, clean, all, wrong,
                                               mi == 0 ? ErrorMode::kDense : ErrorMode::kSameEntry, &rng);
          ++counts[static_cast<int>(out)];
        }
        POLYGUARD_RETURN_IF_ERROR(table.Append(
            {key, std::to_string(cfg.p), std::to_string(k), std::to_string(cfg.p - k), models[mi],
             std::to_string(t), std::to_string(c.trials()), std::to_string(counts[0]),
             std::to_string(counts[1]), std::to_string(counts[2])}));
        progress.Done(key, false);
      }
    }
  }
  // Measured: the most wrong results every trial corrected (and every fewer).
  PlotSpec plot{.title = spec.title(), .xlabel = "redundancy R - K (R = P results, no stragglers)",
                .ylabel = "wrong results corrected in every trial"};
  Series meas[2], ana[2];
  meas[0].title = "measured, probabilistic (dense errors)";
  meas[1].title = "measured, adversarial (same entry)";
  ana[0].title = "R - K - 1";
  ana[1].title = "floor((R - K) / 2)";
  meas[0].style = meas[1].style = "points pointsize 2";
  ana[0].style = ana[1].style = "lines";
  std::ostringstream md;
  md << "| P | K | R - K | corrected, probabilistic (measured / R-K-1) | corrected, adversarial "
        "(measured / floor((R-K)/2)) | silent wrong decodes |\n|---|---|---|---|---|---|\n";
  for (const Config& cfg : configs) {
    const int k = cfg.code->recovery_threshold(), red = cfg.p - k;
    int best[2] = {-1, -1};
    int silent = 0;
    for (int mi = 0; mi < 2; ++mi) {
      for (int t = 0; t <= red; ++t) {
        const std::string key = point(cfg.p, mi, t);
        silent += int(table.GetNumber(key, "silent"));
        if (table.GetNumber(key, "corrected") == table.GetNumber(key, "trials") && best[mi] == t - 1)
          best[mi] = t;
      }
      meas[mi].points.emplace_back(red, best[mi]);
    }
    ana[0].points.emplace_back(red, red - 1);
    ana[1].points.emplace_back(red, red / 2);
    md << "| " << cfg.p << " | " << k << " | " << red << " | " << best[0] << " / " << red - 1
       << " | " << best[1] << " / " << red / 2 << " | " << silent << " |\n";
  }
  plot.series = {ana[0], ana[1], meas[0], meas[1]};
  const Status st = Plot(dir, spec.name(), plot);
  *plotted = st.ok();
  if (!st.ok()) std::fprintf(stderr, "%s\n", st.ToString().c_str());
  md << "\n" << c.trials() << " trials per point, " << c.code().strategy() << " with K = "
     << configs.front().code->recovery_threshold() << " on P peers, results of " << c.shape().rows() << " x " << c.shape().inner() << " times "
     << c.shape().inner() << " x " << c.shape().cols() << " products.\n";
  return md.str();
}

// ---- 2. Failure probability against eps ----

StatusOr<std::string> RunFailure(const proto::Experiment& spec, const std::string& dir,
                                 bool* plotted) {
  const auto& f = spec.failure();
  POLYGUARD_ASSIGN_OR_RETURN(ResultTable table,
                             ResultTable::Open(dir + "/" + spec.name() + ".csv",
                                               {"point", "code", "describe", "peers", "stored_per_peer",
                                                "eps", "trials", "corrected", "detected", "silent",
                                                "measured_failure", "analytic_failure", "analytic_kind"}));
  const int p = f.codes(0).peers();
  const ProductShape shape = ShapeOf(f.shape());
  const int patterns = f.pattern_trials() > 0 ? f.pattern_trials() : 200;
  Progress progress(spec.name(), f.codes_size() * f.error_rates_size());
  PlotSpec plot{.title = spec.title(), .xlabel = "per-peer error probability eps",
                .ylabel = "probability that a step is not corrected", .logx = true, .logy = true};
  std::ostringstream md;
  md << "| code | stored per peer (of A) | eps | measured failure | analytic failure |\n"
        "|---|---|---|---|---|\n";
  for (int ci = 0; ci < f.codes_size(); ++ci) {
    const proto::Code& pc = f.codes(ci);
    const std::string label = CodeLabel(pc);
    POLYGUARD_ASSIGN_OR_RETURN(ProductCodeOptions o, CodeOptions(pc, p, shape));
    POLYGUARD_ASSIGN_OR_RETURN(auto code, MakeProductCode(o));
    const double stored = double(code->stored_doubles_per_peer()) / double(shape.rows * shape.inner);
    std::optional<std::vector<double>> closed = ClosedFormFailureByCount(*code);
    Random pattern_rng(DeriveSeed(spec.seed(), {uint64_t(ci), 77}));
    const std::vector<double> fk = closed ? *closed : MeasuredFailureByCount(*code, patterns, &pattern_rng);
    const std::string kind = closed ? "binomial tail" : "exact over k-error patterns";
    // One colour per code for both of its series.
    const std::string colour = " lc " + std::to_string(ci + 1);
    Series meas{.title = label + " (Monte Carlo)", .style = "points pointsize 1.5 pt 7" + colour};
    Series ana{.title = label + " (" + kind + ")", .style = "lines lw 2" + colour};
    for (double eps = 1e-4; eps <= 0.31; eps *= 1.25) ana.points.emplace_back(eps, FailureProbability(fk, eps));
    for (int ei = 0; ei < f.error_rates_size(); ++ei) {
      const double eps = f.error_rates(ei);
      const std::string key = label + ";eps=" + Num(eps);
      if (!table.Has(key)) {
        Random rng(DeriveSeed(spec.seed(), {uint64_t(ci), uint64_t(ei)}));
        int counts[3] = {0, 0, 0};
        std::vector<int> all(static_cast<size_t>(p));
        for (int i = 0; i < p; ++i) all[static_cast<size_t>(i)] = i;
        CleanProduct clean = MakeCleanProduct(*code, &rng);
        for (int trial = 0; trial < f.trials(); ++trial) {
          if (trial % 50 == 49) clean = MakeCleanProduct(*code, &rng);
          std::vector<int> wrong;
          for (int i = 0; i < p; ++i)
            if (rng.Uniform() < eps) wrong.push_back(i);
          const Outcome out = wrong.empty() ? Outcome::kCorrected
                                            : DecodeWithErrors(*code, clean, all, wrong, ErrorMode::kDense, &rng);
          ++counts[static_cast<int>(out)];
        }
        const double measured = double(counts[1] + counts[2]) / f.trials();
        POLYGUARD_RETURN_IF_ERROR(table.Append(
            {key, label, code->Describe(), std::to_string(p), Num(stored), Num(eps),
             std::to_string(f.trials()), std::to_string(counts[0]), std::to_string(counts[1]),
             std::to_string(counts[2]), Num(measured), Num(FailureProbability(fk, eps)), kind}));
        progress.Done(key, false);
      } else {
        progress.Done(key, true);
      }
      const double measured = table.GetNumber(key, "measured_failure");
      meas.points.emplace_back(eps, measured);
      md << "| " << label << " | " << Num(stored) << " | " << Num(eps) << " | " << Num(measured)
         << " | " << Num(table.GetNumber(key, "analytic_failure")) << " |\n";
    }
    plot.series.push_back(ana);
    plot.series.push_back(meas);
  }
  plot.extra = "set yrange [1e-6:1.5]\n";
  const Status st = Plot(dir, spec.name(), plot);
  *plotted = st.ok();
  if (!st.ok()) std::fprintf(stderr, "%s\n", st.ToString().c_str());
  md << "\nP = " << p << ", " << f.trials() << " Monte Carlo trials per point (a measured 0 is "
     << "below 1/" << f.trials() << " and not plotted on the log scale).\n";
  return md.str();
}

// ---- 3. Largest tolerable eps against P ----

StatusOr<std::string> RunTolerable(const proto::Experiment& spec, const std::string& dir,
                                   bool* plotted) {
  const auto& t = spec.tolerable();
  const double target = t.target_failure() > 0 ? t.target_failure() : 1e-3;
  const int patterns = t.pattern_trials() > 0 ? t.pattern_trials() : 200;
  POLYGUARD_ASSIGN_OR_RETURN(ResultTable table,
                             ResultTable::Open(dir + "/" + spec.name() + ".csv",
                                               {"point", "peers", "strategy", "describe", "stored_per_peer",
                                                "eps_analytic", "eps_measured"}));
  const ProductShape shape = ShapeOf(t.shape());
  const char* strategies[] = {"genpolydot", "replication", "mds"};
  Progress progress(spec.name(), 3 * t.peers_size());
  Series ana[3], meas[3];
  for (int si = 0; si < 3; ++si) {
    const std::string colour = " lc " + std::to_string(si + 1);
    ana[si].title = std::string(strategies[si]) + (si == 2 ? " (measured k-patterns)" : " (analytic)");
    ana[si].style = "linespoints lw 2" + colour;
    meas[si].title = std::string(strategies[si]) + " (measured k-patterns)";
    meas[si].style = "points pointsize 2 pt 6" + colour;
  }
  std::ostringstream md;
  md << "| P | PolyDot eps* | replication eps* | MDS product eps* | PolyDot / replication | "
        "PolyDot / MDS product |\n|---|---|---|---|---|---|\n";
  for (int p : t.peers()) {
    double eps[3] = {0, 0, 0};
    for (int si = 0; si < 3; ++si) {
      proto::Code pc;
      pc.set_strategy(strategies[si]);
      pc.set_replicas(p / 4);          // storage r / P = 1/4
      if (si == 2) {                   // 2 x 2 data blocks on a (P/4 + 1)^2 - 4 grid
        pc.set_row_peers(p / 4 + 1);
        pc.set_col_peers(p / 4 + 1);
        pc.set_row_blocks(2);
        pc.set_col_blocks(2);
      }
      POLYGUARD_ASSIGN_OR_RETURN(ProductCodeOptions o, CodeOptions(pc, p, shape));
      POLYGUARD_ASSIGN_OR_RETURN(auto code, MakeProductCode(o));
      const std::string key = "P=" + std::to_string(p) + ";" + strategies[si];
      if (!table.Has(key)) {
        Random rng(DeriveSeed(spec.seed(), {uint64_t(p), uint64_t(si)}));
        std::optional<std::vector<double>> closed = ClosedFormFailureByCount(*code);
        const std::vector<double> measured = MeasuredFailureByCount(*code, patterns, &rng);
        const double e_meas = TolerableEps(measured, target);
        const double e_ana = closed ? TolerableEps(*closed, target) : e_meas;
        const double stored = double(code->stored_doubles_per_peer()) / double(shape.rows * shape.inner);
        POLYGUARD_RETURN_IF_ERROR(table.Append({key, std::to_string(p), strategies[si], code->Describe(),
                                                Num(stored), Num(e_ana), Num(e_meas)}));
        progress.Done(key, false);
      } else {
        progress.Done(key, true);
      }
      eps[si] = table.GetNumber(key, "eps_analytic");
      ana[si].points.emplace_back(p, eps[si]);
      if (si < 2) meas[si].points.emplace_back(p, table.GetNumber(key, "eps_measured"));
    }
    md << "| " << p << " | " << Num(eps[0]) << " | " << Num(eps[1]) << " | " << Num(eps[2]) << " | "
       << Num(eps[0] / eps[1]) << "x | " << Num(eps[0] / eps[2]) << "x |\n";
  }
  PlotSpec plot{.title = spec.title(), .xlabel = "peers P (each stores 1/4 of A)",
                .ylabel = "largest eps with step failure <= " + Num(target), .logy = true};
  plot.series = {ana[0], ana[1], ana[2], meas[0], meas[1]};
  const Status st = Plot(dir, spec.name(), plot);
  *plotted = st.ok();
  if (!st.ok()) std::fprintf(stderr, "%s\n", st.ToString().c_str());
  md << "\nTarget: a step fails (is not corrected) with probability at most " << Num(target)
     << ". Storage per peer 1/4 of A for all three: Generalized PolyDot m = n = 2, replication "
     << "r = P/4, MDS product code with 2 x 2 data blocks on a (P/4 + 1) x (P/4 + 1) grid minus "
     << "its parity corner. The MDS product code's f_k is measured with its decoder over "
     << patterns << " k-error patterns per k (every pattern when there are fewer).\n";
  return md.str();
}

Status UpdateReadme(const std::string& readme, const std::string& out_dir) {
  std::ifstream in(readme, std::ios::binary);
  if (!in) return NotFoundError(readme + ": cannot read");
  std::stringstream all;
  all << in.rdbuf();
  std::string text = all.str();
  size_t pos = 0;
  int replaced = 0;
  const std::string open = "<!-- results:";
  while ((pos = text.find(open, pos)) != std::string::npos) {
    const size_t name_end = text.find(" -->", pos);
    if (name_end == std::string::npos) break;
    const std::string name = text.substr(pos + open.size(), name_end - pos - open.size());
    const std::string close = "<!-- /results:" + name + " -->";
    const size_t end = text.find(close, name_end);
    if (end == std::string::npos) return InvalidArgumentError(readme + ": no '" + close + "'");
    std::ifstream summary(out_dir + "/" + name + "/summary.md", std::ios::binary);
    if (!summary) {
      std::fprintf(stderr, "readme: no %s/%s/summary.md yet; section left as is\n", out_dir.c_str(),
                   name.c_str());
      pos = end;
      continue;
    }
    std::stringstream body;
    body << summary.rdbuf();
    const size_t body_start = name_end + 4;
    text.replace(body_start, end - body_start, "\n" + body.str());
    pos = text.find(close, body_start) + close.size();
    ++replaced;
  }
  std::fprintf(stderr, "readme: %d sections regenerated\n", replaced);
  return WriteText(readme, text);
}

}  // namespace polyguard::experiment
