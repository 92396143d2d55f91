#include "tokenrl/replay/prioritized_sampler.h"

#include <algorithm>
#include <cmath>

namespace tokenrl::replay {

Status PrioritizedSamplerConfig::Validate() const {
  if (!std::isfinite(alpha) || alpha < 0.0) {
    return Status::InvalidArgument(fmt::format("prioritized sampler: alpha must be finite and >= 0, got {}", alpha));
  }
  if (!(beta >= 0.0 && beta <= 1.0)) {
    return Status::InvalidArgument(fmt::format("prioritized sampler: beta must be in [0, 1], got {}", beta));
  }
  return Status::Ok();
}

PrioritizedSampler::PrioritizedSampler(int64_t capacity, const PrioritizedSamplerConfig& config)
    : config_(config), tree_(capacity), valid_(capacity, 0) {
  const Status status = config.Validate();
  TOKENRL_CHECK(status.ok(), "{}", status.message());
}

void PrioritizedSampler::CheckIndex(int64_t index) const {
  TOKENRL_CHECK(index >= 0 && index < capacity(), "slot {} out of range [0, {})", index, capacity());
}

void PrioritizedSampler::Add(int64_t index) {
  CheckIndex(index);
  if (!valid_[index]) {
    valid_[index] = 1;
    ++size_;
  }
  tree_.Set(index, tree_.max_recorded_priority());
}

void PrioritizedSampler::Remove(int64_t index) {
  CheckIndex(index);
  if (!valid_[index]) return;
  valid_[index] = 0;
  --size_;
  tree_.Set(index, 0.0);
}

void PrioritizedSampler::Update(std::span<const int64_t> indices, std::span<const double> priorities) {
  TOKENRL_CHECK(indices.size() == priorities.size(), "{} indices but {} priorities", indices.size(),
                priorities.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    CheckIndex(indices[i]);
    TOKENRL_CHECK(valid_[indices[i]], "Update of invalid slot {}", indices[i]);
    TOKENRL_CHECK(std::isfinite(priorities[i]) && priorities[i] >= 0.0, "invalid priority {}", priorities[i]);
    tree_.Set(indices[i], std::pow(priorities[i], config_.alpha));
  }
}

void PrioritizedSampler::Sample(int batch_size, std::mt19937_64& rng, std::vector<int64_t>* indices,
                                std::vector<double>* weights) {
  TOKENRL_CHECK(batch_size > 0, "batch_size must be positive, got {}", batch_size);
  TOKENRL_CHECK(size_ > 0, "Sample from an empty sampler");
  const double total = tree_.Total();
  TOKENRL_CHECK(total > 0.0, "Sample with all priorities 0");
  indices->resize(batch_size);
  weights->resize(batch_size);
  const double segment = total / batch_size;
  double max_weight = 0.0;
  for (int i = 0; i < batch_size; ++i) {
    const double u = UniformUnitDouble(rng);
    const double value = config_.stratified ? (i + u) * segment : u * total;
    const int64_t index = tree_.FindPrefixSum(value);
    (*indices)[i] = index;
    const double prob = tree_.Get(index) / total;
    const double w = std::pow(static_cast<double>(size_) * prob, -config_.beta);
    (*weights)[i] = w;
    max_weight = std::max(max_weight, w);
  }
  for (double& w : *weights) w /= max_weight;
}

void PrioritizedSampler::Clear() {
  tree_.Clear();
  std::fill(valid_.begin(), valid_.end(), 0);
  size_ = 0;
}

void PrioritizedSampler::SetBeta(double beta) {
  TOKENRL_CHECK(beta >= 0.0 && beta <= 1.0, "beta must be in [0, 1], got {}", beta);
  config_.beta = beta;
}

double PrioritizedSampler::Probability(int64_t index) const {
  CheckIndex(index);
  const double total = tree_.Total();
  return total > 0.0 ? tree_.Get(index) / total : 0.0;
}

void PrioritizedSampler::Save(ByteWriter& writer) const {
  writer.Write<double>(config_.alpha);
  tree_.Save(writer);
  writer.WriteVector(valid_);
}

Status PrioritizedSampler::Load(ByteReader& reader) {
  double alpha = 0.0;
  if (!reader.Read(alpha)) return Status::Corruption("PrioritizedSampler: truncated state");
  if (alpha != config_.alpha) {
    return Status::Corruption(fmt::format("PrioritizedSampler: saved alpha {} != configured alpha {}", alpha,
                                          config_.alpha));
  }
  SumTree tree(capacity());
  TOKENRL_RETURN_IF_ERROR(tree.Load(reader).WithContext("PrioritizedSampler"));
  std::vector<uint8_t> valid;
  if (!reader.ReadVector(valid)) return Status::Corruption("PrioritizedSampler: truncated state");
  if (static_cast<int64_t>(valid.size()) != capacity()) {
    return Status::Corruption("PrioritizedSampler: valid-slot flags do not match the capacity");
  }
  int64_t size = 0;
  for (int64_t i = 0; i < capacity(); ++i) {
    if (valid[i] > 1 || (!valid[i] && tree.Get(i) != 0.0)) {
      return Status::Corruption("PrioritizedSampler: inconsistent valid-slot flags");
    }
    size += valid[i];
  }
  tree_ = std::move(tree);
  valid_ = std::move(valid);
  size_ = size;
  return Status::Ok();
}

}  // namespace tokenrl::replay
