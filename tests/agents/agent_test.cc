#include "tokenrl/agents/agent.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace tokenrl::agents {
namespace {

constexpr int kActions = 4;
constexpr int kObsSize = 2;  // [C=1, H=1, W=2]: {value, member}.

// A Learner that records what the agent asks of it. Greedy action =
// observation[0] % kActions; per-sample loss = `special_loss` for
// observations whose value is `special_value`, else `base_loss`.
class MockLearner final : public nn::Learner {
 public:
  struct UpdateCall {
    int batch_size = 0;
    std::vector<uint8_t> observations, next_observations;
    std::vector<int32_t> actions;
    std::vector<float> returns, discounts, weights;
    int syncs_before = 0;
  };

  MockLearner(int members, bool noisy) : members_(members) {
    config_.head.noisy = noisy;
    io_ = nn::NetworkIo{.channels = 1, .height = 1, .width = kObsSize, .num_actions = kActions};
  }

  int members() const override { return members_; }
  const nn::NetworkConfig& network_config() const override { return config_; }
  const nn::NetworkIo& io() const override { return io_; }

  void QValues(std::span<const uint8_t> observations, int n, bool, std::span<float> q_values) override {
    for (int i = 0; i < members_ * n; ++i) {
      for (int a = 0; a < kActions; ++a) q_values[i * kActions + a] = a == observations[i * kObsSize] % kActions;
    }
  }
  void GreedyActions(std::span<const uint8_t> observations, int n, bool noise, std::span<int32_t> actions) override {
    ++greedy_calls;
    last_noise = noise;
    EXPECT_EQ(observations.size(), static_cast<size_t>(members_ * n * kObsSize));
    for (int i = 0; i < members_ * n; ++i) actions[i] = observations[i * kObsSize] % kActions;
  }
  Status Update(const nn::UpdateBatch& batch, nn::UpdateResult& result) override {
    UpdateCall call{.batch_size = batch.batch_size,
                    .observations = {batch.observations.begin(), batch.observations.end()},
                    .next_observations = {batch.next_observations.begin(), batch.next_observations.end()},
                    .actions = {batch.actions.begin(), batch.actions.end()},
                    .returns = {batch.returns.begin(), batch.returns.end()},
                    .discounts = {batch.discounts.begin(), batch.discounts.end()},
                    .weights = {batch.weights.begin(), batch.weights.end()},
                    .syncs_before = syncs};
    const int total = members_ * batch.batch_size;
    result.per_sample_loss.resize(total);
    result.loss.assign(members_, 0.0f);
    result.q_mean.assign(members_, 0.0f);
    for (int i = 0; i < total; ++i) {
      const bool special = batch.observations[i * kObsSize] == special_value;
      result.per_sample_loss[i] = special ? special_loss : base_loss;
      result.loss[i / batch.batch_size] += result.per_sample_loss[i] / batch.batch_size;
    }
    for (int m = 0; m < members_; ++m) result.q_mean[m] = static_cast<float>(m) + 0.5f;
    updates.push_back(std::move(call));
    return Status::Ok();
  }
  void SyncTarget() override { ++syncs; }
  std::vector<nn::ParameterInfo> Parameters() const override { return {}; }
  Status GetParameter(const std::string&, int, std::span<float>) const override { return Status::NotFound("mock"); }
  Status SetParameter(const std::string&, int, std::span<const float>) override { return Status::NotFound("mock"); }
  Status ResetOptimizerState(const std::string&, int) override { return Status::NotFound("mock"); }
  void Save(ByteWriter& writer) const override {
    writer.Write<int32_t>(syncs);
    writer.Write<uint64_t>(loaded_updates_base + updates.size());
  }
  Status Load(ByteReader& reader) override {
    uint64_t n = 0;
    if (!reader.Read(syncs) || !reader.Read(n)) return Status::Corruption("mock");
    loaded_updates = static_cast<int64_t>(n);
    loaded_updates_base = n;
    return Status::Ok();
  }

  // Recorded calls and knobs.
  int greedy_calls = 0;
  bool last_noise = false;
  int32_t syncs = 0;
  std::vector<UpdateCall> updates;
  int64_t loaded_updates = -1;
  uint64_t loaded_updates_base = 0;
  uint8_t special_value = 255;
  float special_loss = 1.0f;
  float base_loss = 1.0f;

