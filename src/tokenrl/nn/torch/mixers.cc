#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {

std::shared_ptr<MixerBase> MakeMixer(const NetworkConfig& config, const NetworkShapes& shapes,
                                     const InitContext& ctx, std::shared_ptr<NoiseSource> noise) {
  switch (config.mixer.type) {
    case MixerType::kFlatten:
    case MixerType::kTokenizedSum:
    case MixerType::kTokenizedMean:
    case MixerType::kGap:
      return MakeDenseMixer(config, shapes, ctx);
    case MixerType::kSoftMoe:
    case MixerType::kTokenChoice:
    case MixerType::kExpertChoice:
      return MakeMoeMixer(config, shapes, ctx, std::move(noise));
  }
  return nullptr;
}

}  // namespace tokenrl::nn::torch_backend
