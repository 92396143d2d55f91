// Convolutional encoders (softmoe_reference.md sections 1.2-1.4): pixels
// [E, B, C, H, W] (already scaled) -> feature map [E, B, C', H', W'], every
// conv with SAME padding, so the output sizes are those of ComputeShapes:
//  * MinAtar: 3x3 stride 1 keeps the grid (10x10 -> 10x10);
//  * Nature: 84 -> 21 -> 11 -> 11 (Dopamine's 11x11x64); on 10x10: 10 -> 3 -> 2 -> 2;
//  * Impala: three max-pools 3x3 stride 2: 84 -> 42 -> 21 -> 11; on 10x10:
//    10 -> 5 -> 3 -> 2 (the -inf padding never wins a pool window, since
//    every SAME window holds at least one real cell).
//
// Parameter names: minatar "conv"; nature "conv0".."conv2"; impala
// "stack<i>.conv" and "stack<i>.block<j>.conv0/conv1".

#include <array>

#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {
namespace {

// Flax default (lecun_normal) for a k x k conv with `in` input channels.
InitSpec LecunConv(int64_t kernel, int64_t in) {
  return {.scheme = InitScheme::kLecunNormal, .fan_in = static_cast<double>(kernel * kernel * in)};
}

struct MinatarEncoderImpl : EncoderBase {
  MinatarEncoderImpl(const InitContext& ctx, int64_t in, int64_t channels)
      : conv(register_module("conv", MemberConv2d(ctx.Child("conv"), in, channels, 3, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) override { return torch::relu(conv->forward(x)); }
  MemberConv2d conv;
};

// Dopamine's NatureDQNNetwork torso (xavier_uniform kernels, zero biases).
struct NatureEncoderImpl : EncoderBase {
  NatureEncoderImpl(const InitContext& ctx, int64_t in, int64_t k)
      : conv0(register_module("conv0", MemberConv2d(ctx.Child("conv0"), in, 32 * k, 8, 4))),
        conv1(register_module("conv1", MemberConv2d(ctx.Child("conv1"), 32 * k, 64 * k, 4, 2))),
        conv2(register_module("conv2", MemberConv2d(ctx.Child("conv2"), 64 * k, 64 * k, 3, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor y = torch::relu(conv0->forward(x));
    y = torch::relu(conv1->forward(y));
    return torch::relu(conv2->forward(y));
  }
  MemberConv2d conv0, conv1, conv2;
};

// y = x + conv1(relu(conv0(relu(x)))), both convs 3x3 lecun_normal.
struct ResidualBlockImpl : torch::nn::Module {
  ResidualBlockImpl(const InitContext& ctx, int64_t channels)
      : conv0(register_module("conv0",
                              MemberConv2d(ctx.Child("conv0"), channels, channels, 3, 1, LecunConv(3, channels)))),
        conv1(register_module("conv1",
                              MemberConv2d(ctx.Child("conv1"), channels, channels, 3, 1, LecunConv(3, channels)))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return x + conv1->forward(torch::relu(conv0->forward(torch::relu(x))));
  }
  MemberConv2d conv0, conv1;
};
TORCH_MODULE(ResidualBlock);

// Dopamine's Stack: conv (xavier, no activation) -> max-pool 3x3/2 SAME -> 2 blocks.
struct ImpalaStackImpl : torch::nn::Module {
  ImpalaStackImpl(const InitContext& ctx, int64_t in, int64_t channels)
      : conv(register_module("conv", MemberConv2d(ctx.Child("conv"), in, channels, 3, 1))),
        block0(register_module("block0", ResidualBlock(ctx.Child("block0"), channels))),
        block1(register_module("block1", ResidualBlock(ctx.Child("block1"), channels))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return block1->forward(block0->forward(MaxPoolSame(conv->forward(x), 3, 2)));
  }
  MemberConv2d conv;
  ResidualBlock block0, block1;
};
TORCH_MODULE(ImpalaStack);

struct ImpalaEncoderImpl : EncoderBase {
  ImpalaEncoderImpl(const InitContext& ctx, int64_t in, int64_t k) {
    constexpr std::array<int64_t, 3> kChannels{16, 32, 32};
    for (size_t i = 0; i < kChannels.size(); ++i) {
      const std::string name = "stack" + std::to_string(i);
      stacks.push_back(register_module(name, ImpalaStack(ctx.Child(name), in, kChannels[i] * k)));
      in = kChannels[i] * k;
    }
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    torch::Tensor y = x;
    for (ImpalaStack& stack : stacks) y = stack->forward(y);
    return torch::relu(y);
  }
  std::vector<ImpalaStack> stacks;
};

}  // namespace

std::shared_ptr<EncoderBase> MakeEncoder(const EncoderConfig& config, const NetworkIo& io, const InitContext& ctx) {
  const int64_t k = config.width_multiplier;
  switch (config.type) {
    case EncoderType::kMinatar:
      return std::make_shared<MinatarEncoderImpl>(ctx, io.channels, config.minatar_channels * k);
    case EncoderType::kNature:
      return std::make_shared<NatureEncoderImpl>(ctx, io.channels, k);
    case EncoderType::kImpala:
      return std::make_shared<ImpalaEncoderImpl>(ctx, io.channels, k);
  }
  return nullptr;
}

}  // namespace tokenrl::nn::torch_backend
