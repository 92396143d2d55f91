#pragma once
// PrioritizedSampler: proportional prioritized experience replay (Schaul et
// al., 2016, "Prioritized Experience Replay", section 3.3) over a SumTree.
//
//   stored value   q_i = p_i^alpha            (p_i: the priority given to Update)
//   probability    P(i) = q_i / sum_j q_j
//   IS weight      w_i = (N * P(i))^-beta / max_{j in batch} (N * P(j))^-beta
//
// with N = size(), the number of valid slots. New slots get the largest stored
// value ever recorded (SumTree::max_recorded_priority, initially 1.0), so every
// new item is sampled at least as often as any other until its first Update.
// The weights are normalized by the batch maximum (as Dopamine does; Schaul et
// al. normalize by the maximum over the whole buffer), so the largest weight in
// every batch is exactly 1 and the factor N cancels.
//
// Sampling is stratified by default (Dopamine's `stratified_sample`): [0, total)
// is cut into batch_size equal segments and one value is drawn uniformly from
// each, which keeps the expected count of slot i at batch_size * P(i) with lower
// variance. With stratified = false each draw is independent on [0, total).
//
// Reproducing Dopamine's Rainbow / DER (`OutOfGraphPrioritizedReplayBuffer`
// and `rainbow_agent.py` at 0a5b581; ../shared/docs/softmoe_reference.md 6.1):
// Dopamine stores sqrt(loss_i + 1e-10) in the tree and weights each loss by
// 1/sqrt(P(i) + 1e-10) / max over the batch, with no beta annealing. That is
// alpha = 0.5, beta = 0.5 (the defaults below) with Update(indices, loss + 1e-10):
// the caller adds the 1e-10 floor, so a zero loss keeps a tiny positive
// probability. (Equivalently alpha = 1 with Update(indices, sqrt(loss + 1e-10)).)
// The weights then equal Dopamine's up to the 1e-10 inside its square root.

#include <cstdint>
#include <vector>

#include "tokenrl/replay/sampler.h"
#include "tokenrl/replay/sum_tree.h"

namespace tokenrl::replay {

struct PrioritizedSamplerConfig {
  // Priority exponent: 0 is uniform, 1 fully proportional. Default 0.5
  // (Dopamine Rainbow/DER; Schaul et al. use 0.6 for proportional PER).
  double alpha = 0.5;
  // Initial importance-sampling exponent: 0 means no correction (weights 1),
  // 1 full correction. Default 0.5, fixed (Dopamine Rainbow/DER); Schaul et al.
  // anneal 0.4 -> 1 over training, which the caller does through SetBeta.
  double beta = 0.5;
  // Stratified sampling over the batch (Dopamine), or independent draws.
  bool stratified = true;

  // InvalidArgument unless alpha is finite and >= 0 and 0 <= beta <= 1.
  Status Validate() const;
};

class PrioritizedSampler final : public Sampler {
 public:
  // REQUIRES: capacity > 0; config.Validate().ok().
  PrioritizedSampler(int64_t capacity, const PrioritizedSamplerConfig& config);

  int64_t capacity() const override { return tree_.capacity(); }
  int64_t size() const override { return size_; }
  bool Contains(int64_t index) const override { return valid_[index] != 0; }
  // Sets the slot's stored value to max_recorded_priority() (a re-Add resets it).
  void Add(int64_t index) override;
  // Sets the slot's stored value to 0.
  void Remove(int64_t index) override;
  // Stores priority^alpha for each slot.
  void Update(std::span<const int64_t> indices, std::span<const double> priorities) override;
  void Sample(int batch_size, std::mt19937_64& rng, std::vector<int64_t>* indices,
              std::vector<double>* weights) override;
  // Invalidates every slot and resets max_recorded_priority() to 1.0.
  void Clear() override;
  // Saves the tree, the valid-slot flags and alpha; Load rejects a different
  // alpha (stored values would mean something else). beta and stratified are
  // not saved: they come from the config and the caller's beta schedule.
  void Save(ByteWriter& writer) const override;
  Status Load(ByteReader& reader) override;

  // Sets beta for the following Samples (for an annealing schedule).
  // REQUIRES: 0 <= beta <= 1.
  void SetBeta(double beta);
  double beta() const { return config_.beta; }
  double alpha() const { return config_.alpha; }

  // Sampling probability P(i) of a slot; 0 for invalid slots or an empty tree.
  double Probability(int64_t index) const;
  // The stored value new slots receive (>= 1.0; Dopamine semantics).
  double max_recorded_priority() const { return tree_.max_recorded_priority(); }

 private:
  void CheckIndex(int64_t index) const;

  PrioritizedSamplerConfig config_;
  SumTree tree_;                // Stored values q_i; 0 for invalid slots.
  std::vector<uint8_t> valid_;  // 1 if the slot is valid.
  int64_t size_ = 0;            // Number of valid slots.
};

}  // namespace tokenrl::replay
