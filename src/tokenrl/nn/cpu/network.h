#pragma once
// The CPU engine's Q-network for E members, built from a NetworkConfig with
// the torch backend's structure and parameter names (nn/torch/q_network.h):
//   obs uint8 [C, H, W] -> scale, channels-last -> encoder -> (tokenizer) ->
//   mixer -> head.
// The head's raw output is Q [A] (plain heads) or logits [A, atoms] (C51);
// for C51 the network also keeps softmax probabilities and Q = sum_z z p(z).
// The penultimate features (the head's input [F]) are kept for diagnostics.

#include <cstdint>
#include <memory>
#include <vector>

#include "tokenrl/nn/cpu/layer.h"
#include "tokenrl/nn/network_config.h"

namespace tokenrl::nn::cpu {

class MoeLayer;

class Network {
 public:
  // REQUIRES: ComputeShapes(config, io) succeeds. Member e's initial weights
  // come from ParameterSeed(seed, e, name); noise from `noise_seed`.
  Network(const NetworkConfig& config, const NetworkIo& io, uint64_t seed, int members, uint64_t noise_seed);
  ~Network();

  // Draws (or disables) the noise of every noisy layer for `context`, all
  // members, in the torch backend's order. Call before that context's passes.
  void DrawNoise(int context, bool enabled);

  // obs [batch, C, H, W] uint8 of member pass.member -> Q [batch, A].
  const float* Forward(const Pass& pass, const uint8_t* obs);
  // The head's raw output of the last Forward: Q [B, A] or logits [B, A, atoms].
  const float* raw_output(const Pass& pass);
  // C51: softmax of the logits over atoms [B, A, atoms] (else nullptr).
  const float* probabilities(const Pass& pass);
  // Head input [B, features()] of the last Forward.
  const float* features(const Pass& pass) const;
  float aux_loss(const Pass& pass) const;
  // Backward of the training pass: d_raw [B, raw size] is the loss gradient
  // of raw_output (overwritten). Writes every parameter's gradient of member
  // pass.member.
  void Backward(const Pass& pass, float* d_raw);

  ParamStore& params() { return params_; }
  const ParamStore& params() const { return params_; }
  NoiseStream& noise() { return noise_; }
  const NoiseStream& noise() const { return noise_; }
  const NetworkShapes& shapes() const { return shapes_; }
  int features_size() const { return shapes_.features; }
  int atoms() const { return atoms_; }
  const std::vector<float>& support() const { return support_; }
  MoeLayer* moe() const { return moe_; }  // nullptr unless a MoE mixer

 private:
  NetworkConfig config_;
  NetworkIo io_;
  NetworkShapes shapes_;
  int members_;
  int atoms_;
  ParamStore params_;
  NoiseStream noise_;
  Sequential trunk_;              // encoder, tokenizer, mixer: obs -> features
  std::unique_ptr<Layer> head_;   // features -> raw output
  MoeLayer* moe_ = nullptr;       // owned by trunk_
  std::vector<float> support_;    // C51 atoms z
  // Per (context, member): the scaled channels-last input, the features, the
  // probabilities and Q of the last pass.
  std::vector<std::vector<float>> input_, probabilities_, q_;
  std::vector<const float*> features_, raw_;
  size_t Slot(const Pass& pass) const { return static_cast<size_t>(pass.context) * members_ + pass.member; }
};

}  // namespace tokenrl::nn::cpu
