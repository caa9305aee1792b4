// The strategy registry: one entry per protection strategy, the one place
// that knows which strategies exist. An entry holds the strategy's name, what
// it can do, its factory (ProductCodeOptions -> code, errors naming the
// field) and its closed-form failure model for the experiment harness.
//
// Adding a strategy is one header, one source (the code and its entry), one
// line in the built-in list of strategy_registry.cc, and its tests; or, from
// outside the library, one RegisterStrategy call (docs/architecture.md,
// "Adding a strategy").
//
// Thread safety: every function may be called concurrently. Entries are
// never removed, so pointers to them stay valid for the process's life.
#ifndef POLYGUARD_CODES_STRATEGY_REGISTRY_H_
#define POLYGUARD_CODES_STRATEGY_REGISTRY_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "polyguard/base/status.h"
#include "polyguard/codes/product_code.h"
#include "polyguard/codes/strategy.h"

namespace polyguard {

// What a strategy can do; outer layers ask these instead of comparing names.
struct StrategyCapabilities {
  // The training verbs: transpose product, coded update, scrub and repair
  // (some layouts of the strategy may still refuse; the built code's
  // supports_training() is the final word).
  bool trains = false;
  // Sparse operands give sparse shards (CodedLinear keeps pruned weights
  // sparse); forward only.
  bool keeps_sparsity = false;
  // Convolution layers may use the coded convolution (FCDCC, coded_conv2d.h)
  // instead of this strategy on the im2col product.
  bool coded_convolution = false;
  // Wrong results are located and corrected, not only detected.
  bool corrects_errors = false;
};

// Failure probability of one decode given k of the P results are wrong
// (index k = 0..P), under the probabilistic error model; nullopt when the
// code has no closed form (the harness then measures patterns).
using FailureByWrongCount = std::optional<std::vector<double>>;

struct StrategyEntry {
  std::string name;                  // as written in specs: code { strategy: NAME }
  std::vector<std::string> aliases;  // other accepted spellings
  std::string parameters;            // the options it reads, for messages: "m, n, d, points"
  StrategyCapabilities can;
  // Validates the options it reads (errors name the field) and builds the
  // code. `options.strategy` names this entry.
  std::function<StatusOr<std::unique_ptr<ProductCode>>(const ProductCodeOptions&)> make;
  // Empty: a wrong result among fewer than errors_corrected_probabilistic() + 1
  // is corrected and more fail (ThresholdFailureByCount).
  std::function<FailureByWrongCount(const ProductCode&)> failure_by_count;
};

// Adds a strategy. AlreadyExists when its name or an alias is taken;
// InvalidArgument when it has no name or no factory.
Status RegisterStrategy(StrategyEntry entry);

// The entry named `name` (or an alias). NotFound lists the registered names.
StatusOr<const StrategyEntry*> FindStrategy(std::string_view name);
// Every entry, built-in ones first, in registration order.
std::vector<const StrategyEntry*> RegisteredStrategies();
// "genpolydot, mds, ..." for messages; only those with every capability in
// `need` set (all strategies with the default).
std::string StrategyNames(StrategyCapabilities need = {});

// The capabilities of a registered strategy; all false for an unknown one
// (whose factory MakeProductCode then refuses by name).
StrategyCapabilities CapabilitiesOf(Strategy strategy);

// The failure model of `code`: its entry's, else the threshold model.
FailureByWrongCount FailureModelOf(const ProductCode& code);
FailureByWrongCount ThresholdFailureByCount(const ProductCode& code);

// The built-in entries, one per strategy source file.
StrategyEntry PolyDotStrategyEntry();      // polydot_code.cc
StrategyEntry MdsStrategyEntry();          // mds_code.cc
StrategyEntry ReplicationStrategyEntry();  // replication_code.cc
StrategyEntry AbftStrategyEntry();         // abft_code.cc
StrategyEntry LowWeightStrategyEntry();    // low_weight_code.cc
StrategyEntry UncodedStrategyEntry();      // uncoded_code.cc

}  // namespace polyguard

#endif  // POLYGUARD_CODES_STRATEGY_REGISTRY_H_
