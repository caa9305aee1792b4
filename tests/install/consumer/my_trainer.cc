// A user's own trainer against the installed polyguard (the README's
// "link the library into your own trainer"): four peers as threads meeting
// in process, a coded MLP under Generalized PolyDot, one peer whose products
// are wrong 30% of the time. Every peer trains; the wrong results are located
// and corrected, and the loss falls.
#include <cstdio>
#include <thread>
#include <vector>

#include <polyguard/polyguard.h>

int main() {
  using namespace polyguard;
  constexpr int kPeers = 4, kSteps = 60;
  auto data = SyntheticClassification::Create(12, 3, 1).value();
  std::vector<int> ok(kPeers, 0);
  std::vector<std::thread> peers;
  for (int rank = 0; rank < kPeers; ++rank) {
    peers.emplace_back([&, rank] {
      PeerStackOptions o;
      o.group = {.rank = rank, .size = kPeers, .rendezvous = "inproc:mine"};
      o.faults = FaultModel{};
      o.faults->error_rate = 0.3;
      o.faults->points = {StepPoint::kProduct};
      o.faults->faulty_peers = {1};
      o.fault_seed = 5;
      SequentialOptions& m = o.model;
      m.layers = {{12, 16, Activation::kTanh}, {16, 3, Activation::kIdentity}};
      m.batch = 8;
      m.code = {.strategy = Strategy::kPolyDot, .m = 2, .n = 1};  // K = 2, backward 3
      o.trainer.sgd = {.learning_rate = 0.05, .momentum = 0.9};
      auto stack = BuildPeerStack(o);
      if (!stack.ok()) {
        std::fprintf(stderr, "%s\n", stack.status().ToString().c_str());
        return;
      }
      Trainer* trainer = stack->trainer.get();
      double first = 0, last = 0;
      Status s = trainer->Train(
          kSteps,
          [&](int64_t step, Matrix* x, std::vector<int>* y) {
            data->Batch(step, m.batch, x, y);
            return Status::Ok();
          },
          [&](int64_t step, const StepResult& r) {
            if (step <= 10) first += r.loss / 10;
            if (step > kSteps - 10) last += r.loss / 10;
          });
      if (!s.ok()) {
        std::fprintf(stderr, "peer %d: %s\n", rank, s.ToString().c_str());
        return;
      }
      if (rank == 0)
        std::printf("loss %.3f -> %.3f; %s\n", first, last,
                    FormatCounters(trainer->counters()).c_str());
      ok[size_t(rank)] = last < first && trainer->counters().results_corrected > 0;
    });
  }
  for (auto& p : peers) p.join();
  for (int v : ok)
    if (!v) return 1;
  return 0;
}
