// --help and integer flags for the benchmark programs: a lone flag must not
// start a long run.
#ifndef POLYGUARD_BENCH_COMMON_HELP_H_
#define POLYGUARD_BENCH_COMMON_HELP_H_

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <utility>

namespace polyguard::bench {

// True (after printing `usage` to stdout) when any argument asks for help.
inline bool PrintedHelp(int argc, char** argv, const char* usage) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return true;
    }
  }
  return false;
}

// Reads "--name value" pairs into the integers named in `flags`. False
// (after printing `usage` to stderr) for an unknown flag, a missing value or
// one that is not a whole number.
inline bool ParsedIntFlags(int argc, char** argv,
                           std::initializer_list<std::pair<const char*, int*>> flags,
                           const char* usage) {
  for (int i = 1; i < argc; i += 2) {
    int* target = nullptr;
    for (const auto& [name, value] : flags)
      if (argv[i] == std::string(name)) target = value;
    char* end = nullptr;
    const long v = i + 1 < argc ? std::strtol(argv[i + 1], &end, 10) : 0;
    if (target == nullptr || i + 1 >= argc || end == argv[i + 1] || *end != '\0') {
      std::fputs(usage, stderr);
      return false;
    }
    *target = static_cast<int>(v);
  }
  return true;
}

}  // namespace polyguard::bench

#endif  // POLYGUARD_BENCH_COMMON_HELP_H_
