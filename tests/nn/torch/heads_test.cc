// Heads: shapes, parameter names, and the dueling / C51 / noisy arithmetic
// checked against hand computation from the layers' own weights.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <vector>

#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {
namespace {

constexpr int kMembers = 2, kBatch = 3, kFeatures = 5, kActions = 4;

std::shared_ptr<HeadBase> Head(const HeadConfig& config, std::shared_ptr<NoiseSource> noise = nullptr) {
  if (!noise) noise = std::make_shared<NoiseSource>(7);
  return MakeHead(config, kFeatures, kActions, InitContext(11, kMembers).Child("head"), noise);
}

torch::Tensor Param(torch::nn::Module& m, const std::string& name) { return m.named_parameters()[name]; }

std::vector<std::string> Names(torch::nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& item : m.named_parameters()) names.push_back(item.key());
  return names;
}

// x [E, B, in] @ w [E, in, out] + b [E, 1, out], computed element by element in double.
std::vector<double> Dense(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int e, int i) {
  const int64_t in = w.size(1), out = w.size(2);
  std::vector<double> y(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    double s = b[e][0][o].item<double>();
    for (int64_t k = 0; k < in; ++k) s += x[e][i][k].item<double>() * w[e][k][o].item<double>();
    y[static_cast<size_t>(o)] = s;
  }
  return y;
}

TEST(HeadTest, QHeadShapesNamesAndValues) {
  auto head = Head(HeadConfig{});
  EXPECT_EQ(Names(*head), (std::vector<std::string>{"output.weight", "output.bias"}));
  EXPECT_EQ(Param(*head, "output.weight").sizes(), (std::vector<int64_t>{kMembers, kFeatures, kActions}));
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({kMembers, kBatch, kFeatures});
  const HeadOutput out = head->forward(x);
  ASSERT_EQ(out.q.sizes(), (std::vector<int64_t>{kMembers, kBatch, kActions}));
  EXPECT_FALSE(out.logits.defined());
  EXPECT_FALSE(out.probabilities.defined());
  const torch::Tensor w = Param(*head, "output.weight"), b = Param(*head, "output.bias");
  for (int e = 0; e < kMembers; ++e) {
    for (int i = 0; i < kBatch; ++i) {
      const auto y = Dense(x, w, b, e, i);
      for (int a = 0; a < kActions; ++a) EXPECT_NEAR(out.q[e][i][a].item<double>(), y[a], 1e-5);
    }
  }
}

TEST(HeadTest, XavierInitAndZeroBias) {
  auto head = Head(HeadConfig{});
  const double bound = std::sqrt(6.0 / (kFeatures + kActions));
  EXPECT_LE(Param(*head, "output.weight").abs().max().item<double>(), bound);
  EXPECT_EQ(Param(*head, "output.bias").abs().max().item<double>(), 0.0);
  // Members draw from their own streams.
  EXPECT_FALSE(torch::equal(Param(*head, "output.weight")[0], Param(*head, "output.weight")[1]));
}

TEST(HeadTest, C51MatchesHandComputation) {
  HeadConfig config;
  config.distributional = true;
  config.num_atoms = 5;
  config.v_min = -2.0;
  config.v_max = 2.0;
  auto head = Head(config);
  torch::manual_seed(1);
  {
    torch::NoGradGuard no_grad;  // Non-zero biases make the check stricter.
    Param(*head, "output.bias").uniform_(-0.5, 0.5);
  }
  const torch::Tensor x = torch::randn({kMembers, kBatch, kFeatures});
  const HeadOutput out = head->forward(x);
  ASSERT_EQ(out.logits.sizes(), (std::vector<int64_t>{kMembers, kBatch, kActions, 5}));
  ASSERT_EQ(out.probabilities.sizes(), out.logits.sizes());
  ASSERT_EQ(out.q.sizes(), (std::vector<int64_t>{kMembers, kBatch, kActions}));
  const std::vector<double> z{-2, -1, 0, 1, 2};
  const torch::Tensor w = Param(*head, "output.weight"), b = Param(*head, "output.bias");
  for (int e = 0; e < kMembers; ++e) {
    for (int i = 0; i < kBatch; ++i) {
      const auto y = Dense(x, w, b, e, i);  // [A * atoms], action-major.
      for (int a = 0; a < kActions; ++a) {
        double norm = 0, q = 0;
        for (int j = 0; j < 5; ++j) norm += std::exp(y[a * 5 + j]);
        for (int j = 0; j < 5; ++j) {
          const double p = std::exp(y[a * 5 + j]) / norm;
          EXPECT_NEAR(out.logits[e][i][a][j].item<double>(), y[a * 5 + j], 1e-5);
          EXPECT_NEAR(out.probabilities[e][i][a][j].item<double>(), p, 1e-6);
          q += z[j] * p;
        }
        EXPECT_NEAR(out.q[e][i][a].item<double>(), q, 1e-5);
      }
    }
  }
}