 private:
  int members_;
  nn::NetworkConfig config_;
  nn::NetworkIo io_;
};

// Deterministic fake environments [E, N]: observation {value, member}, value
// counting up per env (so greedy actions vary); reward = 10 * member + action;
// env n of every member terminates every 7 + n steps and is truncated every 11.
class FakeEnvs {
 public:
  FakeEnvs(int members, int envs) : members_(members), envs_(envs), count_(members * envs) {
    obs_.resize(count_ * kObsSize);
    next_ = final_ = obs_;
    rewards_.resize(count_);
    terminated_.resize(count_);
    truncated_.resize(count_);
    steps_.assign(count_, 0);
    values_.resize(count_);
    for (int i = 0; i < count_; ++i) {
      values_[i] = static_cast<uint8_t>(1 + 13 * i);
      Write(obs_, i);
    }
  }

  // Steps with `actions` and returns the view of the step.
  StepView Step(std::span<const int32_t> actions) {
    actions_.assign(actions.begin(), actions.end());
    for (int i = 0; i < count_; ++i) {
      const int member = i / envs_, env = i % envs_;
      rewards_[i] = static_cast<float>(10 * member + actions[i]);
      ++steps_[i];
      values_[i] = static_cast<uint8_t>(values_[i] % 200 + 1);
      terminated_[i] = steps_[i] % (7 + env) == 0;
      truncated_[i] = !terminated_[i] && steps_[i] % 11 == 0;
      if (terminated_[i] || truncated_[i]) {
        Write(final_, i);
        values_[i] = static_cast<uint8_t>(values_[i] % 200 + 1);
      }
      Write(next_, i);
    }
    return StepView{obs_, actions_, rewards_, terminated_, truncated_, next_, final_};
  }
  // Makes the post-step observations current (the env's auto-reset).
  void Advance() { obs_ = next_; }
  std::span<const uint8_t> observations() const { return obs_; }

