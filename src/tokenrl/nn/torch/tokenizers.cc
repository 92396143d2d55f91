// Tokenizers (softmoe_reference.md sections 3 and 12): feature map
// [E, B, C, H, W] -> tokens [E, B, T, D]. None has parameters; Shuffled holds
// its permutation as a buffer.

#include <algorithm>
#include <numeric>

#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {
namespace {

// [E, B, C, H, W] -> [E, B, H*W, C]: token t = h W + w is the channel vector at (h, w).
torch::Tensor PerConvTokens(const torch::Tensor& x) {
  return x.permute({0, 1, 3, 4, 2}).reshape({x.size(0), x.size(1), x.size(3) * x.size(4), x.size(2)});
}

struct PerConvImpl : TokenizerBase {
  torch::Tensor forward(const torch::Tensor& x) override { return PerConvTokens(x); }
};

// [E, B, C, H*W]: token c is feature map c, row-major.
struct PerFeatImpl : TokenizerBase {
  torch::Tensor forward(const torch::Tensor& x) override {
    return x.reshape({x.size(0), x.size(1), x.size(2), x.size(3) * x.size(4)});
  }
};

// Average-pool rho x rho patches (stride rho, VALID: trailing rows and columns
// that do not fill a patch are dropped), then one token per patch.
struct PerPatchImpl : TokenizerBase {
  explicit PerPatchImpl(int64_t patch) : patch(patch) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    const int64_t members = x.size(0), batch = x.size(1);
    torch::Tensor pooled = torch::avg_pool2d(x.reshape({members * batch, x.size(2), x.size(3), x.size(4)}),
                                             {patch, patch}, {patch, patch});
    return PerConvTokens(pooled.reshape({members, batch, pooled.size(1), pooled.size(2), pooled.size(3)}));
  }
  int64_t patch;
};

// PerConv-shaped tokens after a permutation of the channels-last flattened map:
// flat'[i] = flat[permutation[i]]. The permutation is drawn once from the
// context's seed (the same for every member) and kept as the int64 buffer
// "permutation", so it is saved and loaded with the model.
struct ShuffledImpl : TokenizerBase {
  ShuffledImpl(const InitContext& ctx, const NetworkShapes& shapes)
      : tokens(static_cast<int64_t>(shapes.feature_height) * shapes.feature_width), dim(shapes.feature_channels) {
    std::vector<int64_t> perm(static_cast<size_t>(tokens * dim));
    std::iota(perm.begin(), perm.end(), int64_t{0});
    // Fisher-Yates with our portable uniform draw (std::shuffle is library-specific).
    std::mt19937_64 rng(ParameterSeed(ctx.root_seed(), 0, ctx.Child("permutation").prefix()));
    for (size_t i = perm.size() - 1; i > 0; --i) {
      const size_t j = std::min(i, static_cast<size_t>(Uniform01(rng) * static_cast<double>(i + 1)));
      std::swap(perm[i], perm[j]);
    }
    permutation = register_buffer(
        "permutation", torch::from_blob(perm.data(), {static_cast<int64_t>(perm.size())}, torch::kInt64).clone());
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    const torch::Tensor flat = FlattenChannelsLast(x).index_select(2, permutation);
    return flat.reshape({x.size(0), x.size(1), tokens, dim});
  }
  int64_t tokens, dim;
  torch::Tensor permutation;  // [T * D] int64
};

// One token: the channels-last flattened map, [E, B, 1, H*W*C].
struct PerSampImpl : TokenizerBase {
  torch::Tensor forward(const torch::Tensor& x) override { return FlattenChannelsLast(x).unsqueeze(2); }
};

}  // namespace

std::shared_ptr<TokenizerBase> MakeTokenizer(const TokenizerConfig& config, const NetworkShapes& shapes,
                                             const InitContext& ctx) {
  switch (config.type) {
    case TokenizerType::kPerConv:
      return std::make_shared<PerConvImpl>();
    case TokenizerType::kPerFeat:
      return std::make_shared<PerFeatImpl>();
    case TokenizerType::kPerPatch:
      return std::make_shared<PerPatchImpl>(config.patch_size);
    case TokenizerType::kShuffled:
      return std::make_shared<ShuffledImpl>(ctx, shapes);
    case TokenizerType::kPerSamp:
      return std::make_shared<PerSampImpl>();
  }
  return nullptr;
}

}  // namespace tokenrl::nn::torch_backend
