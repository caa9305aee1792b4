// The one place that reads gloo's error messages. gloo reports every failure
// as an exception whose only distinguishing feature is its text, so this is
// where that text becomes a polyguard Status (no exception crosses the API).
#ifndef POLYGUARD_LIB_RUNTIME_GLOO_ERRORS_H_
#define POLYGUARD_LIB_RUNTIME_GLOO_ERRORS_H_

#include <exception>
#include <string>
#include <string_view>

#include "polyguard/base/status.h"

namespace polyguard::internal {

enum class GlooError {
  // Something ran out of time. gloo's own operation timeout
  // ("Timed out waiting 30000ms for recv operation to complete") closes every
  // connection of the context, and the operations pending on the other
  // connections then fail with "Application timeout caused pair closure": a
  // group that saw either is unusable. Also the rendezvous store's
  // "Wait timeout for key(s): ..." and the transport's "Connect timeout",
  // "Read timeout", "Write timeout" and "timed out connecting".
  kTimeout,
  // Anything else: one connection failed ("Connection closed by peer ...",
  // "Read error ...: Connection reset by peer", "Socket closed ..."), a store
  // is unreachable, or gloo refused a call.
  kFailure,
};

// Classifies a gloo exception's message (case-insensitive: "timed out" or
// "timeout" anywhere means kTimeout).
GlooError ClassifyGlooError(std::string_view message);

// "what: message" as DeadlineExceeded for kTimeout, else Unavailable.
Status GlooErrorStatus(std::string_view what, std::string_view message);
Status GlooErrorStatus(std::string_view what, const std::exception& e);

}  // namespace polyguard::internal

#endif  // POLYGUARD_LIB_RUNTIME_GLOO_ERRORS_H_
