#pragma once
// NetworkConfig: the complete, typed description of a Q-network
//   pixels -> Encoder -> Tokenizer -> Mixer (penultimate stage) -> Head -> Q
// (../shared/docs/softmoe_reference.md sections 1-5, 12). Every variant of the
// paper's figures is a value of this struct; both learner backends build their
// networks from it and nothing else. Torch-free.
//
// Shapes (per sample; the member dimension E and batch B lead everything):
//  * encoder output: feature map [C', H', W'] (channels first);
//  * tokenizer output: tokens [T, D] (PerConv: T = H'W', D = C'; PerFeat:
//    T = C', D = H'W'; PerPatch: T = floor(H'/rho) floor(W'/rho), D = C';
//    Shuffled: as PerConv after a fixed permutation; PerSamp: T = 1, D = C'H'W');
//  * mixer output: a feature vector [F];
//  * head output: Q [A] (and logits [A, atoms] when distributional).
//
// Flatten order is channels-last (Flax's NHWC, index (h W + w) C + c), so that
// weights are laid out as in the reference code.

#include <cstdint>
#include <string>

#include "tokenrl/config/config.h"

namespace tokenrl::nn {

enum class EncoderType { kMinatar, kNature, kImpala };
enum class TokenizerType { kPerConv, kPerFeat, kPerPatch, kShuffled, kPerSamp };
enum class MixerType {
  kFlatten,        // baseline: flatten -> Dense(hidden) -> ReLU [-> Dense(hidden) -> ReLU]
  kTokenizedSum,   // Dense(hidden)+ReLU per token (shared weights), summed over tokens
  kTokenizedMean,  // ... averaged over tokens
  kGap,            // global average pooling over H'W' -> Dense(hidden) -> ReLU
  kSoftMoe,        // SoftMoE over tokens, tokens flattened
  kTokenChoice,    // top-1 token-choice MoE (router picks an expert per token)
  kExpertChoice,   // expert-choice MoE (each expert picks its top tokens)
};

}  // namespace tokenrl::nn

template <>
struct tokenrl::config::EnumNames<tokenrl::nn::EncoderType> {
  static constexpr std::array<std::pair<tokenrl::nn::EncoderType, std::string_view>, 3> kValues{
      {{tokenrl::nn::EncoderType::kMinatar, "minatar"},
       {tokenrl::nn::EncoderType::kNature, "nature"},
       {tokenrl::nn::EncoderType::kImpala, "impala"}}};
};
template <>
struct tokenrl::config::EnumNames<tokenrl::nn::TokenizerType> {
  static constexpr std::array<std::pair<tokenrl::nn::TokenizerType, std::string_view>, 5> kValues{
      {{tokenrl::nn::TokenizerType::kPerConv, "per_conv"},
       {tokenrl::nn::TokenizerType::kPerFeat, "per_feat"},
       {tokenrl::nn::TokenizerType::kPerPatch, "per_patch"},
       {tokenrl::nn::TokenizerType::kShuffled, "shuffled"},
       {tokenrl::nn::TokenizerType::kPerSamp, "per_samp"}}};
};
template <>
struct tokenrl::config::EnumNames<tokenrl::nn::MixerType> {
  static constexpr std::array<std::pair<tokenrl::nn::MixerType, std::string_view>, 7> kValues{
      {{tokenrl::nn::MixerType::kFlatten, "flatten"},
       {tokenrl::nn::MixerType::kTokenizedSum, "tokenized_sum"},
       {tokenrl::nn::MixerType::kTokenizedMean, "tokenized_mean"},
       {tokenrl::nn::MixerType::kGap, "gap"},
       {tokenrl::nn::MixerType::kSoftMoe, "softmoe"},
       {tokenrl::nn::MixerType::kTokenChoice, "token_choice"},
       {tokenrl::nn::MixerType::kExpertChoice, "expert_choice"}}};
};

