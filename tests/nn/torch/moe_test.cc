// MoE mixers of the libtorch backend (moe.cc): SoftMoE, top-1 token choice and
// expert choice. Shapes and parameter counts follow softmoe_reference.md
// sections 4.2, 4.7 and 12; gradients are checked against central
// differences in float64.

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tokenrl/nn/network_config.h"
#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {
namespace {

constexpr MixerType kMoeTypes[] = {MixerType::kSoftMoe, MixerType::kTokenChoice, MixerType::kExpertChoice};

NetworkIo MinatarIo() { return {.channels = 4, .height = 10, .width = 10, .num_actions = 6}; }
NetworkIo AtariIo() { return {.channels = 4, .height = 84, .width = 84, .num_actions = 6}; }

NetworkConfig MoeConfig(MixerType type, int64_t experts, EncoderType encoder = EncoderType::kMinatar) {
  NetworkConfig config;
  config.encoder.type = encoder;
  config.tokenizer.type = TokenizerType::kPerConv;
  config.mixer.type = type;
  config.mixer.num_experts = experts;
  return config;
}

NetworkShapes Shapes(const NetworkConfig& config, const NetworkIo& io) {
  auto shapes = ComputeShapes(config, io);
  EXPECT_TRUE(shapes.ok()) << shapes.status().ToString();
  return *shapes;
}

// Hand-sized shapes for the small (gradient, routing) tests.
NetworkShapes SmallShapes(int tokens, int dim, int slots) {
  NetworkShapes s;
  s.num_tokens = tokens;
  s.token_dim = dim;
  s.slots_per_expert = slots;
  s.features = tokens * dim;
  return s;
}

std::shared_ptr<MixerBase> Make(const NetworkConfig& config, const NetworkShapes& shapes, int members,
                                uint64_t seed = 7, std::shared_ptr<NoiseSource> noise = nullptr) {
  return MakeMoeMixer(config, shapes, InitContext(seed, members).Child("mixer"), std::move(noise));
}

torch::Tensor Param(const std::shared_ptr<MixerBase>& m, const std::string& name) {
  return m->named_parameters()[name];
}

// Parameters per member whose names start with `prefix`.
int64_t CountParams(const std::shared_ptr<MixerBase>& m, const std::string& prefix, int members) {
  int64_t total = 0;
  for (const auto& p : m->named_parameters()) {
    if (p.key().rfind(prefix, 0) == 0) total += p.value().numel();
  }
  return total / members;
}

bool AllFinite(const torch::Tensor& t) { return !t.defined() || torch::isfinite(t).all().item<bool>(); }

// A scalar objective of a mixer's output: features . weights (+ the aux loss).
torch::Tensor Objective(const MixerOutput& out, const torch::Tensor& weights) {
  torch::Tensor loss = (out.features * weights).sum();
  if (out.aux_loss.defined()) loss = loss + out.aux_loss.sum();
  return loss;
}

// Relative error ||numeric - analytic|| / max(||numeric||, ||analytic||) of
// d loss / d t, with central differences of step h in float64.
double GradientError(const std::function<torch::Tensor()>& loss, const torch::Tensor& t, double h = 1e-6) {
  const torch::Tensor analytic = torch::autograd::grad({loss()}, {t})[0];
  torch::NoGradGuard no_grad;
  torch::Tensor numeric = torch::zeros_like(t);
  double* data = t.data_ptr<double>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double saved = data[i];
    data[i] = saved + h;
    const double plus = loss().item<double>();
    data[i] = saved - h;
    const double minus = loss().item<double>();
    data[i] = saved;
    numeric.view(-1)[i] = (plus - minus) / (2 * h);
  }
  const double scale = std::max(numeric.norm().item<double>(), analytic.norm().item<double>());
  EXPECT_GT(scale, 1e-8) << "vanishing gradient: the check would be vacuous";
  return (numeric - analytic).norm().item<double>() / scale;
}

// ---------------------------------------------------------------------------
// Shapes and slot counts.

