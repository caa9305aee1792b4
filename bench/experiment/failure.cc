// Experiment 2 (experiment.proto, Failure): the probability that one step is
// not corrected against the per-peer error probability eps, by Monte Carlo and
// analytically (analytic.h).
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "experiment/analytic.h"
#include "experiment/code_options.h"
#include "experiment/kinds.h"
#include "experiment/results.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard::experiment {

Status ValidateFailure(const proto::Experiment& spec, const std::string& file) {
  const auto& f = spec.failure();
  if (f.codes().empty()) return Bad(file, "failure.codes", "at least one code");
  for (int i = 0; i < f.codes_size(); ++i) {
    POLYGUARD_RETURN_IF_ERROR(
        CheckCode(file, "failure.codes[" + std::to_string(i) + "]", f.codes(i)));
    if (f.codes(i).peers() != f.codes(0).peers())
      return Bad(file, "failure.codes[" + std::to_string(i) + "].peers",
                 "every code needs the same P");
  }
  for (double r : f.error_rates())
    if (!(r > 0.0 && r < 1.0)) return Bad(file, "failure.error_rates", "each in (0, 1)");
  if (f.error_rates().empty()) return Bad(file, "failure.error_rates", "at least one");
  if (f.trials() < 1) return Bad(file, "failure.trials", "must be >= 1");
  return CheckShape(file, "failure.shape", f.shape());
}

StatusOr<std::string> RunFailure(const proto::Experiment& spec, const std::string& dir,
                                 bool* plotted) {
  const auto& f = spec.failure();
  POLYGUARD_ASSIGN_OR_RETURN(
      ResultTable table,
      ResultTable::Open(
          dir + "/" + spec.name() + ".csv",
          {"point", "code", "describe", "peers", "stored_per_peer", "eps", "trials", "corrected",
           "detected", "silent", "measured_failure", "analytic_failure", "analytic_kind"}));
  const int p = f.codes(0).peers();
  const ProductShape shape = ShapeOf(f.shape());
  const int patterns = f.pattern_trials() > 0 ? f.pattern_trials() : 200;
  Progress progress(spec.name(), f.codes_size() * f.error_rates_size());
  PlotSpec plot{.title = spec.title(),
                .xlabel = "per-peer error probability eps",
                .ylabel = "probability that a step is not corrected",
                .logx = true,
                .logy = true};
  std::ostringstream md;
  md << "| code | stored per peer (of A) | eps | measured failure | analytic failure |\n"
        "|---|---|---|---|---|\n";
  for (int ci = 0; ci < f.codes_size(); ++ci) {
    const polyguard::proto::CodeSpec& pc = f.codes(ci);
    const std::string label = CodeLabel(pc);
    POLYGUARD_ASSIGN_OR_RETURN(ProductCodeOptions o, CodeOptions(pc, p, shape));
    POLYGUARD_ASSIGN_OR_RETURN(auto code, MakeProductCode(o));
    const double stored =
        double(code->stored_doubles_per_peer()) / double(shape.rows * shape.inner);
    const FailureByWrongCount closed = FailureModelOf(*code);  // strategy_registry.h
    Random pattern_rng(DeriveSeed(spec.seed(), {uint64_t(ci), 77}));
    const std::vector<double> fk =
        closed ? *closed : MeasuredFailureByCount(*code, patterns, &pattern_rng);
    const std::string kind = closed ? "binomial tail" : "exact over k-error patterns";
    // One colour per code for both of its series.
    const std::string colour = " lc " + std::to_string(ci + 1);
    Series meas{.title = label + " (Monte Carlo)", .style = "points pointsize 1.5 pt 7" + colour};
    Series ana{.title = label + " (" + kind + ")", .style = "lines lw 2" + colour};
    for (double eps = 1e-4; eps <= 0.31; eps *= 1.25)
      ana.points.emplace_back(eps, FailureProbability(fk, eps));
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
          const Outcome out =
              wrong.empty() ? Outcome::kCorrected
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

}  // namespace polyguard::experiment
