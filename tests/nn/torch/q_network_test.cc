// QNetwork: every encoder x mixer x head combination builds, has the shapes
// of ComputeShapes, and runs a NaN-free forward/backward on MinAtar inputs
// (and a few on 84x84x4); members never mix; input scaling.

#include "tokenrl/nn/torch/q_network.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "tokenrl/config/config.h"

namespace tokenrl::nn::torch_backend {
namespace {

NetworkIo MinatarIo() { return {.channels = 4, .height = 10, .width = 10, .num_actions = 6, .input_scale = 1.0f}; }
NetworkIo AtariIo() {
  return {.channels = 4, .height = 84, .width = 84, .num_actions = 18, .input_scale = 1.0f / 255.0f};
}

enum class HeadKind { kQ, kC51, kRainbow };  // Rainbow: C51 + dueling + noisy.

NetworkConfig Config(EncoderType encoder, MixerType mixer, HeadKind head) {
  NetworkConfig c;
  c.encoder.type = encoder;
  c.mixer.type = mixer;
  c.mixer.hidden_units = 32;  // Small widths keep the sweep fast.
  c.mixer.expert_hidden_units = 24;
  c.mixer.num_experts = 4;
  c.head.distributional = head != HeadKind::kQ;
  c.head.num_atoms = 11;
  c.head.dueling = c.head.noisy = head == HeadKind::kRainbow;
  return c;
}

std::string Describe(const NetworkConfig& c) {
  NetworkConfig copy = c;
  return config::ToToml(copy);
}

// Builds the network, runs forward and backward on random uint8 inputs and
// checks shapes, finiteness and that gradients reach the parameters.
void CheckVariant(const NetworkConfig& config, const NetworkIo& io, int members, int batch) {
  SCOPED_TRACE(Describe(config));
  const NetworkShapes shapes = *ComputeShapes(config, io);
  QNetwork net(config, io, /*seed=*/3, members, /*noise_seed=*/4);
  net->noise().set_enabled(true);
  const torch::Tensor obs = torch::randint(0, io.input_scale == 1.0f ? 2 : 256,
                                           {members, batch, io.channels, io.height, io.width}, torch::kUInt8);
  const NetworkOutput out = net->forward(obs);
  ASSERT_EQ(out.q.sizes(), (std::vector<int64_t>{members, batch, io.num_actions}));
  ASSERT_EQ(out.features.sizes(), (std::vector<int64_t>{members, batch, shapes.features}));
  EXPECT_TRUE(torch::isfinite(out.q).all().item<bool>());
  if (config.head.distributional) {
    ASSERT_EQ(out.logits.sizes(), (std::vector<int64_t>{members, batch, io.num_actions, config.head.num_atoms}));
    EXPECT_TRUE(torch::allclose(out.probabilities.sum(-1), torch::ones({members, batch, io.num_actions})));
  } else {
    EXPECT_FALSE(out.logits.defined());
  }
  const int64_t experts = config.mixer.num_experts;
  switch (config.mixer.type) {
    case MixerType::kSoftMoe:
      ASSERT_TRUE(out.dispatch.defined());
      ASSERT_TRUE(out.combine.defined());
      EXPECT_EQ(out.dispatch.sizes(),
                (std::vector<int64_t>{members, batch, shapes.num_tokens, experts, shapes.slots_per_expert}));
      EXPECT_EQ(out.combine.sizes(), out.dispatch.sizes());
      ASSERT_TRUE(out.expert_hidden.defined());
      break;
    case MixerType::kTokenChoice:
    case MixerType::kExpertChoice:
      ASSERT_TRUE(out.router_probs.defined());
      EXPECT_EQ(out.router_probs.sizes(), (std::vector<int64_t>{members, batch, shapes.num_tokens, experts}));
      ASSERT_TRUE(out.expert_hidden.defined());
      break;
    default:
      ASSERT_TRUE(out.hidden.defined());
      EXPECT_EQ(out.hidden.size(2), config.mixer.hidden_units);
  }
  // Parameter names carry the stage prefixes; a tokenizer exists exactly when
  // the mixer consumes tokens (it may hold no parameters).
  for (const auto& item : net->named_parameters()) {
    const std::string& name = item.key();
    EXPECT_TRUE(name.rfind("encoder.", 0) == 0 || name.rfind("tokenizer.", 0) == 0 || name.rfind("mixer.", 0) == 0 ||
                name.rfind("head.", 0) == 0)
        << name;
    EXPECT_EQ(item.value().size(0), members) << name;
  }
  const bool has_tokenizer = net->named_children().contains("tokenizer");
  EXPECT_EQ(has_tokenizer, config.mixer.type != MixerType::kFlatten && config.mixer.type != MixerType::kGap);

  torch::Tensor loss = out.q.square().mean();
  if (out.aux_loss.defined()) loss = loss + out.aux_loss.sum();
  loss.backward();
  int with_grad = 0;
  for (const auto& item : net->named_parameters()) {
    const torch::Tensor& g = item.value().grad();
    if (!g.defined()) continue;
    ++with_grad;
    EXPECT_TRUE(torch::isfinite(g).all().item<bool>()) << item.key();
  }
  EXPECT_GT(with_grad, 0);
  // The head always receives gradient.
  for (const auto& item : net->named_parameters()) {
    if (item.key().rfind("head.", 0) == 0) {
      EXPECT_TRUE(item.value().grad().defined()) << item.key();
    }
  }
}

class QNetworkVariantTest : public ::testing::TestWithParam<std::tuple<EncoderType, MixerType, HeadKind>> {};

TEST_P(QNetworkVariantTest, MinatarForwardBackward) {
  const auto [encoder, mixer, head] = GetParam();
  CheckVariant(Config(encoder, mixer, head), MinatarIo(), /*members=*/2, /*batch=*/3);
}

INSTANTIATE_TEST_SUITE_P(
    AllCombinations, QNetworkVariantTest,
    ::testing::Combine(::testing::Values(EncoderType::kMinatar, EncoderType::kNature, EncoderType::kImpala),
                       ::testing::Values(MixerType::kFlatten, MixerType::kTokenizedSum, MixerType::kTokenizedMean,
                                         MixerType::kGap, MixerType::kSoftMoe, MixerType::kTokenChoice,
                                         MixerType::kExpertChoice),
                       ::testing::Values(HeadKind::kQ, HeadKind::kC51, HeadKind::kRainbow)));

TEST(QNetworkTest, AtariInputsForwardBackward) {
  const std::vector<std::tuple<EncoderType, MixerType, HeadKind>> variants{
      {EncoderType::kNature, MixerType::kFlatten, HeadKind::kQ},
      {EncoderType::kNature, MixerType::kSoftMoe, HeadKind::kRainbow},
      {EncoderType::kImpala, MixerType::kSoftMoe, HeadKind::kC51},
      {EncoderType::kImpala, MixerType::kExpertChoice, HeadKind::kQ},
      {EncoderType::kNature, MixerType::kTokenizedMean, HeadKind::kC51},
  };
  for (const auto& [encoder, mixer, head] : variants) {
    CheckVariant(Config(encoder, mixer, head), AtariIo(), /*members=*/1, /*batch=*/2);
  }
}

TEST(QNetworkTest, TokenizersAndMoeOptionsBuild) {
  for (TokenizerType t : {TokenizerType::kPerConv, TokenizerType::kPerFeat, TokenizerType::kPerPatch,
                          TokenizerType::kShuffled, TokenizerType::kPerSamp}) {
    NetworkConfig c = Config(EncoderType::kMinatar, MixerType::kSoftMoe, HeadKind::kQ);
    c.tokenizer.type = t;
    c.mixer.num_experts = 1;
    CheckVariant(c, MinatarIo(), 2, 2);
  }
  NetworkConfig c = Config(EncoderType::kMinatar, MixerType::kExpertChoice, HeadKind::kC51);
  c.mixer.total_slots = 1;
  c.mixer.post_moe_dense = true;
  c.mixer.post_moe_dense_units = 16;
  CheckVariant(c, MinatarIo(), 2, 2);
  c = Config(EncoderType::kMinatar, MixerType::kTokenChoice, HeadKind::kQ);
  c.mixer.load_balancing_loss_weight = 0.01;
  CheckVariant(c, MinatarIo(), 2, 2);
  c = Config(EncoderType::kMinatar, MixerType::kSoftMoe, HeadKind::kQ);
  c.mixer.normalize = true;
  CheckVariant(c, MinatarIo(), 2, 2);
}

// Member e of an E=3 network equals an E=1 network holding member e's weights.
void CheckMembersIndependent(const NetworkConfig& config) {
  SCOPED_TRACE(Describe(config));
  const NetworkIo io = MinatarIo();
  constexpr int kMembers = 3;
  QNetwork big(config, io, 5, kMembers, 6);
  const torch::Tensor obs = torch::randint(0, 2, {kMembers, 4, io.channels, io.height, io.width}, torch::kUInt8);
  const NetworkOutput out = big->forward(obs);
  out.q.sum().backward();
  for (int e = 0; e < kMembers; ++e) {
    QNetwork small(config, io, 99, 1, 6);
    {
      torch::NoGradGuard no_grad;
      auto big_params = big->named_parameters();
      for (auto& item : small->named_parameters()) item.value().copy_(big_params[item.key()].narrow(0, e, 1));
    }
    const NetworkOutput small_out = small->forward(obs.narrow(0, e, 1));
    EXPECT_TRUE(torch::allclose(small_out.q, out.q.narrow(0, e, 1), 1e-5, 1e-6)) << "member " << e;
    small_out.q.sum().backward();
    auto big_params = big->named_parameters();
    for (const auto& item : small->named_parameters()) {
      const torch::Tensor& g = item.value().grad();
      const torch::Tensor& big_g = big_params[item.key()].grad();
      ASSERT_EQ(g.defined(), big_g.defined()) << item.key();
      if (g.defined()) {
        EXPECT_TRUE(torch::allclose(g, big_g.narrow(0, e, 1), 1e-4, 1e-5)) << item.key() << " member " << e;
      }
    }
  }
}

TEST(QNetworkTest, MembersNeverMix) {
  CheckMembersIndependent(Config(EncoderType::kMinatar, MixerType::kFlatten, HeadKind::kQ));
  CheckMembersIndependent(Config(EncoderType::kMinatar, MixerType::kSoftMoe, HeadKind::kC51));
  NetworkConfig rainbow = Config(EncoderType::kImpala, MixerType::kExpertChoice, HeadKind::kC51);
  rainbow.head.dueling = true;
  CheckMembersIndependent(rainbow);
}

TEST(QNetworkTest, SameSeedSameWeightsAndNamesMatchStages) {
  const NetworkConfig config = Config(EncoderType::kMinatar, MixerType::kFlatten, HeadKind::kQ);
  QNetwork a(config, MinatarIo(), 7, 2, 0), b(config, MinatarIo(), 7, 2, 1), c(config, MinatarIo(), 8, 2, 0);
  std::vector<std::string> names;
  auto pb = b->named_parameters();
  auto pc = c->named_parameters();
  for (const auto& item : a->named_parameters()) {
    names.push_back(item.key());
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"encoder.conv.weight", "encoder.conv.bias", "mixer.dense.weight",
                                             "mixer.dense.bias", "head.output.weight", "head.output.bias"}));
  EXPECT_FALSE(torch::equal(a->named_parameters()["encoder.conv.weight"], pc["encoder.conv.weight"]));
}