TEST(MoeShapesTest, MinatarAndImpalaPerConvForEveryExpertCount) {
  torch::manual_seed(0);
  struct Case {
    NetworkIo io;
    EncoderType encoder;
    int tokens, dim;
  };
  const Case cases[] = {{MinatarIo(), EncoderType::kMinatar, 100, 16}, {AtariIo(), EncoderType::kImpala, 121, 32}};
  const int64_t members = 2, batch = 3;
  for (const Case& c : cases) {
    for (MixerType type : kMoeTypes) {
      for (int64_t n : {1, 2, 4, 8}) {
        SCOPED_TRACE(::testing::Message() << "tokens " << c.tokens << " type " << static_cast<int>(type) << " n " << n);
        NetworkConfig config = MoeConfig(type, n, c.encoder);
        config.mixer.expert_hidden_units = 64;
        const NetworkShapes shapes = Shapes(config, c.io);
        ASSERT_EQ(shapes.num_tokens, c.tokens);
        ASSERT_EQ(shapes.token_dim, c.dim);
        const int64_t p = (c.tokens + n - 1) / n;
        EXPECT_EQ(shapes.slots_per_expert, p);
        EXPECT_EQ(shapes.features, c.tokens * c.dim);
        auto mixer = Make(config, shapes, members);
        EXPECT_TRUE(mixer->takes_tokens());
        const MixerOutput out = mixer->forward(torch::randn({members, batch, c.tokens, c.dim}));
        EXPECT_EQ(out.features.sizes(), (std::vector<int64_t>{members, batch, c.tokens * c.dim}));
        EXPECT_EQ(out.expert_hidden.sizes(), (std::vector<int64_t>{members, batch, n, p, 64}));
        EXPECT_FALSE(out.aux_loss.defined());
        if (type == MixerType::kSoftMoe) {
          const std::vector<int64_t> routing{members, batch, c.tokens, n, p};
          EXPECT_EQ(out.dispatch.sizes(), routing);
          EXPECT_EQ(out.combine.sizes(), routing);
          EXPECT_EQ(Param(mixer, "phi").sizes(), (std::vector<int64_t>{members, c.dim, n, p}));
        } else {
          EXPECT_EQ(out.router_probs.sizes(), (std::vector<int64_t>{members, batch, c.tokens, n}));
          EXPECT_EQ(Param(mixer, "router.weight").sizes(), (std::vector<int64_t>{members, c.dim, n}));
        }
      }
    }
  }
}

TEST(MoeShapesTest, PostMoeDense) {
  for (MixerType type : kMoeTypes) {
    NetworkConfig config = MoeConfig(type, 4);
    config.mixer.expert_hidden_units = 32;
    config.mixer.post_moe_dense = true;
    config.mixer.post_moe_dense_units = 40;
    const NetworkShapes shapes = Shapes(config, MinatarIo());
    EXPECT_EQ(shapes.features, 40);
    auto mixer = Make(config, shapes, 2);
    const MixerOutput out = mixer->forward(torch::randn({2, 3, 100, 16}));
    EXPECT_EQ(out.features.sizes(), (std::vector<int64_t>{2, 3, 40}));
    EXPECT_EQ(out.hidden.sizes(), (std::vector<int64_t>{2, 3, 40}));
    EXPECT_EQ(Param(mixer, "post_dense.weight").sizes(), (std::vector<int64_t>{2, 1600, 40}));
  }
}

TEST(MoeShapesTest, SlotCounts) {
  // n = 4 on 121 Impala tokens: ceil(121 / 4) = 31 slots per expert.
  EXPECT_EQ(Shapes(MoeConfig(MixerType::kSoftMoe, 4, EncoderType::kImpala), AtariIo()).slots_per_expert, 31);
  // Fig. 8: total slots 10 (about 10% of 121) and 1, for SoftMoE and expert choice.
  for (MixerType type : {MixerType::kSoftMoe, MixerType::kExpertChoice}) {
    for (int64_t total : {10, 1}) {
      NetworkConfig config = MoeConfig(type, 1, EncoderType::kImpala);
      config.mixer.total_slots = total;
      config.mixer.expert_hidden_units = 16;
      const NetworkShapes shapes = Shapes(config, AtariIo());
      EXPECT_EQ(shapes.slots_per_expert, total);
      const MixerOutput out = Make(config, shapes, 1)->forward(torch::randn({1, 2, 121, 32}));
      EXPECT_EQ(out.expert_hidden.sizes(), (std::vector<int64_t>{1, 2, 1, total, 16}));
      if (type == MixerType::kSoftMoe) {
        EXPECT_EQ(out.dispatch.size(4), total);
      }
    }
  }
  // A total that does not divide: ceil(10 / 4) = 3 per expert.
  NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 4, EncoderType::kImpala);
  config.mixer.total_slots = 10;
  EXPECT_EQ(Shapes(config, AtariIo()).slots_per_expert, 3);
}

