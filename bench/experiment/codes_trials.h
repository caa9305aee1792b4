// `polyguard-experiment codes`: Monte Carlo decode trials of one product
// strategy, one CSV row per configuration.
#ifndef POLYGUARD_BENCH_EXPERIMENT_CODES_TRIALS_H_
#define POLYGUARD_BENCH_EXPERIMENT_CODES_TRIALS_H_

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "polyguard/codes/product_code.h"
#include "polyguard/fault/soft_error.h"

namespace polyguard::experiment {

struct CodesTrialOptions {
  ProductCodeOptions code;
  int stragglers = 0;
  std::vector<int> errors = {0};    // fixed counts of wrong results, one row each
  std::vector<double> error_rates;  // or: each answering peer wrong with this probability
  SoftErrorKind error_kind = SoftErrorKind::kDense;
  double error_magnitude = 1.0;  // relative to the typical result
  int trials = 100;
  uint64_t seed = 1;
  // Below 1: A and B are sparse with this density and every peer encodes,
  // multiplies and decodes through the sparse verbs (product_code.h).
  double density = 1.0;
};

struct CodesTrialRow {
  std::string errors;  // "3", or "eps=0.01"
  int trials = 0;
  int corrected = 0;               // decoded and right (within 1e-6 relative)
  int detected_uncorrectable = 0;  // DataLoss or Unavailable
  int undetected_wrong = 0;        // decoded, trusted, and wrong
  double max_rel_error = 0.0;      // over decoded trials
  double shard_nonzeros = 0.0;     // mean nonzeros of a stored shard (sparse runs)
};

// Runs every row. Fails on bad options (the message names the option).
StatusOr<std::vector<CodesTrialRow>> RunCodesTrials(const CodesTrialOptions& options);

// Parses `codes` command-line options (without the subcommand).
StatusOr<CodesTrialOptions> ParseCodesOptions(const std::vector<std::string>& args);

// Writes the CSV header and rows.
void WriteCodesCsv(std::ostream& out, const CodesTrialOptions& options, int threshold,
                   const std::vector<CodesTrialRow>& rows);

std::string CodesUsage();

}  // namespace polyguard::experiment

#endif  // POLYGUARD_BENCH_EXPERIMENT_CODES_TRIALS_H_
