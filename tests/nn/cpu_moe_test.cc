// The CPU engine's MoE mixer layer (nn/cpu/moe_layer.h): routing invariants
// and float32 central-difference checks of the hand-written backward for the
// three routers (SoftMoE with and without normalization, noisy experts, token
// choice with drops and the importance loss, expert choice). Torch-free; the
// torch parity test is tests/nn/torch/cpu_moe_parity_test.cc.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tokenrl/nn/cpu/layer.h"
#include "tokenrl/nn/cpu/moe_layer.h"
#include "tokenrl/nn/network_config.h"

namespace tokenrl::nn::cpu {
namespace {

NetworkShapes SmallShapes(int tokens, int dim, int slots) {
  NetworkShapes s;
  s.num_tokens = tokens;
  s.token_dim = dim;
  s.slots_per_expert = slots;
  s.features = tokens * dim;
  return s;
}

NetworkConfig MoeConfig(MixerType type, int64_t experts, int64_t hidden) {
  NetworkConfig config;
  config.mixer.type = type;
  config.mixer.num_experts = experts;
  config.mixer.expert_hidden_units = hidden;
  return config;
}

std::vector<float> Random(size_t count, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(count);
  for (float& x : v) x = normal(rng);
  return v;
}

struct Harness {
  Harness(const NetworkConfig& config, const NetworkShapes& shapes, int members, int batch, uint64_t seed)
      : store(seed, members), layer(config, shapes, Scope(&store).Child("mixer")), batch(batch) {
    x = Random(static_cast<size_t>(batch * layer.in_size()), seed + 1);
    r = Random(static_cast<size_t>(batch * layer.out_size()), seed + 2);
  }
  // loss = sum(out * R) + aux, in double.
  double Loss(const Pass& pass) {
    const float* y = layer.Forward(pass, x.data());
    double loss = layer.aux_loss(pass);
    for (size_t i = 0; i < r.size(); ++i) loss += static_cast<double>(y[i]) * r[i];
    return loss;
  }
  // The non-smooth state of the last forward: the sparse routers' dispatch
  // and which expert hidden units are active.
  std::vector<float> Kinks(const Pass& pass) const {
    const size_t slots = static_cast<size_t>(batch * layer.experts() * layer.slots_per_expert());
    std::vector<float> state;
    if (layer.sparse()) {
      const float* d = layer.dispatch(pass);
      state.assign(d, d + slots * layer.tokens());
    }
    const float* h = layer.expert_hidden(pass);
    for (size_t i = 0; i < slots * layer.expert_hidden_units(); ++i) state.push_back(h[i] > 0.0f ? 1.0f : 0.0f);
    return state;
  }
  ParamStore store;
  MoeLayer layer;
  int batch;
  std::vector<float> x, r;
};

// Norm-relative error of the analytic gradient `analytic` of `values` against
// central differences of step h. Perturbations that cross a kink (change a
// sparse router's assignment or an expert ReLU's activity) are skipped
// (counted in *skipped).
double CheckGradient(Harness& t, const Pass& pass, float* values, const float* analytic, int64_t count,
                     int* skipped, float h = 1e-3f) {
  double diff = 0.0, norm_a = 0.0, norm_n = 0.0;
  t.Loss(pass);
  const std::vector<float> kinks = t.Kinks(pass);
  for (int64_t i = 0; i < count; ++i) {
    const float saved = values[i];
    values[i] = saved + h;
    const double plus = t.Loss(pass);
    const bool same_plus = t.Kinks(pass) == kinks;
    values[i] = saved - h;
    const double minus = t.Loss(pass);
    const bool same_minus = t.Kinks(pass) == kinks;
    values[i] = saved;
    if (!same_plus || !same_minus) {
      ++*skipped;
      continue;
    }
    // The float step actually taken.
    const double step = (static_cast<double>(saved + h) - static_cast<double>(saved - h));
    const double numeric = (plus - minus) / step;
    diff += (numeric - analytic[i]) * (numeric - analytic[i]);
    norm_a += static_cast<double>(analytic[i]) * analytic[i];
    norm_n += numeric * numeric;
  }
  const double scale = std::sqrt(std::max(norm_a, norm_n));
  if (scale < 1e-8) return 0.0;  // Nothing flows (e.g. sigma with noise off).
  return std::sqrt(diff) / scale;
}

// Checks d loss / d (input, every parameter) of member 1 (of 2), batch 2.
void CheckAllGradients(const NetworkConfig& config, const NetworkShapes& shapes, uint64_t seed, bool noise = false) {
  Harness t(config, shapes, /*members=*/2, /*batch=*/2, seed);
  if (config.head.noisy) {
    NoiseStream stream(seed + 5);
    t.layer.DrawNoise(stream, kTrainContext, noise);
  }
  const Pass pass{.member = 1, .context = kTrainContext, .batch = t.batch};
  t.Loss(pass);
  std::vector<float> d_out = t.r;
  const float* dx = t.layer.Backward(pass, t.x.data(), d_out.data(), /*need_d_in=*/true);
  ASSERT_NE(dx, nullptr);
  const std::vector<float> dx_copy(dx, dx + t.x.size());
  std::vector<std::vector<float>> grads;
  for (const auto& p : t.store.params()) grads.emplace_back(p->g(1), p->g(1) + p->numel);

  int skipped = 0;
  int64_t checked = 0;
  const double input_error =
      CheckGradient(t, pass, t.x.data(), dx_copy.data(), static_cast<int64_t>(t.x.size()), &skipped);
  EXPECT_LT(input_error, 2e-2) << "input";
  checked += static_cast<int64_t>(t.x.size());
  for (size_t k = 0; k < t.store.params().size(); ++k) {
    Param* p = t.store.params()[k].get();
    const double error = CheckGradient(t, pass, p->w(1), grads[k].data(), p->numel, &skipped);
    EXPECT_LT(error, 2e-2) << p->name;
    checked += p->numel;
  }
  EXPECT_LT(skipped, checked / 10) << "too many routing changes under perturbation";
}

TEST(CpuMoeLayerTest, ParameterNamesAndShapes) {
  const NetworkShapes shapes = SmallShapes(6, 3, 2);
  {
    NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 3, 5);
    config.mixer.normalize = true;
    ParamStore store(1, 2);
    MoeLayer layer(config, shapes, Scope(&store).Child("mixer"));
    const std::vector<std::string> names{"mixer.phi",
                                         "mixer.scale",
                                         "mixer.experts.hidden.weight",
                                         "mixer.experts.hidden.bias",
                                         "mixer.experts.output.weight",
                                         "mixer.experts.output.bias"};
    ASSERT_EQ(store.params().size(), names.size());
    for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(store.params()[i]->name, names[i]);
    EXPECT_EQ(store.params()[0]->shape, (std::vector<int64_t>{3, 3, 2}));
    EXPECT_EQ(store.params()[2]->shape, (std::vector<int64_t>{3, 3, 5}));
    EXPECT_EQ(store.params()[3]->shape, (std::vector<int64_t>{3, 1, 5}));
    EXPECT_EQ(store.params()[4]->shape, (std::vector<int64_t>{3, 5, 3}));
    EXPECT_EQ(store.params()[5]->shape, (std::vector<int64_t>{3, 1, 3}));
    EXPECT_EQ(layer.in_size(), 18);
    EXPECT_EQ(layer.out_size(), 18);
    EXPECT_FALSE(layer.sparse());
  }
  {
    NetworkConfig config = MoeConfig(MixerType::kTokenChoice, 3, 5);
    config.head.noisy = true;
    ParamStore store(1, 2);
    MoeLayer layer(config, shapes, Scope(&store).Child("mixer"));
    const std::vector<std::string> names{"mixer.router.weight",
                                         "mixer.experts.hidden.mu_weight",
                                         "mixer.experts.hidden.sigma_weight",
                                         "mixer.experts.hidden.mu_bias",
                                         "mixer.experts.hidden.sigma_bias",
                                         "mixer.experts.output.weight",
                                         "mixer.experts.output.bias"};
    ASSERT_EQ(store.params().size(), names.size());
    for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(store.params()[i]->name, names[i]);
    EXPECT_EQ(store.params()[0]->shape, (std::vector<int64_t>{3, 3}));
    EXPECT_TRUE(layer.sparse());
  }
}

TEST(CpuMoeLayerTest, SoftMoeWeightsAreSoftmaxes) {
  NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 2, 4);
  const NetworkShapes shapes = SmallShapes(7, 3, 3);
  Harness t(config, shapes, 1, 3, 11);
  const Pass pass{.member = 0, .context = kInferenceContext, .batch = 3};
  t.Loss(pass);
  const int64_t T = 7, S = 6;
  const float* dw = t.layer.dispatch(pass);
  const float* cw = t.layer.combine(pass);
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t s = 0; s < S; ++s) {
      double sum = 0.0;
      for (int64_t i = 0; i < T; ++i) sum += dw[(b * T + i) * S + s];
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
    for (int64_t i = 0; i < T; ++i) {
      double sum = 0.0;
      for (int64_t s = 0; s < S; ++s) sum += cw[(b * T + i) * S + s];
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
  EXPECT_EQ(t.layer.aux_loss(pass), 0.0f);
}

TEST(CpuMoeLayerTest, SoftMoeWeightsMatchReferenceForAnyLogitRange) {
  // The forward shares one exp between both softmaxes when the logits' range
  // allows it and falls back to two otherwise; both must match a double
  // reference (scale 1: shared; scale 200: logits spread over hundreds).
  for (float scale : {1.0f, 200.0f}) {
    NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 2, 4);
    const NetworkShapes shapes = SmallShapes(9, 3, 3);
    Harness t(config, shapes, 1, 2, 12);
    Param* phi = t.store.Find("mixer.phi");
    ASSERT_NE(phi, nullptr);
    for (int64_t k = 0; k < phi->numel; ++k) phi->w(0)[k] *= scale;
    const Pass pass{.member = 0, .context = kTrainContext, .batch = 2};
    t.Loss(pass);
    const int64_t T = 9, D = 3, S = 6;
    const float* dw = t.layer.dispatch(pass);
    const float* cw = t.layer.combine(pass);
    for (int64_t b = 0; b < 2; ++b) {
      std::vector<double> l(static_cast<size_t>(T * S));
      for (int64_t i = 0; i < T; ++i) {
        for (int64_t s = 0; s < S; ++s) {
          double v = 0.0;
          for (int64_t k = 0; k < D; ++k) v += static_cast<double>(t.x[(b * T + i) * D + k]) * phi->w(0)[k * S + s];
          l[i * S + s] = v;
        }
      }
      for (int64_t s = 0; s < S; ++s) {
        double m = -1e300, sum = 0.0;
        for (int64_t i = 0; i < T; ++i) m = std::max(m, l[i * S + s]);
        for (int64_t i = 0; i < T; ++i) sum += std::exp(l[i * S + s] - m);
        for (int64_t i = 0; i < T; ++i) {
          EXPECT_NEAR(dw[(b * T + i) * S + s], std::exp(l[i * S + s] - m) / sum, 1e-5 * (1.0 + scale / 10.0))
              << scale << " " << b << " " << i << " " << s;
        }
      }
      for (int64_t i = 0; i < T; ++i) {
        double m = -1e300, sum = 0.0;
        for (int64_t s = 0; s < S; ++s) m = std::max(m, l[i * S + s]);
        for (int64_t s = 0; s < S; ++s) sum += std::exp(l[i * S + s] - m);
        for (int64_t s = 0; s < S; ++s) {
          EXPECT_NEAR(cw[(b * T + i) * S + s], std::exp(l[i * S + s] - m) / sum, 1e-5 * (1.0 + scale / 10.0))
              << scale << " " << b << " " << i << " " << s;
        }
      }
    }
  }
}

