// Experiment 3 (experiment.proto, Tolerable): the largest per-peer error
// probability eps whose step failure stays within a target, against P, at
// storage 1/4 of A per peer.
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

Status ValidateTolerable(const proto::Experiment& spec, const std::string& file) {
  const auto& t = spec.tolerable();
  if (t.peers().empty()) return Bad(file, "tolerable.peers", "at least one P");
  for (int p : t.peers())
    if (p < 8 || p > 64 || p % 4 != 0)
      return Bad(file, "tolerable.peers",
                 "each P a multiple of 4 in [8, 64] (storage 1/4: replication P/4, PolyDot m = n = "
                 "2, MDS product 2 x 2)");
  if (!(t.target_failure() >= 0.0 && t.target_failure() < 1.0))
    return Bad(file, "tolerable.target_failure", "in [0, 1) (0: the default 1e-3)");
  return CheckShape(file, "tolerable.shape", t.shape());
}

StatusOr<std::string> RunTolerable(const proto::Experiment& spec, const std::string& dir,
                                   bool* plotted) {
  const auto& t = spec.tolerable();
  const double target = t.target_failure() > 0 ? t.target_failure() : 1e-3;
  const int patterns = t.pattern_trials() > 0 ? t.pattern_trials() : 200;
  POLYGUARD_ASSIGN_OR_RETURN(
      ResultTable table, ResultTable::Open(dir + "/" + spec.name() + ".csv",
                                           {"point", "peers", "strategy", "describe",
                                            "stored_per_peer", "eps_analytic", "eps_measured"}));
  const ProductShape shape = ShapeOf(t.shape());
  const char* strategies[] = {"genpolydot", "replication", "mds"};
  Progress progress(spec.name(), 3 * t.peers_size());
  Series ana[3], meas[3];
  for (int si = 0; si < 3; ++si) {
    const std::string colour = " lc " + std::to_string(si + 1);
    ana[si].title =
        std::string(strategies[si]) + (si == 2 ? " (measured k-patterns)" : " (analytic)");
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
      polyguard::proto::CodeSpec pc;
      pc.set_strategy(strategies[si]);
      pc.set_replicas(p / 4);  // storage r / P = 1/4
      if (si == 2) {           // 2 x 2 data blocks on a (P/4 + 1)^2 - 4 grid
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
        const FailureByWrongCount closed = FailureModelOf(*code);  // strategy_registry.h
        const std::vector<double> measured = MeasuredFailureByCount(*code, patterns, &rng);
        const double e_meas = TolerableEps(measured, target);
        const double e_ana = closed ? TolerableEps(*closed, target) : e_meas;
        const double stored =
            double(code->stored_doubles_per_peer()) / double(shape.rows * shape.inner);
        POLYGUARD_RETURN_IF_ERROR(
            table.Append({key, std::to_string(p), strategies[si], code->Describe(), Num(stored),
                          Num(e_ana), Num(e_meas)}));
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
  PlotSpec plot{.title = spec.title(),
                .xlabel = "peers P (each stores 1/4 of A)",
                .ylabel = "largest eps with step failure <= " + Num(target),
                .logy = true};
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

}  // namespace polyguard::experiment