 private:
  void Write(std::vector<uint8_t>& buffer, int i) {
    buffer[i * kObsSize] = values_[i];
    buffer[i * kObsSize + 1] = static_cast<uint8_t>(i / envs_);
  }
  int members_, envs_, count_;
  std::vector<uint8_t> obs_, next_, final_, terminated_, truncated_, values_;
  std::vector<float> rewards_;
  std::vector<int32_t> actions_;
  std::vector<int> steps_;
};

struct Harness {
  Harness(const AgentConfig& config, int members, int envs, bool noisy = false) : env(members, envs) {
    auto learner = std::make_unique<MockLearner>(members, noisy);
    mock = learner.get();
    auto created = Agent::Create(config, std::move(learner), members, envs);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    agent = std::move(created).value();
    actions.resize(members * envs);
  }
  Status Step() {
    agent->SelectActions(env.observations(), actions);
    const Status status = agent->Observe(env.Step(actions));
    env.Advance();
    return status;
  }
  FakeEnvs env;
  MockLearner* mock = nullptr;
  std::unique_ptr<Agent> agent;
  std::vector<int32_t> actions;
};

AgentConfig SmallConfig() {
  AgentConfig config;
  config.n_step = 1;
  config.batch_size = 5;
  config.min_replay_env_steps = 30;
  config.update_period_env_steps = 4;
  config.target_update_period_env_steps = 20;
  config.epsilon_decay_env_steps = 100;
  config.replay.capacity = 1000;
  config.seed = 42;
  return config;
}

TEST(EpsilonAtTest, DopamineLinearDecay) {
  EXPECT_DOUBLE_EQ(EpsilonAt(0, 100, 1000, 0.01), 1.0);
  EXPECT_DOUBLE_EQ(EpsilonAt(99, 100, 1000, 0.01), 1.0);
  EXPECT_DOUBLE_EQ(EpsilonAt(100, 100, 1000, 0.01), 1.0);
  EXPECT_NEAR(EpsilonAt(101, 100, 1000, 0.01), 0.01 + 0.99 * 999.0 / 1000.0, 1e-12);
  EXPECT_NEAR(EpsilonAt(600, 100, 1000, 0.01), 0.505, 1e-12);
  EXPECT_DOUBLE_EQ(EpsilonAt(1100, 100, 1000, 0.01), 0.01);
  EXPECT_DOUBLE_EQ(EpsilonAt(1000000, 100, 1000, 0.01), 0.01);
  EXPECT_DOUBLE_EQ(EpsilonAt(5, 0, 1, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(EpsilonAt(0, 0, 1, 0.2), 1.0);
}

TEST(AgentTest, CreateRejectsBadArguments) {
  const AgentConfig config = SmallConfig();
  EXPECT_FALSE(Agent::Create(config, std::make_unique<MockLearner>(2, false), 3, 1).ok());  // Members differ.
  EXPECT_FALSE(Agent::Create(config, nullptr, 1, 1).ok());
  AgentConfig tiny = config;
  tiny.replay.capacity = 3;  // Below 2 * envs * (n + 1).
  EXPECT_FALSE(Agent::Create(tiny, std::make_unique<MockLearner>(1, false), 1, 2).ok());
}

TEST(AgentTest, WarmupCadenceAndTargetSyncCountEnvStepsPerMember) {
  const AgentConfig config = SmallConfig();
  constexpr int kMembers = 2, kEnvs = 3;
  Harness h(config, kMembers, kEnvs);
  for (int call = 1; call <= 40; ++call) {
    ASSERT_TRUE(h.Step().ok());
    const int64_t t_end = call * kEnvs;
    EXPECT_EQ(h.agent->env_steps(), t_end);
    int64_t updates = 0, syncs = 0;
    for (int64_t t = config.min_replay_env_steps + 1; t <= t_end; ++t) {
      updates += t % config.update_period_env_steps == 0;
      syncs += t % config.target_update_period_env_steps == 0;
    }
    EXPECT_EQ(h.agent->gradient_updates(), updates) << "after env step " << t_end;
    EXPECT_EQ(static_cast<int64_t>(h.mock->updates.size()), updates);
    EXPECT_EQ(h.mock->syncs, syncs);
  }
  // First update at env step 32 (> 30 and a multiple of 4), first sync at 40.
  // Within one Observe, steps run in order: the update at 40 precedes its sync.
  ASSERT_GE(h.mock->updates.size(), 3u);
  EXPECT_EQ(h.mock->updates[0].syncs_before, 0);
  EXPECT_EQ(h.mock->updates[2].syncs_before, 0);  // Updates at 32, 36, 40.
  EXPECT_EQ(h.mock->updates[3].syncs_before, 1);  // 44.
  const TrainStats stats = h.agent->TakeTrainStats();
  EXPECT_EQ(stats.updates, h.agent->gradient_updates());
  ASSERT_EQ(stats.q_mean.size(), 2u);
  EXPECT_DOUBLE_EQ(stats.q_mean[1], 1.5);
  EXPECT_DOUBLE_EQ(stats.loss_mean[0], 1.0);
  EXPECT_EQ(h.agent->TakeTrainStats().updates, 0);
}

TEST(AgentTest, BatchesAreMemberMajorWithEachMembersOwnData) {
  AgentConfig config = SmallConfig();
  config.n_step = 3;
  constexpr int kMembers = 3, kEnvs = 2;
  Harness h(config, kMembers, kEnvs);
  for (int call = 0; call < 60; ++call) ASSERT_TRUE(h.Step().ok());
  ASSERT_FALSE(h.mock->updates.empty());
  for (const auto& u : h.mock->updates) {
    ASSERT_EQ(u.batch_size, config.batch_size);
    ASSERT_EQ(u.observations.size(), static_cast<size_t>(kMembers * config.batch_size * kObsSize));
    EXPECT_TRUE(u.weights.empty());  // Uniform replay: no importance weights.
    for (int m = 0; m < kMembers; ++m) {
      for (int i = 0; i < config.batch_size; ++i) {
        const int k = m * config.batch_size + i;
        EXPECT_EQ(u.observations[k * kObsSize + 1], m);
        EXPECT_EQ(u.next_observations[k * kObsSize + 1], m);
        // Returns hold this member's rewards (10 * m + action per step).
        EXPECT_GE(u.returns[k], 10.0f * m);
        EXPECT_LT(u.returns[k], (10.0f * m + kActions) * 3.0f);
        const float d = u.discounts[k];
        EXPECT_TRUE(d == 0.0f || std::abs(d - 0.99f) < 1e-6f || std::abs(d - 0.99f * 0.99f) < 1e-6f ||
                    std::abs(d - 0.99f * 0.99f * 0.99f) < 1e-6f)
            << d;
      }
    }
  }
}

TEST(AgentTest, ClipRewardsStoresRewardsClippedToPlusMinusOne) {
  // Rewards are 10 * member + action; with n = 1 a sample's return is its step reward.
  for (bool clip : {false, true}) {
    AgentConfig config = SmallConfig();
    config.clip_rewards = clip;
    constexpr int kMembers = 2;
    Harness h(config, kMembers, 1);
    for (int call = 0; call < 60; ++call) ASSERT_TRUE(h.Step().ok());
    ASSERT_FALSE(h.mock->updates.empty());
    for (const auto& u : h.mock->updates) {
      for (int k = 0; k < kMembers * config.batch_size; ++k) {
        const float raw = 10.0f * static_cast<float>(k / config.batch_size) + static_cast<float>(u.actions[k]);
        EXPECT_EQ(u.returns[k], clip ? std::min(raw, 1.0f) : raw) << "clip " << clip << " sample " << k;
      }
    }
  }
}

TEST(AgentTest, EpsilonGreedyShares) {
  AgentConfig config = SmallConfig();
  config.min_replay_env_steps = 50;
  config.update_period_env_steps = 1 << 30;
  config.target_update_period_env_steps = 1 << 30;
  config.epsilon_decay_env_steps = 1;
  config.epsilon_train = 0.3;
  Harness h(config, 1, 1);
  // Warm-up: epsilon 1, the network is not even asked.
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(h.Step().ok());
  EXPECT_EQ(h.agent->epsilon(), 1.0);
  EXPECT_EQ(h.mock->greedy_calls, 0);
  ASSERT_TRUE(h.Step().ok());
  EXPECT_DOUBLE_EQ(h.agent->epsilon(), 0.3);
  // Observation value 6 -> greedy action 2. P(2) = 0.7 + 0.3 / 4.
  const std::vector<uint8_t> obs = {6, 0};
  std::vector<int> counts(kActions, 0);
  std::vector<int32_t> action(1);
  constexpr int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) {
    h.agent->SelectActions(obs, action);
    ++counts[action[0]];
  }
  EXPECT_NEAR(counts[2] / static_cast<double>(kDraws), 0.775, 0.015);
  for (int a : {0, 1, 3}) EXPECT_NEAR(counts[a] / static_cast<double>(kDraws), 0.075, 0.01);
  EXPECT_FALSE(h.mock->last_noise);
}

TEST(AgentTest, NoisyNetworksUseNoiseAndZeroEpsilon) {
  AgentConfig config = SmallConfig();
  config.epsilon_train = 0.5;
  Harness h(config, 2, 2, /*noisy=*/true);
  EXPECT_EQ(h.agent->epsilon(), 0.0);  // Even during warm-up.
  const std::vector<uint8_t> obs = {6, 0, 7, 0, 9, 1, 4, 1};
  std::vector<int32_t> actions(4);
  for (int i = 0; i < 100; ++i) {
    h.agent->SelectActions(obs, actions);
    EXPECT_TRUE(h.mock->last_noise);
    EXPECT_EQ(actions, (std::vector<int32_t>{2, 3, 1, 0}));
  }
  h.agent->SelectEvalActions(obs, 2, actions);
  EXPECT_FALSE(h.mock->last_noise);
}

TEST(AgentTest, EvaluationDoesNotChangeTheTrainingTrajectory) {
  AgentConfig config = SmallConfig();
  config.epsilon_eval = 0.5;
  Harness a(config, 2, 2), b(config, 2, 2);
  std::vector<int32_t> eval_actions(2 * 3);
  const std::vector<uint8_t> eval_obs(2 * 3 * kObsSize, 5);
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(a.Step().ok());
    ASSERT_TRUE(b.Step().ok());
    b.agent->SelectEvalActions(eval_obs, 3, eval_actions);
    EXPECT_EQ(a.actions, b.actions);
  }
}

TEST(AgentTest, PrioritizedReplayPassesWeightsAndFollowsLosses) {
  for (bool prioritized : {false, true}) {
    AgentConfig config = SmallConfig();
    config.replay.prioritized = prioritized;
    config.batch_size = 16;
    config.min_replay_env_steps = 200;
    config.update_period_env_steps = 1;
    Harness h(config, 2, 1);
    h.mock->special_value = 5;  // About 1 in 200 observations.
    h.mock->special_loss = 100.0f;
    h.mock->base_loss = 0.0f;
    for (int i = 0; i < 600; ++i) ASSERT_TRUE(h.Step().ok());
    int special = 0, total = 0;
    for (size_t u = h.mock->updates.size() / 2; u < h.mock->updates.size(); ++u) {
      const auto& call = h.mock->updates[u];
      EXPECT_EQ(call.weights.size(), prioritized ? 2u * 16u : 0u);
      for (size_t i = 0; i < call.actions.size(); ++i) {
        special += call.observations[i * kObsSize] == 5;
        ++total;
        if (prioritized) {
          EXPECT_GT(call.weights[i], 0.0f);
          EXPECT_LE(call.weights[i], 1.0f);
        }
      }
    }
    const double share = special / static_cast<double>(total);
    if (prioritized) {
      EXPECT_GT(share, 0.3) << "high-loss transitions should dominate";
    } else {
      EXPECT_LT(share, 0.05);
    }
  }
}

TEST(AgentTest, NonFiniteLossStopsTheAgent) {
  AgentConfig config = SmallConfig();
  config.min_replay_env_steps = 8;
  config.update_period_env_steps = 1;
  Harness h(config, 1, 1);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(h.Step().ok());
  const int64_t updates = h.agent->gradient_updates();
  ASSERT_EQ(updates, 2);
  h.mock->base_loss = std::numeric_limits<float>::quiet_NaN();
  const Status status = h.Step();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("loss became NaN/inf at gradient update 3; stopping"), std::string::npos)
      << status.message();
  EXPECT_EQ(h.agent->gradient_updates(), updates);
  h.mock->base_loss = 1.0f;
  EXPECT_FALSE(h.Step().ok());  // Refuses to go on.
  EXPECT_EQ(h.mock->updates.size(), 3u);
}

