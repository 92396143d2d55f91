#pragma once
// NumpyRandomState: a bit-exact re-implementation of numpy's legacy
// `numpy.random.RandomState` for the calls MinAtar makes (see
// ../shared/docs/minatar_spec.md section 2): MT19937 seeded with init_genrand,
// `rand()` from two 32-bit outputs, masked-rejection `randint`, and `choice`.
//
// MinAtar's games consume randomness from one shared RandomState, so a port is
// bit-exact only if every call draws exactly the same 32-bit outputs in the
// same order. `draws()` counts the 32-bit outputs consumed since seeding; the
// parity fixtures record the same count (`nd`).
//
// The full generator state (624 words, position and draw count) is a plain
// value: copying a NumpyRandomState clones the stream.

#include <array>
#include <cstdint>
#include <span>

#include "tokenrl/core/serialization.h"

namespace tokenrl {

class NumpyRandomState {
 public:
  static constexpr int kStateWords = 624;

  // Same as numpy.random.RandomState(seed) for 0 <= seed < 2^32.
  explicit NumpyRandomState(uint32_t seed = 0) { Seed(seed); }

  // init_genrand(seed); the next draw twists. Resets draws() to 0.
  void Seed(uint32_t seed);

  // One raw 32-bit MT19937 output (numpy's `random_uint32`).
  uint32_t Next32() {
    if (position_ >= kStateWords) Twist();
    ++draws_;
    return Temper(state_[position_++]);
  }

  // numpy `rand()` / `random_sample()`: a double in [0, 1) from two draws.
  double Rand() {
    const uint32_t a = Next32() >> 5;
    const uint32_t b = Next32() >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }

  // numpy `randint(low, high)` (int64 dtype, high exclusive). REQUIRES low < high.
  // Consumes no draw when high - low == 1.
  int64_t RandInt(int64_t low, int64_t high);
  // numpy `randint(high)` == RandInt(0, high).
  int64_t RandInt(int64_t high) { return RandInt(0, high); }

  // numpy `choice(items)` (uniform, with replacement): items[randint(size)].
  template <typename T>
  const T& Choice(std::span<const T> items) {
    return items[static_cast<size_t>(RandInt(static_cast<int64_t>(items.size())))];
  }

  // 32-bit outputs consumed since the last Seed().
  uint64_t draws() const { return draws_; }

  // Snapshot of the full stream state (state words, position, draw count).
  void Save(ByteWriter& writer) const;
  bool Load(ByteReader& reader);

  friend bool operator==(const NumpyRandomState&, const NumpyRandomState&) = default;

 private:
  static uint32_t Temper(uint32_t y) {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9D2C5680u;
    y ^= (y << 15) & 0xEFC60000u;
    y ^= y >> 18;
    return y;
  }
  void Twist();

  std::array<uint32_t, kStateWords> state_{};
  int position_ = kStateWords;
  uint64_t draws_ = 0;
};

}  // namespace tokenrl
