#include "tokenrl/replay/uniform_sampler.h"

#include <cmath>

namespace tokenrl::replay {

UniformSampler::UniformSampler(int64_t capacity) {
  TOKENRL_CHECK(capacity > 0, "UniformSampler capacity must be positive, got {}", capacity);
  position_.assign(capacity, -1);
}

void UniformSampler::Add(int64_t index) {
  TOKENRL_CHECK(index >= 0 && index < capacity(), "slot {} out of range [0, {})", index, capacity());
  if (position_[index] >= 0) return;
  position_[index] = size();
  valid_.push_back(index);
}

void UniformSampler::Remove(int64_t index) {
  TOKENRL_CHECK(index >= 0 && index < capacity(), "slot {} out of range [0, {})", index, capacity());
  const int64_t pos = position_[index];
  if (pos < 0) return;
  // Swap-erase: move the last valid slot into the hole.
  const int64_t last = valid_.back();
  valid_[pos] = last;
  position_[last] = pos;
  valid_.pop_back();
  position_[index] = -1;
}

void UniformSampler::Update(std::span<const int64_t> indices, std::span<const double> priorities) {
  TOKENRL_CHECK(indices.size() == priorities.size(), "{} indices but {} priorities", indices.size(),
                priorities.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    TOKENRL_CHECK(indices[i] >= 0 && indices[i] < capacity() && position_[indices[i]] >= 0,
                  "Update of invalid slot {}", indices[i]);
    TOKENRL_CHECK(std::isfinite(priorities[i]) && priorities[i] >= 0.0, "invalid priority {}", priorities[i]);
  }
}

void UniformSampler::Sample(int batch_size, std::mt19937_64& rng, std::vector<int64_t>* indices,
                            std::vector<double>* weights) {
  TOKENRL_CHECK(batch_size > 0, "batch_size must be positive, got {}", batch_size);
  TOKENRL_CHECK(size() > 0, "Sample from an empty sampler");
  indices->resize(batch_size);
  weights->assign(batch_size, 1.0);
  for (int i = 0; i < batch_size; ++i) (*indices)[i] = valid_[UniformIndex(rng, valid_.size())];
}

void UniformSampler::Clear() {
  valid_.clear();
  position_.assign(position_.size(), -1);
}

void UniformSampler::Save(ByteWriter& writer) const {
  writer.Write<int64_t>(capacity());
  writer.WriteVector(valid_);
}

Status UniformSampler::Load(ByteReader& reader) {
  int64_t capacity = 0;
  std::vector<int64_t> valid;
  if (!reader.Read(capacity) || !reader.ReadVector(valid)) return Status::Corruption("UniformSampler: truncated state");
  if (capacity != this->capacity()) {
    return Status::Corruption(fmt::format("UniformSampler: saved capacity {} != capacity {}", capacity,
                                          this->capacity()));
  }
  std::vector<int64_t> position(capacity, -1);
  for (size_t i = 0; i < valid.size(); ++i) {
    if (valid[i] < 0 || valid[i] >= capacity || position[valid[i]] >= 0) {
      return Status::Corruption("UniformSampler: invalid or duplicate slot in saved state");
    }
    position[valid[i]] = static_cast<int64_t>(i);
  }
  valid_ = std::move(valid);
  position_ = std::move(position);
  return Status::Ok();
}

}  // namespace tokenrl::replay
