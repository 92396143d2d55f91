// The CPU engine's MoE mixer layer (nn/cpu/moe_layer.h) against the libtorch
// backend's MoeMixer (nn/torch/moe.cc), its oracle: from the same seed and the
// same tokens, every output (features, aux loss, dispatch, combine, expert
// hidden activations), the input gradient and every parameter gradient of
// loss = sum(out * R) + aux must agree per tensor within
// max|cpu - torch| <= 1e-5 * max(1, max|torch|), for E = 2 members, B = 3.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tokenrl/nn/cpu/layer.h"
#include "tokenrl/nn/cpu/moe_layer.h"
#include "tokenrl/nn/network_config.h"
#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn {
namespace {

constexpr int kMembers = 2;
constexpr int kBatch = 3;
constexpr double kTolerance = 1e-5;

NetworkIo MinatarIo() { return {.channels = 4, .height = 10, .width = 10, .num_actions = 6}; }

NetworkConfig MoeConfig(MixerType type, int64_t experts, int64_t hidden = 32) {
  NetworkConfig config;
  config.encoder.type = EncoderType::kMinatar;
  config.tokenizer.type = TokenizerType::kPerConv;
  config.mixer.type = type;
  config.mixer.num_experts = experts;
  config.mixer.expert_hidden_units = hidden;
  return config;
}

NetworkShapes MinatarShapes(const NetworkConfig& config) {
  auto shapes = ComputeShapes(config, MinatarIo());
  EXPECT_TRUE(shapes.ok()) << shapes.status().ToString();
  return *shapes;
}

NetworkShapes SmallShapes(int tokens, int dim, int slots) {
  NetworkShapes s;
  s.num_tokens = tokens;
  s.token_dim = dim;
  s.slots_per_expert = slots;
  s.features = tokens * dim;
  return s;
}

std::vector<float> Random(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(count);
  for (float& x : v) x = normal(rng);
  return v;
}

torch::Tensor ToTensor(const std::vector<float>& v, const std::vector<int64_t>& shape) {
  return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone();
}

// max|cpu - torch| / max(1, max|torch|) over `count` floats; records the worst.
double Compare(const std::string& what, const float* cpu, const torch::Tensor& reference, int64_t count,
               double* worst) {
  const torch::Tensor ref = reference.detach().contiguous().to(torch::kFloat32);
  EXPECT_EQ(ref.numel(), count) << what;
  if (ref.numel() != count) return 1.0;
  const float* b = ref.data_ptr<float>();
  double max_diff = 0.0, max_ref = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(cpu[i]) - b[i]));
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(b[i])));
  }
  const double error = max_diff / std::max(1.0, max_ref);
  EXPECT_LE(error, kTolerance) << what << ": max diff " << max_diff << ", max |torch| " << max_ref;
  *worst = std::max(*worst, error);
  return error;
}

// Runs both mixers on the same tokens and compares everything; returns the
// worst relative error seen.
double ExpectMatch(const NetworkConfig& config, const NetworkShapes& shapes, bool noise_on, uint64_t seed) {
  const int64_t T = shapes.num_tokens, D = shapes.token_dim, n = config.mixer.num_experts,
                p = shapes.slots_per_expert, H = config.mixer.expert_hidden_units;
  const std::vector<float> x = Random(static_cast<size_t>(kMembers * kBatch * T * D), seed + 100);
  const std::vector<float> r = Random(static_cast<size_t>(kMembers * kBatch * T * D), seed + 200);

  // torch.
  auto noise = std::make_shared<torch_backend::NoiseSource>(seed + 300);
  noise->set_enabled(noise_on);
  auto mixer = torch_backend::MakeMoeMixer(config, shapes, torch_backend::InitContext(seed, kMembers).Child("mixer"),
                                           noise);
  torch::Tensor tx = ToTensor(x, {kMembers, kBatch, T, D}).requires_grad_(true);
  const torch::Tensor tr = ToTensor(r, {kMembers, kBatch, T * D});
  const torch_backend::MixerOutput out = mixer->forward(tx);
  torch::Tensor loss = (out.features * tr).sum();
  if (out.aux_loss.defined()) loss = loss + out.aux_loss.sum();
  loss.backward();
  auto params = mixer->named_parameters();

  // CPU.
  cpu::ParamStore store(seed, kMembers);
  cpu::MoeLayer layer(config, shapes, cpu::Scope(&store).Child("mixer"));
  cpu::NoiseStream stream(seed + 300);
  layer.DrawNoise(stream, cpu::kTrainContext, noise_on);
  EXPECT_EQ(store.params().size(), params.size());
  EXPECT_EQ(layer.in_size(), T * D);
  EXPECT_EQ(layer.out_size(), T * D);

  double worst = 0.0;
  for (int e = 0; e < kMembers; ++e) {
    SCOPED_TRACE(::testing::Message() << "member " << e);
    const cpu::Pass pass{.member = e, .context = cpu::kTrainContext, .batch = kBatch};
    const float* xe = x.data() + e * kBatch * T * D;
    const float* y = layer.Forward(pass, xe);
    Compare("features", y, out.features[e], kBatch * T * D, &worst);
    const float aux = out.aux_loss.defined() ? out.aux_loss[e].item<float>() : 0.0f;
    const double aux_error = std::fabs(layer.aux_loss(pass) - aux) / std::max(1.0f, std::fabs(aux));
    EXPECT_LE(aux_error, kTolerance) << "aux loss " << layer.aux_loss(pass) << " vs " << aux;
    worst = std::max(worst, aux_error);
    Compare("dispatch", layer.dispatch(pass), out.dispatch[e], kBatch * T * n * p, &worst);
    Compare("combine", layer.combine(pass), out.combine[e], kBatch * T * n * p, &worst);
    Compare("expert hidden", layer.expert_hidden(pass), out.expert_hidden[e], kBatch * n * p * H, &worst);

    std::vector<float> d_out(r.begin() + e * kBatch * T * D, r.begin() + (e + 1) * kBatch * T * D);
    const float* dx = layer.Backward(pass, xe, d_out.data(), /*need_d_in=*/true);
    Compare("d tokens", dx, tx.grad()[e], kBatch * T * D, &worst);
    for (const auto& p : store.params()) {
      const std::string name = p->name.substr(std::string("mixer.").size());
      const torch::Tensor* tp = params.find(name);
      EXPECT_NE(tp, nullptr) << name;
      if (tp == nullptr) continue;
      // Initial values are bit-identical.
      const torch::Tensor value = (*tp)[e].detach().contiguous();
      EXPECT_EQ(value.numel(), p->numel) << name;
      EXPECT_TRUE(std::equal(p->w(e), p->w(e) + p->numel, value.data_ptr<float>())) << name;
      const torch::Tensor grad = tp->grad().defined() ? tp->grad()[e] : torch::zeros_like((*tp)[e]);
      Compare("grad " + name, p->g(e), grad, p->numel, &worst);
    }
  }
  return worst;
}