TEST(CpuMoeLayerTest, SparseRoutingInvariants) {
  const NetworkShapes shapes = SmallShapes(9, 3, 2);  // Capacity 2 < 9 / 3: drops.
  for (MixerType type : {MixerType::kTokenChoice, MixerType::kExpertChoice}) {
    Harness t(MoeConfig(type, 3, 4), shapes, 1, 4, 21);
    const Pass pass{.member = 0, .context = kTrainContext, .batch = 4};
    t.Loss(pass);
    const int64_t T = 9, n = 3, p = 2, S = n * p;
    const float* dw = t.layer.dispatch(pass);
    const float* cw = t.layer.combine(pass);
    for (int64_t b = 0; b < 4; ++b) {
      // Every slot holds at most one token (expert choice: exactly one).
      for (int64_t s = 0; s < S; ++s) {
        float sum = 0.0f;
        for (int64_t i = 0; i < T; ++i) {
          const float v = dw[(b * T + i) * S + s];
          EXPECT_TRUE(v == 0.0f || v == 1.0f);
          sum += v;
        }
        if (type == MixerType::kExpertChoice) {
          EXPECT_EQ(sum, 1.0f);
        } else {
          EXPECT_LE(sum, 1.0f);
        }
      }
      int64_t assigned = 0;
      for (int64_t i = 0; i < T; ++i) {
        float sum = 0.0f;
        for (int64_t s = 0; s < S; ++s) {
          sum += dw[(b * T + i) * S + s];
          if (dw[(b * T + i) * S + s] == 0.0f) {
            EXPECT_EQ(cw[(b * T + i) * S + s], 0.0f);
          } else {
            EXPECT_GT(cw[(b * T + i) * S + s], 0.0f);
            EXPECT_LE(cw[(b * T + i) * S + s], 1.0f);
          }
        }
        if (type == MixerType::kTokenChoice) {
          EXPECT_LE(sum, 1.0f);
        }
        assigned += static_cast<int64_t>(sum);
      }
      if (type == MixerType::kTokenChoice) {
        EXPECT_LE(assigned, S);  // 9 tokens, 6 slots: some dropped.
      }
    }
  }
}

