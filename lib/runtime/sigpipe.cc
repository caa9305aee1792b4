#include "lib/runtime/sigpipe.h"

#include <signal.h>

namespace polyguard::internal {

void IgnoreSigpipeUnlessHandled() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    ::signal(SIGPIPE, SIG_IGN);
  }
}

}  // namespace polyguard::internal
