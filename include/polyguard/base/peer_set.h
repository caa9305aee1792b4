// A set of peer ranks: the key of the decoders' plan caches (one plan per
// set of answering peers) and the wrong-peer and join sets the peers agree
// on each step. Any number of peers up to kMaxPeers.
#ifndef POLYGUARD_BASE_PEER_SET_H_
#define POLYGUARD_BASE_PEER_SET_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace polyguard {

// The most peers a code, a decoder or a job may have. Costs grow with it only
// where a job uses them: a set takes P / 64 words, an agreement P / 32
// numbers per set.
inline constexpr int kMaxPeers = 1024;

class PeerSet {
 public:
  PeerSet() = default;
  // The set of `peers`, each in [0, kMaxPeers) (checked).
  static PeerSet Of(std::span<const int> peers);

  void Insert(int peer);  // peer in [0, kMaxPeers) (checked)
  bool Contains(int peer) const;
  bool empty() const { return words_.empty(); }
  int size() const;                // how many peers
  std::vector<int> Peers() const;  // ascending
  PeerSet& operator|=(const PeerSet& other);
  friend bool operator==(const PeerSet&, const PeerSet&) = default;
  size_t Hash() const;

  // For an exchange of numbers: the set as ceil(peers / 32) numbers of 32
  // bits each (exact in a double), peers being the group's size (every
  // member in [0, peers)).
  void AppendTo(int peers, std::vector<double>* out) const;
  // The set those numbers carry; nothing when they are not such numbers (a
  // lost peer's NaN, a corrupted vote) or name a peer >= `peers` or
  // >= kMaxPeers (a hostile vote never reaches Insert's check).
  static std::optional<PeerSet> Read(std::span<const double> numbers, int peers);
  // How many numbers AppendTo writes for `peers` peers.
  static int NumbersFor(int peers) { return (peers + 31) / 32; }

 private:
  std::vector<uint64_t> words_;  // bit p % 64 of word p / 64; no trailing zero word
};

struct PeerSetHash {
  size_t operator()(const PeerSet& s) const { return s.Hash(); }
};

}  // namespace polyguard

#endif  // POLYGUARD_BASE_PEER_SET_H_
