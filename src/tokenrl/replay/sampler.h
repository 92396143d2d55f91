#pragma once
// Sampler: the sampling distribution over the slots of a replay storage
// (Dopamine's `SamplingDistribution` protocol in `jax/replay_memory/samplers.py`).
// A sampler knows nothing about observations; it sees slot indices only. The
// replay buffer calls Add when a slot is (re)written, Remove when a slot stops
// being valid (e.g. it is about to be overwritten), Update after a gradient
// update with that batch's new priorities, and Sample to draw a batch.
//
// Randomness is explicit: Sample draws from the caller's std::mt19937_64 (seeded
// with DeriveSeed, core/seed.h) and from nothing else, so a saved sampler plus a
// saved generator state continue identically. Draws go through UniformIndex and
// UniformUnitDouble below, not std::uniform_*_distribution, whose output differs
// between standard libraries.
//
// Indices are slot numbers in [0, capacity()). Not thread-safe.

#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "tokenrl/core/serialization.h"
#include "tokenrl/core/status.h"

namespace tokenrl::replay {

// A double uniform on [0, 1) with 53 random bits, from one 64-bit draw.
inline double UniformUnitDouble(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// An integer uniform on [0, n) by rejection (unbiased; portable).
// REQUIRES: n > 0.
inline uint64_t UniformIndex(std::mt19937_64& rng, uint64_t n) {
  // Accept draws below the largest multiple of n that fits in 2^64.
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x = rng();
  while (x >= limit) x = rng();
  return x % n;
}

class Sampler {
 public:
  virtual ~Sampler() = default;

  // Number of slots this sampler can index (the storage capacity).
  virtual int64_t capacity() const = 0;
  // Number of slots currently valid (Added and not Removed since).
  virtual int64_t size() const = 0;

  // Whether slot `index` is valid. REQUIRES: 0 <= index < capacity().
  virtual bool Contains(int64_t index) const = 0;

  // Marks slot `index` as newly written and valid. Adding a slot that is
  // already valid treats it as overwritten with a new item (a prioritized
  // sampler resets its priority to the max recorded priority).
  // REQUIRES: 0 <= index < capacity().
  virtual void Add(int64_t index) = 0;

  // Marks slot `index` as invalid; it is never sampled until Added again.
  // Removing an invalid slot is a no-op. REQUIRES: 0 <= index < capacity().
  virtual void Remove(int64_t index) = 0;

  // Sets new priorities (e.g. |TD error| or per-sample loss; the sampler's own
  // config says how they are transformed) for valid slots. Duplicate indices
  // are allowed; the last one wins. Samplers without priorities ignore this.
  // REQUIRES: indices.size() == priorities.size(); every index valid; every
  // priority finite and >= 0.
  virtual void Update(std::span<const int64_t> indices, std::span<const double> priorities) = 0;

  // Draws `batch_size` slots (with replacement) into *indices and their
  // importance-sampling loss weights into *weights (both resized to
  // batch_size; 1.0 for samplers with no correction).
  // REQUIRES: batch_size > 0; size() > 0 (and, for a prioritized sampler, some
  // valid slot has a positive priority).
  virtual void Sample(int batch_size, std::mt19937_64& rng, std::vector<int64_t>* indices,
                      std::vector<double>* weights) = 0;

  // Invalidates every slot (and resets any priority state).
  virtual void Clear() = 0;

  // Checkpointing. Load fails with Corruption on truncated or inconsistent
  // input (a different capacity or configuration included) and then leaves the
  // sampler unchanged.
  virtual void Save(ByteWriter& writer) const = 0;
  virtual Status Load(ByteReader& reader) = 0;
};

}  // namespace tokenrl::replay