TEST(HeadTest, DuelingC51CentresAdvantageLogitsBeforeSoftmax) {
  HeadConfig config;
  config.distributional = true;
  config.dueling = true;
  config.num_atoms = 3;
  config.v_min = -1.0;
  config.v_max = 1.0;
  auto head = Head(config);
  EXPECT_EQ(Names(*head),
            (std::vector<std::string>{"value.weight", "value.bias", "advantage.weight", "advantage.bias"}));
  EXPECT_EQ(Param(*head, "value.weight").sizes(), (std::vector<int64_t>{kMembers, kFeatures, 3}));
  EXPECT_EQ(Param(*head, "advantage.weight").sizes(), (std::vector<int64_t>{kMembers, kFeatures, kActions * 3}));
  torch::manual_seed(2);
  const torch::Tensor x = torch::randn({kMembers, kBatch, kFeatures});
  const HeadOutput out = head->forward(x);
  const std::vector<double> z{-1, 0, 1};
  for (int e = 0; e < kMembers; ++e) {
    for (int i = 0; i < kBatch; ++i) {
      const auto v = Dense(x, Param(*head, "value.weight"), Param(*head, "value.bias"), e, i);
      const auto adv = Dense(x, Param(*head, "advantage.weight"), Param(*head, "advantage.bias"), e, i);
      for (int a = 0; a < kActions; ++a) {
        std::vector<double> logits(3);
        double norm = 0, q = 0;
        for (int j = 0; j < 3; ++j) {
          double mean = 0;
          for (int b = 0; b < kActions; ++b) mean += adv[b * 3 + j] / kActions;
          logits[j] = v[j] + adv[a * 3 + j] - mean;
          norm += std::exp(logits[j]);
          EXPECT_NEAR(out.logits[e][i][a][j].item<double>(), logits[j], 1e-5);
        }
        for (int j = 0; j < 3; ++j) q += z[j] * std::exp(logits[j]) / norm;
        EXPECT_NEAR(out.q[e][i][a].item<double>(), q, 1e-5);
      }
    }
  }
}

TEST(HeadTest, DuelingWithoutC51) {
  HeadConfig config;
  config.dueling = true;
  auto head = Head(config);
  EXPECT_EQ(Param(*head, "value.weight").sizes(), (std::vector<int64_t>{kMembers, kFeatures, 1}));
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({kMembers, kBatch, kFeatures});
  const HeadOutput out = head->forward(x);
  ASSERT_EQ(out.q.sizes(), (std::vector<int64_t>{kMembers, kBatch, kActions}));
  EXPECT_FALSE(out.logits.defined());
  for (int e = 0; e < kMembers; ++e) {
    for (int i = 0; i < kBatch; ++i) {
      const auto v = Dense(x, Param(*head, "value.weight"), Param(*head, "value.bias"), e, i);
      const auto adv = Dense(x, Param(*head, "advantage.weight"), Param(*head, "advantage.bias"), e, i);
      double mean = 0;
      for (double a : adv) mean += a / kActions;
      for (int a = 0; a < kActions; ++a) EXPECT_NEAR(out.q[e][i][a].item<double>(), v[0] + adv[a] - mean, 1e-5);
    }
  }
}

TEST(HeadTest, NoisyHeadUsesMeanWeightsWithoutNoise) {
  HeadConfig config;
  config.noisy = true;
  config.dueling = true;
  config.distributional = true;
  config.num_atoms = 3;
  config.noisy_sigma_scale = 0.5;
  auto noise = std::make_shared<NoiseSource>(5);
  auto head = Head(config, noise);
  EXPECT_EQ(Names(*head), (std::vector<std::string>{"value.mu_weight", "value.sigma_weight", "value.mu_bias",
                                                    "value.sigma_bias", "advantage.mu_weight", "advantage.sigma_weight",
                                                    "advantage.mu_bias", "advantage.sigma_bias"}));
  // sigma = scale / sqrt(fan_in).
  EXPECT_NEAR(Param(*head, "value.sigma_weight").max().item<double>(), 0.5 / std::sqrt(kFeatures), 1e-7);
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({kMembers, kBatch, kFeatures});
  noise->set_enabled(false);
  const torch::Tensor clean1 = head->forward(x).logits;
  const torch::Tensor clean2 = head->forward(x).logits;
  EXPECT_TRUE(torch::equal(clean1, clean2));
  // The mean path equals a dueling head computed from the mu parameters.
  const auto v = Dense(x, Param(*head, "value.mu_weight"), Param(*head, "value.mu_bias"), 0, 0);
  const auto adv = Dense(x, Param(*head, "advantage.mu_weight"), Param(*head, "advantage.mu_bias"), 0, 0);
  double mean0 = 0;
  for (int b = 0; b < kActions; ++b) mean0 += adv[b * 3] / kActions;
  EXPECT_NEAR(clean1[0][0][1][0].item<double>(), v[0] + adv[3] - mean0, 1e-5);
  noise->set_enabled(true);
  const torch::Tensor noisy1 = head->forward(x).logits;
  const torch::Tensor noisy2 = head->forward(x).logits;
  EXPECT_FALSE(torch::allclose(noisy1, clean1));
  EXPECT_FALSE(torch::allclose(noisy1, noisy2));  // Fresh noise per call.
  EXPECT_FALSE(torch::isnan(noisy1).any().item<bool>());
}

TEST(HeadTest, GradientsReachEveryParameter) {
  HeadConfig config;
  config.noisy = true;
  config.dueling = true;
  config.distributional = true;
  auto noise = std::make_shared<NoiseSource>(9);
  noise->set_enabled(true);
  auto head = Head(config, noise);
  const torch::Tensor x = torch::randn({kMembers, kBatch, kFeatures});
  head->forward(x).q.sum().backward();
  for (const auto& item : head->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << item.key();
  }
}

}  // namespace
}  // namespace tokenrl::nn::torch_backend