TEST(CpuMoeLayerTest, ExpertHiddenIsSampleMajor) {
  // With n experts, expert_hidden [B, n, p, H] must equal the single-sample
  // runs' values.
  NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 3, 4);
  const NetworkShapes shapes = SmallShapes(5, 2, 2);
  Harness t(config, shapes, 1, 3, 31);
  const Pass pass{.member = 0, .context = kTrainContext, .batch = 3};
  t.Loss(pass);
  const int64_t per = 3 * 2 * 4;
  const std::vector<float> all(t.layer.expert_hidden(pass), t.layer.expert_hidden(pass) + 3 * per);
  for (int b = 0; b < 3; ++b) {
    const Pass one{.member = 0, .context = kInferenceContext, .batch = 1};
    t.layer.Forward(one, t.x.data() + b * t.layer.in_size());
    const float* h = t.layer.expert_hidden(one);
    for (int64_t k = 0; k < per; ++k) EXPECT_FLOAT_EQ(h[k], all[b * per + k]) << b << " " << k;
  }
}

TEST(CpuMoeLayerTest, SoftMoeGradients) {
  CheckAllGradients(MoeConfig(MixerType::kSoftMoe, 2, 4), SmallShapes(5, 3, 2), 100);
  CheckAllGradients(MoeConfig(MixerType::kSoftMoe, 1, 3), SmallShapes(4, 2, 4), 101);
}

