// SIGPIPE: gloo writes to sockets without MSG_NOSIGNAL, so a peer that
// disappears would kill this process with SIGPIPE instead of becoming an
// error.
#ifndef POLYGUARD_LIB_RUNTIME_SIGPIPE_H_
#define POLYGUARD_LIB_RUNTIME_SIGPIPE_H_

namespace polyguard::internal {

// Ignores SIGPIPE unless the application installed its own handler (or
// already ignores it).
void IgnoreSigpipeUnlessHandled();

}  // namespace polyguard::internal

#endif  // POLYGUARD_LIB_RUNTIME_SIGPIPE_H_