TEST(AgentTest, ObserveRejectsWrongShapes) {
  Harness h(SmallConfig(), 1, 2);
  StepView view;
  EXPECT_EQ(h.agent->Observe(view).code(), Status::Code::kInvalidArgument);
}

TEST(AgentTest, SaveLoadContinuesIdentically) {
  for (bool prioritized : {false, true}) {
    AgentConfig config = SmallConfig();
    config.n_step = 3;
    config.replay.prioritized = prioritized;
    config.replay.capacity = 64;  // Wraps during the run.
    Harness a(config, 2, 2);
    a.mock->special_value = 9;
    a.mock->special_loss = 7.0f;
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(a.Step().ok());
    ByteWriter writer;
    a.agent->Save(writer);

    Harness b(config, 2, 2);
    b.mock->special_value = 9;
    b.mock->special_loss = 7.0f;
    b.env = a.env;  // The environments continue from the same state.
    ByteReader reader(writer.bytes());
    ASSERT_TRUE(b.agent->Load(reader).ok());
    EXPECT_TRUE(reader.Finish("agent").ok());
    EXPECT_EQ(b.mock->loaded_updates, static_cast<int64_t>(a.mock->updates.size()));
    EXPECT_EQ(b.agent->env_steps(), a.agent->env_steps());
    EXPECT_EQ(b.agent->gradient_updates(), a.agent->gradient_updates());
    ByteWriter again;
    b.agent->Save(again);
    EXPECT_EQ(writer.bytes(), again.bytes());

    const size_t a_before = a.mock->updates.size();
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE(a.Step().ok());
      ASSERT_TRUE(b.Step().ok());
      EXPECT_EQ(a.actions, b.actions);
    }
    ASSERT_EQ(a.mock->updates.size() - a_before, b.mock->updates.size());
    for (size_t u = 0; u < b.mock->updates.size(); ++u) {
      const auto& x = a.mock->updates[a_before + u];
      const auto& y = b.mock->updates[u];
      EXPECT_EQ(x.observations, y.observations);
      EXPECT_EQ(x.next_observations, y.next_observations);
      EXPECT_EQ(x.actions, y.actions);
      EXPECT_EQ(x.returns, y.returns);
      EXPECT_EQ(x.discounts, y.discounts);
      EXPECT_EQ(x.weights, y.weights);
    }
    EXPECT_EQ(a.agent->TakeTrainStats().loss_mean, b.agent->TakeTrainStats().loss_mean);
  }
}

TEST(AgentTest, LoadRejectsOtherShapes) {
  Harness a(SmallConfig(), 2, 2);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(a.Step().ok());
  ByteWriter writer;
  a.agent->Save(writer);
  Harness other(SmallConfig(), 2, 1);
  ByteReader reader(writer.bytes());
  EXPECT_EQ(other.agent->Load(reader).code(), Status::Code::kCorruption);
  Harness same(SmallConfig(), 2, 2);
  ByteReader truncated(std::string_view(writer.bytes()).substr(0, writer.bytes().size() / 2));
  EXPECT_EQ(same.agent->Load(truncated).code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace tokenrl::agents