// ---------------------------------------------------------------------------
// Parameter counts (softmoe_reference.md section 4.7, Impala PerConv).

int64_t PhiParams(int64_t tokens, int64_t dim, int64_t n) { return dim * n * ((tokens + n - 1) / n); }
int64_t ExpertParams(int64_t dim, int64_t n, int64_t hidden) {
  return n * (dim * hidden + hidden + hidden * dim + dim);
}

TEST(MoeParamCountTest, ImpalaSoftMoeMatchesReferenceTable) {
  struct Case {
    int64_t n, hidden, phi, experts;  // The last two as printed in section 4.7.
  };
  const Case cases[] = {{1, 512, 3872, 33312}, {4, 512, 3968, 133248}, {8, 512, 4096, 266496}, {1, 2048, 3872, 133152}};
  const int members = 2;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "n " << c.n << " H " << c.hidden);
    EXPECT_EQ(PhiParams(121, 32, c.n), c.phi);
    EXPECT_EQ(ExpertParams(32, c.n, c.hidden), c.experts);
    for (bool normalize : {false, true}) {
      NetworkConfig config = MoeConfig(MixerType::kSoftMoe, c.n, EncoderType::kImpala);
      config.mixer.expert_hidden_units = c.hidden;
      config.mixer.normalize = normalize;
      auto mixer = Make(config, Shapes(config, AtariIo()), members);
      EXPECT_EQ(CountParams(mixer, "phi", members), PhiParams(121, 32, c.n));
      EXPECT_EQ(CountParams(mixer, "experts.", members), ExpertParams(32, c.n, c.hidden));
      // The learned scale (+1) exists only with normalization.
      EXPECT_EQ(CountParams(mixer, "", members),
                PhiParams(121, 32, c.n) + ExpertParams(32, c.n, c.hidden) + (normalize ? 1 : 0));
    }
  }
}

TEST(MoeParamCountTest, RoutersAndNoisyExperts) {
  const int members = 3;
  for (MixerType type : {MixerType::kTokenChoice, MixerType::kExpertChoice}) {
    NetworkConfig config = MoeConfig(type, 4, EncoderType::kImpala);
    auto mixer = Make(config, Shapes(config, AtariIo()), members);
    EXPECT_EQ(CountParams(mixer, "router.", members), 32 * 4);  // No bias.
    EXPECT_EQ(CountParams(mixer, "", members), 32 * 4 + ExpertParams(32, 4, 512));
  }
  // Noisy first expert layer: mu and sigma for its weights and biases.
  NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 4, EncoderType::kImpala);
  config.head.noisy = true;
  auto mixer = Make(config, Shapes(config, AtariIo()), members, 7, std::make_shared<NoiseSource>(1));
  EXPECT_EQ(CountParams(mixer, "experts.", members), 4 * (2 * (32 * 512 + 512) + 512 * 32 + 32));
}

// ---------------------------------------------------------------------------
// SoftMoE.

TEST(SoftMoeTest, DispatchSumsOverTokensAndCombineOverSlots) {
  torch::manual_seed(1);
  for (bool normalize : {false, true}) {
    NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 4);
    config.mixer.normalize = normalize;
    const MixerOutput out = Make(config, Shapes(config, MinatarIo()), 2)->forward(torch::randn({2, 3, 100, 16}));
    EXPECT_TRUE(torch::allclose(out.dispatch.sum(2), torch::ones({2, 3, 4, 25}), 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(out.combine.sum({3, 4}), torch::ones({2, 3, 100}), 1e-5, 1e-5));
    EXPECT_TRUE((out.dispatch > 0).all().item<bool>());
  }
}

