// Experiment 5 (experiment.proto, Stragglers): time per product step against
// the number of delayed peers. Real peer processes on this machine, over gloo
// TCP on loopback.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <span>
#include <sstream>
#include <vector>

#include "common/local_peers.h"
#include "experiment/code_options.h"
#include "experiment/kinds.h"
#include "experiment/results.h"
#include "polyguard/polyguard.h"

namespace polyguard::experiment {
namespace {

using namespace std::chrono_literals;

struct StragglerRecord {
  int rank = 0;
  int straggler = 0;
  double median_ms = 0;
  double undecoded = 0;
};

}  // namespace

Status ValidateStragglers(const proto::Experiment& spec, const std::string& file) {
  const auto& s = spec.stragglers();
  if (s.codes().empty()) return Bad(file, "stragglers.codes", "at least one code");
  for (int i = 0; i < s.codes_size(); ++i)
    POLYGUARD_RETURN_IF_ERROR(
        CheckCode(file, "stragglers.codes[" + std::to_string(i) + "]", s.codes(i)));
  if (s.delayed().empty() || s.steps() < 1 || !(s.delay_ms() > 0))
    return Bad(file, "stragglers",
               "delayed (at least one count), steps >= 1 and delay_ms > 0 are required");
  return CheckShape(file, "stragglers.shape", s.shape());
}

StatusOr<std::string> RunStragglers(const proto::Experiment& spec, const std::string& dir,
                                    bool* plotted) {
  const auto& s = spec.stragglers();
  POLYGUARD_ASSIGN_OR_RETURN(
      ResultTable table,
      ResultTable::Open(dir + "/" + spec.name() + ".csv",
                        {"point", "code", "describe", "peers", "delayed", "delay_ms", "wait_for",
                         "ms_per_step", "results_not_awaited_per_step"}));
  Progress progress(spec.name(), s.codes_size() * s.delayed_size());
  PlotSpec plot{.title = spec.title(),
                .xlabel = "delayed peers",
                .ylabel = "time per product step at a prompt peer (ms, median)"};
  std::ostringstream md;
  md << "| code | delayed peers | ms per step | results not awaited per step "
        "|\n|---|---|---|---|\n";
  const ProductShape shape{s.shape().rows(), s.shape().inner(), s.shape().cols()};
  for (int ci = 0; ci < s.codes_size(); ++ci) {
    const polyguard::proto::CodeSpec& pc = s.codes(ci);
    const std::string label = CodeLabel(pc);
    const int peers = pc.peers() > 0 ? pc.peers() : 8;
    POLYGUARD_ASSIGN_OR_RETURN(ProductCodeOptions o, CodeOptions(pc, peers, shape));
    POLYGUARD_ASSIGN_OR_RETURN(auto code, MakeProductCode(o));
    // Coded strategies decode from the first K results; uncoded waits for all.
    const int wait_for = code->recovery_threshold() < peers ? code->recovery_threshold() : 0;
    Series series{.title = label + (wait_for ? " (decodes from the first K)" : " (waits for all)")};
    for (int d : s.delayed()) {
      const std::string key = label + ";delayed=" + std::to_string(d);
      if (d < 0 || d >= peers)
        return InvalidArgumentError("stragglers.delayed: " + std::to_string(d) + " of " +
                                    std::to_string(peers) + " peers");
      if (!table.Has(key)) {
        Random pick(DeriveSeed(spec.seed(), {uint64_t(ci), uint64_t(d)}));
        std::vector<int> slow = pick.Sample(peers, d);
        auto records = bench::RunLocalPeers<StragglerRecord>(
            peers, [&](int rank, const std::string& rdv, StragglerRecord* out) {
              auto group = PeerGroup::Connect({.rank = rank,
                                               .size = peers,
                                               .rendezvous = "file:" + rdv,
                                               .job_id = "stragglers",
                                               .timeout = 120s});
              if (!group.ok()) return 1;
              FaultModel fm;
              fm.straggler_delay = FaultModel::Delay::kFixed;
              fm.straggler_delay_ms = s.delay_ms();
              fm.straggler_peers = slow;
              FaultInjector faults(fm, 1, rank);
              const auto deadline = std::chrono::milliseconds(int64_t(10 * s.delay_ms()) + 10000);
              auto product =
                  CodedProduct::Create(group->get(), code.get(), d > 0 ? &faults : nullptr,
                                       {.wait_for = wait_for, .deadline = deadline});
              if (!product.ok()) return 2;
              Random rng(DeriveSeed(spec.seed(), {99}));
              const Matrix a = rng.NormalMatrix(shape.rows, shape.inner);
              const Matrix b = rng.NormalMatrix(shape.inner, shape.cols);
              Matrix shard = code->EncodeShard(a, rank).value();
              std::vector<double> ms;
              for (int64_t step = 1; step <= s.steps(); ++step) {
                const auto w0 = std::chrono::steady_clock::now();
                auto got = (*product)->Forward(&shard, b, step, 0);
                ms.push_back(
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0)
                        .count());
                if (!got.ok()) {
                  std::fprintf(stderr, "rank %d step %lld: %s\n", rank, (long long)step,
                               got.status().ToString().c_str());
                  return 3;
                }
              }
              // Everyone, stragglers included, finishes before anyone leaves.
              const double one = 1.0;
              if (!(*group)
                       ->AllGather(std::span<const double>(&one, 1),
                                   {.step = s.steps() + 1, .layer = 9, .op = 9})
                       .ok())
                return 5;
              std::sort(ms.begin(), ms.end());
              out->rank = rank;
              out->straggler = std::find(slow.begin(), slow.end(), rank) != slow.end();
              out->median_ms = ms[ms.size() / 2];
              out->undecoded = double((*product)->results_not_awaited()) / double(s.steps());
              return 0;
            });
        if (!records) return UnavailableError("straggler run '" + key + "': a peer process failed");
        std::vector<double> prompt, skipped;
        for (const auto& r : *records) {
          if (r.straggler) continue;
          prompt.push_back(r.median_ms);
          skipped.push_back(r.undecoded);
        }
        std::sort(prompt.begin(), prompt.end());
        std::sort(skipped.begin(), skipped.end());
        POLYGUARD_RETURN_IF_ERROR(
            table.Append({key, label, code->Describe(), std::to_string(peers), std::to_string(d),
                          Num(s.delay_ms()), std::to_string(wait_for),
                          Num(prompt[prompt.size() / 2]), Num(skipped[skipped.size() / 2])}));
        progress.Done(key, false);
      } else {
        progress.Done(key, true);
      }
      series.points.emplace_back(d, table.GetNumber(key, "ms_per_step"));
      md << "| " << label << " | " << d << " | " << table.Get(key, "ms_per_step") << " | "
         << table.Get(key, "results_not_awaited_per_step") << " |\n";
    }
    plot.series.push_back(series);
  }
  plot.extra = "set yrange [0:*]\n";
  const Status st = Plot(dir, spec.name(), plot);
  *plotted = st.ok();
  if (!st.ok()) std::fprintf(stderr, "%s\n", st.ToString().c_str());
  md << "\nEach delayed peer sleeps " << Num(s.delay_ms()) << " ms before sending each result; "
     << s.steps() << " product steps of " << shape.rows << " x " << shape.inner << " times "
     << shape.inner << " x " << shape.cols
     << "; the median over prompt peers of their median step time.\n";
  return md.str();
}

}  // namespace polyguard::experiment
