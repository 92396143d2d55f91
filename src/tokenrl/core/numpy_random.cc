#include "tokenrl/core/numpy_random.h"

#include "tokenrl/core/status.h"

namespace tokenrl {

void NumpyRandomState::Seed(uint32_t seed) {
  state_[0] = seed;
  for (int i = 1; i < kStateWords; ++i) {
    state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  }
  position_ = kStateWords;
  draws_ = 0;
}

void NumpyRandomState::Twist() {
  constexpr int kM = 397;
  constexpr uint32_t kMatrix = 0x9908B0DFu, kUpper = 0x80000000u, kLower = 0x7FFFFFFFu;
  for (int i = 0; i < kStateWords; ++i) {
    const uint32_t y = (state_[i] & kUpper) | (state_[(i + 1) % kStateWords] & kLower);
    state_[i] = state_[(i + kM) % kStateWords] ^ (y >> 1) ^ ((y & 1u) ? kMatrix : 0u);
  }
  position_ = 0;
}

int64_t NumpyRandomState::RandInt(int64_t low, int64_t high) {
  TOKENRL_CHECK(low < high, "RandInt({}, {}): empty range", low, high);
  const uint64_t range = static_cast<uint64_t>(high) - 1 - static_cast<uint64_t>(low);
  if (range == 0) return low;  // numpy consumes nothing here.
  uint64_t value;
  if (range <= 0xFFFFFFFFull) {
    if (range == 0xFFFFFFFFull) return low + static_cast<int64_t>(Next32());
    uint32_t mask = static_cast<uint32_t>(range);
    mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16;
    // Masked rejection on the low bits, exactly as numpy's legacy bounded ints.
    uint32_t v;
    do { v = Next32() & mask; } while (v > range);
    value = v;
  } else {
    uint64_t mask = range;
    mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16;
    mask |= mask >> 32;
    auto next64 = [this] {
      const uint64_t hi = Next32();
      return (hi << 32) | Next32();
    };
    if (range == ~0ull) return low + static_cast<int64_t>(next64());
    do { value = next64() & mask; } while (value > range);
  }
  return low + static_cast<int64_t>(value);
}

void NumpyRandomState::Save(ByteWriter& writer) const {
  writer.Write(state_);
  writer.Write<int32_t>(position_);
  writer.Write(draws_);
}

bool NumpyRandomState::Load(ByteReader& reader) {
  NumpyRandomState loaded;
  int32_t position = 0;
  if (!reader.Read(loaded.state_) || !reader.Read(position) || !reader.Read(loaded.draws_)) return false;
  if (position < 0 || position > kStateWords) return false;
  loaded.position_ = position;
  *this = loaded;
  return true;
}

}  // namespace tokenrl
