#include "lib/runtime/gloo_errors.h"

#include <algorithm>
#include <cctype>

namespace polyguard::internal {
namespace {

bool ContainsIgnoringCase(std::string_view text, std::string_view word) {
  return std::search(text.begin(), text.end(), word.begin(), word.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         }) != text.end();
}

}  // namespace

GlooError ClassifyGlooError(std::string_view message) {
  // gloo's messages carry a "[file.cc:line] " prefix and no error code, and
  // their wording varies between operations and versions.
  if (ContainsIgnoringCase(message, "timed out") || ContainsIgnoringCase(message, "timeout")) {
    return GlooError::kTimeout;
  }
  return GlooError::kFailure;
}

Status GlooErrorStatus(std::string_view what, std::string_view message) {
  std::string text = std::string(what) + ": " + std::string(message);
  return ClassifyGlooError(message) == GlooError::kTimeout ? DeadlineExceededError(std::move(text))
                                                           : UnavailableError(std::move(text));
}

Status GlooErrorStatus(std::string_view what, const std::exception& e) {
  return GlooErrorStatus(what, std::string_view(e.what()));
}

}  // namespace polyguard::internal
