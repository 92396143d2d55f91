#pragma once
// The libtorch backend's building blocks. Every module carries the member
// dimension E: inputs and outputs lead with [E, B, ...], parameters with [E, ...],
// and members never mix (per-member or grouped convolutions, batched matrix products).
//
// Conventions shared by every module of this backend:
//  * Construction takes an InitContext; every parameter is created through
//    InitContext::Make with its registered name, so member e's initial values
//    come from the seed ParameterSeed(root, e, "<full.dotted.name>") via the
//    torch-free initializers of nn/init.h (bit-identical on every backend).
//    Register a submodule under the same name you give ctx.Child(name).
//  * Linear weights are stored [E, in, out] (Flax layout), biases [E, 1, out];
//    conv weights [E, out, in, kh, kw], biases [E, out].
//  * Feature maps are [E, B, C, H, W]; flattening uses channels-last order
//    (index (h W + w) C + c) as the reference code does.
//  * Noisy layers draw factorized Gaussian noise from a NoiseSource shared by
//    the whole network: one draw per layer per forward call per member
//    (shared across the batch), and none when the source is disabled.

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/nn/init.h"
#include "tokenrl/nn/network_config.h"

namespace tokenrl::nn::torch_backend {

class InitContext {
 public:
  InitContext(uint64_t root_seed, int members, std::string prefix = "")
      : root_seed_(root_seed), members_(members), prefix_(std::move(prefix)) {}
  InitContext Child(std::string_view name) const;
  int members() const { return members_; }
  uint64_t root_seed() const { return root_seed_; }
  const std::string& prefix() const { return prefix_; }
  // A float32 CPU tensor [E, shape...]; member e filled from
  // ParameterSeed(root_seed, e, prefix + "." + name).
  torch::Tensor Make(std::string_view name, const std::vector<int64_t>& shape, const InitSpec& spec) const;

 private:
  uint64_t root_seed_;
  int members_;
  std::string prefix_;
};

// Seeded source of noise for noisy layers; owned by a network.
class NoiseSource {
 public:
  explicit NoiseSource(uint64_t seed) : rng_(seed) {}
  bool enabled() const { return enabled_; }
  void set_enabled(bool enabled) { enabled_ = enabled; }
  // Standard normal values, float32 CPU tensor of `shape` (portable recipe).
  torch::Tensor Normal(const std::vector<int64_t>& shape);
  // The generator state, for checkpoints.
  std::string State() const;
  bool SetState(const std::string& state);

