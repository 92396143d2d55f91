// Dense penultimate stages (softmoe_reference.md sections 2.1, 3.2 and 12):
//  * flatten: channels-last flatten -> Dense(hidden) -> ReLU [-> Dense(hidden) -> ReLU];
//  * tokenized sum / mean: the penultimate Dense(token_dim -> hidden)+ReLU on
//    every token with shared weights, then the sum / mean over tokens;
//  * gap: mean over H'W' -> Dense(C' -> hidden) -> ReLU.
// Dense layers use xavier_uniform kernels and zero biases (MemberLinear's
// default, as Dopamine's networks initialize their Dense layers).
//
// MixerOutput.hidden is the vector handed to the head, [E, B, hidden]. For the
// tokenized mixers that is the sum / mean of the per-token ReLU outputs: since
// ReLU outputs are non-negative, a unit is zero there exactly when it is zero
// on every token, so dormant-neuron statistics keep their meaning.
//
// Parameter names: "dense" (and "extra_dense" for flatten's optional layer).

#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {
namespace {

// [E, B, in] -> ReLU(Dense) [E, B, out].
torch::Tensor DenseRelu(MemberLinear& layer, const torch::Tensor& x) { return torch::relu(layer->forward(x)); }

struct FlattenMixerImpl : MixerBase {
  FlattenMixerImpl(const InitContext& ctx, int64_t in, int64_t hidden, bool extra) {
    dense = register_module("dense", MemberLinear(ctx.Child("dense"), in, hidden));
    if (extra) extra_dense = register_module("extra_dense", MemberLinear(ctx.Child("extra_dense"), hidden, hidden));
  }
  bool takes_tokens() const override { return false; }
  MixerOutput forward(const torch::Tensor& feature_map) override {
    torch::Tensor h = DenseRelu(dense, FlattenChannelsLast(feature_map));
    if (!extra_dense.is_empty()) h = DenseRelu(extra_dense, h);
    MixerOutput out;
    out.features = h;
    out.hidden = h;
    return out;
  }
  MemberLinear dense{nullptr}, extra_dense{nullptr};
};

struct TokenizedMixerImpl : MixerBase {
  TokenizedMixerImpl(const InitContext& ctx, int64_t token_dim, int64_t hidden, bool mean)
      : dense(register_module("dense", MemberLinear(ctx.Child("dense"), token_dim, hidden))), mean(mean) {}
  bool takes_tokens() const override { return true; }
  MixerOutput forward(const torch::Tensor& tokens) override {
    const int64_t members = tokens.size(0), batch = tokens.size(1), count = tokens.size(2);
    // Shared weights over tokens: fold the tokens into the batch.
    const torch::Tensor per_token =
        DenseRelu(dense, tokens.reshape({members, batch * count, tokens.size(3)})).reshape({members, batch, count, -1});
    MixerOutput out;
    out.features = mean ? per_token.mean(2) : per_token.sum(2);
    out.hidden = out.features;
    return out;
  }
  MemberLinear dense;
  bool mean;
};

struct GapMixerImpl : MixerBase {
  GapMixerImpl(const InitContext& ctx, int64_t channels, int64_t hidden)
      : dense(register_module("dense", MemberLinear(ctx.Child("dense"), channels, hidden))) {}
  bool takes_tokens() const override { return false; }
  MixerOutput forward(const torch::Tensor& feature_map) override {
    MixerOutput out;
    out.features = DenseRelu(dense, feature_map.mean({3, 4}));
    out.hidden = out.features;
    return out;
  }
  MemberLinear dense;
};

}  // namespace

std::shared_ptr<MixerBase> MakeDenseMixer(const NetworkConfig& config, const NetworkShapes& shapes,
                                          const InitContext& ctx) {
  const MixerConfig& m = config.mixer;
  switch (m.type) {
    case MixerType::kFlatten:
      return std::make_shared<FlattenMixerImpl>(
          ctx, int64_t{shapes.feature_channels} * shapes.feature_height * shapes.feature_width, m.hidden_units,
          m.extra_dense_layer);
    case MixerType::kTokenizedSum:
    case MixerType::kTokenizedMean:
      return std::make_shared<TokenizedMixerImpl>(ctx, shapes.token_dim, m.hidden_units,
                                                  m.type == MixerType::kTokenizedMean);
    case MixerType::kGap:
      return std::make_shared<GapMixerImpl>(ctx, shapes.feature_channels, m.hidden_units);
    default:
      return nullptr;  // MoE mixers: MakeMoeMixer.
  }
}

}  // namespace tokenrl::nn::torch_backend