TEST(CpuMoeLayerTest, SoftMoeNormalizedGradients) {
  NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 2, 4);
  config.mixer.normalize = true;
  CheckAllGradients(config, SmallShapes(5, 3, 2), 102);
}

TEST(CpuMoeLayerTest, NoisySoftMoeGradients) {
  NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 2, 4);
  config.head.noisy = true;
  CheckAllGradients(config, SmallShapes(5, 3, 2), 103, /*noise=*/true);
  CheckAllGradients(config, SmallShapes(5, 3, 2), 104, /*noise=*/false);
}

TEST(CpuMoeLayerTest, TokenChoiceGradients) {
  NetworkConfig config = MoeConfig(MixerType::kTokenChoice, 3, 4);
  CheckAllGradients(config, SmallShapes(7, 3, 2), 105);  // Capacity 2: drops.
  config.mixer.load_balancing_loss_weight = 0.5;
  CheckAllGradients(config, SmallShapes(7, 3, 2), 106);
}

TEST(CpuMoeLayerTest, TokenChoiceAuxLoss) {
  NetworkConfig config = MoeConfig(MixerType::kTokenChoice, 3, 4);
  config.mixer.load_balancing_loss_weight = 0.5;
  Harness t(config, SmallShapes(7, 3, 2), 1, 2, 107);
  const Pass pass{.member = 0, .context = kTrainContext, .batch = 2};
  t.Loss(pass);
  EXPECT_GT(t.layer.aux_loss(pass), 0.0f);
  const Pass other{.member = 0, .context = kInferenceContext, .batch = 1};
  t.layer.Forward(other, t.x.data());
  // Contexts keep their own value.
  const float first = t.layer.aux_loss(pass);
  t.Loss(pass);
  EXPECT_EQ(t.layer.aux_loss(pass), first);
}

TEST(CpuMoeLayerTest, ExpertChoiceGradients) {
  for (int64_t n : {1, 2, 3}) {
    CheckAllGradients(MoeConfig(MixerType::kExpertChoice, n, 4), SmallShapes(6, 3, 2), 110 + n);
  }
}

TEST(CpuMoeLayerTest, ExpertChoiceTiesGoToLowerTokens) {
  // All-zero tokens: every router probability is 1/n; each expert takes tokens 0..p-1.
  NetworkConfig config = MoeConfig(MixerType::kExpertChoice, 2, 4);
  Harness t(config, SmallShapes(5, 3, 3), 1, 1, 120);
  std::fill(t.x.begin(), t.x.end(), 0.0f);
  const Pass pass{.member = 0, .context = kTrainContext, .batch = 1};
  t.Loss(pass);
  const float* dw = t.layer.dispatch(pass);
  for (int64_t j = 0; j < 2; ++j) {
    for (int64_t k = 0; k < 3; ++k) EXPECT_EQ(dw[k * 6 + j * 3 + k], 1.0f);
  }
}

}  // namespace
}  // namespace tokenrl::nn::cpu
