// Memory estimates checked before allocating: a job whose matrices cannot fit
// is refused with ResourceExhausted naming what needs the bytes, instead of
// dying of std::bad_alloc (or the OOM killer) in every peer.
#ifndef POLYGUARD_BASE_MEMORY_H_
#define POLYGUARD_BASE_MEMORY_H_

#include <cstdint>
#include <string>

#include "polyguard/base/status.h"

namespace polyguard {

// Bytes this process can still expect to allocate: the least of the
// machine's MemAvailable (/proc/meminfo), the cgroup's memory.max less its
// memory.current (v2), and RLIMIT_AS. A large value when none is known.
int64_t AvailableMemoryBytes();

// "1.5 GiB", "12.0 MiB", "512 B".
std::string FormatBytes(double bytes);

// Ok when `bytes` (a double: estimates of absurd shapes overflow int64) fit
// in `available`; else ResourceExhausted "WHAT needs about N, M available".
Status CheckMemory(const std::string& what, double bytes, int64_t available);

}  // namespace polyguard

#endif  // POLYGUARD_BASE_MEMORY_H_
