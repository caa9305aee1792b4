// A user's own trainer against the installed polyguard (the README's
// "link the library into your own trainer"): a job written in code, run by
// the library's job runner on four peers as threads meeting in process — a
// coded MLP under Generalized PolyDot on synthetic data, one peer whose
// products are wrong 30% of the time. Every peer trains; the wrong results
// are located and corrected, and the loss falls.
#include <cstdio>
#include <thread>
#include <vector>

#include <polyguard/polyguard.h>

int main() {
  using namespace polyguard;
  JobSpec job;
  job.name = "mine";
  job.peers = 4;
  job.steps = 60;
  job.data.kind = DataSpec::Kind::kSynthetic;
  job.data.classes = 3;
  job.model.layers = {{12, 16, Activation::kTanh}, {16, 3, Activation::kIdentity}};
  job.model.batch = 8;
  job.model.code = {.strategy = Strategy::kPolyDot, .m = 2, .n = 1};  // K = 2, backward 3
  job.trainer.sgd = {.learning_rate = 0.05, .momentum = 0.9};
  job.faults.error_rate = 0.3;
  job.faults.points = {StepPoint::kProduct};
  job.faults.faulty_peers = {1};
  job.fault_seed = 5;
  if (Status s = ValidateJobSpec(job); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::vector<int> ok(size_t(job.peers), 0);
  std::vector<std::thread> peers;
  for (int rank = 0; rank < job.peers; ++rank) {
    peers.emplace_back([&, rank] {
      double first = 0, last = 0;
      JobHooks hooks;
      hooks.on_step = [&](int64_t step, int64_t total, const StepResult& r, const StepTiming&,
                          const Trainer&) {
        if (step <= 10) first += r.loss / 10;
        if (step > total - 10) last += r.loss / 10;
      };
      const JobOutcome out = RunJobPeer(job, {.rank = rank, .rendezvous = "inproc:mine"}, hooks);
      if (!out.status.ok()) {
        std::fprintf(stderr, "peer %d: %s\n", rank, out.status.ToString().c_str());
        return;
      }
      if (rank == 0) {
        std::printf("loss %.3f -> %.3f; test accuracy %ld of %ld; %s\n", first, last,
                    long(out.correct), long(out.tested), FormatCounters(out.counters).c_str());
      }
      ok[size_t(rank)] = last < first && out.counters.results_corrected > 0;
    });
  }
  for (auto& p : peers) p.join();
  for (int v : ok)
    if (!v) return 1;
  return 0;
}
