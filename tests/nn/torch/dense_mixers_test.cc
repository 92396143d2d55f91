// Dense mixers of the libtorch backend (flatten, tokenized sum / mean, GAP):
// shapes, parameter counts against softmoe_reference.md section 4.7 (computed
// here from the linear formula), outputs against hand computations, member
// independence and finite gradients.

#include <gtest/gtest.h>

#include <string>

#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {
namespace {

constexpr MixerType kDenseMixers[] = {MixerType::kFlatten, MixerType::kTokenizedSum, MixerType::kTokenizedMean,
                                      MixerType::kGap};

NetworkIo Io(int size) { return {.channels = 4, .height = size, .width = size, .num_actions = 6}; }

NetworkConfig Config(EncoderType encoder, MixerType mixer, int64_t hidden = 32,
                     TokenizerType tokenizer = TokenizerType::kPerConv) {
  NetworkConfig c;
  c.encoder.type = encoder;
  c.tokenizer.type = tokenizer;
  c.mixer.type = mixer;
  c.mixer.hidden_units = hidden;
  return c;
}

NetworkShapes Shapes(const NetworkConfig& config, const NetworkIo& io) {
  StatusOr<NetworkShapes> s = ComputeShapes(config, io);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : NetworkShapes{};
}

int64_t LinearParams(int64_t in, int64_t out) { return in * out + out; }

int64_t CountParameters(torch::nn::Module& module, int64_t members) {
  int64_t n = 0;
  for (const torch::Tensor& p : module.parameters()) n += p.numel();
  return n / members;
}

// The mixer's input for a random feature map [E, B, C', H', W']: the map
// itself, or its tokens when the mixer takes tokens.
torch::Tensor Input(MixerBase& mixer, const NetworkConfig& config, const NetworkShapes& s, int64_t members,
                    int64_t batch) {
  const torch::Tensor map = torch::rand({members, batch, s.feature_channels, s.feature_height, s.feature_width});
  if (!mixer.takes_tokens()) return map;
  return MakeTokenizer(config.tokenizer, s, InitContext(1, static_cast<int>(members), "tokenizer"))->forward(map);
}

std::string Name(MixerType m) { return std::string(config::EnumNames<MixerType>::kValues[static_cast<int>(m)].second); }

TEST(DenseMixersTest, ShapesAgreeWithComputeShapes) {
  torch::manual_seed(0);
  for (int size : {10, 84}) {
    for (EncoderType encoder : {EncoderType::kMinatar, EncoderType::kNature, EncoderType::kImpala}) {
      for (TokenizerType tokenizer : {TokenizerType::kPerConv, TokenizerType::kPerFeat}) {
        for (MixerType type : kDenseMixers) {
          SCOPED_TRACE(Name(type) + " on " + std::to_string(size) + " encoder " +
                       std::to_string(static_cast<int>(encoder)) + " tokenizer " +
                       std::to_string(static_cast<int>(tokenizer)));
          const NetworkConfig config = Config(encoder, type, 24, tokenizer);
          const NetworkShapes s = Shapes(config, Io(size));
          auto mixer = MakeDenseMixer(config, s, InitContext(1, 2, "mixer"));
          ASSERT_NE(mixer, nullptr);
          EXPECT_EQ(mixer->takes_tokens(), type == MixerType::kTokenizedSum || type == MixerType::kTokenizedMean);
          const MixerOutput out = mixer->forward(Input(*mixer, config, s, 2, 3));
          EXPECT_EQ(out.features.sizes(), torch::IntArrayRef({2, 3, s.features}));
          EXPECT_EQ(out.hidden.sizes(), torch::IntArrayRef({2, 3, 24}));
          EXPECT_FALSE(out.aux_loss.defined());
        }
      }
    }
  }
}

TEST(DenseMixersTest, PenultimateParameterCountsMatchTheReference) {
  // softmoe_reference.md section 4.7: Dense(flattened encoder output -> hidden).
  EXPECT_EQ(LinearParams(11 * 11 * 32, 512), 1982976);
  EXPECT_EQ(LinearParams(11 * 11 * 32, 2048), 7931904);
  EXPECT_EQ(LinearParams(11 * 11 * 64, 512), 3965440);
  struct Row {
    EncoderType encoder;
    int64_t hidden;
    int64_t expected;
  };
  for (const Row& row : {Row{EncoderType::kImpala, 512, LinearParams(3872, 512)},
                         Row{EncoderType::kImpala, 2048, LinearParams(3872, 2048)},
                         Row{EncoderType::kNature, 512, LinearParams(7744, 512)}}) {
    const NetworkConfig config = Config(row.encoder, MixerType::kFlatten, row.hidden);
    auto mixer = MakeDenseMixer(config, Shapes(config, Io(84)), InitContext(1, 1));
    EXPECT_EQ(CountParameters(*mixer, 1), row.expected);
  }
  // The optional extra layer adds Dense(hidden -> hidden); tokenized mixers
  // and GAP have one Dense from the token / channel dimension.
  NetworkConfig config = Config(EncoderType::kImpala, MixerType::kFlatten, 512);
  config.mixer.extra_dense_layer = true;
  EXPECT_EQ(CountParameters(*MakeDenseMixer(config, Shapes(config, Io(84)), InitContext(1, 1)), 1),
            LinearParams(3872, 512) + LinearParams(512, 512));
  for (MixerType type : {MixerType::kTokenizedSum, MixerType::kTokenizedMean, MixerType::kGap}) {
    config = Config(EncoderType::kImpala, type, 512);
    EXPECT_EQ(CountParameters(*MakeDenseMixer(config, Shapes(config, Io(84)), InitContext(1, 1)), 1),
              LinearParams(32, 512))
        << Name(type);
  }
  config = Config(EncoderType::kImpala, MixerType::kTokenizedSum, 512, TokenizerType::kPerFeat);
  EXPECT_EQ(CountParameters(*MakeDenseMixer(config, Shapes(config, Io(84)), InitContext(1, 1)), 1),
            LinearParams(121, 512));
}

// relu(x W[e] + b[e]) for x [N, in] of member e.
torch::Tensor Dense(torch::nn::Module& mixer, const std::string& layer, int64_t e, const torch::Tensor& x) {
  auto params = mixer.named_parameters();
  return torch::relu(torch::matmul(x, params[layer + ".weight"][e]) + params[layer + ".bias"][e]);
}

TEST(DenseMixersTest, OutputsMatchHandComputations) {
  torch::manual_seed(1);
  const int64_t members = 2, batch = 3, c = 5, h = 3, w = 4, hidden = 7;
  NetworkShapes s;
  s.feature_channels = c, s.feature_height = h, s.feature_width = w;
  s.num_tokens = h * w, s.token_dim = c, s.features = hidden;
  NetworkConfig config = Config(EncoderType::kMinatar, MixerType::kFlatten, hidden);
  const torch::Tensor map = torch::randn({members, batch, c, h, w});
  // Channels-last flatten, built element by element.
  torch::Tensor flat = torch::empty({members, batch, h * w * c});
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t k = 0; k < c; ++k)
        flat.select(2, (y * w + x) * c + k).copy_(map.select(2, k).select(2, y).select(2, x));
  // Tokens [E, B, T, D] of PerConv.
  const torch::Tensor tokens = flat.reshape({members, batch, h * w, c});