TEST(SoftMoeTest, EquivariantToTokenPermutations) {
  torch::manual_seed(2);
  for (bool normalize : {false, true}) {
    NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 4, EncoderType::kImpala);
    config.mixer.normalize = normalize;
    auto mixer = Make(config, Shapes(config, AtariIo()), 2);
    const torch::Tensor x = torch::randn({2, 3, 121, 32});
    const torch::Tensor perm = torch::randperm(121);
    const torch::Tensor y = mixer->forward(x).features.reshape({2, 3, 121, 32});
    const torch::Tensor y_perm = mixer->forward(x.index_select(2, perm)).features.reshape({2, 3, 121, 32});
    EXPECT_TRUE(torch::allclose(y_perm, y.index_select(2, perm), 1e-4, 1e-5));
  }
}

TEST(SoftMoeTest, MatchesPerSampleFormula) {
  // One member, one sample, spelled out with plain matrix products.
  torch::manual_seed(3);
  NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 2);
  config.mixer.expert_hidden_units = 5;
  auto mixer = Make(config, SmallShapes(6, 3, 2), 1);
  const torch::Tensor x = torch::randn({1, 1, 6, 3});
  const MixerOutput out = mixer->forward(x);
  const torch::Tensor xs = x[0][0];                                                // [T, D]
  const torch::Tensor logits = xs.matmul(Param(mixer, "phi")[0].reshape({3, 4}));  // [T, n p]
  const torch::Tensor dispatch = torch::softmax(logits, 0), combine = torch::softmax(logits, 1);
  const torch::Tensor slots = dispatch.t().matmul(xs);  // [n p, D]
  std::vector<torch::Tensor> outs;
  for (int64_t s = 0; s < 4; ++s) {
    const int64_t j = s / 2;
    const torch::Tensor h = torch::relu(slots[s].matmul(Param(mixer, "experts.hidden.weight")[0][j]) +
                                        Param(mixer, "experts.hidden.bias")[0][j][0]);
    outs.push_back(h.matmul(Param(mixer, "experts.output.weight")[0][j]) +
                   Param(mixer, "experts.output.bias")[0][j][0]);
  }
  const torch::Tensor expected = combine.matmul(torch::stack(outs));  // [T, D]
  EXPECT_TRUE(torch::allclose(out.features[0][0], expected.reshape({-1}), 1e-5, 1e-6));
}

TEST(SoftMoeTest, GradientsMatchFiniteDifferences) {
  torch::manual_seed(4);
  for (bool normalize : {false, true}) {
    SCOPED_TRACE(normalize ? "normalized" : "plain");
    NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 2);
    config.mixer.expert_hidden_units = 4;
    config.mixer.normalize = normalize;
    auto mixer = Make(config, SmallShapes(5, 3, 3), 1);
    mixer->to(torch::kFloat64);
    const torch::Tensor x = torch::randn({1, 2, 5, 3}, torch::kFloat64).requires_grad_(true);
    const torch::Tensor w = torch::randn({1, 2, 15}, torch::kFloat64);
    auto loss = [&] { return Objective(mixer->forward(x), w); };
    EXPECT_LT(GradientError(loss, x), 1e-6);
    EXPECT_LT(GradientError(loss, Param(mixer, "phi")), 1e-6);
    EXPECT_LT(GradientError(loss, Param(mixer, "experts.hidden.weight")), 1e-6);
    if (normalize) {
      EXPECT_LT(GradientError(loss, Param(mixer, "scale")), 1e-6);
    }
  }
}

TEST(SoftMoeTest, NormalizationHandlesZeroTokens) {
  NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 2);
  config.mixer.normalize = true;
  config.mixer.expert_hidden_units = 8;
  auto mixer = Make(config, Shapes(config, MinatarIo()), 1);
  const torch::Tensor x = torch::zeros({1, 2, 100, 16}).requires_grad_(true);
  const MixerOutput out = mixer->forward(x);
  out.features.sum().backward();
  EXPECT_TRUE(AllFinite(out.features));
  EXPECT_TRUE(AllFinite(x.grad()));
  EXPECT_TRUE(AllFinite(Param(mixer, "phi").grad()));
}

// ---------------------------------------------------------------------------
// Token choice.

// Sets a parameter's values (no autograd).
void Set(const torch::Tensor& param, const torch::Tensor& value) {
  torch::NoGradGuard no_grad;
  param.copy_(value.reshape(param.sizes()));
}

