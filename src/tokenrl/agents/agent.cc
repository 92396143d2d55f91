#include "tokenrl/agents/agent.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <random>
#include <sstream>
#include <string>

#include "tokenrl/core/seed.h"
#include "tokenrl/replay/prioritized_sampler.h"
#include "tokenrl/replay/replay_buffer.h"
#include "tokenrl/replay/uniform_sampler.h"

namespace tokenrl::agents {

double EpsilonAt(int64_t env_steps, int64_t warmup_env_steps, int64_t decay_env_steps, double epsilon_train) {
  const double bonus = (1.0 - epsilon_train) * static_cast<double>(decay_env_steps + warmup_env_steps - env_steps) /
                       static_cast<double>(decay_env_steps);
  return epsilon_train + std::clamp(bonus, 0.0, 1.0 - epsilon_train);
}

namespace {

// Random streams of member m: DeriveSeed(config.seed, {m, stream}).
enum Stream : uint64_t { kExploreStream = 0, kReplayStream = 1, kEvalStream = 2 };

constexpr uint32_t kMagic = 0x4e474152;  // "RAGN"
constexpr uint32_t kVersion = 1;

std::string RngState(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

bool ReadRng(ByteReader& reader, std::mt19937_64& rng) {
  std::string text;
  if (!reader.ReadString(text)) return false;
  std::istringstream in(text);
  in >> rng;
  return !in.fail();
}

// The one value-based agent (DQN, Rainbow-lite, Rainbow, DER): see agent.h.
class ValueAgent final : public Agent {
 public:
  ValueAgent(const AgentConfig& config, std::unique_ptr<nn::Learner> learner, int members, int envs_per_member)
      : config_(config),
        learner_(std::move(learner)),
        members_(members),
        envs_(envs_per_member),
        obs_size_(static_cast<int64_t>(learner_->io().channels) * learner_->io().height * learner_->io().width),
        num_actions_(learner_->io().num_actions),
        noisy_(learner_->network_config().head.noisy) {
    const replay::ReplayBufferConfig replay_config{
        .capacity = config.replay.capacity,
        .num_envs = envs_per_member,
        .observation_size = obs_size_,
        .n_step = {.n = static_cast<int>(config.n_step), .gamma = config.gamma},
        .frame_stack = static_cast<int>(config.replay.frame_stack),
        .num_actions = num_actions_};
    for (int m = 0; m < members; ++m) {
      std::unique_ptr<replay::Sampler> sampler;
      if (config.replay.prioritized) {
        sampler = std::make_unique<replay::PrioritizedSampler>(
            config.replay.capacity,
            replay::PrioritizedSamplerConfig{.alpha = config.replay.alpha, .beta = config.replay.beta});
      } else {
        sampler = std::make_unique<replay::UniformSampler>(config.replay.capacity);
      }
      replays_.push_back(std::make_unique<replay::ReplayBuffer>(replay_config, std::move(sampler)));
      const uint64_t root = static_cast<uint64_t>(config.seed);
      explore_rngs_.emplace_back(DeriveSeed(root, {static_cast<uint64_t>(m), kExploreStream}));
      replay_rngs_.emplace_back(DeriveSeed(root, {static_cast<uint64_t>(m), kReplayStream}));
      eval_rngs_.emplace_back(DeriveSeed(root, {static_cast<uint64_t>(m), kEvalStream}));
    }
    const size_t b = static_cast<size_t>(members) * config.batch_size;
    batch_obs_.resize(b * obs_size_);
    batch_next_obs_.resize(b * obs_size_);
    batch_actions_.resize(b);
    batch_returns_.resize(b);
    batch_discounts_.resize(b);
    batch_weights_.resize(b);
    batch_indices_.resize(b);
    explore_.resize(static_cast<size_t>(members) * envs_per_member);
    loss_sum_.assign(members, 0.0);
    q_sum_.assign(members, 0.0);
  }

  void SelectActions(std::span<const uint8_t> observations, std::span<int32_t> actions) override {
    const size_t count = static_cast<size_t>(members_) * envs_;
    TOKENRL_CHECK(observations.size() == count * obs_size_ && actions.size() == count,
                  "SelectActions: expected [{}, {}] observations and actions", members_, envs_);
    if (noisy_) {  // Noisy networks explore through their noise; epsilon is 0.
      learner_->GreedyActions(observations, envs_, /*noise=*/true, actions);
      return;
    }
    const double eps = epsilon();
    bool any_greedy = false;
    for (int m = 0; m < members_; ++m) {
      for (int n = 0; n < envs_; ++n) {
        const size_t i = static_cast<size_t>(m) * envs_ + n;
        explore_[i] = replay::UniformUnitDouble(explore_rngs_[m]) < eps;
        if (explore_[i]) {
          actions[i] = static_cast<int32_t>(replay::UniformIndex(explore_rngs_[m], num_actions_));
        } else {
          any_greedy = true;
        }
      }
    }
    if (!any_greedy) return;  // All random (e.g. warm-up): the network is not needed.
    greedy_.resize(count);
    learner_->GreedyActions(observations, envs_, /*noise=*/false, greedy_);
    for (size_t i = 0; i < count; ++i) {
      if (!explore_[i]) actions[i] = greedy_[i];
    }
  }

  void SelectEvalActions(std::span<const uint8_t> observations, int envs_per_member,
                         std::span<int32_t> actions) override {
    const size_t count = static_cast<size_t>(members_) * envs_per_member;
    TOKENRL_CHECK(envs_per_member > 0 && observations.size() == count * obs_size_ && actions.size() == count,
                  "SelectEvalActions: expected [{}, {}] observations and actions", members_, envs_per_member);
    learner_->GreedyActions(observations, envs_per_member, /*noise=*/false, actions);
    for (int m = 0; m < members_; ++m) {
      for (int n = 0; n < envs_per_member; ++n) {
        if (replay::UniformUnitDouble(eval_rngs_[m]) < config_.epsilon_eval) {
          actions[static_cast<size_t>(m) * envs_per_member + n] =
              static_cast<int32_t>(replay::UniformIndex(eval_rngs_[m], num_actions_));
        }
      }
    }
  }

  Status Observe(const StepView& step) override {
    if (!error_.ok()) return error_;
    const size_t count = static_cast<size_t>(members_) * envs_;
    const size_t obs_bytes = count * obs_size_;
    if (step.observations.size() != obs_bytes || step.next_observations.size() != obs_bytes ||
        step.final_observations.size() != obs_bytes || step.actions.size() != count || step.rewards.size() != count ||
        step.terminated.size() != count || step.truncated.size() != count) {
      return Status::InvalidArgument(fmt::format("Observe: StepView spans must be [{}, {}] (observations x {} bytes)",
                                                 members_, envs_, obs_size_));
    }
    for (size_t i = 0; i < count; ++i) {
      if (step.actions[i] < 0 || step.actions[i] >= num_actions_) {
        return Status::InvalidArgument(
            fmt::format("Observe: action {} out of range [0, {})", step.actions[i], num_actions_));
      }
    }
    const auto obs_at = [&](std::span<const uint8_t> all, size_t i) { return all.subspan(i * obs_size_, obs_size_); };
    for (int m = 0; m < members_; ++m) {
      for (int n = 0; n < envs_; ++n) {
        const size_t i = static_cast<size_t>(m) * envs_ + n;
        // Dopamine clips in the runner, before the agent stores the transition.
        const float reward = config_.clip_rewards ? std::clamp(step.rewards[i], -1.0f, 1.0f) : step.rewards[i];
        replays_[m]->Add(n, obs_at(step.observations, i), step.actions[i], reward, step.terminated[i] != 0,
                         step.truncated[i] != 0, obs_at(step.next_observations, i), obs_at(step.final_observations, i));
      }
    }
    // Env steps t = env_steps_ + 1 .. env_steps_ + N, each with Dopamine's
    // per-step cadence check.
    for (int n = 0; n < envs_; ++n) {
      const int64_t t = ++env_steps_;
      if (t <= config_.min_replay_env_steps) continue;
      if (t % config_.update_period_env_steps == 0) {
        const Status status = Update();
        if (!status.ok()) {
          error_ = status;
          return error_;
        }
      }
      if (t % config_.target_update_period_env_steps == 0) learner_->SyncTarget();
    }
    return Status::Ok();
  }

  int64_t env_steps() const override { return env_steps_; }
  int64_t gradient_updates() const override { return gradient_updates_; }
  double epsilon() const override {
    if (noisy_) return 0.0;
    return EpsilonAt(env_steps_, config_.min_replay_env_steps, config_.epsilon_decay_env_steps, config_.epsilon_train);
  }

  TrainStats TakeTrainStats() override {
    TrainStats stats;
    stats.updates = stat_updates_;
    stats.loss_mean.assign(members_, 0.0);
    stats.q_mean.assign(members_, 0.0);
    for (int m = 0; m < members_ && stat_updates_ > 0; ++m) {
      stats.loss_mean[m] = loss_sum_[m] / static_cast<double>(stat_updates_);
      stats.q_mean[m] = q_sum_[m] / static_cast<double>(stat_updates_);
    }
    stat_updates_ = 0;
    std::fill(loss_sum_.begin(), loss_sum_.end(), 0.0);
    std::fill(q_sum_.begin(), q_sum_.end(), 0.0);
    return stats;
  }

  nn::Learner& learner() override { return *learner_; }

  int RecentObservations(int n, std::vector<uint8_t>& out) const override {
    int64_t k = n;
    for (const auto& replay : replays_) {
      k = std::min({k, replay->observations_written(), replay->config().capacity});
    }
    out.assign(static_cast<size_t>(std::max<int64_t>(k, 0) * members_ * obs_size_), 0);
    if (k <= 0) return 0;
    for (int m = 0; m < members_; ++m) {
      const replay::ReplayBuffer& replay = *replays_[m];
      const int64_t written = replay.observations_written(), capacity = replay.config().capacity;
      for (int64_t i = 0; i < k; ++i) {
        replay.ReadObservation((written - k + i) % capacity,
                               std::span<uint8_t>(out.data() + (m * k + i) * obs_size_, static_cast<size_t>(obs_size_)));
      }
    }
    return static_cast<int>(k);
  }

  void Save(ByteWriter& writer) const override {
    writer.Write(kMagic);
    writer.Write(kVersion);
    writer.Write<int32_t>(members_);
    writer.Write<int32_t>(envs_);
    writer.Write<int64_t>(obs_size_);
    writer.Write<int64_t>(env_steps_);
    writer.Write<int64_t>(gradient_updates_);
    writer.Write<int64_t>(stat_updates_);
    writer.WriteVector(loss_sum_);
    writer.WriteVector(q_sum_);
    for (int m = 0; m < members_; ++m) {
      writer.WriteString(RngState(explore_rngs_[m]));
      writer.WriteString(RngState(replay_rngs_[m]));
      writer.WriteString(RngState(eval_rngs_[m]));
      replays_[m]->Save(writer);
    }
    ByteWriter learner_state;
    learner_->Save(learner_state);
    writer.WriteString(learner_state.bytes());
  }

  // The replays and the learner load one after the other, so a part that
  // fails after others loaded would leave a mix; a rejected state instead
  // leaves the agent as it was: restore the state saved before trying.
  Status Load(ByteReader& reader) override {
    ByteWriter before;
    Save(before);
    const Status status = LoadParts(reader);
    if (!status.ok()) {
      ByteReader restore(before.bytes());
      const Status restored = LoadParts(restore);
      if (!restored.ok()) {
        std::fprintf(stderr, "Agent: restoring the state before a rejected load failed: %s\n",
                     restored.ToString().c_str());
        std::abort();  // Unreachable: the agent's own state always loads.
      }
    }
    return status;
  }

 private:
  Status LoadParts(ByteReader& reader) {
    const auto corrupt = [](std::string_view what) { return Status::Corruption(fmt::format("Agent: {}", what)); };
    uint32_t magic = 0, version = 0;
    int32_t members = 0, envs = 0;
    int64_t obs_size = 0, env_steps = 0, gradient_updates = 0, stat_updates = 0;
    std::vector<double> loss_sum, q_sum;
    if (!reader.Read(magic) || !reader.Read(version) || !reader.Read(members) || !reader.Read(envs) ||
        !reader.Read(obs_size) || !reader.Read(env_steps) || !reader.Read(gradient_updates) ||
        !reader.Read(stat_updates) || !reader.ReadVector(loss_sum) || !reader.ReadVector(q_sum)) {
      return corrupt("truncated state");
    }
    if (magic != kMagic || version != kVersion) return corrupt("not an agent state (bad magic or version)");
    if (members != members_ || envs != envs_ || obs_size != obs_size_) {
      return corrupt(fmt::format("saved members {} / envs {} / observation bytes {} != configured {} / {} / {}",
                                 members, envs, obs_size, members_, envs_, obs_size_));
    }
    if (env_steps < 0 || gradient_updates < 0 || stat_updates < 0 || loss_sum.size() != static_cast<size_t>(members) ||
        q_sum.size() != static_cast<size_t>(members)) {
      return corrupt("inconsistent counters");
    }
    std::vector<std::mt19937_64> explore(members), replay_rngs(members), eval(members);
    for (int m = 0; m < members_; ++m) {
      if (!ReadRng(reader, explore[m]) || !ReadRng(reader, replay_rngs[m]) || !ReadRng(reader, eval[m])) {
        return corrupt("truncated or malformed random-stream state");
      }
      TOKENRL_RETURN_IF_ERROR(replays_[m]->Load(reader).WithContext(fmt::format("Agent: member {} replay", m)));
    }
    std::string learner_state;
    if (!reader.ReadString(learner_state)) return corrupt("truncated learner state");
    ByteReader learner_reader(learner_state);
    TOKENRL_RETURN_IF_ERROR(learner_->Load(learner_reader).WithContext("Agent: learner"));

    env_steps_ = env_steps;
    gradient_updates_ = gradient_updates;
    stat_updates_ = stat_updates;
    loss_sum_ = std::move(loss_sum);
    q_sum_ = std::move(q_sum);
    explore_rngs_ = std::move(explore);
    replay_rngs_ = std::move(replay_rngs);
    eval_rngs_ = std::move(eval);
    error_ = Status::Ok();
    return Status::Ok();
  }

  // One gradient update of all members on a batch [E, B] sampled from each
  // member's own replay; then priorities and statistics.
  Status Update() {
    for (const auto& replay : replays_) {
      if (replay->size() == 0) return Status::Ok();  // Nothing to learn from yet (long n-step windows).
    }
    const size_t b = static_cast<size_t>(config_.batch_size);
    for (int m = 0; m < members_; ++m) {
      const size_t o = m * b;
      replays_[m]->Sample(
          static_cast<int>(b), replay_rngs_[m],
          replay::SampleBuffers{.observations = std::span(batch_obs_).subspan(o * obs_size_, b * obs_size_),
                                .actions = std::span(batch_actions_).subspan(o, b),
                                .returns = std::span(batch_returns_).subspan(o, b),
                                .discounts = std::span(batch_discounts_).subspan(o, b),
                                .next_observations = std::span(batch_next_obs_).subspan(o * obs_size_, b * obs_size_),
                                .weights = std::span(batch_weights_).subspan(o, b),
                                .indices = std::span(batch_indices_).subspan(o, b)});
    }
    const nn::UpdateBatch batch{
        .batch_size = static_cast<int>(b),
        .observations = batch_obs_,
        .actions = batch_actions_,
        .returns = batch_returns_,
        .discounts = batch_discounts_,
        .next_observations = batch_next_obs_,
        .weights = config_.replay.prioritized ? std::span<const float>(batch_weights_) : std::span<const float>()};
    const int64_t update_number = gradient_updates_ + 1;
    TOKENRL_RETURN_IF_ERROR(
        learner_->Update(batch, result_)
            .WithContext(fmt::format("learner update failed at gradient update {}", update_number)));
    const size_t total = static_cast<size_t>(members_) * b;
    bool finite = result_.per_sample_loss.size() == total && result_.loss.size() == static_cast<size_t>(members_) &&
                  result_.q_mean.size() == static_cast<size_t>(members_);
    if (!finite) return Status::Internal("learner returned results of the wrong size");
    for (float x : result_.per_sample_loss) finite = finite && std::isfinite(x);
    for (float x : result_.loss) finite = finite && std::isfinite(x);
    if (!finite) {
      return Status::Internal(fmt::format("loss became NaN/inf at gradient update {}; stopping", update_number));
    }
    ++gradient_updates_;
    if (config_.replay.prioritized) {
      for (int m = 0; m < members_; ++m) {
        replays_[m]->UpdatePriorities(std::span(batch_indices_).subspan(m * b, b),
                                      std::span(result_.per_sample_loss).subspan(m * b, b));
      }
    }
    ++stat_updates_;
    for (int m = 0; m < members_; ++m) {
      loss_sum_[m] += result_.loss[m];
      q_sum_[m] += result_.q_mean[m];
    }
    return Status::Ok();
  }

  const AgentConfig config_;
  std::unique_ptr<nn::Learner> learner_;
  const int members_;
  const int envs_;
  const int64_t obs_size_;
  const int num_actions_;
  const bool noisy_;

  std::vector<std::unique_ptr<replay::ReplayBuffer>> replays_;           // [E]
  std::vector<std::mt19937_64> explore_rngs_, replay_rngs_, eval_rngs_;  // [E] each
  int64_t env_steps_ = 0;
  int64_t gradient_updates_ = 0;
  Status error_;  // Set once an update fails; Observe then refuses to go on.

  // Statistics since the last TakeTrainStats.
  int64_t stat_updates_ = 0;
  std::vector<double> loss_sum_, q_sum_;

  // Preallocated buffers.
  std::vector<uint8_t> batch_obs_, batch_next_obs_;
  std::vector<int32_t> batch_actions_;
  std::vector<float> batch_returns_, batch_discounts_, batch_weights_;
  std::vector<int64_t> batch_indices_;
  std::vector<uint8_t> explore_;
  std::vector<int32_t> greedy_;
  nn::UpdateResult result_;
};

}  // namespace

StatusOr<std::unique_ptr<Agent>> Agent::Create(const AgentConfig& config, std::unique_ptr<nn::Learner> learner,
                                               int members, int envs_per_member) {
  if (learner == nullptr) return Status::InvalidArgument("Agent: no learner");
  if (members < 1 || envs_per_member < 1) {
    return Status::InvalidArgument(
        fmt::format("Agent: members ({}) and envs_per_member ({}) must be >= 1", members, envs_per_member));
  }
  if (learner->members() != members) {
    return Status::InvalidArgument(
        fmt::format("Agent: the learner has {} members, the agent {}", learner->members(), members));
  }
  const nn::NetworkIo& io = learner->io();
  if (io.num_actions < 1 || io.channels < 1 || io.height < 1 || io.width < 1) {
    return Status::InvalidArgument("Agent: the learner's NetworkIo has an empty observation or no actions");
  }
  const replay::ReplayBufferConfig replay_config{
      .capacity = config.replay.capacity,
      .num_envs = envs_per_member,
      .observation_size = static_cast<int64_t>(io.channels) * io.height * io.width,
      .n_step = {.n = static_cast<int>(config.n_step), .gamma = config.gamma},
      .frame_stack = static_cast<int>(config.replay.frame_stack),
      .num_actions = io.num_actions};
  TOKENRL_RETURN_IF_ERROR(replay_config.Validate().WithContext("Agent"));
  if (config.replay.prioritized) {
    const replay::PrioritizedSamplerConfig sampler_config{.alpha = config.replay.alpha, .beta = config.replay.beta};
    TOKENRL_RETURN_IF_ERROR(sampler_config.Validate().WithContext("Agent"));
  }
  if (config.batch_size < 1 || config.update_period_env_steps < 1 || config.target_update_period_env_steps < 1 ||
      config.epsilon_decay_env_steps < 1 || config.min_replay_env_steps < 0) {
    return Status::InvalidArgument("Agent: batch size, periods and epsilon decay must be >= 1, warm-up >= 0");
  }
  return std::unique_ptr<Agent>(new ValueAgent(config, std::move(learner), members, envs_per_member));
}

}  // namespace tokenrl::agents