struct Case {
  std::string name;
  NetworkConfig config;
  NetworkShapes shapes;
  bool noise = false;
};

void RunCases(const std::vector<Case>& cases) {
  uint64_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const double worst = ExpectMatch(c.config, c.shapes, c.noise, seed++);
    std::printf("  %-40s worst relative error %.3g\n", c.name.c_str(), worst);
  }
}

TEST(CpuMoe, SoftMoeMatchesTorch) {
  std::vector<Case> cases;
  for (int64_t n : {1, 4}) {
    NetworkConfig config = MoeConfig(MixerType::kSoftMoe, n);
    cases.push_back({"softmoe n" + std::to_string(n) + " default slots", config, MinatarShapes(config)});
    config.mixer.slots_per_expert = -1;
    cases.push_back({"softmoe n" + std::to_string(n) + " slots -1", config, MinatarShapes(config)});
    config.mixer.slots_per_expert = 0;
    config.mixer.total_slots = 1;
    cases.push_back({"softmoe n" + std::to_string(n) + " total slots 1", config, MinatarShapes(config)});
    config.mixer.total_slots = 0;
    config.mixer.normalize = true;
    cases.push_back({"softmoe n" + std::to_string(n) + " normalize", config, MinatarShapes(config)});
  }
  NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 3, 8);
  cases.push_back({"softmoe small n3 p2", config, SmallShapes(7, 3, 2)});
  config.mixer.normalize = true;
  cases.push_back({"softmoe small n3 p2 normalize", config, SmallShapes(7, 3, 2)});
  RunCases(cases);
}

TEST(CpuMoe, NoisySoftMoeMatchesTorch) {
  std::vector<Case> cases;
  NetworkConfig config = MoeConfig(MixerType::kSoftMoe, 4);
  config.head.noisy = true;
  cases.push_back({"noisy softmoe n4 noise on", config, MinatarShapes(config), true});
  cases.push_back({"noisy softmoe n4 noise off", config, MinatarShapes(config), false});
  config.mixer.normalize = true;
  config.mixer.num_experts = 2;
  cases.push_back({"noisy softmoe n2 normalize noise on", config, MinatarShapes(config), true});
  RunCases(cases);
}

TEST(CpuMoe, TokenChoiceMatchesTorch) {
  std::vector<Case> cases;
  NetworkConfig config = MoeConfig(MixerType::kTokenChoice, 4);
  cases.push_back({"token choice n4 default capacity", config, MinatarShapes(config)});
  config.mixer.capacity = 10;  // 100 tokens, 40 slots: drops.
  cases.push_back({"token choice n4 capacity 10", config, MinatarShapes(config)});
  config.mixer.load_balancing_loss_weight = 0.1;
  cases.push_back({"token choice n4 capacity 10 balance", config, MinatarShapes(config)});
  config.mixer.capacity = 0;
  config.mixer.load_balancing_loss_weight = 1.0;
  config.mixer.num_experts = 2;
  cases.push_back({"token choice n2 balance 1", config, MinatarShapes(config)});
  config.head.noisy = true;
  cases.push_back({"noisy token choice n2 balance 1", config, MinatarShapes(config), true});
  NetworkConfig small = MoeConfig(MixerType::kTokenChoice, 3, 8);
  small.mixer.load_balancing_loss_weight = 0.5;
  cases.push_back({"token choice small n3 capacity 2", small, SmallShapes(9, 3, 2)});
  RunCases(cases);
}

TEST(CpuMoe, ExpertChoiceMatchesTorch) {
  std::vector<Case> cases;
  for (int64_t n : {1, 2, 4}) {
    NetworkConfig config = MoeConfig(MixerType::kExpertChoice, n);
    cases.push_back({"expert choice n" + std::to_string(n), config, MinatarShapes(config)});
  }
  NetworkConfig config = MoeConfig(MixerType::kExpertChoice, 2);
  config.mixer.total_slots = 10;
  cases.push_back({"expert choice n2 total slots 10", config, MinatarShapes(config)});
  config.head.noisy = true;
  cases.push_back({"noisy expert choice n2 total slots 10", config, MinatarShapes(config), true});
  RunCases(cases);
}

}  // namespace
}  // namespace tokenrl::nn
