#include "tokenrl/nn/network_config.h"

#include <algorithm>
#include <cmath>

namespace tokenrl::nn {
namespace {

int CeilDiv(int a, int b) { return (a + b - 1) / b; }

}  // namespace

StatusOr<NetworkShapes> ComputeShapes(const NetworkConfig& config, const NetworkIo& io) {
  if (io.channels <= 0 || io.height <= 0 || io.width <= 0 || io.num_actions <= 0) {
    return Status::InvalidArgument(fmt::format("network input [{}, {}, {}] with {} actions is empty", io.channels,
                                               io.height, io.width, io.num_actions));
  }
  NetworkShapes s;
  const int k = static_cast<int>(config.encoder.width_multiplier);
  switch (config.encoder.type) {
    case EncoderType::kMinatar:  // 3x3 stride 1 SAME keeps the grid.
      s.feature_channels = static_cast<int>(config.encoder.minatar_channels) * k;
      s.feature_height = io.height;
      s.feature_width = io.width;
      break;
    case EncoderType::kNature:  // SAME strides 4, 2, 1: ceil divisions.
      s.feature_channels = 64 * k;
      s.feature_height = CeilDiv(CeilDiv(io.height, 4), 2);
      s.feature_width = CeilDiv(CeilDiv(io.width, 4), 2);
      break;
    case EncoderType::kImpala:  // Three SAME max-pools with stride 2.
      s.feature_channels = 32 * k;
      s.feature_height = CeilDiv(CeilDiv(CeilDiv(io.height, 2), 2), 2);
      s.feature_width = CeilDiv(CeilDiv(CeilDiv(io.width, 2), 2), 2);
      break;
  }
  const int hw = s.feature_height * s.feature_width;
  switch (config.tokenizer.type) {
    case TokenizerType::kPerConv:
    case TokenizerType::kShuffled:
      s.num_tokens = hw;
      s.token_dim = s.feature_channels;
      break;
    case TokenizerType::kPerFeat:
      s.num_tokens = s.feature_channels;
      s.token_dim = hw;
      break;
    case TokenizerType::kPerPatch: {
      const int p = static_cast<int>(config.tokenizer.patch_size);
      s.num_tokens = (s.feature_height / p) * (s.feature_width / p);
      s.token_dim = s.feature_channels;
      if (s.num_tokens == 0) {
        return Status::InvalidArgument(fmt::format("tokenizer.patch_size {} is larger than the {}x{} feature map", p,
                                                   s.feature_height, s.feature_width));
      }
      break;
    }
    case TokenizerType::kPerSamp:
      s.num_tokens = 1;
      s.token_dim = hw * s.feature_channels;
      break;
  }
  const MixerConfig& m = config.mixer;
  const int experts = static_cast<int>(m.num_experts);
  switch (m.type) {
    case MixerType::kFlatten:
    case MixerType::kTokenizedSum:
    case MixerType::kTokenizedMean:
    case MixerType::kGap:
      s.features = static_cast<int>(m.hidden_units);
      break;
    case MixerType::kSoftMoe:
    case MixerType::kExpertChoice:
    case MixerType::kTokenChoice:
      if (m.type == MixerType::kTokenChoice) {
        s.slots_per_expert = m.capacity > 0 ? static_cast<int>(m.capacity) : CeilDiv(s.num_tokens, experts);
      } else if (m.slot_fraction > 0.0) {
        const int total = std::max(1, static_cast<int>(std::ceil(m.slot_fraction * s.num_tokens - 1e-9)));
        s.slots_per_expert = CeilDiv(total, experts);
      } else if (m.total_slots > 0) {
        s.slots_per_expert = CeilDiv(static_cast<int>(m.total_slots), experts);
      } else if (m.slots_per_expert == -1) {
        s.slots_per_expert = s.num_tokens;
      } else if (m.slots_per_expert > 0) {
        s.slots_per_expert = static_cast<int>(m.slots_per_expert);
      } else {
        s.slots_per_expert = CeilDiv(s.num_tokens, experts);
      }
      if (m.type == MixerType::kExpertChoice && s.slots_per_expert > s.num_tokens) {
        return Status::InvalidArgument(fmt::format(
            "expert_choice: {} tokens per expert requested but there are only {} tokens", s.slots_per_expert,
            s.num_tokens));
      }
      s.features = m.post_moe_dense ? static_cast<int>(m.post_moe_dense_units) : s.num_tokens * s.token_dim;
      break;
  }
  return s;
}

}  // namespace tokenrl::nn
