#include "polyguard/base/peer_set.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "polyguard/base/check.h"

namespace polyguard {

PeerSet PeerSet::Of(std::span<const int> peers) {
  PeerSet s;
  for (int p : peers) s.Insert(p);
  return s;
}

void PeerSet::Insert(int peer) {
  POLYGUARD_CHECK(peer >= 0 && peer < kMaxPeers);
  const size_t w = static_cast<size_t>(peer) / 64;
  if (words_.size() <= w) words_.resize(w + 1, 0);
  words_[w] |= uint64_t{1} << (peer % 64);
}

bool PeerSet::Contains(int peer) const {
  if (peer < 0) return false;
  const size_t w = static_cast<size_t>(peer) / 64;
  return w < words_.size() && (words_[w] >> (peer % 64) & 1) != 0;
}

int PeerSet::size() const {
  int n = 0;
  for (uint64_t w : words_) n += std::popcount(w);
  return n;
}

std::vector<int> PeerSet::Peers() const {
  std::vector<int> out;
  for (size_t w = 0; w < words_.size(); ++w)
    for (uint64_t bits = words_[w]; bits != 0; bits &= bits - 1)
      out.push_back(static_cast<int>(w * 64) + std::countr_zero(bits));
  return out;
}

PeerSet& PeerSet::operator|=(const PeerSet& other) {
  if (words_.size() < other.words_.size()) words_.resize(other.words_.size(), 0);
  for (size_t w = 0; w < other.words_.size(); ++w) words_[w] |= other.words_[w];
  return *this;
}

size_t PeerSet::Hash() const {
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (uint64_t w : words_) h = (h ^ w) * 0x100000001b3ull + (h >> 29);
  return static_cast<size_t>(h);
}

void PeerSet::AppendTo(int peers, std::vector<double>* out) const {
  for (int i = 0; i < NumbersFor(peers); ++i) {
    const size_t w = static_cast<size_t>(i) / 2;
    const uint64_t word = w < words_.size() ? words_[w] : 0;
    out->push_back(static_cast<double>(i % 2 == 0 ? word & 0xffffffffu : word >> 32));
  }
}

std::optional<PeerSet> PeerSet::Read(std::span<const double> numbers, int peers) {
  if (static_cast<int>(numbers.size()) != NumbersFor(peers)) return std::nullopt;
  PeerSet s;
  for (size_t i = 0; i < numbers.size(); ++i) {
    const double v = numbers[i];
    if (!(v >= 0 && v < 4294967296.0) || v != std::floor(v)) return std::nullopt;
    for (uint64_t bits = static_cast<uint64_t>(v); bits != 0; bits &= bits - 1) {
      const int peer = static_cast<int>(i) * 32 + std::countr_zero(bits);
      if (peer >= peers || peer >= kMaxPeers) return std::nullopt;
      s.Insert(peer);
    }
  }
  return s;
}

}  // namespace polyguard
