// polyguard-experiment: experiments on polyguard's protection strategies.
//   polyguard-experiment run SPEC.textproto... [--out DIR]
//       runs (or resumes) experiment specs: DIR/NAME/NAME.csv, NAME.png,
//       summary.md (default DIR: experiments-out)
//   polyguard-experiment readme README.md [--out DIR]
//       regenerates README's result sections from DIR/NAME/summary.md
//   polyguard-experiment codes [options]   Monte Carlo decode trials (CSV)
//   polyguard-experiment soak [--decodes N] [--seed S] [--precision P]
//       random decodes of every decoding strategy in structured error
//       families, a table of counts per family; exit 1 if any broke the
//       decoder's guarantee
// Bad options print a message and exit with code 2; a failed run exits 1.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "experiment/codes_trials.h"
#include "experiment/decode_soak.h"
#include "experiment/experiments.h"

int main(int argc, char** argv) {
  using namespace polyguard::experiment;
  const std::vector<std::string> args(argv + 1, argv + argc);
  const char* usage =
      "usage: polyguard-experiment run SPEC.textproto... [--out DIR]\n"
      "       polyguard-experiment readme README.md [--out DIR]\n"
      "       polyguard-experiment codes [options]\n"
      "       polyguard-experiment soak [--decodes N (1000000)] [--seed S (1)]\n"
      "                                 [--precision float64|float32 (float64)] [--clean-only]\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cerr << usage << "\n" << CodesUsage();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "run" || args[0] == "readme") {
    std::string out = "experiments-out";
    std::vector<std::string> files;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--out") {
        if (i + 1 >= args.size()) {
          std::cerr << "polyguard-experiment: --out needs a folder\n";
          return 2;
        }
        out = args[++i];
      } else if (args[i].rfind("--", 0) == 0) {
        std::cerr << "polyguard-experiment: unknown option " << args[i] << "\n" << usage;
        return 2;
      } else {
        files.push_back(args[i]);
      }
    }
    if (files.empty() || (args[0] == "readme" && files.size() != 1)) {
      std::cerr << usage;
      return 2;
    }
    if (args[0] == "readme") {
      const polyguard::Status s = UpdateReadme(files[0], out);
      if (!s.ok()) {
        std::cerr << "polyguard-experiment readme: " << s.message() << "\n";
        return 1;
      }
      return 0;
    }
    std::vector<polyguard::experiment::proto::Experiment> specs;
    for (const std::string& f : files) {  // all specs checked before any runs
      auto spec = LoadExperiment(f);
      if (!spec.ok()) {
        std::cerr << "polyguard-experiment: " << spec.status().message() << "\n";
        return 2;
      }
      specs.push_back(*spec);
    }
    for (const auto& spec : specs) {
      auto r = RunExperiment(spec, out);
      if (!r.ok()) {
        std::cerr << "polyguard-experiment: " << spec.name() << ": " << r.status().message()
                  << "\n";
        return 1;
      }
      std::cout << "## " << spec.name() << " (" << r->dir << ")\n\n" << r->summary << "\n";
    }
    return 0;
  }
  if (args[0] == "soak") {
    polyguard::experiment::SoakOptions o;
    for (size_t i = 1; i < args.size(); ++i) {
      const bool has_value = i + 1 < args.size();
      char* end = nullptr;
      if ((args[i] == "--decodes" || args[i] == "--seed") && has_value) {
        const std::string& v = args[++i];
        errno = 0;
        const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
        if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0 ||
            (args[i - 1] == "--decodes" && n > (1ull << 40))) {
          std::cerr << "polyguard-experiment soak: " << args[i - 1]
                    << " takes a whole number in [0, 2^40], got '" << v << "'\n";
          return 2;
        }
        if (args[i - 1] == "--decodes") {
          o.decodes = static_cast<int64_t>(n);
        } else {
          o.seed = n;
        }
      } else if (args[i] == "--clean-only") {
        o.clean_only = true;
      } else if (args[i] == "--precision" && has_value) {
        auto precision = polyguard::ParsePrecision(args[++i]);
        if (!precision.ok()) {
          std::cerr << "polyguard-experiment soak: --precision: " << precision.status().message()
                    << "\n";
          return 2;
        }
        o.precision = *precision;
      } else if (args[i] == "--help" || args[i] == "-h") {
        std::cout << usage;
        return 0;
      } else {
        std::cerr << "polyguard-experiment soak: unknown option " << args[i] << "\n" << usage;
        return 2;
      }
    }
    const auto start = std::chrono::steady_clock::now();
    auto rows = polyguard::experiment::RunDecodeSoak(o, [&](int64_t done) {
      if (done % 100000 == 0) {
        std::cerr << "soak: " << done << " of " << o.decodes << " decodes\n";
      }
    });
    if (!rows.ok()) {
      std::cerr << "polyguard-experiment soak: " << rows.status().message() << "\n";
      return 1;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << polyguard::experiment::FormatSoakTable(*rows) << "\n(" << seconds << " s)\n";
    for (const auto& r : *rows)
      if (polyguard::experiment::Failed(r)) return 1;
    return 0;
  }
  if (args[0] != "codes") {
    std::cerr << "polyguard-experiment: unknown experiment '" << args[0]
              << "' (available: run, readme, codes, soak)\n";
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
