// polyguard-experiment: experiments on polyguard's protection strategies.
//   polyguard-experiment codes [options]   Monte Carlo decode trials (CSV)
// Bad options print a message and exit with code 2.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "experiment/codes_trials.h"

int main(int argc, char** argv) {
  using namespace polyguard::experiment;
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cerr << "usage: polyguard-experiment codes [options]\n\n" << CodesUsage();
    return args.empty() ? 2 : 0;
  }
  if (args[0] != "codes") {
    std::cerr << "polyguard-experiment: unknown experiment '" << args[0]
              << "' (available: codes)\n";
    return 2;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const auto& a : rest) {
    if (a == "--help" || a == "-h") {
      std::cout << CodesUsage();
      return 0;
    }
  }
  auto options = ParseCodesOptions(rest);
  if (!options.ok()) {
    std::cerr << "polyguard-experiment codes: " << options.status().message() << "\n\n"
              << CodesUsage();
    return 2;
  }
  auto code = polyguard::MakeProductCode(options->code);
  if (!code.ok()) {
    std::cerr << "polyguard-experiment codes: " << code.status().message() << "\n";
    return 2;
  }
  auto rows = RunCodesTrials(*options);
  if (!rows.ok()) {
    std::cerr << "polyguard-experiment codes: " << rows.status().message() << "\n";
    return 2;
  }
  WriteCodesCsv(std::cout, *options, (*code)->recovery_threshold(), *rows);
  return 0;
}
