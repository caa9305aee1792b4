#include "experiment/kinds.h"

namespace polyguard::experiment {
namespace {

// The one place that maps the oneof to the kinds (experiments_test.cc checks
// that every case of the oneof has a row).
constexpr ExperimentKind kKinds[] = {
    {proto::Experiment::kCorrection, "correction", ValidateCorrection, RunCorrection},
    {proto::Experiment::kFailure, "failure", ValidateFailure, RunFailure},
    {proto::Experiment::kTolerable, "tolerable", ValidateTolerable, RunTolerable},
    {proto::Experiment::kTraining, "training", ValidateTraining, RunTraining},
    {proto::Experiment::kStragglers, "stragglers", ValidateStragglers, RunStragglers},
    {proto::Experiment::kTrainingSoak, "training_soak", ValidateTrainingSoak, RunTrainingSoak},
    {proto::Experiment::kCrashRecovery, "crash_recovery", ValidateCrashRecovery, RunCrashRecovery},
};

}  // namespace

std::span<const ExperimentKind> AllKinds() { return kKinds; }

const ExperimentKind* FindKind(proto::Experiment::KindCase kind) {
  for (const ExperimentKind& k : kKinds)
    if (k.kind == kind) return &k;
  return nullptr;
}

Status Bad(const std::string& file, const std::string& field, const std::string& what) {
  std::string m = file;
  m += ": ";
  m += field;
  m += ": ";
  m += what;
  return InvalidArgumentError(m);
}

Status CheckShape(const std::string& file, const std::string& field, const proto::Shape& s) {
  if (s.rows() < 1 || s.inner() < 1 || s.cols() < 1 || s.rows() * s.inner() > (1 << 24)) {
    return Bad(file, field, "rows, inner and cols must be >= 1 (and rows x inner at most 2^24)");
  }
  return Status::Ok();
}

ProductShape ShapeOf(const proto::Shape& s) { return {s.rows(), s.inner(), s.cols()}; }

}  // namespace polyguard::experiment