// Expert j of member 0 applied to token x [D].
torch::Tensor ExpertOf(const std::shared_ptr<MixerBase>& m, int64_t j, const torch::Tensor& x) {
  const torch::Tensor h =
      torch::relu(x.matmul(Param(m, "experts.hidden.weight")[0][j]) + Param(m, "experts.hidden.bias")[0][j][0]);
  return h.matmul(Param(m, "experts.output.weight")[0][j]) + Param(m, "experts.output.bias")[0][j][0];
}

TEST(TokenChoiceTest, CapacityDropsTokensBeyondCapacityInTokenOrder) {
  torch::manual_seed(5);
  NetworkConfig config = MoeConfig(MixerType::kTokenChoice, 2);
  config.mixer.expert_hidden_units = 8;
  config.mixer.capacity = 2;
  auto mixer = Make(config, SmallShapes(6, 2, 2), 1);
  // Router logits 4 x: a token goes to expert 0 when x_0 > x_1.
  Set(Param(mixer, "router.weight"), 4 * torch::eye(2));
  for (const char* bias : {"experts.hidden.bias", "experts.output.bias"}) {
    Set(Param(mixer, bias), 0.1 * torch::randn_like(Param(mixer, bias)));
  }
  // Expert 0 is chosen by tokens 0, 2, 3, 5 (keeps 0 and 2), expert 1 by 1, 4.
  const torch::Tensor x =
      torch::tensor({1.0f, 0.0f, 0.0f, 1.0f, 2.0f, 0.5f, 3.0f, 0.0f, 0.0f, 2.0f, 1.5f, 0.0f}).reshape({1, 1, 6, 2});
  const MixerOutput out = mixer->forward(x);
  const torch::Tensor y = out.features.reshape({6, 2});
  const torch::Tensor probs = out.router_probs[0][0];
  const int64_t expert_of[] = {0, 1, 0, 0, 1, 0};
  for (int64_t i : {0, 1, 2, 4}) {
    const torch::Tensor expected = probs[i][expert_of[i]] * ExpertOf(mixer, expert_of[i], x[0][0][i]);
    EXPECT_TRUE(torch::allclose(y[i], expected, 1e-5, 1e-6)) << "token " << i;
    EXPECT_GT(y[i].abs().sum().item<float>(), 0.0f);
  }
  for (int64_t i : {3, 5}) {
    EXPECT_TRUE(y[i].eq(0).all().item<bool>()) << "token " << i << " should be dropped";
  }
  // Expert hidden activations: expert 0's slots hold tokens 0 and 2.
  const torch::Tensor h0 = torch::relu(x[0][0][2].matmul(Param(mixer, "experts.hidden.weight")[0][0]) +
                                       Param(mixer, "experts.hidden.bias")[0][0][0]);
  EXPECT_TRUE(torch::allclose(out.expert_hidden[0][0][0][1], h0, 1e-5, 1e-6));
}

TEST(TokenChoiceTest, ImportanceLoss) {
  NetworkConfig config = MoeConfig(MixerType::kTokenChoice, 2);
  config.mixer.expert_hidden_units = 4;
  config.mixer.load_balancing_loss_weight = 0.5;
  auto mixer = Make(config, SmallShapes(4, 2, 2), 2);
  const torch::Tensor x = torch::ones({2, 3, 4, 2});
  // Equal probabilities: balanced, loss 0.
  Set(Param(mixer, "router.weight"), torch::zeros({2, 2, 2}));
  const torch::Tensor balanced = mixer->forward(x).aux_loss;
  EXPECT_EQ(balanced.sizes(), (std::vector<int64_t>{2}));
  EXPECT_TRUE(torch::allclose(balanced, torch::zeros({2}), 0, 1e-7));
  // Member 1 sends everything to expert 0: importance (T, 0), CV^2 = 1.
  Set(Param(mixer, "router.weight"), torch::tensor({0.0f, 0.0f, 0.0f, 0.0f, 50.0f, 0.0f, 50.0f, 0.0f}));
  const torch::Tensor skewed = mixer->forward(x).aux_loss;
  EXPECT_NEAR(skewed[0].item<float>(), 0.0f, 1e-7);
  EXPECT_NEAR(skewed[1].item<float>(), 0.5f, 1e-5);
}

