// Seeded random streams. Every random choice in polyguard comes from a stream
// derived from an explicit seed, so runs and failures replay exactly.
//
// Thread safety: a Random is not thread-safe; give each thread its own stream
// (DeriveSeed makes independent seeds from one root seed).
#ifndef POLYGUARD_BASE_RANDOM_H_
#define POLYGUARD_BASE_RANDOM_H_

#include <cstdint>
#include <initializer_list>
#include <random>
#include <vector>

#include "polyguard/base/matrix.h"

namespace polyguard {

// Mixes a root seed with a list of integers (peer, step, ...) into a new seed
// (SplitMix64), so that streams for different purposes are independent.
uint64_t DeriveSeed(uint64_t root, std::initializer_list<uint64_t> parts);

class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}

  double Uniform(double lo = 0.0, double hi = 1.0);
  double Normal(double mean = 0.0, double stddev = 1.0);
  // Uniform integer in [lo, hi].
  int64_t UniformInt(int64_t lo, int64_t hi);
  uint64_t Bits() { return engine_(); }
  // Entries iid N(0, 1).
  Matrix NormalMatrix(Eigen::Index rows, Eigen::Index cols);
  // k distinct values from [0, n), in random order.
  std::vector<int> Sample(int n, int k);

  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace polyguard

#endif  // POLYGUARD_BASE_RANDOM_H_