  torch::NoGradGuard no_grad;
  for (bool extra : {false, true}) {
    config.mixer.extra_dense_layer = extra;
    auto mixer = MakeDenseMixer(config, s, InitContext(3, members, "mixer"));
    const MixerOutput out = mixer->forward(map);
    for (int64_t e = 0; e < members; ++e) {
      torch::Tensor expected = Dense(*mixer, "dense", e, flat[e]);
      if (extra) expected = Dense(*mixer, "extra_dense", e, expected);
      EXPECT_TRUE(torch::allclose(out.features[e], expected, 1e-5, 1e-6)) << "extra " << extra;
      EXPECT_TRUE(torch::equal(out.hidden, out.features));
    }
  }
  for (MixerType type : {MixerType::kTokenizedSum, MixerType::kTokenizedMean}) {
    config.mixer.type = type;
    auto mixer = MakeDenseMixer(config, s, InitContext(3, members, "mixer"));
    const MixerOutput out = mixer->forward(tokens);
    for (int64_t e = 0; e < members; ++e) {
      for (int64_t b = 0; b < batch; ++b) {
        const torch::Tensor per_token = Dense(*mixer, "dense", e, tokens[e][b]);  // [T, hidden]
        const torch::Tensor expected = type == MixerType::kTokenizedSum ? per_token.sum(0) : per_token.mean(0);
        EXPECT_TRUE(torch::allclose(out.features[e][b], expected, 1e-5, 1e-6)) << Name(type);
      }
    }
    EXPECT_TRUE(torch::equal(out.hidden, out.features));
  }
  config.mixer.type = MixerType::kGap;
  auto gap = MakeDenseMixer(config, s, InitContext(3, members, "mixer"));
  const MixerOutput out = gap->forward(map);
  for (int64_t e = 0; e < members; ++e) {
    EXPECT_TRUE(torch::allclose(out.features[e], Dense(*gap, "dense", e, map[e].mean({2, 3})), 1e-5, 1e-6));
  }
}

