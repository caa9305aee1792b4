// polyguard-experiment run: the five kinds of experiment spec
// (experiment.proto), each writing OUT/NAME/NAME.csv (resumable),
// NAME.png (gnuplot) and summary.md.
#ifndef POLYGUARD_BENCH_EXPERIMENT_EXPERIMENTS_H_
#define POLYGUARD_BENCH_EXPERIMENT_EXPERIMENTS_H_

#include <string>

#include "experiment/experiment.pb.h"
#include "polyguard/base/status.h"
#include "polyguard/codes/product_code.h"

namespace polyguard::experiment {

// Parses and validates a spec; errors name FILE:LINE:COL (syntax) or
// FILE: field: reason.
StatusOr<proto::Experiment> LoadExperiment(const std::string& path);
StatusOr<proto::Experiment> ParseExperiment(const std::string& text, const std::string& file);

// The code options of a spec's code at P peers on `shape`.
StatusOr<ProductCodeOptions> CodeOptions(const proto::Code& code, int peers, ProductShape shape);
std::string CodeLabel(const proto::Code& code);

struct RunResult {
  std::string dir;      // OUT/NAME
  std::string summary;  // markdown, also in dir/summary.md
  bool plotted = false; // false when gnuplot was unavailable (the message went to stderr)
};

// Runs (or resumes) one experiment into out_dir/NAME.
StatusOr<RunResult> RunExperiment(const proto::Experiment& spec, const std::string& out_dir);

// The kinds, one per file: experiments.cc (correction, failure, tolerable),
// peer_experiments.cc (training, stragglers: real peer processes).
StatusOr<std::string> RunCorrection(const proto::Experiment& spec, const std::string& dir, bool* plotted);
StatusOr<std::string> RunFailure(const proto::Experiment& spec, const std::string& dir, bool* plotted);
StatusOr<std::string> RunTolerable(const proto::Experiment& spec, const std::string& dir, bool* plotted);
StatusOr<std::string> RunTraining(const proto::Experiment& spec, const std::string& dir, bool* plotted);
StatusOr<std::string> RunStragglers(const proto::Experiment& spec, const std::string& dir, bool* plotted);
// training_soak.cc
StatusOr<std::string> RunTrainingSoak(const proto::Experiment& spec, const std::string& dir,
                                      bool* plotted);

// Replaces the text between "<!-- results:NAME -->" and "<!-- /results:NAME -->"
// in `readme` with each experiment's OUT/NAME/summary.md.
Status UpdateReadme(const std::string& readme, const std::string& out_dir);

}  // namespace polyguard::experiment

#endif  // POLYGUARD_BENCH_EXPERIMENT_EXPERIMENTS_H_
