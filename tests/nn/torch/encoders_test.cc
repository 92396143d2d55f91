// Encoders of the libtorch backend: shapes against ComputeShapes, parameter
// counts against softmoe_reference.md section 4.7 (computed here from the conv
// formula), initialization (naming rule, schemes, seeds) and member
// independence.

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {
namespace {

NetworkIo Io(int size) { return {.channels = 4, .height = size, .width = size, .num_actions = 6}; }

EncoderConfig Encoder(EncoderType type, int64_t k = 1) {
  EncoderConfig c;
  c.type = type;
  c.width_multiplier = k;
  return c;
}

NetworkShapes Shapes(const EncoderConfig& encoder, const NetworkIo& io) {
  NetworkConfig config;
  config.encoder = encoder;
  StatusOr<NetworkShapes> s = ComputeShapes(config, io);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : NetworkShapes{};
}

// Parameters per member.
int64_t CountParameters(torch::nn::Module& module, int64_t members) {
  int64_t n = 0;
  for (const torch::Tensor& p : module.parameters()) n += p.numel();
  return n / members;
}

// A k x k conv with bias.
int64_t ConvParams(int64_t k, int64_t in, int64_t out) { return k * k * in * out + out; }

// Dopamine's Impala encoder: per stack an entry conv and 2 blocks of 2 convs.
int64_t ImpalaParams(int64_t in, int64_t k) {
  int64_t n = 0;
  for (int64_t c : {16 * k, 32 * k, 32 * k}) {
    n += ConvParams(3, in, c) + 4 * ConvParams(3, c, c);
    in = c;
  }
  return n;
}

int64_t NatureParams(int64_t in, int64_t k) {
  return ConvParams(8, in, 32 * k) + ConvParams(4, 32 * k, 64 * k) + ConvParams(3, 64 * k, 64 * k);
}

void ExpectFinite(const torch::Tensor& t, const std::string& what) {
  ASSERT_TRUE(t.defined()) << what;
  EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << what;
}

TEST(EncodersTest, ShapesAgreeWithComputeShapes) {
  torch::manual_seed(0);
  for (int size : {10, 84}) {
    for (EncoderType type : {EncoderType::kMinatar, EncoderType::kNature, EncoderType::kImpala}) {
      for (int64_t k : {1, 2}) {
        SCOPED_TRACE(std::to_string(size) + "x" + std::to_string(size) + " type " +
                     std::to_string(static_cast<int>(type)) + " k " + std::to_string(k));
        const EncoderConfig config = Encoder(type, k);
        const NetworkShapes s = Shapes(config, Io(size));
        auto encoder = MakeEncoder(config, Io(size), InitContext(1, 2, "encoder"));
        const torch::Tensor y = encoder->forward(torch::rand({2, 3, 4, size, size}));
        EXPECT_EQ(y.sizes(), torch::IntArrayRef({2, 3, s.feature_channels, s.feature_height, s.feature_width}));
      }
    }
  }
}

TEST(EncodersTest, DopamineShapesOn84x84) {
  // Nature 11x11x64 and Impala 11x11x32 (reference sections 1.2, 1.3).
  const torch::Tensor x = torch::rand({1, 1, 4, 84, 84});
  auto nature = MakeEncoder(Encoder(EncoderType::kNature), Io(84), InitContext(1, 1));
  EXPECT_EQ(nature->forward(x).sizes(), torch::IntArrayRef({1, 1, 64, 11, 11}));
  auto impala = MakeEncoder(Encoder(EncoderType::kImpala), Io(84), InitContext(1, 1));
  EXPECT_EQ(impala->forward(x).sizes(), torch::IntArrayRef({1, 1, 32, 11, 11}));
  auto minatar = MakeEncoder(Encoder(EncoderType::kMinatar), Io(10), InitContext(1, 1));
  EXPECT_EQ(minatar->forward(torch::rand({1, 1, 4, 10, 10})).sizes(), torch::IntArrayRef({1, 1, 16, 10, 10}));
}

TEST(EncodersTest, ParameterCountsMatchTheReference) {
  EXPECT_EQ(ImpalaParams(4, 1), 97744);  // softmoe_reference.md section 4.7.
  EXPECT_EQ(NatureParams(4, 1), 77984);
  for (int64_t k : {1, 2}) {
    auto impala = MakeEncoder(Encoder(EncoderType::kImpala, k), Io(84), InitContext(1, 2));
    EXPECT_EQ(CountParameters(*impala, 2), ImpalaParams(4, k));
    auto nature = MakeEncoder(Encoder(EncoderType::kNature, k), Io(84), InitContext(1, 2));
    EXPECT_EQ(CountParameters(*nature, 2), NatureParams(4, k));
    auto minatar = MakeEncoder(Encoder(EncoderType::kMinatar, k), Io(10), InitContext(1, 2));
    EXPECT_EQ(CountParameters(*minatar, 2), ConvParams(3, 4, 16 * k));
  }
}

// Every parameter holds exactly what InitContext's naming rule and the
// reference's scheme give: xavier_uniform for the entry convs, lecun_normal
// (fan_in = 9 C) for the residual convs, zero biases.
TEST(EncodersTest, ImpalaInitializationFollowsNamesAndSchemes) {
  constexpr uint64_t kRoot = 17;
  constexpr int kMembers = 2;
  auto impala = MakeEncoder(Encoder(EncoderType::kImpala), Io(84), InitContext(kRoot, kMembers, "encoder"));
  int lecun = 0, xavier = 0;
  for (const auto& item : impala->named_parameters()) {
    const std::string name = "encoder." + item.key();
    const torch::Tensor& p = item.value();
    InitSpec spec;  // Zero constant for biases.
    if (name.ends_with(".weight")) {
      const double in = static_cast<double>(p.size(2) * p.size(3) * p.size(4));
      const double out = static_cast<double>(p.size(1) * p.size(3) * p.size(4));
      if (name.find(".block") != std::string::npos) {
        spec = {.scheme = InitScheme::kLecunNormal, .fan_in = in};
        ++lecun;
      } else {
        spec = {.scheme = InitScheme::kXavierUniform, .fan_in = in, .fan_out = out};
        ++xavier;
      }
    }
    for (int e = 0; e < kMembers; ++e) {
      torch::Tensor expected = torch::empty_like(p[e]);
      FillInit(std::span<float>(expected.data_ptr<float>(), static_cast<size_t>(expected.numel())), spec,
               ParameterSeed(kRoot, e, name));
      EXPECT_TRUE(torch::equal(p[e], expected)) << name << " member " << e;
    }
  }
  EXPECT_EQ(lecun, 12);
  EXPECT_EQ(xavier, 3);
}

TEST(EncodersTest, SeedsAndMembers) {
  for (EncoderType type : {EncoderType::kMinatar, EncoderType::kNature, EncoderType::kImpala}) {
    auto a = MakeEncoder(Encoder(type), Io(10), InitContext(5, 3));
    auto b = MakeEncoder(Encoder(type), Io(10), InitContext(5, 3));
    auto c = MakeEncoder(Encoder(type), Io(10), InitContext(6, 3));
    const auto pa = a->named_parameters(), pb = b->named_parameters(), pc = c->named_parameters();
    for (const auto& item : pa) {
      const torch::Tensor& p = item.value();
      EXPECT_TRUE(torch::equal(p, pb[item.key()])) << item.key();
      if (!item.key().ends_with("bias")) {
        EXPECT_FALSE(torch::equal(p, pc[item.key()])) << item.key();
        EXPECT_FALSE(torch::equal(p[0], p[1])) << item.key();
        EXPECT_FALSE(torch::equal(p[1], p[2])) << item.key();
      }
    }
  }
}

// An E=3 encoder computes, for member e, exactly what an E=1 encoder holding
// member e's weights computes: outputs, parameter gradients, input gradients.
TEST(EncodersTest, MembersAreIndependent) {
  torch::manual_seed(3);
  for (EncoderType type : {EncoderType::kMinatar, EncoderType::kNature, EncoderType::kImpala}) {
    SCOPED_TRACE(static_cast<int>(type));
    const int size = type == EncoderType::kMinatar ? 10 : 36;
    const torch::Tensor input = torch::rand({3, 2, 4, size, size});
    auto big = MakeEncoder(Encoder(type), Io(size), InitContext(11, 3));
    const torch::Tensor x = input.clone().requires_grad_(true);
    const torch::Tensor y = big->forward(x);
    const torch::Tensor w = torch::randn_like(y);
    (y * w).sum().backward();
    auto big_params = big->named_parameters();
    for (int64_t e = 0; e < 3; ++e) {
      auto small = MakeEncoder(Encoder(type), Io(size), InitContext(99, 1));
      {
        torch::NoGradGuard no_grad;
        for (auto& item : small->named_parameters()) item.value().copy_(big_params[item.key()][e].unsqueeze(0));
      }
      const torch::Tensor xe = input.slice(0, e, e + 1).clone().requires_grad_(true);
      const torch::Tensor ye = small->forward(xe);
      EXPECT_TRUE(torch::allclose(ye, y.slice(0, e, e + 1), 1e-5, 1e-6)) << "member " << e;
      (ye * w.slice(0, e, e + 1)).sum().backward();
      EXPECT_TRUE(torch::allclose(xe.grad(), x.grad().slice(0, e, e + 1), 1e-4, 1e-6)) << "member " << e;
      for (auto& item : small->named_parameters()) {
        EXPECT_TRUE(torch::allclose(item.value().grad()[0], big_params[item.key()].grad()[e], 1e-4, 1e-5))
            << item.key() << " member " << e;
      }
    }
  }
}

TEST(EncodersTest, ForwardBackwardIsFinite) {
  torch::manual_seed(4);
  for (int size : {10, 84}) {
    for (EncoderType type : {EncoderType::kMinatar, EncoderType::kNature, EncoderType::kImpala}) {
      auto encoder = MakeEncoder(Encoder(type), Io(size), InitContext(2, 2));
      const torch::Tensor y = encoder->forward(torch::rand({2, 2, 4, size, size}));
      ExpectFinite(y, "output");
      y.square().mean().backward();
      for (const auto& item : encoder->named_parameters()) ExpectFinite(item.value().grad(), item.key());
    }
  }
}

}  // namespace
}  // namespace tokenrl::nn::torch_backend
