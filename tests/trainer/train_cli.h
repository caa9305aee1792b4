// Running polyguard-train from a test: a shell command line, its exit code
// and both output streams.
#ifndef POLYGUARD_TESTS_TRAINER_TRAIN_CLI_H_
#define POLYGUARD_TESTS_TRAINER_TRAIN_CLI_H_

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace polyguard::testing {

struct Outcome {
  int exit_code = -1;
  std::string out, err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `command` (a shell line) with its output captured in `dir`.
inline Outcome Shell(const std::string& command, const std::string& dir) {
  const std::string out = dir + "/stdout", err = dir + "/stderr";
  const int status = std::system(("(" + command + ") > " + out + " 2> " + err).c_str());
  Outcome o;
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.out = Slurp(out);
  o.err = Slurp(err);
  return o;
}

// Runs polyguard-train with `args` (a shell word list).
inline Outcome Train(const std::string& args, const std::string& dir) {
  return Shell(std::string(POLYGUARD_TRAIN_BIN) + " " + args, dir);
}

}  // namespace polyguard::testing

#endif  // POLYGUARD_TESTS_TRAINER_TRAIN_CLI_H_