namespace tokenrl::nn {

struct EncoderConfig {
  EncoderType type = EncoderType::kMinatar;
  // Channel width multiplier (Dopamine's nn_scale).
  int64_t width_multiplier = 1;
  // MinAtar encoder: output channels of its one 3x3 conv, before the multiplier.
  int64_t minatar_channels = 16;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("type", type,
            "minatar: 3x3 conv, 16 ch, stride 1, SAME; nature: Dopamine's Nature CNN with SAME padding; "
            "impala: 3 stacks (16, 32, 32) with max-pool and 2 residual blocks each");
    v.Field("width_multiplier", width_multiplier, "Channel width multiplier of every conv",
            config::InRange<int64_t>(1, 64));
    v.Field("minatar_channels", minatar_channels, "Channels of the MinAtar encoder's conv (x width_multiplier)",
            config::InRange<int64_t>(1, 4096));
  }
};

struct TokenizerConfig {
  TokenizerType type = TokenizerType::kPerConv;
  // PerPatch: average-pool patches of patch_size x patch_size (stride = size, VALID).
  int64_t patch_size = 2;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("type", type,
            "How the encoder output becomes tokens (used by tokenized and MoE mixers; ignored by flatten and gap)");
    v.Field("patch_size", patch_size, "per_patch: patch edge rho (average-pooled, VALID)",
            config::InRange<int64_t>(1, 1024));
  }
};

struct MixerConfig {
  MixerType type = MixerType::kFlatten;
  // Width of the penultimate Dense of flatten / tokenized / gap (512 in the
  // paper on Atari; "scaled xk" = 512 k; MinAtar DQN uses 128).
  int64_t hidden_units = 512;
  // flatten: one more Dense(hidden_units)+ReLU (paper Fig. 4 iii).
  bool extra_dense_layer = false;
  // MoE mixers.
  int64_t num_experts = 4;
  int64_t expert_hidden_units = 512;  // H of each expert's d -> H -> d MLP.
  // SoftMoE / expert choice: slots (tokens) per expert; 0 = ceil(T / experts),
  // -1 = T ("slots = number of tokens", Fig. 4 ii; "unlimited capacity").
  int64_t slots_per_expert = 0;
  // SoftMoE / expert choice: total slots over all experts, overriding
  // slots_per_expert when > 0 (Fig. 8: a single slot).
  int64_t total_slots = 0;
  // SoftMoE / expert choice: total slots as a fraction of the tokens,
  // ceil(fraction * T), overriding both when > 0 (Fig. 8: 10% of the default).
  double slot_fraction = 0.0;
  // SoftMoE: L2-normalize tokens and phi with a learned scale (off in Dopamine).
  bool normalize = false;
  // Token choice: tokens per expert (capacity); 0 = ceil(T / experts).
  int64_t capacity = 0;
  // After a MoE, Dense(post_moe_dense_units)+ReLU on the flattened tokens.
  bool post_moe_dense = false;
  int64_t post_moe_dense_units = 512;
  // Token choice: weight of the importance (CV^2) load-balancing loss; 0 = off.
  double load_balancing_loss_weight = 0.0;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("type", type, "Penultimate stage");
    v.Field("hidden_units", hidden_units, "flatten/tokenized/gap: penultimate Dense width (paper: 512 x scale)",
            config::InRange<int64_t>(1, 1 << 20));
    v.Field("extra_dense_layer", extra_dense_layer, "flatten: add a second Dense(hidden_units)+ReLU (Fig. 4 iii)");
    v.Field("num_experts", num_experts, "MoE: number of experts", config::InRange<int64_t>(1, 1024));
    v.Field("expert_hidden_units", expert_hidden_units, "MoE: hidden width H of each expert (d -> H -> d)",
            config::InRange<int64_t>(1, 1 << 20));
    v.Field("slots_per_expert", slots_per_expert,
            "softmoe/expert_choice: slots per expert; 0 = ceil(tokens / experts), -1 = tokens",
            config::AtLeast<int64_t>(-1));
    v.Field("total_slots", total_slots, "softmoe/expert_choice: total slots (overrides slots_per_expert when > 0)",
            config::AtLeast<int64_t>(0));
    v.Field("slot_fraction", slot_fraction,
            "softmoe/expert_choice: total slots = ceil(fraction x tokens) (overrides the two above when > 0)",
            config::InRange(0.0, 1.0));
    v.Field("normalize", normalize, "softmoe: L2-normalize tokens and phi, with a learned scale");
    v.Field("capacity", capacity, "token_choice: tokens per expert; 0 = ceil(tokens / experts)",
            config::AtLeast<int64_t>(0));
    v.Field("post_moe_dense", post_moe_dense, "MoE: Dense(post_moe_dense_units)+ReLU after flattening the tokens");
    v.Field("post_moe_dense_units", post_moe_dense_units, "Width of the post-MoE Dense",
            config::InRange<int64_t>(1, 1 << 20));
    v.Field("load_balancing_loss_weight", load_balancing_loss_weight,
            "token_choice: weight of the importance load-balancing loss (0 = off, as Dopamine)",
            config::AtLeast(0.0));
  }
};

