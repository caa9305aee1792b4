// Experiment 1 (experiment.proto, Correction): for each P, the most wrong
// results that every trial corrects, under dense errors and under errors that
// share one entry, beside R - K - 1 and floor((R - K) / 2).
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "experiment/analytic.h"
#include "experiment/code_options.h"
#include "experiment/kinds.h"
#include "experiment/results.h"

namespace polyguard::experiment {

Status ValidateCorrection(const proto::Experiment& spec, const std::string& file) {
  const auto& c = spec.correction();
  POLYGUARD_RETURN_IF_ERROR(CheckCode(file, "correction.code", c.code()));
  POLYGUARD_RETURN_IF_ERROR(CheckShape(file, "correction.shape", c.shape()));
  if (c.peers().empty()) return Bad(file, "correction.peers", "at least one P");
  if (c.trials() < 1) return Bad(file, "correction.trials", "must be >= 1");
  return Status::Ok();
}

StatusOr<std::string> RunCorrection(const proto::Experiment& spec, const std::string& dir,
                                    bool* plotted) {
  const auto& c = spec.correction();
  POLYGUARD_ASSIGN_OR_RETURN(
      ResultTable table, ResultTable::Open(dir + "/" + spec.name() + ".csv",
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
    if (!code.ok())
      return Bad("spec " + spec.name(), "correction.peers",
                 "P = " + std::to_string(p) + ": " + std::string(code.status().message()));
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
          const Outcome out =
              DecodeWithErrors(*cfg.code, clean, all, wrong,
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
  PlotSpec plot{.title = spec.title(),
                .xlabel = "redundancy R - K (R = P results, no stragglers)",
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
        if (table.GetNumber(key, "corrected") == table.GetNumber(key, "trials") &&
            best[mi] == t - 1)
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
  md << "\n"
     << c.trials() << " trials per point, " << c.code().strategy()
     << " with K = " << configs.front().code->recovery_threshold() << " on P peers, results of "
     << c.shape().rows() << " x " << c.shape().inner() << " times " << c.shape().inner() << " x "
     << c.shape().cols() << " products.\n";
  return md.str();
}

}  // namespace polyguard::experiment
