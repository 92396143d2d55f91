// TorchLearner: the losses of learner.h against hand computation, the C51
// projection, Adam, member independence, parameter access and checkpoints.

#include "tokenrl/nn/torch/torch_learner.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "tokenrl/nn/learner.h"
#include "tokenrl/nn/torch/torch_learner_impl.h"

namespace tokenrl::nn::torch_backend {
namespace {

// ---------------------------------------------------------------------------
// Fixtures.

std::unique_ptr<Learner> Make(const NetworkConfig& network, const LearnerConfig& config, const NetworkIo& io,
                              int members) {
  RegisterTorchLearnerBackend();
  LearnerConfig torch_config = config;
  torch_config.backend = "torch";  // "auto" would pick the CPU engine.
  auto learner = MakeLearner(network, torch_config, io, members);
  EXPECT_TRUE(learner.ok()) << learner.status().ToString();
  return std::move(learner).value();
}

TorchLearner& Torch(Learner& learner) { return dynamic_cast<TorchLearner&>(learner); }

// A batch owning its arrays.
struct Batch {
  int batch_size = 0;
  std::vector<uint8_t> obs, next_obs;
  std::vector<int32_t> actions;
  std::vector<float> returns, discounts, weights;
  UpdateBatch View() const { return {batch_size, obs, actions, returns, discounts, next_obs, weights}; }
};

Batch RandomBatch(const NetworkIo& io, int members, int b, uint32_t seed) {
  std::mt19937 rng(seed);
  Batch batch;
  batch.batch_size = b;
  const size_t obs = static_cast<size_t>(members) * b * io.channels * io.height * io.width;
  for (size_t i = 0; i < obs; ++i) batch.obs.push_back(static_cast<uint8_t>(rng() % 2));
  for (size_t i = 0; i < obs; ++i) batch.next_obs.push_back(static_cast<uint8_t>(rng() % 2));
  for (int i = 0; i < members * b; ++i) {
    batch.actions.push_back(static_cast<int32_t>(rng() % io.num_actions));
    batch.returns.push_back(static_cast<float>(rng() % 5) - 2.0f);
    batch.discounts.push_back(rng() % 4 == 0 ? 0.0f : 0.99f);
  }
  return batch;
}

NetworkIo MinatarIo() { return {.channels = 4, .height = 10, .width = 10, .num_actions = 6, .input_scale = 1.0f}; }

NetworkConfig SmallNetwork(MixerType mixer = MixerType::kFlatten) {
  NetworkConfig c;
  c.mixer.type = mixer;
  c.mixer.hidden_units = 32;
  c.mixer.expert_hidden_units = 16;
  c.head.num_atoms = 11;
  return c;
}

NetworkConfig Rainbow(MixerType mixer = MixerType::kSoftMoe) {
  NetworkConfig c = SmallNetwork(mixer);
  c.head.distributional = c.head.dueling = c.head.noisy = true;
  return c;
}

std::vector<float> Get(const Learner& learner, const std::string& name, int member) {
  for (const ParameterInfo& p : learner.Parameters()) {
    if (p.name == name) {
      std::vector<float> v(static_cast<size_t>(p.numel()));
      EXPECT_TRUE(learner.GetParameter(name, member, v).ok());
      return v;
    }
  }
  ADD_FAILURE() << "no parameter " << name;
  return {};
}

void Set(Learner& learner, const std::string& name, int member, const std::vector<float>& values) {
  const Status st = learner.SetParameter(name, member, values);
  ASSERT_TRUE(st.ok()) << st.ToString();
}

// ---------------------------------------------------------------------------
// A tiny network computed by hand: 1 channel, 2x2 grid, 2 actions. The conv
// is set to the identity (centre tap 1), so the flattened features are the
// pixels; then Dense(4 -> 2) + ReLU and the Q head Dense(2 -> 2).

struct TinyWeights {
  std::vector<float> w1, b1, w2, b2;  // [4, 2], [2], [2, 2], [2]
};

NetworkIo TinyIo() { return {.channels = 1, .height = 2, .width = 2, .num_actions = 2, .input_scale = 1.0f}; }

NetworkConfig TinyNetwork() {
  NetworkConfig c;
  c.encoder.minatar_channels = 1;
  c.mixer.hidden_units = 2;
  return c;
}

void SetTiny(Learner& learner, const TinyWeights& w, int member = 0) {
  std::vector<float> conv(9, 0.0f);
  conv[4] = 1.0f;
  Set(learner, "encoder.conv.weight", member, conv);
  Set(learner, "encoder.conv.bias", member, {0.0f});
  Set(learner, "mixer.dense.weight", member, w.w1);
  Set(learner, "mixer.dense.bias", member, w.b1);
  Set(learner, "head.output.weight", member, w.w2);
  Set(learner, "head.output.bias", member, w.b2);
}

std::vector<double> TinyQ(const TinyWeights& w, const uint8_t* x) {
  double h[2];
  for (int j = 0; j < 2; ++j) {
    double s = w.b1[j];
    for (int i = 0; i < 4; ++i) s += x[i] * w.w1[i * 2 + j];
    h[j] = std::max(s, 0.0);
  }
  std::vector<double> q(2);
  for (int a = 0; a < 2; ++a) q[a] = w.b2[a] + h[0] * w.w2[0 * 2 + a] + h[1] * w.w2[1 * 2 + a];
  return q;
}

const TinyWeights kOnline{
    {0.5f, -0.25f, 0.1f, 0.4f, -0.3f, 0.2f, 0.25f, 0.5f}, {0.1f, -0.1f}, {1.0f, -0.5f, 0.5f, 2.0f}, {0.2f, -0.3f}};
const TinyWeights kTarget{
    {0.3f, 0.2f, -0.4f, 0.1f, 0.6f, -0.2f, 0.1f, 0.3f}, {0.0f, 0.2f}, {-1.0f, 0.5f, 1.5f, 0.25f}, {0.5f, 0.1f}};

Batch TinyBatch() {
  Batch b;
  b.batch_size = 3;
  b.obs = {1, 2, 0, 3, 0, 1, 1, 0, 4, 0, 2, 1};
  b.next_obs = {2, 0, 1, 1, 3, 3, 0, 1, 0, 0, 1, 2};
  b.actions = {0, 1, 1};
  b.returns = {1.0f, -0.5f, 2.0f};
  b.discounts = {0.9f, 0.0f, 0.5f};
  return b;
}

// Per-sample (y - Q)^2 or Huber from the tiny network by hand; online and
// target weights as given, double Q optional.
std::vector<double> TinyExpectedLosses(const Batch& b, bool double_q, bool huber, double delta) {
  std::vector<double> losses;
  for (int i = 0; i < b.batch_size; ++i) {
    const auto q = TinyQ(kOnline, &b.obs[i * 4]);
    const auto next_target = TinyQ(kTarget, &b.next_obs[i * 4]);
    const auto next_online = TinyQ(kOnline, &b.next_obs[i * 4]);
    const auto& chooser = double_q ? next_online : next_target;
    const int a_star = chooser[1] > chooser[0] ? 1 : 0;
    const double y = b.returns[i] + b.discounts[i] * next_target[a_star];
    const double d = y - q[b.actions[i]];
    if (!huber) {
      losses.push_back(d * d);
    } else {
      losses.push_back(std::abs(d) <= delta ? 0.5 * d * d : delta * (std::abs(d) - 0.5 * delta));
    }
  }
  return losses;
}

void CheckTinyLoss(bool double_q, bool huber) {
  SCOPED_TRACE(testing::Message() << "double_q=" << double_q << " huber=" << huber);
  LearnerConfig config;
  config.learning_rate = 0.0;
  config.double_q = double_q;
  config.td_loss = huber ? TdLoss::kHuber : TdLoss::kMse;
  config.huber_delta = 1.0;  // Sample 0 falls in the quadratic part (|d| = 0.89), the others beyond.
  auto learner = Make(TinyNetwork(), config, TinyIo(), 1);
  SetTiny(*learner, kTarget);
  learner->SyncTarget();
  SetTiny(*learner, kOnline);
  Batch batch = TinyBatch();
  batch.weights = {1.0f, 0.5f, 2.0f};
  UpdateResult result;
  ASSERT_TRUE(learner->Update(batch.View(), result).ok());
  const auto expected = TinyExpectedLosses(batch, double_q, huber, 1.0);
  ASSERT_EQ(result.per_sample_loss.size(), 3u);
  double weighted = 0, q_mean = 0;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(result.per_sample_loss[i], expected[i], 1e-5 * std::max(1.0, expected[i])) << i;
    weighted += batch.weights[i] * expected[i] / 3.0;
    q_mean += TinyQ(kOnline, &batch.obs[i * 4])[batch.actions[i]] / 3.0;
  }
  ASSERT_EQ(result.loss.size(), 1u);
  EXPECT_NEAR(result.loss[0], weighted, 1e-5);
  EXPECT_NEAR(result.q_mean[0], q_mean, 1e-5);
}

TEST(TorchLearnerTest, MseTargetsMatchHandComputation) { CheckTinyLoss(false, false); }
TEST(TorchLearnerTest, HuberTargetsMatchHandComputation) { CheckTinyLoss(false, true); }
TEST(TorchLearnerTest, DoubleQTargetsMatchHandComputation) {
  // The two rules must pick different actions somewhere for this to test anything.
  const Batch b = TinyBatch();
  bool differs = false;
  for (int i = 0; i < b.batch_size; ++i) {
    const auto t = TinyQ(kTarget, &b.next_obs[i * 4]), o = TinyQ(kOnline, &b.next_obs[i * 4]);
    differs |= (t[1] > t[0]) != (o[1] > o[0]) && b.discounts[i] > 0;
  }
  ASSERT_TRUE(differs);
  CheckTinyLoss(true, false);
  CheckTinyLoss(true, true);
}

TEST(TorchLearnerTest, QValuesAndGreedyActionsTieToLowestIndex) {
  auto learner = Make(TinyNetwork(), LearnerConfig{}, TinyIo(), 1);
  SetTiny(*learner, kOnline);
  const std::vector<uint8_t> obs{1, 2, 0, 3, 0, 1, 1, 0};
  std::vector<float> q(4);
  learner->QValues(obs, 2, false, q);
  for (int i = 0; i < 2; ++i) {
    const auto expected = TinyQ(kOnline, &obs[i * 4]);
    EXPECT_NEAR(q[i * 2], expected[0], 1e-5);
    EXPECT_NEAR(q[i * 2 + 1], expected[1], 1e-5);
  }
  // Zero head weights, equal biases: every action ties.
  Set(*learner, "head.output.weight", 0, {0, 0, 0, 0});
  Set(*learner, "head.output.bias", 0, {3.0f, 3.0f});
  std::vector<int32_t> actions(2, -1);
  learner->GreedyActions(obs, 2, false, actions);
  EXPECT_EQ(actions, (std::vector<int32_t>{0, 0}));
  Set(*learner, "head.output.bias", 0, {3.0f, 3.5f});
  learner->GreedyActions(obs, 2, false, actions);
  EXPECT_EQ(actions, (std::vector<int32_t>{1, 1}));
}

// ---------------------------------------------------------------------------
// C51.

TEST(C51Test, ProjectionMatchesHandComputation) {
  const torch::Tensor support = torch::tensor({-1.0f, 0.0f, 1.0f});
  const torch::Tensor p =
      torch::tensor({{0.2f, 0.3f, 0.5f}, {0.2f, 0.3f, 0.5f}, {0.2f, 0.3f, 0.5f}, {0.2f, 0.3f, 0.5f}});
  // Tz = G + g z: (0.5, 0.5) -> (0, 0.5, 1): atoms 0 and 2 land exactly on z1 and z2.
  // (-3, 1) -> all clipped to -1. (0.25, 0) -> all at 0.25. (2, 1) -> all clipped to 1.
  const torch::Tensor returns = torch::tensor({0.5f, -3.0f, 0.25f, 2.0f});
  const torch::Tensor discounts = torch::tensor({0.5f, 1.0f, 0.0f, 1.0f});
  const torch::Tensor m = ProjectDistribution(p, support, returns, discounts);
  const torch::Tensor expected =
      torch::tensor({{0.0f, 0.35f, 0.65f}, {1.0f, 0.0f, 0.0f}, {0.0f, 0.75f, 0.25f}, {0.0f, 0.0f, 1.0f}});
  EXPECT_TRUE(torch::allclose(m, expected, 1e-6, 1e-6)) << m;
}

TEST(C51Test, IdentityProjectionOnTheDefaultSupport) {
  const torch::Tensor support = torch::linspace(-10.0, 10.0, 51);
  const torch::Tensor p = torch::softmax(torch::randn({2, 3, 51}), -1);
  const torch::Tensor m = ProjectDistribution(p, support, torch::zeros({2, 3}), torch::ones({2, 3}));
  EXPECT_TRUE(torch::allclose(m, p, 1e-5, 1e-6));
  // Shifting by exactly one atom moves the mass one atom up; the top atom keeps its own and the shifted one.
  const torch::Tensor shifted = ProjectDistribution(p, support, torch::full({2, 3}, 0.4f), torch::ones({2, 3}));
  EXPECT_TRUE(torch::allclose(shifted.narrow(-1, 1, 49), p.narrow(-1, 0, 49), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(shifted.sum(-1), torch::ones({2, 3}), 1e-5));
}

TEST(C51Test, LossGradientMatchesFiniteDifferencesInFloat64) {
  torch::manual_seed(0);
  const auto f64 = torch::TensorOptions(torch::kFloat64);
  const torch::Tensor support = torch::linspace(-2.0, 2.0, 7, f64);
  torch::Tensor logits = torch::randn({2, 3, 7}, f64).requires_grad_(true);
  torch::Tensor next_p = torch::softmax(torch::randn({2, 3, 7}, f64), -1).requires_grad_(true);
  const torch::Tensor returns = torch::randn({2, 3}, f64) * 0.7;
  const torch::Tensor discounts = torch::rand({2, 3}, f64);
  auto loss = [&](const torch::Tensor& l, const torch::Tensor& p) {
    return CrossEntropyPerSample(l, ProjectDistribution(p, support, returns, discounts)).sum();
  };
  const auto grads = torch::autograd::grad({loss(logits, next_p)}, {logits, next_p});
  const double h = 1e-6;
  for (int which = 0; which < 2; ++which) {
    const torch::Tensor base = (which == 0 ? logits : next_p).detach();
    const torch::Tensor flat_grad = grads[which].reshape({-1});
    for (int64_t k = 0; k < base.numel(); ++k) {
      torch::Tensor plus = base.clone(), minus = base.clone();
      plus.view({-1})[k] += h;
      minus.view({-1})[k] -= h;
      const double fd = which == 0
                            ? (loss(plus, next_p.detach()) - loss(minus, next_p.detach())).item<double>() / (2 * h)
                            : (loss(logits.detach(), plus) - loss(logits.detach(), minus)).item<double>() / (2 * h);
      EXPECT_NEAR(flat_grad[k].item<double>(), fd, 1e-6) << (which == 0 ? "logits " : "probabilities ") << k;
    }
  }
}

TEST(C51Test, LearnerLossIsCrossEntropyWithProjectedTarget) {
  NetworkConfig network = SmallNetwork();
  network.head.distributional = true;
  LearnerConfig config;
  config.learning_rate = 0.0;
  config.double_q = true;
  const NetworkIo io = MinatarIo();
  auto learner = Make(network, config, io, 2);
  TorchLearner& t = Torch(*learner);
  // A target network that differs from the online one.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : t.target()->parameters()) p.add_(torch::randn_like(p) * 0.05);
  }
  const Batch batch = RandomBatch(io, 2, 5, 1);
  UpdateResult result;
  ASSERT_TRUE(learner->Update(batch.View(), result).ok());
  // Recompute from the networks' outputs and the loss functions.
  torch::NoGradGuard no_grad;
  auto obs = [&](const std::vector<uint8_t>& v) {
    return torch::from_blob(const_cast<uint8_t*>(v.data()), {2, 5, 4, 10, 10}, torch::kUInt8);
  };
  const NetworkOutput out = t.online()->forward(obs(batch.obs));
  const NetworkOutput next_online = t.online()->forward(obs(batch.next_obs));
  const NetworkOutput next_target = t.target()->forward(obs(batch.next_obs));
  const torch::Tensor support = torch::linspace(-10.0, 10.0, 11);
  for (int e = 0; e < 2; ++e) {
    for (int i = 0; i < 5; ++i) {
      const int a = batch.actions[e * 5 + i];
      const int64_t a_star = next_online.q[e][i].argmax().item<int64_t>();
      const torch::Tensor target =
          ProjectDistribution(next_target.probabilities[e][i][a_star], support, torch::tensor(batch.returns[e * 5 + i]),
                              torch::tensor(batch.discounts[e * 5 + i]));
      const double ce = -(target * torch::log_softmax(out.logits[e][i][a], -1)).sum().item<double>();
      EXPECT_NEAR(result.per_sample_loss[e * 5 + i], ce, 1e-5) << e << " " << i;
    }
  }
}

// ---------------------------------------------------------------------------
// Training and Adam.

TEST(TorchLearnerTest, UpdateReducesLossOnAFixedBatch) {
  for (const NetworkConfig& network : {SmallNetwork(), Rainbow(MixerType::kSoftMoe)}) {
    LearnerConfig config;
    config.learning_rate = 1e-3;
    auto learner = Make(network, config, MinatarIo(), 2);
    Batch batch = RandomBatch(MinatarIo(), 2, 16, 2);
    // C51: terminal transitions, so that the target distributions have entropy
    // at most ln 2 and the cross-entropy has room to fall.
    if (network.head.distributional) std::fill(batch.discounts.begin(), batch.discounts.end(), 0.0f);
    UpdateResult first, last;
    ASSERT_TRUE(learner->Update(batch.View(), first).ok());
    for (int step = 0; step < 60; ++step) ASSERT_TRUE(learner->Update(batch.View(), last).ok());
    for (int e = 0; e < 2; ++e) {
      EXPECT_TRUE(std::isfinite(last.loss[e]));
      EXPECT_LT(last.loss[e], 0.7 * first.loss[e]) << "member " << e;
    }
  }
}

TEST(TorchLearnerTest, AdamMatchesHandComputation) {
  LearnerConfig config;
  config.learning_rate = 0.01;
  config.adam_epsilon = 1e-3;
  auto learner = Make(TinyNetwork(), config, TinyIo(), 1);
  SetTiny(*learner, kOnline);
  learner->SyncTarget();
  const Batch batch = TinyBatch();
  TorchLearner& t = Torch(*learner);
  // Two steps; recompute the second step's update from the gradient.
  UpdateResult r;
  ASSERT_TRUE(learner->Update(batch.View(), r).ok());
  const auto [m1, v1] = t.AdamMoments("head.output.bias");
  const torch::Tensor m_before = m1.clone(), v_before = v1.clone();
  const std::vector<float> before = Get(*learner, "head.output.bias", 0);
  ASSERT_TRUE(learner->Update(batch.View(), r).ok());
  const auto [m2, v2] = t.AdamMoments("head.output.bias");
  // g from m: m2 = 0.9 m1 + 0.1 g.
  const torch::Tensor g = (m2 - 0.9 * m_before) / 0.1;
  EXPECT_TRUE(torch::allclose(v2, 0.999 * v_before + 0.001 * g * g, 1e-5, 1e-9));
  const std::vector<float> after = Get(*learner, "head.output.bias", 0);
  for (int k = 0; k < 2; ++k) {
    const double m_hat = m2.view({-1})[k].item<double>() / (1 - 0.9 * 0.9);
    const double v_hat = v2.view({-1})[k].item<double>() / (1 - 0.999 * 0.999);
    EXPECT_NEAR(after[k] - before[k], -0.01 * m_hat / (std::sqrt(v_hat) + 1e-3), 1e-6);
  }
  EXPECT_EQ(t.adam_step(), 2);
}

// Member e of an E=3 learner behaves as an E=1 learner holding its weights.
void CheckMembersMatchSingleLearners(const NetworkConfig& network, const LearnerConfig& config) {
  const NetworkIo io = MinatarIo();
  constexpr int kMembers = 3, kBatch = 4;
  auto big = Make(network, config, io, kMembers);
  const Batch batch = RandomBatch(io, kMembers, kBatch, 3);
  const size_t obs_per_member = static_cast<size_t>(kBatch) * 4 * 10 * 10;
  std::vector<std::unique_ptr<Learner>> small;
  for (int e = 0; e < kMembers; ++e) {
    LearnerConfig c = config;
    c.seed = 1000 + e;  // Different init, overwritten below.
    small.push_back(Make(network, c, io, 1));
    for (const ParameterInfo& p : big->Parameters()) Set(*small[e], p.name, 0, Get(*big, p.name, e));
    small[e]->SyncTarget();
  }
  for (int step = 0; step < 3; ++step) {
    UpdateResult big_result;
    ASSERT_TRUE(big->Update(batch.View(), big_result).ok());
    for (int e = 0; e < kMembers; ++e) {
      auto slice = [&](const auto& v, size_t per) {
        using T = typename std::decay_t<decltype(v)>::value_type;
        return std::vector<T>(v.begin() + e * per, v.begin() + (e + 1) * per);
      };
      Batch b;
      b.batch_size = kBatch;
      b.obs = slice(batch.obs, obs_per_member);
      b.next_obs = slice(batch.next_obs, obs_per_member);
      b.actions = slice(batch.actions, kBatch);
      b.returns = slice(batch.returns, kBatch);
      b.discounts = slice(batch.discounts, kBatch);
      UpdateResult r;
      ASSERT_TRUE(small[e]->Update(b.View(), r).ok());
      for (int i = 0; i < kBatch; ++i) {
        EXPECT_NEAR(r.per_sample_loss[i], big_result.per_sample_loss[e * kBatch + i],
                    1e-4 * std::max(1.0f, std::abs(r.per_sample_loss[i])));
      }
      EXPECT_NEAR(r.loss[0], big_result.loss[e], 1e-4 * std::max(1.0f, std::abs(r.loss[0])));
      EXPECT_NEAR(r.q_mean[0], big_result.q_mean[e], 1e-5);
      // Outputs and post-Adam weights.
      std::vector<float> q_small(6), q_big(kMembers * 6);
      std::vector<uint8_t> all_obs;
      for (int k = 0; k < kMembers; ++k) all_obs.insert(all_obs.end(), b.obs.begin(), b.obs.begin() + 400);
      small[e]->QValues(std::span(b.obs).first(400), 1, false, q_small);
      big->QValues(all_obs, 1, false, q_big);
      for (int a = 0; a < 6; ++a) EXPECT_NEAR(q_small[a], q_big[e * 6 + a], 1e-4);
      for (const ParameterInfo& p : big->Parameters()) {
        const auto s = Get(*small[e], p.name, 0), w = Get(*big, p.name, e);
        for (size_t k = 0; k < s.size(); ++k) ASSERT_NEAR(s[k], w[k], 1e-5) << p.name << " member " << e;
      }
    }
  }
}

TEST(TorchLearnerTest, MembersEqualSingleMemberLearners) {
  LearnerConfig config;
  config.learning_rate = 1e-3;
  CheckMembersMatchSingleLearners(SmallNetwork(), config);
  config.double_q = true;
  config.td_loss = TdLoss::kHuber;
  CheckMembersMatchSingleLearners(SmallNetwork(MixerType::kSoftMoe), config);
  NetworkConfig c51 = SmallNetwork(MixerType::kExpertChoice);
  c51.head.distributional = c51.head.dueling = true;
  CheckMembersMatchSingleLearners(c51, config);
}

TEST(TorchLearnerTest, ResetOptimizerStateTouchesOneParameterOfOneMember) {
  auto learner = Make(SmallNetwork(), LearnerConfig{}, MinatarIo(), 3);
  const Batch batch = RandomBatch(MinatarIo(), 3, 8, 4);
  UpdateResult r;
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(learner->Update(batch.View(), r).ok());
  TorchLearner& t = Torch(*learner);
  std::map<std::string, std::pair<torch::Tensor, torch::Tensor>> before;
  for (const ParameterInfo& p : learner->Parameters()) {
    const auto [m, v] = t.AdamMoments(p.name);
    before[p.name] = {m.clone(), v.clone()};
  }
  ASSERT_TRUE(learner->ResetOptimizerState("mixer.dense.weight", 1).ok());
  for (const ParameterInfo& p : learner->Parameters()) {
    const auto [m, v] = t.AdamMoments(p.name);
    for (int e = 0; e < 3; ++e) {
      if (p.name == "mixer.dense.weight" && e == 1) {
        EXPECT_EQ(m[e].abs().max().item<float>(), 0.0f);
        EXPECT_EQ(v[e].abs().max().item<float>(), 0.0f);
      } else {
        EXPECT_TRUE(torch::equal(m[e], before[p.name].first[e])) << p.name << " " << e;
        EXPECT_TRUE(torch::equal(v[e], before[p.name].second[e])) << p.name << " " << e;
      }
    }
  }
  EXPECT_GT(before["mixer.dense.weight"].second[1].abs().max().item<float>(), 0.0f);
  EXPECT_EQ(learner->ResetOptimizerState("nope", 0).code(), Status::Code::kNotFound);
  EXPECT_EQ(learner->ResetOptimizerState("mixer.dense.weight", 3).code(), Status::Code::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Parameter access, validation, devices.

TEST(TorchLearnerTest, ParameterAccessRoundTripAndErrors) {
  auto learner = Make(SmallNetwork(), LearnerConfig{}, MinatarIo(), 2);
  const auto params = learner->Parameters();
  ASSERT_EQ(params.size(), 6u);
  EXPECT_EQ(params[0].name, "encoder.conv.weight");
  EXPECT_EQ(params[0].shape, (std::vector<int64_t>{16, 4, 3, 3}));
  EXPECT_EQ(params[2].name, "mixer.dense.weight");
  EXPECT_EQ(params[2].shape, (std::vector<int64_t>{1600, 32}));
  EXPECT_EQ(params[5].shape, (std::vector<int64_t>{1, 6}));
  std::vector<float> values(static_cast<size_t>(params[2].numel()));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 1e-3f;
  const std::vector<float> other_member = Get(*learner, "mixer.dense.weight", 0);
  Set(*learner, "mixer.dense.weight", 1, values);
  EXPECT_EQ(Get(*learner, "mixer.dense.weight", 1), values);
  EXPECT_EQ(Get(*learner, "mixer.dense.weight", 0), other_member);
  std::vector<float> buffer(values.size());
  EXPECT_EQ(learner->GetParameter("mixer.nope", 0, buffer).code(), Status::Code::kNotFound);
  EXPECT_EQ(learner->GetParameter("mixer.dense.weight", 2, buffer).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(learner->GetParameter("mixer.dense.weight", -1, buffer).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(learner->GetParameter("mixer.dense.bias", 0, buffer).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(learner->SetParameter("nope", 0, values).code(), Status::Code::kNotFound);
  EXPECT_EQ(learner->SetParameter("mixer.dense.weight", 5, values).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(learner->SetParameter("mixer.dense.bias", 0, values).code(), Status::Code::kInvalidArgument);
}

TEST(TorchLearnerTest, BadBatchIsRejectedWithoutChanges) {
  auto learner = Make(SmallNetwork(), LearnerConfig{}, MinatarIo(), 2);
  const std::vector<float> before = Get(*learner, "head.output.weight", 0);
  UpdateResult r;
  Batch batch = RandomBatch(MinatarIo(), 2, 4, 5);
  batch.actions[3] = 6;
  EXPECT_EQ(learner->Update(batch.View(), r).code(), Status::Code::kInvalidArgument);
  batch.actions[3] = -1;
  EXPECT_EQ(learner->Update(batch.View(), r).code(), Status::Code::kInvalidArgument);
  batch.actions[3] = 0;
  batch.returns.pop_back();
  EXPECT_EQ(learner->Update(batch.View(), r).code(), Status::Code::kInvalidArgument);
  batch = RandomBatch(MinatarIo(), 2, 4, 5);
  batch.weights = {1.0f};
  EXPECT_EQ(learner->Update(batch.View(), r).code(), Status::Code::kInvalidArgument);
  batch.weights.clear();
  batch.obs.resize(batch.obs.size() - 1);
  EXPECT_EQ(learner->Update(batch.View(), r).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Get(*learner, "head.output.weight", 0), before);
  EXPECT_EQ(Torch(*learner).adam_step(), 0);
}

TEST(TorchLearnerTest, DevicesAndConfigErrors) {
  RegisterTorchLearnerBackend();
  LearnerConfig config;
  config.device = "tpu";
  EXPECT_EQ(MakeLearner(SmallNetwork(), config, MinatarIo(), 1).status().code(), Status::Code::kInvalidArgument);
  config.device = "cuda";
  if (!torch::cuda::is_available()) {
    const auto st = MakeLearner(SmallNetwork(), config, MinatarIo(), 1).status();
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(st.message().find("CUDA"), std::string::npos) << st.message();
  }
  NetworkConfig bad = SmallNetwork();
  bad.head.distributional = true;
  bad.head.v_min = 1.0;
  bad.head.v_max = 1.0;
  EXPECT_EQ(MakeLearner(bad, LearnerConfig{}, MinatarIo(), 1).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(MakeLearner(SmallNetwork(), LearnerConfig{}, MinatarIo(), 0).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_NE(std::find(LearnerBackends().begin(), LearnerBackends().end(), "torch"), LearnerBackends().end());
}

TEST(TorchLearnerTest, CudaLearnerMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  LearnerConfig cpu_config, cuda_config;
  cuda_config.device = "cuda";
  const NetworkConfig network = SmallNetwork(MixerType::kSoftMoe);
  auto cpu = Make(network, cpu_config, MinatarIo(), 2);
  auto cuda = Make(network, cuda_config, MinatarIo(), 2);
  const Batch batch = RandomBatch(MinatarIo(), 2, 8, 6);
  UpdateResult a, b;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cpu->Update(batch.View(), a).ok());
    ASSERT_TRUE(cuda->Update(batch.View(), b).ok());
  }
  for (size_t i = 0; i < a.per_sample_loss.size(); ++i) {
    EXPECT_NEAR(a.per_sample_loss[i], b.per_sample_loss[i], 1e-3 * std::max(1.0f, a.per_sample_loss[i]));
  }
}

TEST(TorchLearnerTest, NoiseFlagControlsNoisyLayers) {
  auto learner = Make(Rainbow(MixerType::kFlatten), LearnerConfig{}, MinatarIo(), 2);
  const Batch batch = RandomBatch(MinatarIo(), 2, 3, 7);
  std::vector<float> q1(36), q2(36), q3(36);
  learner->QValues(batch.obs, 3, false, q1);
  learner->QValues(batch.obs, 3, false, q2);
  EXPECT_EQ(q1, q2);
  learner->QValues(batch.obs, 3, true, q3);
  EXPECT_NE(q1, q3);
}

// ---------------------------------------------------------------------------
// Checkpoints.

TEST(TorchLearnerTest, SaveLoadContinuesIdentically) {
  for (const NetworkConfig& network : {SmallNetwork(), Rainbow(MixerType::kSoftMoe)}) {
    LearnerConfig config;
    config.learning_rate = 1e-3;
    config.double_q = true;
    auto a = Make(network, config, MinatarIo(), 2);
    const Batch batch = RandomBatch(MinatarIo(), 2, 8, 8);
    UpdateResult r;
    ASSERT_TRUE(a->Update(batch.View(), r).ok());
    a->SyncTarget();
    ASSERT_TRUE(a->Update(batch.View(), r).ok());
    ByteWriter saved;
    a->Save(saved);

    config.seed = 77;  // Different initial weights and noise: all overwritten by Load.
    auto b = Make(network, config, MinatarIo(), 2);
    ByteReader reader(saved.bytes());
    const Status st = b->Load(reader);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ByteWriter resaved;
    b->Save(resaved);
    EXPECT_EQ(resaved.bytes(), saved.bytes());

    UpdateResult ra, rb;
    ASSERT_TRUE(a->Update(batch.View(), ra).ok());
    ASSERT_TRUE(b->Update(batch.View(), rb).ok());
    EXPECT_EQ(ra.per_sample_loss, rb.per_sample_loss);
    ByteWriter sa, sb;
    a->Save(sa);
    b->Save(sb);
    EXPECT_EQ(sa.bytes(), sb.bytes());
    std::vector<float> qa(12), qb(12);
    a->QValues(std::span(batch.obs).first(800), 1, true, qa);
    b->QValues(std::span(batch.obs).first(800), 1, true, qb);
    EXPECT_EQ(qa, qb);
  }
}

TEST(TorchLearnerTest, LoadRejectsOtherNetworksAndTruncatedBytes) {
  auto learner = Make(SmallNetwork(), LearnerConfig{}, MinatarIo(), 2);
  ByteWriter saved;
  learner->Save(saved);
  const std::vector<float> before = Get(*learner, "mixer.dense.weight", 0);

  NetworkConfig wider = SmallNetwork();
  wider.mixer.hidden_units = 64;
  auto other = Make(wider, LearnerConfig{}, MinatarIo(), 2);
  ByteReader r1(saved.bytes());
  EXPECT_EQ(other->Load(r1).code(), Status::Code::kCorruption);

  NetworkConfig same_tensors = SmallNetwork();
  same_tensors.head.v_max = 5.0;  // Same tensors, different config.
  auto same_shapes = Make(same_tensors, LearnerConfig{}, MinatarIo(), 2);
  ByteReader r2(saved.bytes());
  EXPECT_EQ(same_shapes->Load(r2).code(), Status::Code::kCorruption);

  auto three = Make(SmallNetwork(), LearnerConfig{}, MinatarIo(), 3);
  ByteReader r3(saved.bytes());
  EXPECT_EQ(three->Load(r3).code(), Status::Code::kCorruption);

  LearnerConfig seeded;
  seeded.seed = 5;
  auto fresh = Make(SmallNetwork(), seeded, MinatarIo(), 2);
  const std::vector<float> fresh_before = Get(*fresh, "mixer.dense.weight", 0);
  for (size_t cut : {size_t{0}, size_t{10}, saved.bytes().size() / 2, saved.bytes().size() - 1}) {
    ByteReader r(std::string_view(saved.bytes()).substr(0, cut));
    EXPECT_EQ(fresh->Load(r).code(), Status::Code::kCorruption) << cut;
  }
  EXPECT_EQ(Get(*fresh, "mixer.dense.weight", 0), fresh_before);  // Failed loads change nothing.
  std::string extra = saved.bytes() + "x";
  ByteReader r4(extra);
  EXPECT_EQ(fresh->Load(r4).code(), Status::Code::kCorruption);
  ByteReader ok(saved.bytes());
  ASSERT_TRUE(fresh->Load(ok).ok());
  EXPECT_EQ(Get(*fresh, "mixer.dense.weight", 0), before);
}

}  // namespace
}  // namespace tokenrl::nn::torch_backend
