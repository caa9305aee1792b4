#include "polyguard/base/check.h"

#include <cstdio>
#include <cstdlib>

namespace polyguard::internal {
void CheckFailed(const char* file, int line, const char* expr) {
  std::fprintf(stderr, "polyguard: CHECK failed at %s:%d: %s\n", file, line, expr);
  std::abort();
}
}  // namespace polyguard::internal