TEST(TokenChoiceTest, GradientsMatchFiniteDifferences) {
  torch::manual_seed(6);
  NetworkConfig config = MoeConfig(MixerType::kTokenChoice, 3);
  config.mixer.expert_hidden_units = 4;
  config.mixer.capacity = 2;  // Some of the 6 tokens are dropped.
  config.mixer.load_balancing_loss_weight = 0.3;
  auto mixer = Make(config, SmallShapes(6, 3, 2), 1);
  mixer->to(torch::kFloat64);
  const torch::Tensor x = torch::randn({1, 2, 6, 3}, torch::kFloat64).requires_grad_(true);
  const torch::Tensor w = torch::randn({1, 2, 18}, torch::kFloat64);
  // Away from ties: every token's top probability leads the runner-up clearly.
  const torch::Tensor top2 = std::get<0>(mixer->forward(x).router_probs.detach().topk(2, -1));
  ASSERT_GT((top2.select(-1, 0) - top2.select(-1, 1)).min().item<double>(), 1e-4);
  auto loss = [&] { return Objective(mixer->forward(x), w); };
  EXPECT_LT(GradientError(loss, x), 1e-6);
  EXPECT_LT(GradientError(loss, Param(mixer, "router.weight")), 1e-6);
  EXPECT_LT(GradientError(loss, Param(mixer, "experts.output.weight")), 1e-6);
}

// ---------------------------------------------------------------------------
// Expert choice.

TEST(ExpertChoiceTest, EachExpertTakesItsTopTokens) {
  torch::manual_seed(7);
  NetworkConfig config = MoeConfig(MixerType::kExpertChoice, 2);
  config.mixer.expert_hidden_units = 8;
  config.mixer.slots_per_expert = 2;
  auto mixer = Make(config, SmallShapes(5, 2, 2), 1);
  Set(Param(mixer, "router.weight"), 3 * torch::eye(2));
  // Gates of expert 0 rank tokens 3, 0, ...; expert 1 ranks tokens 4, 1, ...;
  // token 2 is nobody's pick.
  const torch::Tensor x =
      torch::tensor({1.0f, 0.0f, 0.0f, 1.0f, 0.2f, 0.1f, 2.0f, 0.0f, 0.0f, 2.0f}).reshape({1, 1, 5, 2});
  const MixerOutput out = mixer->forward(x);
  const torch::Tensor y = out.features.reshape({5, 2});
  const torch::Tensor probs = out.router_probs[0][0];
  const int64_t picked_by[] = {0, 1, -1, 0, 1};
  for (int64_t i = 0; i < 5; ++i) {
    if (picked_by[i] < 0) {
      EXPECT_TRUE(y[i].eq(0).all().item<bool>());
      continue;
    }
    const torch::Tensor expected = probs[i][picked_by[i]] * ExpertOf(mixer, picked_by[i], x[0][0][i]);
    EXPECT_TRUE(torch::allclose(y[i], expected, 1e-5, 1e-6)) << "token " << i;
  }
}

TEST(ExpertChoiceTest, TiesGoToLowerTokenIndices) {
  NetworkConfig config = MoeConfig(MixerType::kExpertChoice, 2);
  config.mixer.expert_hidden_units = 8;
  config.mixer.slots_per_expert = 3;
  auto mixer = Make(config, SmallShapes(7, 2, 3), 1);
  Set(Param(mixer, "router.weight"), torch::zeros({1, 2, 2}));  // Every gate is 1/2.
  const torch::Tensor x = torch::randn({1, 1, 7, 2});
  const torch::Tensor y = mixer->forward(x).features.reshape({7, 2});
  // Both experts pick tokens 0, 1, 2; token i < 3 gets (E_0(x) + E_1(x)) / 2.
  for (int64_t i = 0; i < 7; ++i) {
    if (i >= 3) {
      EXPECT_TRUE(y[i].eq(0).all().item<bool>()) << "token " << i;
      continue;
    }
    const torch::Tensor expected = 0.5 * (ExpertOf(mixer, 0, x[0][0][i]) + ExpertOf(mixer, 1, x[0][0][i]));
    EXPECT_TRUE(torch::allclose(y[i], expected, 1e-5, 1e-6)) << "token " << i;
  }
}

