// The CPU engine's encoders (nn/cpu/conv_layers.h) against the libtorch
// backend's (its oracle): same seed -> bit-identical initial parameters; same
// input -> outputs, every parameter gradient and the input gradient of
// loss = sum(out * R) within 1e-5 * max(1, max |torch|) per tensor, for every
// encoder type on MinAtar and Atari sizes and for members E = 2 (CPU member e
// runs alone on its [B, H, W, C] slice of torch's [E, B, C, H, W] input).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tokenrl/nn/cpu/conv_layers.h"
#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn {
namespace {

constexpr uint64_t kSeed = 1234;
constexpr int kMembers = 2;
constexpr int kBatch = 3;

// [B, C, H, W] -> channels-last [B, H, W, C] floats.
std::vector<float> ChannelsLast(const torch::Tensor& t) {
  const torch::Tensor c = t.permute({0, 2, 3, 1}).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// max |a - b| / max(1, max |b|) over a tensor.
double RelError(const float* a, const std::vector<float>& b) {
  double err = 0.0, scale = 1.0;
  for (size_t i = 0; i < b.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return err / scale;
}

struct Case {
  std::string name;
  EncoderType type;
  int64_t width_multiplier;
  int channels, size;
};

void ExpectParity(const Case& c) {
  SCOPED_TRACE(c.name);
  EncoderConfig config;
  config.type = c.type;
  config.width_multiplier = c.width_multiplier;
  const NetworkIo io{.channels = c.channels, .height = c.size, .width = c.size, .num_actions = 4};

  auto torch_enc = torch_backend::MakeEncoder(config, io, torch_backend::InitContext(kSeed, kMembers).Child("encoder"));
  cpu::ParamStore store(kSeed, kMembers);
  auto cpu_enc = cpu::MakeEncoder(config, io, cpu::Scope(&store).Child("encoder"));

  // Same parameters, in the same order; then equal random biases (zero at
  // initialization) so that every bias path matters.
  const auto named = torch_enc->named_parameters();
  ASSERT_EQ(named.size(), store.params().size());
  torch::manual_seed(7);
  for (size_t i = 0; i < named.size(); ++i) {
    cpu::Param& p = *store.params()[i];
    torch::Tensor t = named[i].value();
    ASSERT_EQ("encoder." + named[i].key(), p.name);
    ASSERT_EQ(t.numel(), static_cast<int64_t>(p.value.size())) << p.name;
    ASSERT_TRUE(std::equal(p.value.begin(), p.value.end(), t.data_ptr<float>())) << p.name;
    if (p.shape.size() == 1) {
      torch::NoGradGuard no_grad;
      t.copy_(torch::rand(t.sizes()) * 0.2 - 0.1);
      std::copy(t.data_ptr<float>(), t.data_ptr<float>() + t.numel(), p.value.begin());
    }
  }

  const torch::Tensor x = (torch::rand({kMembers, kBatch, c.channels, c.size, c.size}) * 2 - 1).requires_grad_(true);
  const torch::Tensor y = torch_enc->forward(x);
  const torch::Tensor r = torch::rand(y.sizes()) * 2 - 1;
  (y * r).sum().backward();
  ASSERT_EQ(y.numel() / (kMembers * kBatch), cpu_enc->out_size());

  double worst_out = 0.0, worst_param = 0.0, worst_input = 0.0;
  for (int e = 0; e < kMembers; ++e) {
    const cpu::Pass pass{.member = e, .batch = kBatch};
    const std::vector<float> xe = ChannelsLast(x.detach()[e]);
    const float* ye = cpu_enc->Forward(pass, xe.data());
    const double out_err = RelError(ye, ChannelsLast(y.detach()[e]));
    EXPECT_LE(out_err, 1e-5) << "output, member " << e;
    worst_out = std::max(worst_out, out_err);

    std::vector<float> d = ChannelsLast(r[e]);
    const float* dx = cpu_enc->Backward(pass, xe.data(), d.data(), /*need_d_in=*/true);
    ASSERT_NE(dx, nullptr);
    const double in_err = RelError(dx, ChannelsLast(x.grad()[e]));
    EXPECT_LE(in_err, 1e-5) << "input gradient, member " << e;
    worst_input = std::max(worst_input, in_err);

    for (size_t i = 0; i < named.size(); ++i) {
      cpu::Param& p = *store.params()[i];
      const torch::Tensor g = named[i].value().grad()[e].contiguous();
      const double err = RelError(p.g(e), std::vector<float>(g.data_ptr<float>(), g.data_ptr<float>() + g.numel()));
      EXPECT_LE(err, 1e-5) << p.name << ", member " << e;
      worst_param = std::max(worst_param, err);
    }
  }
  std::printf("[ %s ] max relative error: output %.2e, parameter gradients %.2e, input gradient %.2e\n",
              c.name.c_str(), worst_out, worst_param, worst_input);
}

TEST(CpuConv, MinatarMatchesTorch) {
  for (int channels : {4, 10}) {
    for (int64_t k : {1, 2}) {
      ExpectParity({"minatar c" + std::to_string(channels) + " x" + std::to_string(k), EncoderType::kMinatar, k,
                    channels, 10});
    }
  }
}

TEST(CpuConv, NatureMatchesTorch) {
  ExpectParity({"nature 84x84x4", EncoderType::kNature, 1, 4, 84});
  ExpectParity({"nature 10x10x4", EncoderType::kNature, 1, 4, 10});
}

TEST(CpuConv, ImpalaMatchesTorch) {
  ExpectParity({"impala 84x84x4", EncoderType::kImpala, 1, 4, 84});
  ExpectParity({"impala 10x10x4", EncoderType::kImpala, 1, 4, 10});
  ExpectParity({"impala 10x10x4 x2", EncoderType::kImpala, 2, 4, 10});
}

}  // namespace
}  // namespace tokenrl::nn
