// The third-party and standard headers most of polyguard's files parse,
// precompiled once per target when POLYGUARD_PCH is on (scripts/test, CI):
// Eigen's dense module alone takes about 2.7 s of a file's compile here.
// Only headers outside the project, and the extern declarations of Eigen's
// common kernels: a file still compiles without this (user builds, and CI's
// AVX-512 compile check, have it off), so a missing include still shows there.
#ifndef POLYGUARD_CMAKE_PRECOMPILED_H_
#define POLYGUARD_CMAKE_PRECOMPILED_H_

#include <Eigen/Dense>
#include <Eigen/SparseCore>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

// Declared here, defined once in the library (lib/base/eigen_instances.cc).
#include "../lib/base/eigen_instances.h"
POLYGUARD_EIGEN_INSTANCES(extern template)

#endif  // POLYGUARD_CMAKE_PRECOMPILED_H_
