// polyguard-experiment run and readme: experiment specs
// (experiment.proto), each run writing OUT/NAME/NAME.csv (resumable),
// NAME.png (gnuplot) and summary.md. Each kind of spec lives in its own file
// (kinds.h).
#ifndef POLYGUARD_BENCH_EXPERIMENT_EXPERIMENTS_H_
#define POLYGUARD_BENCH_EXPERIMENT_EXPERIMENTS_H_

#include <string>

#include "experiment/experiment.pb.h"
#include "polyguard/base/status.h"

namespace polyguard::experiment {

// Parses and validates a spec; errors name FILE:LINE:COL (syntax) or
// FILE: field: reason.
StatusOr<proto::Experiment> LoadExperiment(const std::string& path);
StatusOr<proto::Experiment> ParseExperiment(const std::string& text, const std::string& file);

struct RunResult {
  std::string dir;       // OUT/NAME
  std::string summary;   // markdown, also in dir/summary.md
  bool plotted = false;  // false when gnuplot was unavailable (the message went to stderr)
};

// Runs (or resumes) one experiment into out_dir/NAME.
StatusOr<RunResult> RunExperiment(const proto::Experiment& spec, const std::string& out_dir);

// readme.cc: replaces the text between "<!-- results:NAME -->" and
// "<!-- /results:NAME -->" in `readme` with each experiment's
// OUT/NAME/summary.md.
Status UpdateReadme(const std::string& readme, const std::string& out_dir);

}  // namespace polyguard::experiment

#endif  // POLYGUARD_BENCH_EXPERIMENT_EXPERIMENTS_H_
