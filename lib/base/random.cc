#include "polyguard/base/random.h"

#include <algorithm>
#include <numeric>

namespace polyguard {
namespace {
uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

uint64_t DeriveSeed(uint64_t root, std::initializer_list<uint64_t> parts) {
  uint64_t h = SplitMix64(root);
  for (uint64_t p : parts) h = SplitMix64(h ^ SplitMix64(p + 0x632be59bd9b4e019ULL));
  return h;
}

double Random::Uniform(double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(engine_);
}

double Random::Normal(double mean, double stddev) {
  return std::normal_distribution<double>(mean, stddev)(engine_);
}

int64_t Random::UniformInt(int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(engine_);
}

Matrix Random::NormalMatrix(Eigen::Index rows, Eigen::Index cols) {
  Matrix m(rows, cols);
  std::normal_distribution<double> dist(0.0, 1.0);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = dist(engine_);
  return m;
}

std::vector<int> Random::Sample(int n, int k) {
  std::vector<int> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  for (int i = 0; i < k; ++i) {
    int j = static_cast<int>(UniformInt(i, n - 1));
    std::swap(all[static_cast<size_t>(i)], all[static_cast<size_t>(j)]);
  }
  all.resize(static_cast<size_t>(k));
  return all;
}

}  // namespace polyguard
