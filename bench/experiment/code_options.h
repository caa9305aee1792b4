// The translation of an experiment spec's `Code` message (experiment.proto)
// into ProductCodeOptions, for every experiment kind.
#ifndef POLYGUARD_BENCH_EXPERIMENT_CODE_OPTIONS_H_
#define POLYGUARD_BENCH_EXPERIMENT_CODE_OPTIONS_H_

#include <string>

#include "experiment/experiment.pb.h"
#include "polyguard/base/status.h"
#include "polyguard/codes/product_code.h"

namespace polyguard::experiment {

// Checks what CodeOptions parses (strategy, points); errors
// "FILE: FIELD.strategy: reason".
Status CheckCode(const std::string& file, const std::string& field, const proto::Code& c);

// The code options of a spec's code at P peers on `shape`.
StatusOr<ProductCodeOptions> CodeOptions(const proto::Code& code, int peers, ProductShape shape);
std::string CodeLabel(const proto::Code& code);

}  // namespace polyguard::experiment

#endif  // POLYGUARD_BENCH_EXPERIMENT_CODE_OPTIONS_H_