TEST(ExpertChoiceTest, UnlimitedCapacityProcessesEveryToken) {
  // slots = tokens: each token gets sum_j gate_j E_j(x), no token is left out.
  torch::manual_seed(8);
  NetworkConfig config = MoeConfig(MixerType::kExpertChoice, 2);
  config.mixer.expert_hidden_units = 8;
  config.mixer.slots_per_expert = 100;
  const NetworkShapes shapes = Shapes(config, MinatarIo());
  ASSERT_EQ(shapes.slots_per_expert, 100);
  auto mixer = Make(config, shapes, 1);
  const torch::Tensor x = torch::randn({1, 1, 100, 16});
  const MixerOutput out = mixer->forward(x);
  const torch::Tensor y = out.features.reshape({100, 16});
  const torch::Tensor probs = out.router_probs[0][0];
  for (int64_t i : {0, 37, 99}) {
    const torch::Tensor expected =
        probs[i][0] * ExpertOf(mixer, 0, x[0][0][i]) + probs[i][1] * ExpertOf(mixer, 1, x[0][0][i]);
    EXPECT_TRUE(torch::allclose(y[i], expected, 1e-4, 1e-6)) << "token " << i;
  }
}

TEST(ExpertChoiceTest, GradientsMatchFiniteDifferences) {
  torch::manual_seed(9);
  NetworkConfig config = MoeConfig(MixerType::kExpertChoice, 2);
  config.mixer.expert_hidden_units = 4;
  config.mixer.slots_per_expert = 2;
  auto mixer = Make(config, SmallShapes(5, 3, 2), 1);
  mixer->to(torch::kFloat64);
  const torch::Tensor x = torch::randn({1, 2, 5, 3}, torch::kFloat64).requires_grad_(true);
  const torch::Tensor w = torch::randn({1, 2, 15}, torch::kFloat64);
  // Away from ties: each expert's 2nd and 3rd best gates differ clearly.
  const torch::Tensor ranked =
      std::get<0>(mixer->forward(x).router_probs.detach().transpose(2, 3).sort(-1, /*descending=*/true));
  ASSERT_GT((ranked.select(-1, 1) - ranked.select(-1, 2)).min().item<double>(), 1e-4);
  auto loss = [&] { return Objective(mixer->forward(x), w); };
  EXPECT_LT(GradientError(loss, x), 1e-6);
  EXPECT_LT(GradientError(loss, Param(mixer, "router.weight")), 1e-6);
  EXPECT_LT(GradientError(loss, Param(mixer, "experts.hidden.bias")), 1e-6);
}

// ---------------------------------------------------------------------------
// Every variant.

TEST(MoeMemberTest, ThreeMembersEqualThreeSingleNetworks) {
  torch::manual_seed(10);
  for (MixerType type : kMoeTypes) {
    SCOPED_TRACE(static_cast<int>(type));
    NetworkConfig config = MoeConfig(type, 4);
    config.mixer.expert_hidden_units = 16;
    config.mixer.post_moe_dense = true;
    config.mixer.post_moe_dense_units = 8;
    config.mixer.normalize = true;
    config.mixer.load_balancing_loss_weight = type == MixerType::kTokenChoice ? 0.1 : 0.0;
    const NetworkShapes shapes = Shapes(config, MinatarIo());
    auto multi = Make(config, shapes, 3, /*seed=*/11);
    const torch::Tensor x = torch::randn({3, 4, 100, 16}).requires_grad_(true);
    const torch::Tensor w = torch::randn({3, 4, 8});
    const MixerOutput out = multi->forward(x);
    Objective(out, w).backward();
    for (int64_t e = 0; e < 3; ++e) {
      auto single = Make(config, shapes, 1, /*seed=*/100 + e);
      for (auto& p : single->named_parameters()) Set(p.value(), Param(multi, p.key()).narrow(0, e, 1));
      const torch::Tensor xe = x.detach().narrow(0, e, 1).clone().requires_grad_(true);
      const MixerOutput oe = single->forward(xe);
      Objective(oe, w.narrow(0, e, 1)).backward();
      EXPECT_TRUE(torch::allclose(oe.features, out.features.narrow(0, e, 1), 1e-4, 1e-6)) << "member " << e;
      EXPECT_TRUE(torch::allclose(xe.grad(), x.grad().narrow(0, e, 1), 1e-4, 1e-6)) << "member " << e;
      if (out.aux_loss.defined()) {
        EXPECT_TRUE(torch::allclose(oe.aux_loss, out.aux_loss.narrow(0, e, 1), 1e-4, 1e-7));
      }
      for (auto& p : single->named_parameters()) {
        EXPECT_TRUE(torch::allclose(p.value().grad(), Param(multi, p.key()).grad().narrow(0, e, 1), 1e-4, 1e-6))
            << p.key() << " member " << e;
      }
    }
  }
}

