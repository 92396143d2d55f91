#pragma once
// Seed derivation: every random stream in tokenrl comes from one root seed
// plus a stream id (EnvPool's seed + env_id), never from the clock.

#include <cstdint>
#include <initializer_list>

namespace tokenrl {

// SplitMix64 finalizer: a bijective, well-mixing map on 64-bit values.
constexpr uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A 64-bit seed for the stream identified by `ids` (e.g. {member, env}) under
// `root`. Distinct id tuples give unrelated seeds; the same tuple always the same.
constexpr uint64_t DeriveSeed(uint64_t root, std::initializer_list<uint64_t> ids) {
  uint64_t h = SplitMix64(root);
  for (uint64_t id : ids) h = SplitMix64(h ^ SplitMix64(id + 0x632BE59BD9B4E019ull));
  return h;
}

// The same, folded to 32 bits for generators seeded with 32-bit values
// (numpy's RandomState, as MinAtar uses).
constexpr uint32_t DeriveSeed32(uint64_t root, std::initializer_list<uint64_t> ids) {
  const uint64_t h = DeriveSeed(root, ids);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

}  // namespace tokenrl
