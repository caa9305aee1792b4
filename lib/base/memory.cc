#include "polyguard/base/memory.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

namespace polyguard {
namespace {

// The first number in `path`, or -1 ("max", absent or unreadable).
int64_t ReadNumber(const char* path) {
  std::ifstream in(path);
  long long v = -1;
  if (!(in >> v)) return -1;
  return static_cast<int64_t>(v);
}

int64_t MemAvailable() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    long long kib = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %lld kB", &kib) == 1) return int64_t{kib} * 1024;
  }
  return -1;
}

}  // namespace

int64_t AvailableMemoryBytes() {
  int64_t best = std::numeric_limits<int64_t>::max() / 4;
  if (const int64_t m = MemAvailable(); m > 0) best = std::min(best, m);
  const int64_t max = ReadNumber("/sys/fs/cgroup/memory.max");
  const int64_t used = ReadNumber("/sys/fs/cgroup/memory.current");
  if (max > 0 && used >= 0) best = std::min(best, std::max<int64_t>(max - used, 0));
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    best = std::min(best, static_cast<int64_t>(limit.rlim_cur));
  }
  return best;
}

std::string FormatBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) {
    bytes /= 1024;
    ++u;
  }
  char text[64];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return text;
}

Status CheckMemory(const std::string& what, double bytes, int64_t available) {
  if (bytes <= double(available)) return Status::Ok();
  return ResourceExhaustedError(what + " needs about " + FormatBytes(bytes) + ", " +
                                FormatBytes(double(available)) + " available");
}

}  // namespace polyguard
