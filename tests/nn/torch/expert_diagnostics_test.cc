// Expert-utilization diagnostics of the torch learner (Learner::Diagnostics),
// ResetOptimizerStateRange, the interventions of agents/expert_interventions.h
// on a real SoftMoE network, and a training run that resets and prunes
// experts, resumed across an intervention byte for byte.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <random>
#include <vector>

#include "tokenrl/agents/expert_interventions.h"
#include "tokenrl/core/file_util.h"
#include "tokenrl/nn/learner.h"
#include "tokenrl/nn/torch/torch_learner.h"
#include "tokenrl/nn/torch/torch_learner_impl.h"
#include "tokenrl/runner/trainer.h"

namespace tokenrl::nn::torch_backend {
namespace {

namespace fs = std::filesystem;

NetworkIo MinatarIo() { return {.channels = 4, .height = 10, .width = 10, .num_actions = 6, .input_scale = 1.0f}; }

NetworkConfig MoeNetwork(MixerType type = MixerType::kSoftMoe) {
  NetworkConfig c;
  c.tokenizer.type = TokenizerType::kPerConv;
  c.mixer.type = type;
  c.mixer.num_experts = 4;
  c.mixer.expert_hidden_units = 16;
  return c;
}

std::unique_ptr<Learner> Make(const NetworkConfig& network, int members) {
  RegisterTorchLearnerBackend();
  LearnerConfig config;
  config.seed = 11;
  config.backend = "torch";
  auto learner = MakeLearner(network, config, MinatarIo(), members);
  EXPECT_TRUE(learner.ok()) << learner.status().ToString();
  return std::move(learner).value();
}

std::vector<uint8_t> RandomObs(int members, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  const NetworkIo io = MinatarIo();
  std::vector<uint8_t> obs(static_cast<size_t>(members) * n * io.channels * io.height * io.width);
  for (auto& o : obs) o = static_cast<uint8_t>(rng() % 2);
  return obs;
}

void TrainSteps(Learner& learner, int members, int steps) {
  const int b = 8;
  for (int s = 0; s < steps; ++s) {
    std::mt19937 rng(static_cast<uint32_t>(s));
    UpdateBatch batch;
    std::vector<uint8_t> obs = RandomObs(members, b, 2 * s), next = RandomObs(members, b, 2 * s + 1);
    std::vector<int32_t> actions(static_cast<size_t>(members * b));
    std::vector<float> returns(actions.size()), discounts(actions.size(), 0.99f);
    for (size_t i = 0; i < actions.size(); ++i) {
      actions[i] = static_cast<int32_t>(rng() % 6);
      returns[i] = static_cast<float>(rng() % 3) - 1.0f;
    }
    batch = {b, obs, actions, returns, discounts, next, {}};
    UpdateResult result;
    ASSERT_TRUE(learner.Update(batch, result).ok());
  }
}

std::vector<float> Get(const Learner& learner, const std::string& name, int member) {
  for (const auto& p : learner.Parameters()) {
    if (p.name != name) continue;
    std::vector<float> v(static_cast<size_t>(p.numel()));
    EXPECT_TRUE(learner.GetParameter(name, member, v).ok());
    return v;
  }
  ADD_FAILURE() << "no parameter " << name;
  return {};
}

TEST(ExpertDiagnosticsTest, SoftMoeDiagnosticsAreConsistent) {
  auto learner = Make(MoeNetwork(), 2);
  const std::vector<uint8_t> obs = RandomObs(2, 16, 3);
  auto diags = learner->Diagnostics(obs, 16, {0.0, 0.025});
  ASSERT_TRUE(diags.ok()) << diags.status().ToString();
  ASSERT_EQ(diags->size(), 2u);
  for (const MemberDiagnostics& d : *diags) {
    EXPECT_EQ(d.taus, (std::vector<double>{0.0, 0.025}));
    ASSERT_EQ(d.penultimate_dormant.size(), 2u);
    ASSERT_EQ(d.expert_dormant.size(), 4u);
    ASSERT_EQ(d.combine_share.size(), 4u);
    EXPECT_TRUE(d.expert_load.empty());
    double share = 0.0;
    for (double s : d.combine_share) share += s;
    EXPECT_NEAR(share, 1.0, 1e-9);
    for (const auto& e : d.expert_dormant) {
      EXPECT_GE(e[0], 0.0);
      EXPECT_LE(e[0], e[1]);  // Monotone in tau.
      EXPECT_LE(e[1], 1.0);
    }
    EXPECT_EQ(d.tokens_dropped, 0.0);  // SoftMoE drops nothing.
    EXPECT_GT(d.dispatch_entropy, 0.0);
    EXPECT_GT(d.combine_entropy, 0.0);
    EXPECT_GT(d.combine_similarity, 0.0);
    EXPECT_LE(d.combine_similarity, 1.0 + 1e-9);
    EXPECT_GE(d.feature_srank, 1.0);
    EXPECT_LE(d.feature_srank, 16.0);
    EXPECT_GT(d.parameter_norm, 0.0);
  }
  // No state changed: the same call gives the same numbers.
  auto again = learner->Diagnostics(obs, 16, {0.0, 0.025});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[1].expert_dormant, (*diags)[1].expert_dormant);
  EXPECT_EQ((*again)[1].parameter_norm, (*diags)[1].parameter_norm);
  EXPECT_FALSE(learner->Diagnostics(obs, 15, {0.0}).ok());
}

TEST(ExpertDiagnosticsTest, SilencedExpertIsWhollyDormant) {
  auto learner = Make(MoeNetwork(), 1);
  // Expert 2's hidden layer: zero weights and a negative bias -> ReLU is 0.
  auto w = Get(*learner, "mixer.experts.hidden.weight", 0);
  auto b = Get(*learner, "mixer.experts.hidden.bias", 0);
  const size_t wb = w.size() / 4, bb = b.size() / 4;
  std::fill(w.begin() + 2 * wb, w.begin() + 3 * wb, 0.0f);
  std::fill(b.begin() + 2 * bb, b.begin() + 3 * bb, -1.0f);
  ASSERT_TRUE(learner->SetParameter("mixer.experts.hidden.weight", 0, w).ok());
  ASSERT_TRUE(learner->SetParameter("mixer.experts.hidden.bias", 0, b).ok());
  auto diags = learner->Diagnostics(RandomObs(1, 8, 5), 8, {0.0});
  ASSERT_TRUE(diags.ok());
  EXPECT_EQ((*diags)[0].expert_dormant[2][0], 1.0);
  EXPECT_LT((*diags)[0].expert_dormant[0][0], 1.0);
  EXPECT_EQ(agents::TopExperts({(*diags)[0].expert_dormant[0][0], (*diags)[0].expert_dormant[1][0],
                                (*diags)[0].expert_dormant[2][0], (*diags)[0].expert_dormant[3][0]},
                               1),
            (std::vector<int>{2}));
}

TEST(ExpertDiagnosticsTest, SparseRoutersReportLoadAndDrops) {
  for (MixerType type : {MixerType::kTokenChoice, MixerType::kExpertChoice}) {
    auto learner = Make(MoeNetwork(type), 1);
    auto diags = learner->Diagnostics(RandomObs(1, 8, 9), 8, {0.0});
    ASSERT_TRUE(diags.ok()) << diags.status().ToString();
    const MemberDiagnostics& d = (*diags)[0];
    ASSERT_EQ(d.expert_load.size(), 4u);
    for (double l : d.expert_load) {
      EXPECT_GE(l, 0.0);
      EXPECT_LE(l, 1.0);
    }
    EXPECT_GE(d.tokens_dropped, 0.0);
    EXPECT_LE(d.tokens_dropped, 1.0);
  }
}

TEST(ExpertDiagnosticsTest, DenseNetworkHasOnlyPenultimateStatistics) {
  NetworkConfig c;
  c.mixer.hidden_units = 32;
  auto learner = Make(c, 1);
  auto diags = learner->Diagnostics(RandomObs(1, 8, 9), 8, {0.0, 0.1});
  ASSERT_TRUE(diags.ok());
  EXPECT_EQ((*diags)[0].penultimate_dormant.size(), 2u);
  EXPECT_TRUE((*diags)[0].expert_dormant.empty());
  EXPECT_TRUE((*diags)[0].combine_share.empty());
}

TEST(ExpertInterventionTorchTest, ResetOptimizerStateRangeZeroesExactlyTheRange) {
  auto learner = Make(MoeNetwork(), 2);
  TrainSteps(*learner, 2, 2);
  auto& torch_learner = dynamic_cast<TorchLearner&>(*learner);
  const std::string name = "mixer.experts.hidden.weight";
  const torch::Tensor m_before = torch_learner.AdamMoments(name).first.clone();
  const torch::Tensor v_before = torch_learner.AdamMoments(name).second.clone();
  const int64_t block = m_before[0].numel() / 4;
  ASSERT_TRUE(learner->ResetOptimizerStateRange(name, 1, block, block).ok());
  const torch::Tensor m = torch_learner.AdamMoments(name).first, v = torch_learner.AdamMoments(name).second;
  EXPECT_TRUE(torch::equal(m[0], m_before[0]));
  EXPECT_TRUE(torch::equal(v[0], v_before[0]));
  EXPECT_TRUE(m[1][1].eq(0).all().item<bool>());
  EXPECT_TRUE(v[1][1].eq(0).all().item<bool>());
  for (int j : {0, 2, 3}) EXPECT_TRUE(torch::equal(m[1][j], m_before[1][j])) << j;
  EXPECT_FALSE(learner->ResetOptimizerStateRange(name, 1, 4 * block - 1, 2).ok());
}

TEST(ExpertInterventionTorchTest, ResetMatchesFreshInitialization) {
  auto learner = Make(MoeNetwork(), 1);
  TrainSteps(*learner, 1, 3);
  // A reset of every expert equals a freshly built network's experts when the
  // seed is the construction seed (the learner's root seed).
  agents::InterventionTarget all;
  all.experts = {0, 1, 2, 3};
  all.include_router = true;
  const std::vector<float> phi_trained = Get(*learner, "mixer.phi", 0);
  ASSERT_TRUE(agents::ResetExperts(*learner, 0, all, 11).ok());
  auto fresh = Make(MoeNetwork(), 1);
  for (const std::string& name : agents::ExpertParameterNames(*learner)) {
    EXPECT_EQ(Get(*learner, name, 0), Get(*fresh, name, 0)) << name;
  }
  EXPECT_EQ(Get(*learner, "mixer.phi", 0), Get(*fresh, "mixer.phi", 0));
  EXPECT_NE(phi_trained, Get(*learner, "mixer.phi", 0));
  auto& t = dynamic_cast<TorchLearner&>(*learner);
  EXPECT_TRUE(t.AdamMoments("mixer.phi").first.eq(0).all().item<bool>());
  EXPECT_FALSE(t.AdamMoments("encoder.conv.weight").first.eq(0).all().item<bool>());
}

TEST(ExpertInterventionTorchTest, PruningKeepsOutputsFiniteAndTraining) {
  auto learner = Make(MoeNetwork(), 2);
  TrainSteps(*learner, 2, 2);
  agents::InterventionTarget t;
  t.experts = {1, 3};
  for (int m = 0; m < 2; ++m) ASSERT_TRUE(agents::PruneExperts(*learner, m, t).ok());
  auto& torch_learner = dynamic_cast<TorchLearner&>(*learner);
  const std::vector<uint8_t> obs = RandomObs(2, 8, 21);
  const NetworkOutput out = torch_learner.Forward(obs, 8, false);
  EXPECT_EQ(out.q.sizes(), (std::vector<int64_t>{2, 8, 6}));
  EXPECT_TRUE(torch::isfinite(out.q).all().item<bool>());
  // The pruned experts' hidden units are silent: wholly dormant.
  auto diags = learner->Diagnostics(obs, 8, {0.0});
  ASSERT_TRUE(diags.ok());
  EXPECT_EQ((*diags)[0].expert_dormant[1][0], 1.0);
  EXPECT_EQ((*diags)[1].expert_dormant[3][0], 1.0);
  TrainSteps(*learner, 2, 2);
  std::vector<float> q(2 * 8 * 6);
  learner->QValues(obs, 8, false, q);
  for (float x : q) EXPECT_TRUE(std::isfinite(x));
}

// ---- Runner level: a SoftMoE-4 run with diagnostics and interventions.

runner::TrainConfig RunConfig(runner::InterventionType type) {
  RegisterTorchLearnerBackend();
  runner::TrainConfig c;
  c.seed = 5;
  c.env.name = "minatar/breakout";
  c.vector_env.members = 2;
  c.vector_env.envs_per_member = 1;
  c.network = MoeNetwork();
  c.learner.backend = "torch";
  c.agent.batch_size = 8;
  c.agent.min_replay_env_steps = 50;
  c.agent.update_period_env_steps = 4;
  c.agent.target_update_period_env_steps = 50;
  c.agent.epsilon_decay_env_steps = 100;
  c.agent.replay.capacity = 1000;
  c.schedule.total_env_steps = 300;
  c.schedule.eval_every_env_steps = 0;
  c.schedule.log_every_env_steps = 50;
  c.schedule.checkpoint_every_env_steps = 100;
  c.diagnostics.every_env_steps = 50;
  c.diagnostics.batch_size = 32;
  c.interventions.type = type;
  c.interventions.start_env_steps = 150;
  c.interventions.every_env_steps = 100;
  c.interventions.end_env_steps = 250;
  c.interventions.num_experts = 2;
  return c;
}

std::string TempDir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("tokenrl_expert_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir.string();
}

std::string Slurp(const std::string& path) {
  auto text = ReadFile(path);
  EXPECT_TRUE(text.ok()) << path << ": " << text.status().ToString();
  return text.ok() ? *text : "";
}

runner::TrainOptions Quiet(int64_t kill_at = 0) {
  runner::TrainOptions o;
  o.progress = false;
  o.kill_at_env_steps = kill_at;
  return o;
}

TEST(ExpertInterventionTorchTest, RunLogsInterventionsAndResumesByteIdentical) {
  for (runner::InterventionType type :
       {runner::InterventionType::kShrinkPerturb, runner::InterventionType::kPrune}) {
    const std::string full = TempDir("full"), killed = TempDir("killed");
    auto done = runner::RunTraining(RunConfig(type), full, false, Quiet());
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    // Firings: S&P at 150 and 250; pruning one expert at 150 and one at 250.
    const std::string interventions = Slurp(full + "/interventions.csv");
    EXPECT_NE(interventions.find("\n0,150,"), std::string::npos) << interventions;
    EXPECT_NE(interventions.find("\n1,250,"), std::string::npos) << interventions;
    const std::string diagnostics = Slurp(full + "/diagnostics.csv");
    EXPECT_EQ(diagnostics.rfind("member,env_steps,batch,penultimate_dormant_0,penultimate_dormant_0.025,", 0), 0u)
        << diagnostics.substr(0, 200);
    EXPECT_NE(diagnostics.find("\n1,300,32,"), std::string::npos);
    // Killed between the interventions (checkpoint at 200), resumed.
    ASSERT_FALSE(runner::RunTraining(RunConfig(type), killed, false, Quiet(/*kill_at=*/230)).ok());
    auto resumed = runner::RunTraining(RunConfig(type), killed, true, Quiet());
    ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
    EXPECT_EQ(resumed->resumed_from_env_steps, 200);
    for (const char* f : {"metrics.csv", "diagnostics.csv", "interventions.csv", "checkpoints/ckpt-000000000300.bin"}) {
      EXPECT_EQ(Slurp(killed + "/" + f), Slurp(full + "/" + f)) << f << " differs after resume";
    }
    fs::remove_all(full);
    fs::remove_all(killed);
  }
}

}  // namespace
}  // namespace tokenrl::nn::torch_backend