struct HeadConfig {
  // C51 distributional head (Rainbow); otherwise one Q-value per action.
  bool distributional = false;
  int64_t num_atoms = 51;
  double v_min = -10.0;
  double v_max = 10.0;
  bool dueling = false;
  // Noisy linear layers (factorized Gaussian, sigma = noisy_sigma_scale / sqrt(fan_in)).
  bool noisy = false;
  double noisy_sigma_scale = 0.1;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("distributional", distributional, "C51 head: a distribution over num_atoms returns per action");
    v.Field("num_atoms", num_atoms, "C51 atoms", config::InRange<int64_t>(2, 1024));
    v.Field("v_min", v_min, "C51 support minimum");
    v.Field("v_max", v_max, "C51 support maximum");
    v.Field("dueling", dueling, "Dueling head: value + mean-centred advantage");
    v.Field("noisy", noisy, "Noisy linear layers in the head (noise off in evaluation)");
    v.Field("noisy_sigma_scale", noisy_sigma_scale, "Initial sigma = scale / sqrt(fan_in) (Dopamine: 0.1)",
            config::AtLeast(0.0));
  }
  Status Validate() const {
    if (distributional && !(v_min < v_max)) {
      return Status::InvalidArgument(fmt::format("v_min ({}) must be below v_max ({})", v_min, v_max));
    }
    return Status::Ok();
  }
};

struct NetworkConfig {
  EncoderConfig encoder;
  TokenizerConfig tokenizer;
  MixerConfig mixer;
  HeadConfig head;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("encoder", encoder, "Convolutional encoder");
    v.Field("tokenizer", tokenizer, "Tokenization of the encoder output");
    v.Field("mixer", mixer, "Penultimate stage: flatten baseline, tokenized baseline, GAP or a MoE");
    v.Field("head", head, "Output head");
  }
};

// Observation shape and action count a network is built for.
struct NetworkIo {
  int channels = 0, height = 0, width = 0;  // Input [C, H, W].
  int num_actions = 0;
  // uint8 observations are multiplied by this before the encoder: 1 for
  // MinAtar's 0/1 grids, 1/255 for Atari frames (Dopamine).
  float input_scale = 1.0f;
};

// Shapes through the network, computed from the config alone (both backends
// and the tests use this; errors for impossible combinations, e.g. a patch
// larger than the feature map).
struct NetworkShapes {
  int feature_channels = 0, feature_height = 0, feature_width = 0;  // Encoder output.
  int num_tokens = 0, token_dim = 0;                                // Tokenizer output.
  int slots_per_expert = 0;                                         // MoE mixers.
  int features = 0;                                                 // Mixer output F.
};
StatusOr<NetworkShapes> ComputeShapes(const NetworkConfig& config, const NetworkIo& io);

}  // namespace tokenrl::nn