TEST(MoeNanTest, ForwardBackwardFiniteForEveryVariant) {
  torch::manual_seed(12);
  for (MixerType type : kMoeTypes) {
    for (bool noisy : {false, true}) {
      for (bool normalize : {false, true}) {
        for (bool post_dense : {false, true}) {
          SCOPED_TRACE(::testing::Message() << static_cast<int>(type) << noisy << normalize << post_dense);
          NetworkConfig config = MoeConfig(type, 4);
          config.mixer.expert_hidden_units = 16;
          config.mixer.normalize = normalize;
          config.mixer.post_moe_dense = post_dense;
          config.mixer.load_balancing_loss_weight = 0.01;
          config.head.noisy = noisy;
          auto noise = std::make_shared<NoiseSource>(3);
          noise->set_enabled(true);
          auto mixer = Make(config, Shapes(config, MinatarIo()), 2, 7, noise);
          // ReLU-like features with some all-zero tokens, and large values.
          torch::Tensor x = torch::relu(torch::randn({2, 3, 100, 16})) * 10;
          x.narrow(2, 0, 10).zero_();
          x.requires_grad_(true);
          const MixerOutput out = mixer->forward(x);
          Objective(out, torch::randn_like(out.features)).backward();
          EXPECT_TRUE(AllFinite(out.features));
          EXPECT_TRUE(AllFinite(out.expert_hidden));
          EXPECT_TRUE(AllFinite(out.aux_loss));
          EXPECT_TRUE(AllFinite(x.grad()));
          for (const auto& p : mixer->named_parameters()) {
            if (p.value().grad().defined()) {
              EXPECT_TRUE(AllFinite(p.value().grad())) << p.key();
            }
          }
        }
      }
    }
  }
}

TEST(MoeNoisyExpertsTest, NoiseOnlyWhenEnabledAndPerExpert) {
  torch::manual_seed(13);
  NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 2);
  config.mixer.expert_hidden_units = 8;
  config.head.noisy = true;
  auto noise = std::make_shared<NoiseSource>(5);
  auto mixer = Make(config, SmallShapes(6, 3, 3), 1, 7, noise);
  EXPECT_TRUE(Param(mixer, "experts.hidden.sigma_weight").gt(0).all().item<bool>());
  // Identical experts: with noise off they agree; with noise on each expert's
  // draw differs, so their hidden activations on the same slot input differ.
  for (const char* name : {"experts.hidden.mu_weight", "experts.hidden.mu_bias", "experts.output.weight"}) {
    Set(Param(mixer, name), Param(mixer, name).narrow(1, 0, 1).expand_as(Param(mixer, name)).clone());
  }
  Set(Param(mixer, "phi"), torch::zeros({1, 3, 2, 3}));  // Uniform dispatch: every slot is the token mean.
  const torch::Tensor x = torch::randn({1, 1, 6, 3});
  const torch::Tensor quiet = mixer->forward(x).expert_hidden;
  EXPECT_TRUE(torch::allclose(quiet.select(2, 0), quiet.select(2, 1)));
  EXPECT_TRUE(torch::equal(mixer->forward(x).expert_hidden, quiet));
  noise->set_enabled(true);
  const torch::Tensor noisy = mixer->forward(x).expert_hidden;
  EXPECT_FALSE(torch::allclose(noisy.select(2, 0), noisy.select(2, 1)));
  EXPECT_FALSE(torch::allclose(mixer->forward(x).expert_hidden, noisy));  // A fresh draw per call.
}

}  // namespace
}  // namespace tokenrl::nn::torch_backend