TEST(DenseMixersTest, SeedsAndMembers) {
  for (MixerType type : kDenseMixers) {
    const NetworkConfig config = Config(EncoderType::kMinatar, type);
    const NetworkShapes s = Shapes(config, Io(10));
    auto a = MakeDenseMixer(config, s, InitContext(5, 3, "mixer"));
    auto b = MakeDenseMixer(config, s, InitContext(5, 3, "mixer"));
    auto c = MakeDenseMixer(config, s, InitContext(6, 3, "mixer"));
    const auto pb = b->named_parameters(), pc = c->named_parameters();
    for (const auto& item : a->named_parameters()) {
      const torch::Tensor& p = item.value();
      EXPECT_TRUE(torch::equal(p, pb[item.key()])) << item.key();
      if (item.key().ends_with("weight")) {
        EXPECT_FALSE(torch::equal(p, pc[item.key()])) << item.key();
        EXPECT_FALSE(torch::equal(p[0], p[1])) << item.key();
        EXPECT_FALSE(torch::equal(p[1], p[2])) << item.key();
      }
    }
  }
}

// An E=3 mixer computes, for member e, what an E=1 mixer holding member e's
// weights computes: outputs, parameter gradients and input gradients.
TEST(DenseMixersTest, MembersAreIndependent) {
  torch::manual_seed(2);
  for (MixerType type : kDenseMixers) {
    SCOPED_TRACE(Name(type));
    NetworkConfig config = Config(EncoderType::kMinatar, type, 16);
    config.mixer.extra_dense_layer = true;  // Used by flatten only.
    const NetworkShapes s = Shapes(config, Io(10));
    auto big = MakeDenseMixer(config, s, InitContext(11, 3, "mixer"));
    const torch::Tensor input = Input(*big, config, s, 3, 4);
    const torch::Tensor x = input.clone().requires_grad_(true);
    const torch::Tensor y = big->forward(x).features;
    const torch::Tensor w = torch::randn_like(y);
    (y * w).sum().backward();
    auto big_params = big->named_parameters();
    for (int64_t e = 0; e < 3; ++e) {
      auto small = MakeDenseMixer(config, s, InitContext(99, 1, "mixer"));
      {
        torch::NoGradGuard no_grad;
        for (auto& item : small->named_parameters()) item.value().copy_(big_params[item.key()][e].unsqueeze(0));
      }
      const torch::Tensor xe = input.slice(0, e, e + 1).clone().requires_grad_(true);
      const torch::Tensor ye = small->forward(xe).features;
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

TEST(DenseMixersTest, ForwardBackwardIsFinite) {
  torch::manual_seed(3);
  for (int size : {10, 84}) {
    for (MixerType type : kDenseMixers) {
      SCOPED_TRACE(Name(type) + " on " + std::to_string(size));
      NetworkConfig config = Config(size == 10 ? EncoderType::kMinatar : EncoderType::kImpala, type, 64);
      config.mixer.extra_dense_layer = true;
      const NetworkShapes s = Shapes(config, Io(size));
      auto mixer = MakeDenseMixer(config, s, InitContext(4, 2, "mixer"));
      const torch::Tensor x = Input(*mixer, config, s, 2, 3).clone().requires_grad_(true);
      const MixerOutput out = mixer->forward(x);
      EXPECT_TRUE(torch::isfinite(out.features).all().item<bool>());
      out.features.square().mean().backward();
      EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
      for (const auto& item : mixer->named_parameters()) {
        ASSERT_TRUE(item.value().grad().defined()) << item.key();
        EXPECT_TRUE(torch::isfinite(item.value().grad()).all().item<bool>()) << item.key();
      }
    }
  }
}

}  // namespace
}  // namespace tokenrl::nn::torch_backend