 private:
  std::mt19937_64 rng_;
  bool enabled_ = false;
};

// x [E, N, in] -> [E, N, out].
struct MemberLinearImpl : torch::nn::Module {
  // weight_init defaults to xavier_uniform with fans (in, out); bias zeros.
  MemberLinearImpl(const InitContext& ctx, int64_t in, int64_t out, bool bias = true);
  MemberLinearImpl(const InitContext& ctx, int64_t in, int64_t out, bool bias, const InitSpec& weight_init);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;  // [E, in, out]
  torch::Tensor bias;    // [E, 1, out] (undefined without bias)
};
TORCH_MODULE(MemberLinear);

// Factorized-Gaussian noisy linear layer (Fortunato et al.; Dopamine's
// NoisyNetwork): W = mu_w + sigma_w * f(eps_in) f(eps_out)^T,
// b = mu_b + sigma_b * f(eps_out), f(x) = sign(x) sqrt|x|; mu ~ U(+-1/sqrt(in)),
// sigma = sigma_scale / sqrt(in). x [E, N, in] -> [E, N, out].
struct NoisyMemberLinearImpl : torch::nn::Module {
  NoisyMemberLinearImpl(const InitContext& ctx, int64_t in, int64_t out, double sigma_scale,
                        std::shared_ptr<NoiseSource> noise);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor mu_weight, sigma_weight;  // [E, in, out]
  torch::Tensor mu_bias, sigma_bias;      // [E, 1, out]
  std::shared_ptr<NoiseSource> noise;
};
TORCH_MODULE(NoisyMemberLinear);

// Conv2d with SAME padding (TensorFlow/Flax rule: out = ceil(n / s), extra
// padding row/column at the end) on [E, B, C, H, W]: one grouped
// convolution with groups = E on a GPU, one convolution per member on the
// CPU (member_layers.cc says why). Weight init: xavier_uniform with
// fan_in = k*k*in, fan_out = k*k*out unless given.
struct MemberConv2dImpl : torch::nn::Module {
  MemberConv2dImpl(const InitContext& ctx, int64_t in, int64_t out, int64_t kernel, int64_t stride);
  MemberConv2dImpl(const InitContext& ctx, int64_t in, int64_t out, int64_t kernel, int64_t stride,
                   const InitSpec& weight_init);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t kernel, stride;
  torch::Tensor weight;  // [E, out, in, k, k]
  torch::Tensor bias;    // [E, out]
};
TORCH_MODULE(MemberConv2d);

// SAME padding amounts (lo, hi) for one spatial dimension.
std::pair<int64_t, int64_t> SamePadding(int64_t size, int64_t kernel, int64_t stride);

// Max-pool with SAME padding (padded with -inf) on [E, B, C, H, W].
torch::Tensor MaxPoolSame(const torch::Tensor& x, int64_t kernel, int64_t stride);

// Flattens [E, B, C, H, W] in channels-last order to [E, B, H*W*C].
torch::Tensor FlattenChannelsLast(const torch::Tensor& x);

// ---------------------------------------------------------------------------
// Network stages. A QNetwork is Encoder -> (Tokenizer) -> Mixer -> Head.

// [E, B, C, H, W] float (already scaled) -> feature map [E, B, C', H', W'].
struct EncoderBase : torch::nn::Module {
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
};

// Feature map [E, B, C', H', W'] -> tokens [E, B, T, D].
struct TokenizerBase : torch::nn::Module {
  virtual torch::Tensor forward(const torch::Tensor& feature_map) = 0;
};

struct MixerOutput {
  torch::Tensor features;       // [E, B, F]
  torch::Tensor aux_loss;       // [E] auxiliary loss per member, or undefined
  torch::Tensor hidden;         // [E, B, H] penultimate ReLU activations (dense mixers)
  torch::Tensor expert_hidden;  // [E, B, n, p, H] expert hidden ReLU activations (MoE)
  torch::Tensor dispatch;       // MoE [E, B, T, n, p] (SoftMoE: softmax over T; sparse: 0/1)
  torch::Tensor combine;        // MoE [E, B, T, n, p] (SoftMoE: softmax over n*p; sparse: gated dispatch)
  torch::Tensor router_probs;   // token/expert choice [E, B, T, n]
};

// Tokens [E, B, T, D] (takes_tokens) or the feature map [E, B, C', H', W']
// (flatten, gap) -> MixerOutput.
struct MixerBase : torch::nn::Module {
  virtual bool takes_tokens() const = 0;
  virtual MixerOutput forward(const torch::Tensor& input) = 0;
};

struct HeadOutput {
  torch::Tensor q;              // [E, B, A]
  torch::Tensor logits;         // [E, B, A, atoms] (distributional), else undefined
  torch::Tensor probabilities;  // softmax of logits over atoms, else undefined
};

// Features [E, B, F] -> HeadOutput.
struct HeadBase : torch::nn::Module {
  virtual HeadOutput forward(const torch::Tensor& features) = 0;
};

// Factories (one per stage; each validates nothing that ComputeShapes already
// checked). `shapes` comes from ComputeShapes(config, io).
std::shared_ptr<EncoderBase> MakeEncoder(const EncoderConfig& config, const NetworkIo& io, const InitContext& ctx);
std::shared_ptr<TokenizerBase> MakeTokenizer(const TokenizerConfig& config, const NetworkShapes& shapes,
                                             const InitContext& ctx);
// MakeMixer dispatches to MakeDenseMixer (flatten, tokenized_sum/mean, gap;
// dense_mixers.cc) or MakeMoeMixer (softmoe, token_choice, expert_choice;
// moe.cc). The noise source feeds noisy expert layers when head.noisy is set.
std::shared_ptr<MixerBase> MakeMixer(const NetworkConfig& config, const NetworkShapes& shapes,
                                     const InitContext& ctx, std::shared_ptr<NoiseSource> noise);
std::shared_ptr<MixerBase> MakeDenseMixer(const NetworkConfig& config, const NetworkShapes& shapes,
                                          const InitContext& ctx);
std::shared_ptr<MixerBase> MakeMoeMixer(const NetworkConfig& config, const NetworkShapes& shapes,
                                        const InitContext& ctx, std::shared_ptr<NoiseSource> noise);
std::shared_ptr<HeadBase> MakeHead(const HeadConfig& config, int64_t features, int64_t num_actions,
                                   const InitContext& ctx, std::shared_ptr<NoiseSource> noise);

}  // namespace tokenrl::nn::torch_backend
