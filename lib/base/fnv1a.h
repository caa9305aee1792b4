// FNV-1a, 64 bits: the library's one checksum of bytes (checkpoints, rebuild
// pieces, job identities). Not cryptographic: it detects damage, not forgery.
#ifndef POLYGUARD_LIB_BASE_FNV1A_H_
#define POLYGUARD_LIB_BASE_FNV1A_H_

#include <cstdint>
#include <string_view>

namespace polyguard::internal {

inline uint64_t Fnv1a(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace polyguard::internal

#endif  // POLYGUARD_LIB_BASE_FNV1A_H_
