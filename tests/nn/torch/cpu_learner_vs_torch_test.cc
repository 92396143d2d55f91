// Parity of the built-in CPU engine ("cpu" backend) with the libtorch backend,
// its oracle: for every network preset under configs/networks/ and every head
// and loss (Q with MSE, Q with Huber + double Q + importance weights, dueling,
// C51 + dueling + noisy + double Q, as Rainbow), built from the same seed, the
// two learners must have the same parameters (names, shapes, initial values
// bit for bit), and after each of three updates (with a target sync between)
// the same Q-values, per-sample losses, losses, gradients and post-Adam
// weights (criteria below), and at the end the same diagnostics (dormant
// fractions and srank exactly, routing statistics within 1e-5). A few
// Nature / Impala cases on 84x84 frames cover the Atari encoders.
//
// Criterion, per tensor, with err = ||cpu - torch||_2 / ||torch||_2:
//  * per-sample losses, losses and gradients: err <= 1e-5;
//  * Q-values and mean Q: ||cpu - torch|| <= 1e-5 ||torch|| + 1e-6 sqrt(n),
//    an absolute 1e-6 RMS allowed for C51 heads, whose Q = sum_z z p(z) is
//    near 0 at initialization: there the two summation orders differ by up to
//    ~3e-5 relative (plain Q heads: at most 3.3e-6);
//  * post-update weights w: ||w_cpu - w_torch|| <= 1e-5 ||w_torch|| +
//    3e-4 ||step_torch|| (the step budget below; it matters only for
//    zero-initialized biases, whose weights after one update are the step);
//  * the weight change of an update (new - old, the Adam step): 3e-4, since
//    Adam's first steps are about g / (|g| + eps): for entries with |g| near
//    eps the step follows the gradient's own rounding, and small entries
//    carry a larger relative rounding error than the gradient's norm (largest
//    seen: 1.2e-4, SoftMoE phi).
// Each case prints its largest errors.

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <iostream>

#include "testing/network_presets.h"
#include "tokenrl/config/config.h"
#include "tokenrl/nn/cpu/cpu_learner.h"
#include "tokenrl/nn/learner.h"
#include "tokenrl/nn/torch/torch_learner.h"
#include "tokenrl/nn/torch/torch_learner_impl.h"

