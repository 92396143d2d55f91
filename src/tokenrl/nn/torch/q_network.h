#pragma once
// QNetwork: the whole Q-network of E members, built from a NetworkConfig:
//   obs [E, B, C, H, W] -> Encoder -> (Tokenizer) -> Mixer -> Head.
// Submodules are registered (and their parameters named) as "encoder",
// "tokenizer" (only when the mixer consumes tokens), "mixer" and "head", so
// parameter names read e.g. "encoder.conv.weight", "head.output.weight".
// One forward pass yields every quantity the learner, the agents' action
// selection and the diagnostics need (NetworkOutput); nothing is recomputed.

#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "tokenrl/nn/network_config.h"
#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {

struct NetworkOutput {
  torch::Tensor q;              // [E, B, A]
  torch::Tensor logits;         // [E, B, A, atoms] (distributional heads), else undefined
  torch::Tensor probabilities;  // softmax of logits over atoms (distributional), else undefined
  torch::Tensor features;       // [E, B, F] mixer output (the head's input)
  torch::Tensor aux_loss;       // [E] auxiliary loss of the mixer, or undefined
  // Mixer diagnostics (see MixerOutput); undefined where the mixer has none.
  torch::Tensor hidden;         // [E, B, H]
  torch::Tensor expert_hidden;  // [E, B, n, p, H]
  torch::Tensor dispatch;       // [E, B, T, n, p]
  torch::Tensor combine;        // [E, B, T, n, p]
  torch::Tensor router_probs;   // [E, B, T, n]
};

class QNetworkImpl : public torch::nn::Module {
 public:
  // REQUIRES: ComputeShapes(config, io) succeeds. Member e's initial weights
  // come from ParameterSeed(seed, e, name); noise from `noise_seed`.
  QNetworkImpl(const NetworkConfig& config, const NetworkIo& io, uint64_t seed, int members, uint64_t noise_seed);

  // obs: uint8 or floating [E, B, C, H, W] on the network's device; converted
  // to the parameters' dtype and multiplied by io.input_scale (also for
  // floating inputs: they carry raw observation values).
  NetworkOutput forward(const torch::Tensor& obs);

  // Noisy layers draw fresh noise per forward call when enabled, and use
  // their mean weights otherwise.
  NoiseSource& noise() { return *noise_; }
  const NoiseSource& noise() const { return *noise_; }

  const NetworkConfig& config() const { return config_; }
  const NetworkIo& io() const { return io_; }
  const NetworkShapes& shapes() const { return shapes_; }
  int members() const { return members_; }

 private:
  NetworkConfig config_;
  NetworkIo io_;
  NetworkShapes shapes_;
  int members_;
  std::shared_ptr<NoiseSource> noise_;
  std::shared_ptr<EncoderBase> encoder_;
  std::shared_ptr<TokenizerBase> tokenizer_;  // nullptr for flatten / gap
  std::shared_ptr<MixerBase> mixer_;
  std::shared_ptr<HeadBase> head_;
  torch::Tensor dtype_probe_;  // Any parameter: its dtype is the network's.
};
TORCH_MODULE(QNetwork);

}  // namespace tokenrl::nn::torch_backend