TEST(QNetworkTest, ScalesUint8AndFloatInputsAlike) {
  NetworkIo io = AtariIo();
  io.height = io.width = 20;
  const NetworkConfig config = Config(EncoderType::kNature, MixerType::kFlatten, HeadKind::kC51);
  QNetwork net(config, io, 1, 1, 2);
  const torch::Tensor obs = torch::randint(0, 256, {1, 2, 4, 20, 20}, torch::kUInt8);
  const torch::Tensor q8 = net->forward(obs).q;
  const torch::Tensor qf = net->forward(obs.to(torch::kFloat32)).q;
  EXPECT_TRUE(torch::equal(q8, qf));
  // Scaling happens inside: a network with input_scale 1 sees 255x larger pixels.
  NetworkIo unscaled = io;
  unscaled.input_scale = 1.0f;
  QNetwork raw(config, unscaled, 1, 1, 2);
  const torch::Tensor q_scaled_by_hand = raw->forward(obs.to(torch::kFloat32) / 255.0f).q;
  EXPECT_TRUE(torch::allclose(q8, q_scaled_by_hand, 1e-5, 1e-6));
}

TEST(QNetworkTest, Float64NetworkRuns) {
  QNetwork net(Config(EncoderType::kMinatar, MixerType::kSoftMoe, HeadKind::kRainbow), MinatarIo(), 1, 2, 2);
  net->to(torch::kFloat64);
  const NetworkOutput out = net->forward(torch::randint(0, 2, {2, 3, 4, 10, 10}, torch::kUInt8));
  EXPECT_EQ(out.q.scalar_type(), torch::kFloat64);
}

}  // namespace
}  // namespace tokenrl::nn::torch_backend
