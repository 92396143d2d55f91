// The CPU engine's learner without torch: whole-network gradients against
// finite differences for every mixer and head, determinism (same seed, any
// thread count: the same bytes), members that never mix, save/load
// continuation, parameter access, validation and diagnostics. Numerical
// equality with the torch backend is tested in
// tests/nn/torch/cpu_learner_vs_torch_test.cc.

#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "tokenrl/core/serialization.h"
#include "tokenrl/nn/cpu/cpu_learner.h"
#include "tokenrl/nn/learner.h"

namespace tokenrl::nn::cpu {
namespace {

const NetworkIo kIo{.channels = 4, .height = 6, .width = 6, .num_actions = 3};

NetworkConfig Net(MixerType mixer, bool rainbow = false) {
  NetworkConfig c;
  c.encoder.minatar_channels = 4;
  c.mixer.type = mixer;
  c.mixer.hidden_units = 8;
  c.mixer.num_experts = 2;
  c.mixer.expert_hidden_units = 6;
  c.head.distributional = rainbow;
  c.head.num_atoms = 5;
  c.head.dueling = rainbow;
  c.head.noisy = rainbow;
  return c;
}

std::unique_ptr<CpuLearner> Make(const NetworkConfig& network, int members, int threads = 1, int64_t seed = 3) {
  LearnerConfig config;
  config.backend = "cpu";
  config.seed = seed;
  config.num_threads = threads;
  config.learning_rate = 1e-3;
  auto learner = MakeLearner(network, config, kIo, members);
  EXPECT_TRUE(learner.ok()) << learner.status().ToString();
  return std::unique_ptr<CpuLearner>(dynamic_cast<CpuLearner*>(learner->release()));
}

struct Batch {
  int batch_size = 0;
  std::vector<uint8_t> obs, next_obs;
  std::vector<int32_t> actions;
  std::vector<float> returns, discounts, weights;
  UpdateBatch View() const { return {batch_size, obs, actions, returns, discounts, next_obs, weights}; }
};

Batch RandomBatch(int members, int batch, uint32_t seed) {
  std::mt19937 rng(seed);
  Batch b;
  b.batch_size = batch;
  const size_t rows = static_cast<size_t>(members) * batch;
  b.obs.resize(rows * kIo.channels * kIo.height * kIo.width);
  b.next_obs.resize(b.obs.size());
  for (auto& x : b.obs) x = static_cast<uint8_t>(rng() % 3 == 0);
  for (auto& x : b.next_obs) x = static_cast<uint8_t>(rng() % 3 == 0);
  for (size_t i = 0; i < rows; ++i) {
    b.actions.push_back(static_cast<int32_t>(rng() % kIo.num_actions));
    b.returns.push_back(static_cast<float>(rng() % 3) - 1.0f);
    b.discounts.push_back(rng() % 4 == 0 ? 0.0f : 0.9f);
    b.weights.push_back(0.5f + static_cast<float>(rng() % 10) / 10.0f);
  }
  return b;
}

std::string Bytes(const Learner& learner) {
  ByteWriter writer;
  learner.Save(writer);
  return writer.bytes();
}

const std::vector<MixerType> kMixers{MixerType::kFlatten,      MixerType::kTokenizedSum, MixerType::kTokenizedMean,
                                     MixerType::kGap,          MixerType::kSoftMoe,      MixerType::kTokenChoice,
                                     MixerType::kExpertChoice};

// Directional derivative of L = sum(raw_output * R) along a random direction
// of the parameters, analytic (Backward) vs central differences.
TEST(CpuNetworkTest, GradientsMatchFiniteDifferencesForEveryMixerAndHead) {
  for (MixerType mixer : kMixers) {
    for (bool rainbow : {false, true}) {
      NetworkConfig config = Net(mixer, rainbow);
      config.head.noisy = false;  // Noise is drawn per pass; keep the function fixed.
      Network net(config, kIo, 5, 1, 9);
      net.DrawNoise(kTrainContext, false);
      // Nonzero biases: with the zero initial biases, an all-zero input patch
      // or token puts a ReLU exactly on its kink, where a central difference
      // sees half the slope and the gradient (as torch's) none.
      std::mt19937 bias_rng(4);
      std::normal_distribution<float> bias_normal(0.0f, 0.1f);
      for (const auto& p : net.params().params()) {
        if (p->name.ends_with("bias")) {
          for (float& x : p->value) x = bias_normal(bias_rng);
        }
      }
      const Batch b = RandomBatch(1, 4, 11);
      const Pass pass{0, kTrainContext, 4};
      const int64_t raw = int64_t{4} * kIo.num_actions * net.atoms();
      std::mt19937 rng(2);
      std::normal_distribution<float> normal;
      std::vector<float> r(static_cast<size_t>(raw));
      for (float& x : r) x = normal(rng);
      auto loss = [&] {
        net.Forward(pass, b.obs.data());
        const float* out = net.raw_output(pass);
        double sum = 0.0;
        for (int64_t i = 0; i < raw; ++i) sum += static_cast<double>(out[i]) * r[i];
        return sum + net.aux_loss(pass);
      };
      loss();
      std::vector<float> d = r;
      net.Backward(pass, d.data());
      double analytic = 0.0;
      std::vector<std::vector<float>> direction;
      for (const auto& p : net.params().params()) {
        std::vector<float> u(static_cast<size_t>(p->numel));
        // Sparse routers are piecewise constant in the tokens and the router
        // weights: those stay fixed for them.
        const bool sparse = mixer == MixerType::kTokenChoice || mixer == MixerType::kExpertChoice;
        const bool fixed =
            sparse && (p->name.starts_with("encoder.") || p->name.starts_with("mixer.router."));
        for (int64_t i = 0; i < p->numel; ++i) {
          u[i] = fixed ? 0.0f : normal(rng);
          analytic += static_cast<double>(u[i]) * p->grad[i];
        }
        direction.push_back(std::move(u));
      }
      auto shift = [&](float step) {
        const auto& params = net.params().params();
        for (size_t k = 0; k < params.size(); ++k) {
          for (int64_t i = 0; i < params[k]->numel; ++i) params[k]->value[i] += step * direction[k][i];
        }
      };
      // Central differences at shrinking steps: a ReLU kink crossed by the
      // step spoils a difference, and smaller steps cross fewer kinks, until
      // float32 rounding takes over. The closest one is judged.
      double numeric = 0.0;
      for (float eps : {1e-3f, 3e-4f, 1e-4f, 3e-5f}) {
        shift(eps);
        const double plus = loss();
        shift(-2.0f * eps);
        const double minus = loss();
        shift(eps);
        const double estimate = (plus - minus) / (2.0 * eps);
        if (std::fabs(estimate - analytic) < std::fabs(numeric - analytic) || eps == 1e-3f) numeric = estimate;
      }
      EXPECT_NEAR(analytic, numeric, 2e-2 * std::max(1.0, std::fabs(numeric)))
          << "mixer " << static_cast<int>(mixer) << (rainbow ? " rainbow" : " q");
    }
  }
}

TEST(CpuLearnerTest, SameBytesForAnyThreadCountAndRun) {
  for (MixerType mixer : {MixerType::kFlatten, MixerType::kSoftMoe, MixerType::kTokenChoice}) {
    std::vector<std::string> bytes;
    for (int threads : {1, 2, 3, 1}) {
      auto learner = Make(Net(mixer, /*rainbow=*/true), 4, threads);
      UpdateResult result;
      for (int step = 0; step < 3; ++step) {
        ASSERT_TRUE(learner->Update(RandomBatch(4, 5, 20 + step).View(), result).ok());
      }
      bytes.push_back(Bytes(*learner));
    }
    for (size_t i = 1; i < bytes.size(); ++i) EXPECT_EQ(bytes[i], bytes[0]) << "run " << i;
  }
}

TEST(CpuLearnerTest, MembersNeverMix) {
  auto a = Make(Net(MixerType::kSoftMoe, true), 2);
  auto b = Make(Net(MixerType::kSoftMoe, true), 2);
  Batch batch_a = RandomBatch(2, 4, 1), batch_b = batch_a;
  // Member 1's data differ; member 0's results must not.
  for (size_t i = batch_b.obs.size() / 2; i < batch_b.obs.size(); ++i) batch_b.obs[i] ^= 1;
  UpdateResult ra, rb;
  ASSERT_TRUE(a->Update(batch_a.View(), ra).ok());
  ASSERT_TRUE(b->Update(batch_b.View(), rb).ok());
  EXPECT_EQ(ra.loss[0], rb.loss[0]);
  EXPECT_NE(ra.loss[1], rb.loss[1]);
  for (const ParameterInfo& p : a->Parameters()) {
    std::vector<float> va(static_cast<size_t>(p.numel())), vb(va.size());
    ASSERT_TRUE(a->GetParameter(p.name, 0, va).ok());
    ASSERT_TRUE(b->GetParameter(p.name, 0, vb).ok());
    EXPECT_EQ(va, vb) << p.name;
  }
}

TEST(CpuLearnerTest, SaveLoadContinuesByteIdentically) {
  const NetworkConfig config = Net(MixerType::kExpertChoice, true);
  auto a = Make(config, 2);
  UpdateResult r;
  ASSERT_TRUE(a->Update(RandomBatch(2, 4, 1).View(), r).ok());
  a->SyncTarget();
  ASSERT_TRUE(a->Update(RandomBatch(2, 4, 2).View(), r).ok());
  const std::string saved = Bytes(*a);
  auto b = Make(config, 2, 1, /*seed=*/3);
  ByteReader reader(saved);
  ASSERT_TRUE(b->Load(reader).ok());
  EXPECT_EQ(Bytes(*b), saved);
  for (int step = 3; step < 5; ++step) {
    ASSERT_TRUE(a->Update(RandomBatch(2, 4, step).View(), r).ok());
    ASSERT_TRUE(b->Update(RandomBatch(2, 4, step).View(), r).ok());
  }
  EXPECT_EQ(Bytes(*a), Bytes(*b));

  // A different network, a truncated state: errors, nothing changed.
  auto other = Make(Net(MixerType::kSoftMoe, true), 2);
  const std::string before = Bytes(*other);
  ByteReader wrong(saved);
  EXPECT_EQ(other->Load(wrong).code(), Status::Code::kCorruption);
  ByteReader truncated(std::string_view(saved).substr(0, saved.size() / 2));
  EXPECT_EQ(b->Load(truncated).code(), Status::Code::kCorruption);
  EXPECT_EQ(Bytes(*other), before);
}

TEST(CpuLearnerTest, ParameterAccessAndOptimizerResets) {
  auto learner = Make(Net(MixerType::kSoftMoe), 2);
  UpdateResult r;
  ASSERT_TRUE(learner->Update(RandomBatch(2, 4, 1).View(), r).ok());
  const std::string name = "mixer.experts.hidden.weight";  // [n = 2, D = 4, H = 6]
  constexpr size_t kNumel = 2 * 4 * 6, kExpert = kNumel / 2;
  std::vector<float> w(kNumel);
  ASSERT_TRUE(learner->GetParameter(name, 1, w).ok());
  for (float& x : w) x = 0.5f;
  ASSERT_TRUE(learner->SetParameter(name, 1, w).ok());
  std::vector<float> back(w.size());
  ASSERT_TRUE(learner->GetParameter(name, 1, back).ok());
  EXPECT_EQ(back, w);
  // Zero expert 1's moments of member 1 only.
  size_t index = 0;
  while (learner->Parameters()[index].name != name) ++index;
  const std::vector<float> m_before = learner->adam_m(index);
  ASSERT_TRUE(learner->ResetOptimizerStateRange(name, 1, kExpert, kExpert).ok());
  const std::vector<float>& m = learner->adam_m(index);
  const std::vector<float>& v = learner->adam_v(index);
  for (size_t i = 0; i < 2 * kNumel; ++i) {
    if (i >= kNumel + kExpert) {
      EXPECT_EQ(m[i], 0.0f);
      EXPECT_EQ(v[i], 0.0f);
    } else {
      EXPECT_EQ(m[i], m_before[i]);
    }
  }
  EXPECT_EQ(learner->GetParameter("nope", 0, w).code(), Status::Code::kNotFound);
  EXPECT_EQ(learner->GetParameter(name, 2, w).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(learner->SetParameter(name, 0, std::span<const float>(w.data(), 3)).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(learner->ResetOptimizerStateRange(name, 0, 40, 10).code(), Status::Code::kInvalidArgument);
}

TEST(CpuLearnerTest, BadBatchesAreRejectedWithoutChanges) {
  auto learner = Make(Net(MixerType::kFlatten), 2);
  const std::string before = Bytes(*learner);
  Batch b = RandomBatch(2, 4, 1);
  b.actions[3] = kIo.num_actions;
  UpdateResult r;
  EXPECT_EQ(learner->Update(b.View(), r).code(), Status::Code::kInvalidArgument);
  b = RandomBatch(2, 4, 1);
  b.returns.pop_back();
  EXPECT_EQ(learner->Update(b.View(), r).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(Bytes(*learner), before);
  EXPECT_EQ(learner->adam_step(), 0);
}

TEST(CpuLearnerTest, BackendSelection) {
  LearnerConfig config;
  EXPECT_EQ(ResolvedBackend(config), "cpu");
  config.device = "cuda";
  EXPECT_EQ(ResolvedBackend(config), "torch");
  config.backend = "cpu";
  const auto st = MakeLearner(Net(MixerType::kFlatten), config, kIo, 1).status();
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("torch"), std::string::npos) << st.message();
}

TEST(CpuLearnerTest, DiagnosticsOfMoeAndDenseMixers) {
  const Batch b = RandomBatch(2, 8, 4);
  auto moe = Make(Net(MixerType::kSoftMoe), 2);
  auto d = moe->Diagnostics(b.obs, 8, {0.0, 0.1});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  for (const MemberDiagnostics& m : *d) {
    ASSERT_EQ(m.expert_dormant.size(), 2u);
    ASSERT_EQ(m.combine_share.size(), 2u);
    EXPECT_NEAR(m.combine_share[0] + m.combine_share[1], 1.0, 1e-9);
    EXPECT_GE(m.dispatch_entropy, 0.0);
    EXPECT_LE(m.dispatch_entropy, std::log(36.0) + 1e-9);
    EXPECT_EQ(m.tokens_dropped, 0.0);  // SoftMoE drops nothing.
    EXPECT_GT(m.parameter_norm, 0.0);
    EXPECT_GE(m.feature_srank, 1.0);
    EXPECT_TRUE(m.expert_load.empty());
  }
  auto dense = Make(Net(MixerType::kFlatten), 2);
  auto dd = dense->Diagnostics(b.obs, 8, {0.0});
  ASSERT_TRUE(dd.ok());
  EXPECT_TRUE((*dd)[0].expert_dormant.empty());
  EXPECT_EQ((*dd)[0].penultimate_dormant.size(), 1u);
  EXPECT_LE((*dd)[0].feature_srank, 8.0);
}

}  // namespace
}  // namespace tokenrl::nn::cpu