namespace tokenrl::nn {
namespace {

using testing::PresetRoot;

// ||a - b|| / ||b|| (0 when both are zero).
double RelativeError(const float* a, const float* b, size_t n) {
  double diff = 0.0, ref = 0.0;
  for (size_t i = 0; i < n; ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    ref += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff) / (std::sqrt(ref) + 1e-12);
}

// Largest errors of one case, printed at its end.
struct MaxErrors {
  double q = 0, loss = 0, grad = 0, weights = 0, step = 0;
};

double RelativeError(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return RelativeError(a.data(), b.data(), std::min(a.size(), b.size()));
}

std::vector<float> ToVector(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

enum class Head { kQMse, kQHuberDoubleWeighted, kDueling, kRainbow };

struct Case {
  std::string preset;
  Head head;
  std::string encoder = "minatar";
};

const char* HeadName(Head head) {
  static const char* kHeads[] = {"QMse", "QHuberDoubleWeighted", "Dueling", "Rainbow"};
  return kHeads[static_cast<int>(head)];
}

// Runs both backends side by side and compares everything after each update.
void ExpectParity(const Case& c) {
  SCOPED_TRACE(HeadName(c.head));
  RegisterTorchLearnerBackend();
  const std::string dir = std::string(TOKENRL_SOURCE_DIR) + "/configs/";
  std::vector<std::string> overrides;
  if (c.head == Head::kDueling) overrides = {"network.head.dueling=true"};
  if (c.head == Head::kRainbow) {
    overrides = {"network.head.distributional=true", "network.head.dueling=true", "network.head.noisy=true"};
  }
  auto root = config::Load<PresetRoot>(
      {dir + "encoders/" + c.encoder + ".toml", dir + "networks/" + c.preset + ".toml"}, overrides);
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  // The structure, not the width, is under test.
  root->network.mixer.hidden_units = std::min<int64_t>(root->network.mixer.hidden_units, 64);
  root->network.mixer.expert_hidden_units = std::min<int64_t>(root->network.mixer.expert_hidden_units, 64);
  root->network.mixer.post_moe_dense_units = std::min<int64_t>(root->network.mixer.post_moe_dense_units, 64);
  const bool atari = c.encoder != "minatar";
  const NetworkIo io{.channels = 4, .height = atari ? 84 : 10, .width = atari ? 84 : 10, .num_actions = 6,
                     .input_scale = atari ? 1.0f / 255.0f : 1.0f};
  LearnerConfig config;
  config.seed = 7;
  config.learning_rate = 1e-3;
  config.double_q = c.head == Head::kQHuberDoubleWeighted || c.head == Head::kRainbow;
  config.td_loss = c.head == Head::kQHuberDoubleWeighted ? TdLoss::kHuber : TdLoss::kMse;
  const int members = atari ? 1 : 2, batch = atari ? 2 : 5;
  config.backend = "torch";
  auto torch_learner = MakeLearner(root->network, config, io, members);
  config.backend = "cpu";
  auto cpu_learner = MakeLearner(root->network, config, io, members);
  ASSERT_TRUE(torch_learner.ok()) << torch_learner.status().ToString();
  ASSERT_TRUE(cpu_learner.ok()) << cpu_learner.status().ToString();
  auto& t = dynamic_cast<torch_backend::TorchLearner&>(**torch_learner);
  auto& k = dynamic_cast<cpu::CpuLearner&>(**cpu_learner);

  // Same parameters, bit for bit.
  const std::vector<ParameterInfo> params = t.Parameters();
  const std::vector<ParameterInfo> cpu_params = k.Parameters();
  ASSERT_EQ(params.size(), cpu_params.size());
  auto get = [&](Learner& l, const ParameterInfo& p, int e) {
    std::vector<float> v(static_cast<size_t>(p.numel()));
    EXPECT_TRUE(l.GetParameter(p.name, e, v).ok());
    return v;
  };
  for (size_t i = 0; i < params.size(); ++i) {
    ASSERT_EQ(params[i].name, cpu_params[i].name);
    ASSERT_EQ(params[i].shape, cpu_params[i].shape) << params[i].name;
    for (int e = 0; e < members; ++e) ASSERT_EQ(get(t, params[i], e), get(k, params[i], e)) << params[i].name;
  }

  MaxErrors max;
  auto track = [](double& slot, double err) {
    slot = std::max(slot, err);
    return err;
  };
  std::mt19937 rng(3);
  const size_t rows = static_cast<size_t>(members) * batch;
  const size_t obs_size = rows * io.channels * io.height * io.width;
  std::vector<uint8_t> obs(obs_size), next_obs(obs_size);
  auto pixel = [&] { return static_cast<uint8_t>(atari ? rng() % 256 : (rng() % 3 == 0 ? 1 : 0)); };
  std::vector<int32_t> actions(rows);
  std::vector<float> returns(rows), discounts(rows), weights;
  for (int step = 0; step < 3; ++step) {
    for (auto& x : obs) x = pixel();
    for (auto& x : next_obs) x = pixel();
    for (size_t i = 0; i < rows; ++i) {
      actions[i] = static_cast<int32_t>(rng() % io.num_actions);
      returns[i] = static_cast<float>(static_cast<int>(rng() % 7) - 3) * 0.7f;
      discounts[i] = rng() % 4 == 0 ? 0.0f : 0.99f;
    }
    if (c.head == Head::kQHuberDoubleWeighted || c.head == Head::kRainbow) {
      weights.resize(rows);
      for (auto& w : weights) w = 0.25f + static_cast<float>(rng() % 100) / 100.0f;
    }
    const UpdateBatch b{batch, obs, actions, returns, discounts, next_obs, weights};

    // Greedy Q-values (noise off) before the update.
    std::vector<float> q_torch(rows * io.num_actions), q_cpu(rows * io.num_actions);
    t.QValues(obs, batch, false, q_torch);
    k.QValues(obs, batch, false, q_cpu);
    track(max.q, RelativeError(q_cpu, q_torch));
    {
      double diff = 0.0, norm = 0.0;
      for (size_t j = 0; j < q_cpu.size(); ++j) {
        diff += (static_cast<double>(q_cpu[j]) - q_torch[j]) * (static_cast<double>(q_cpu[j]) - q_torch[j]);
        norm += static_cast<double>(q_torch[j]) * q_torch[j];
      }
      EXPECT_LE(std::sqrt(diff), 1e-5 * std::sqrt(norm) + 1e-6 * std::sqrt(static_cast<double>(q_cpu.size())))
          << "Q-values, step " << step;
    }

    std::vector<std::vector<float>> before(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      for (int e = 0; e < members; ++e) {
        const auto v = get(k, params[i], e);
        before[i].insert(before[i].end(), v.begin(), v.end());
      }
    }
    UpdateResult rt, rk;
    ASSERT_TRUE(t.Update(b, rt).ok());
    ASSERT_TRUE(k.Update(b, rk).ok());
    EXPECT_LE(track(max.loss, RelativeError(rk.per_sample_loss, rt.per_sample_loss)), 1e-5)
        << "per-sample loss, step " << step;
    EXPECT_LE(track(max.loss, RelativeError(rk.loss, rt.loss)), 1e-5) << "loss, step " << step;
    track(max.q, RelativeError(rk.q_mean, rt.q_mean));
    for (int e = 0; e < members; ++e) {
      EXPECT_NEAR(rk.q_mean[e], rt.q_mean[e], 1e-5 * std::fabs(rt.q_mean[e]) + 1e-6) << "q_mean, step " << step;
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string& name = params[i].name;
      const torch::Tensor& g = t.last_gradients()[i];
      const std::vector<float>& cpu_grad = k.online().params().params()[i]->grad;
      if (g.defined()) {
        EXPECT_LE(track(max.grad, RelativeError(cpu_grad, ToVector(g))), 1e-5) << "gradient of " << name << ", step " << step;
      } else {
        for (float x : cpu_grad) ASSERT_EQ(x, 0.0f) << "gradient of unused " << name;
      }
      std::vector<float> wt, wk;
      for (int e = 0; e < members; ++e) {
        const auto a = get(t, params[i], e), bk = get(k, params[i], e);
        wt.insert(wt.end(), a.begin(), a.end());
        wk.insert(wk.end(), bk.begin(), bk.end());
      }
      std::vector<float> dt(wt.size()), dk(wk.size());
      for (size_t j = 0; j < wt.size(); ++j) {
        dt[j] = wt[j] - before[i][j];
        dk[j] = wk[j] - before[i][j];
      }
      double diff = 0.0, norm_w = 0.0, norm_step = 0.0;
      for (size_t j = 0; j < wt.size(); ++j) {
        diff += (static_cast<double>(wk[j]) - wt[j]) * (static_cast<double>(wk[j]) - wt[j]);
        norm_w += static_cast<double>(wt[j]) * wt[j];
        norm_step += static_cast<double>(dt[j]) * dt[j];
      }
      track(max.weights, std::sqrt(diff) / (std::sqrt(norm_w) + 1e-12));
      EXPECT_LE(std::sqrt(diff), 1e-5 * std::sqrt(norm_w) + 3e-4 * std::sqrt(norm_step) + 1e-12)
          << "weights of " << name << ", step " << step;
      EXPECT_LE(track(max.step, RelativeError(dk, dt)), 3e-4) << "Adam step of " << name << ", step " << step;
    }
    if (step == 1) {
      t.SyncTarget();
      k.SyncTarget();
    }
  }
  // Diagnostics (dormant fractions, routing statistics, srank, norms) of
  // the trained networks on the last batch.
  const std::vector<double> taus{0.0, 0.025, 0.1};
  auto dt = t.Diagnostics(obs, batch, taus);
  auto dk = k.Diagnostics(obs, batch, taus);
  ASSERT_TRUE(dt.ok() && dk.ok());
  for (int e = 0; e < members; ++e) {
    const MemberDiagnostics &a = (*dk)[e], &b = (*dt)[e];
    EXPECT_EQ(a.penultimate_dormant, b.penultimate_dormant);
    EXPECT_EQ(a.expert_dormant, b.expert_dormant);
    EXPECT_EQ(a.feature_srank, b.feature_srank);
    EXPECT_NEAR(a.parameter_norm, b.parameter_norm, 1e-5 * b.parameter_norm);
    ASSERT_EQ(a.combine_share.size(), b.combine_share.size());
    for (size_t j = 0; j < a.combine_share.size(); ++j) EXPECT_NEAR(a.combine_share[j], b.combine_share[j], 1e-5);
    EXPECT_EQ(a.expert_load, b.expert_load);
    for (auto [x, y] : {std::pair{a.dispatch_entropy, b.dispatch_entropy}, {a.combine_entropy, b.combine_entropy},
                        {a.tokens_dropped, b.tokens_dropped}, {a.combine_similarity, b.combine_similarity},
                        {a.slot_similarity, b.slot_similarity}}) {
      if (std::isnan(y)) {
        EXPECT_TRUE(std::isnan(x));
      } else {
        EXPECT_NEAR(x, y, 1e-5 * std::max(1.0, std::fabs(y)));
      }
    }
  }
  std::cout << fmt::format("max relative error {} {} {}: q {:.1e} loss {:.1e} grad {:.1e} weights {:.1e} step {:.1e}\n",
                           c.preset, HeadName(c.head), c.encoder, max.q, max.loss, max.grad, max.weights, max.step);
}

// One test per preset (every head and loss inside), to keep the number of
// test processes small.
class CpuLearnerVsTorchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuLearnerVsTorchTest, MatchesTorchBackendForEveryHead) {
  for (Head head : {Head::kQMse, Head::kQHuberDoubleWeighted, Head::kDueling, Head::kRainbow}) {
    ExpectParity({GetParam(), head});
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, CpuLearnerVsTorchTest, ::testing::ValuesIn(testing::PresetFiles("networks", false)),
                         [](const auto& info) { return info.param; });

TEST(CpuLearnerVsTorchAtariTest, NatureFlatten) { ExpectParity({"baseline", Head::kQMse, "nature"}); }
TEST(CpuLearnerVsTorchAtariTest, NatureTokenizedSum) {
  ExpectParity({"tokenized_sum_per_conv", Head::kQHuberDoubleWeighted, "nature"});
}
TEST(CpuLearnerVsTorchAtariTest, ImpalaSoftMoeRainbow) { ExpectParity({"softmoe_4", Head::kRainbow, "impala"}); }

}  // namespace
}  // namespace tokenrl::nn
