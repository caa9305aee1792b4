// An experiment spec's code (lib/proto/code_spec.proto, the message job specs
// use too) as ProductCodeOptions, for every experiment kind: a thin layer over
// the library's one translation (lib/proto/code_spec.h).
#ifndef POLYGUARD_BENCH_EXPERIMENT_CODE_OPTIONS_H_
#define POLYGUARD_BENCH_EXPERIMENT_CODE_OPTIONS_H_

#include <string>

#include "experiment/experiment.pb.h"
#include "polyguard/base/status.h"
#include "polyguard/codes/product_code.h"

namespace polyguard::experiment {

// Checks every value of the code; errors "FILE: FIELD.m: reason".
Status CheckCode(const std::string& file, const std::string& field,
                 const polyguard::proto::CodeSpec& c);

// The code options of a spec's code at P peers on `shape`.
StatusOr<ProductCodeOptions> CodeOptions(const polyguard::proto::CodeSpec& code, int peers,
                                         ProductShape shape);
std::string CodeLabel(const polyguard::proto::CodeSpec& code);

}  // namespace polyguard::experiment

#endif  // POLYGUARD_BENCH_EXPERIMENT_CODE_OPTIONS_H_
