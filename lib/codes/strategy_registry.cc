#include "polyguard/codes/strategy_registry.h"

#include <algorithm>
#include <deque>
#include <mutex>
#include <utility>

#include "polyguard/base/check.h"

namespace polyguard {
namespace {

struct Registry {
  std::mutex mu;
  std::deque<StrategyEntry> entries;  // a deque: entries never move

  const StrategyEntry* FindLocked(std::string_view name) const {
    for (const StrategyEntry& e : entries) {
      if (e.name == name) return &e;
      for (const std::string& alias : e.aliases)
        if (alias == name) return &e;
    }
    return nullptr;
  }
};

Status AddLocked(Registry* r, StrategyEntry entry) {
  if (entry.name.empty()) return InvalidArgumentError("strategy registry: an entry has no name");
  if (!entry.make) {
    return InvalidArgumentError("strategy registry: '" + entry.name + "' has no factory");
  }
  std::vector<std::string> names = entry.aliases;
  names.push_back(entry.name);
  for (const std::string& n : names) {
    if (r->FindLocked(n) != nullptr) {
      return AlreadyExistsError("strategy registry: the name '" + n + "' is already registered");
    }
  }
  r->entries.push_back(std::move(entry));
  return Status::Ok();
}

Registry& TheRegistry() {
  // Built on first use, so that a RegisterStrategy in another translation
  // unit's static initializer finds the built-in strategies in place.
  static Registry* registry = [] {
    auto* r = new Registry;
    for (StrategyEntry e :
         {PolyDotStrategyEntry(), MdsStrategyEntry(), ReplicationStrategyEntry(),
          AbftStrategyEntry(), LowWeightStrategyEntry(), UncodedStrategyEntry()}) {
      POLYGUARD_CHECK(AddLocked(r, std::move(e)).ok());
    }
    return r;
  }();
  return *registry;
}

bool Has(const StrategyCapabilities& can, const StrategyCapabilities& need) {
  return (!need.trains || can.trains) && (!need.keeps_sparsity || can.keeps_sparsity) &&
         (!need.coded_convolution || can.coded_convolution) &&
         (!need.corrects_errors || can.corrects_errors);
}

}  // namespace

Status RegisterStrategy(StrategyEntry entry) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  return AddLocked(&r, std::move(entry));
}

StatusOr<const StrategyEntry*> FindStrategy(std::string_view name) {
  Registry& r = TheRegistry();
  {
    std::lock_guard<std::mutex> lock(r.mu);
    if (const StrategyEntry* e = r.FindLocked(name)) return e;
  }
  return NotFoundError("unknown strategy '" + std::string(name) + "' (expected " + StrategyNames() +
                       ")");
}

StatusOr<Strategy> ParseStrategy(std::string_view name) {
  StatusOr<const StrategyEntry*> e = FindStrategy(name);
  if (!e.ok()) return InvalidArgumentError(std::string(e.status().message()));
  return Strategy((*e)->name);
}

std::vector<const StrategyEntry*> RegisteredStrategies() {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<const StrategyEntry*> out;
  for (const StrategyEntry& e : r.entries) out.push_back(&e);
  return out;
}

std::string StrategyNames(StrategyCapabilities need) {
  std::vector<std::string> names;
  for (const StrategyEntry* e : RegisteredStrategies())
    if (Has(e->can, need)) names.push_back(e->name);
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

StrategyCapabilities CapabilitiesOf(Strategy strategy) {
  StatusOr<const StrategyEntry*> e = FindStrategy(strategy.name());
  return e.ok() ? (*e)->can : StrategyCapabilities{};
}

FailureByWrongCount ThresholdFailureByCount(const ProductCode& code) {
  const int p = code.num_peers(), t = code.errors_corrected_probabilistic();
  std::vector<double> f(static_cast<size_t>(p + 1), 0.0);
  for (int k = 0; k <= p; ++k) f[static_cast<size_t>(k)] = k > t ? 1.0 : 0.0;
  return f;
}

FailureByWrongCount FailureModelOf(const ProductCode& code) {
  StatusOr<const StrategyEntry*> e = FindStrategy(code.strategy().name());
  if (e.ok() && (*e)->failure_by_count) return (*e)->failure_by_count(code);
  return ThresholdFailureByCount(code);
}

DecoderOptions DecoderForPrecision(DecoderOptions decoder, Precision precision, int64_t inner) {
  if (precision != Precision::kFloat64 && decoder.tolerance == DecoderOptions{}.tolerance)
    decoder.tolerance = RoundoffTolerance(precision, inner);
  // Float32 roundoff takes up to about a quarter of its tolerance.
  if (precision != Precision::kFloat64 && decoder.clean_fit == DecoderOptions{}.clean_fit)
    decoder.clean_fit = 0.5;
  return decoder;
}

StatusOr<std::unique_ptr<ProductCode>> MakeProductCode(const ProductCodeOptions& options) {
  POLYGUARD_ASSIGN_OR_RETURN(const StrategyEntry* entry, FindStrategy(options.strategy.name()));
  ProductCodeOptions o = options;
  o.decoder = DecoderForPrecision(o.decoder, o.precision, std::max(o.shape.rows, o.shape.inner));
  POLYGUARD_ASSIGN_OR_RETURN(std::unique_ptr<ProductCode> code, entry->make(o));
  code->set_precision(o.precision);
  return code;
}

}  // namespace polyguard
