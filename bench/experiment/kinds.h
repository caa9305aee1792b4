// The experiment kinds (experiment.proto, `oneof kind` of Experiment), one
// file each holding its validation and its run. The table in kinds.cc maps
// the oneof case to them, so adding a kind touches the proto, its own file
// (listed in bench/CMakeLists.txt), its two declarations here and one row of
// that table.
#ifndef POLYGUARD_BENCH_EXPERIMENT_KINDS_H_
#define POLYGUARD_BENCH_EXPERIMENT_KINDS_H_

#include <span>
#include <string>

#include "experiment/experiment.pb.h"
#include "polyguard/base/status.h"
#include "polyguard/codes/product_code.h"

namespace polyguard::experiment {

// Checks a spec's kind-specific fields (the name is checked before);
// errors "FILE: FIELD: reason".
using ValidateFn = Status (*)(const proto::Experiment& spec, const std::string& file);
// Runs (or resumes) a valid spec into dir (OUT/NAME): writes NAME.csv and the
// plot, sets *plotted, and returns the markdown summary.
using RunFn = StatusOr<std::string> (*)(const proto::Experiment& spec, const std::string& dir,
                                        bool* plotted);

struct ExperimentKind {
  proto::Experiment::KindCase kind;
  const char* name;  // the oneof field, as errors name it
  ValidateFn validate;
  RunFn run;
};

// Every kind, in the order of the oneof.
std::span<const ExperimentKind> AllKinds();
// The row of `kind`; nullptr for KIND_NOT_SET.
const ExperimentKind* FindKind(proto::Experiment::KindCase kind);

// For the kinds' validations: InvalidArgument "FILE: FIELD: WHAT".
Status Bad(const std::string& file, const std::string& field, const std::string& what);
Status CheckShape(const std::string& file, const std::string& field, const proto::Shape& s);
ProductShape ShapeOf(const proto::Shape& s);

// 1. correction.cc: wrong results corrected against redundancy.
Status ValidateCorrection(const proto::Experiment& spec, const std::string& file);
StatusOr<std::string> RunCorrection(const proto::Experiment& spec, const std::string& dir,
                                    bool* plotted);
// 2. failure.cc: failure probability of one step against eps.
Status ValidateFailure(const proto::Experiment& spec, const std::string& file);
StatusOr<std::string> RunFailure(const proto::Experiment& spec, const std::string& dir,
                                 bool* plotted);
// 3. tolerable.cc: the largest tolerable eps against P.
Status ValidateTolerable(const proto::Experiment& spec, const std::string& file);
StatusOr<std::string> RunTolerable(const proto::Experiment& spec, const std::string& dir,
                                   bool* plotted);
// 4. training.cc: training under faults on MNIST (local peer processes).
Status ValidateTraining(const proto::Experiment& spec, const std::string& file);
StatusOr<std::string> RunTraining(const proto::Experiment& spec, const std::string& dir,
                                  bool* plotted);
// 5. stragglers.cc: product step time with delayed peers (local peer processes).
Status ValidateStragglers(const proto::Experiment& spec, const std::string& file);
StatusOr<std::string> RunStragglers(const proto::Experiment& spec, const std::string& dir,
                                    bool* plotted);
// 6. training_soak.cc: training with and without faults, compared step by step.
Status ValidateTrainingSoak(const proto::Experiment& spec, const std::string& file);
StatusOr<std::string> RunTrainingSoak(const proto::Experiment& spec, const std::string& dir,
                                      bool* plotted);

// 7. crash_recovery.cc: a peer killed mid-run, with and without a replacement.
Status ValidateCrashRecovery(const proto::Experiment& spec, const std::string& file);
StatusOr<std::string> RunCrashRecovery(const proto::Experiment& spec, const std::string& dir,
                                       bool* plotted);

}  // namespace polyguard::experiment

#endif  // POLYGUARD_BENCH_EXPERIMENT_KINDS_H_
