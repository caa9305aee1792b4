// --help for the benchmark programs: a lone flag must not start a long run.
#ifndef POLYGUARD_BENCH_COMMON_HELP_H_
#define POLYGUARD_BENCH_COMMON_HELP_H_

#include <cstdio>
#include <string>

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

}  // namespace polyguard::bench

#endif  // POLYGUARD_BENCH_COMMON_HELP_H_
