// The one translation of a spec's code (lib/proto/code_spec.proto) into the
// library's options, shared by job specs (lib/train/job_spec.cc) and
// experiment specs (bench/experiment/code_options.cc). Private to
// polyguard's own code: it exposes protobuf types.
#ifndef POLYGUARD_LIB_PROTO_CODE_SPEC_H_
#define POLYGUARD_LIB_PROTO_CODE_SPEC_H_

#include <functional>
#include <string>

#include "lib/proto/code_spec.pb.h"
#include "polyguard/base/status.h"
#include "polyguard/codes/product_code.h"

namespace polyguard {

// What a spec's code says.
struct CodeSpecOptions {
  ProductCodeOptions code;  // strategy, peers and parameters; the shape is the caller's
  std::string label;        // the label, else the strategy's name
  // Training jobs: results awaited per decode, the correction asked for, and
  // the coded convolution (false: im2col).
  int wait_for = 0;
  int errors_to_correct = 0;
  bool fcdcc = true;
};

// Turns (field inside the code message, reason) into the caller's error,
// which names the file and line: "m", "points", ...
using CodeFieldError = std::function<Status(const std::string& field, const std::string& reason)>;

// Reads `spec` for P = `peers` and checks every value (not the combination:
// MakeProductCode does that). `for_training`: a job's code, where `peers` is
// the job's; else an experiment's, which refuses the training-only fields.
StatusOr<CodeSpecOptions> ReadCodeSpec(const proto::CodeSpec& spec, int peers, bool for_training,
                                       const CodeFieldError& bad);

}  // namespace polyguard

#endif  // POLYGUARD_LIB_PROTO_CODE_SPEC_H_
