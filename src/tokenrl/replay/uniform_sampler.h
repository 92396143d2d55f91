#pragma once
// UniformSampler: every valid slot is equally likely; weights are all 1.0
// (Dopamine's `UniformSamplingDistribution`). Add, Remove and Sample are O(1)
// per item: valid slots are kept in a dense array with a slot -> position map.

#include <cstdint>
#include <vector>

#include "tokenrl/replay/sampler.h"

namespace tokenrl::replay {

class UniformSampler final : public Sampler {
 public:
  // REQUIRES: capacity > 0.
  explicit UniformSampler(int64_t capacity);

  int64_t capacity() const override { return static_cast<int64_t>(position_.size()); }
  bool Contains(int64_t index) const override { return position_[index] >= 0; }
  int64_t size() const override { return static_cast<int64_t>(valid_.size()); }
  void Add(int64_t index) override;
  void Remove(int64_t index) override;
  // Checks its REQUIRES, then ignores the priorities.
  void Update(std::span<const int64_t> indices, std::span<const double> priorities) override;
  void Sample(int batch_size, std::mt19937_64& rng, std::vector<int64_t>* indices,
              std::vector<double>* weights) override;
  void Clear() override;
  void Save(ByteWriter& writer) const override;
  Status Load(ByteReader& reader) override;

 private:
  std::vector<int64_t> valid_;     // Valid slots, in an order that Save preserves.
  std::vector<int64_t> position_;  // position_[slot] = index into valid_, or -1.
};

}  // namespace tokenrl::replay
