// POLYGUARD_CHECK: internal invariants only. Aborts with file:line when an
// invariant the library itself maintains is broken. It never validates input:
// bad input gets a Status.
#ifndef POLYGUARD_BASE_CHECK_H_
#define POLYGUARD_BASE_CHECK_H_

namespace polyguard::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr);
}  // namespace polyguard::internal

#define POLYGUARD_CHECK(cond)                                                   \
  do {                                                                          \
    if (!(cond)) ::polyguard::internal::CheckFailed(__FILE__, __LINE__, #cond); \
  } while (0)

#endif  // POLYGUARD_BASE_CHECK_H_
