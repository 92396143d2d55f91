#pragma once
// Value-based agents (DQN, Rainbow-lite, full Rainbow, DER) for E members x N
// environments, driving networks only through nn::Learner (so they run on
// every backend) and owning exploration, replay and the training cadence.
//
// DQN, Rainbow-lite, Rainbow and DER are one algorithm with different
// switches (Dopamine's Rainbow is its DQN plus C51, n-step and prioritized
// replay; DER is a Rainbow preset), so they are one class configured by
// AgentConfig plus the network head (`network.head.distributional`, `dueling`,
// `noisy`) and the learner (`double_q`, `td_loss`, Adam values); the presets
// in configs/agents/ set them.
//
// Units: every counter and period is in ENV STEPS PER MEMBER: one call of
// Observe advances each member by N env steps (its N environments). With
// N = 1 this is Dopamine's "agent steps" (training_steps).
//
// Cadence (Dopamine, softmoe_reference 6.1), per member m, after each env step t:
//  * the transition enters member m's replay (through its n-step accumulator
//    for that environment);
//  * once replay holds more than min_replay_env_steps transitions, every
//    update_period_env_steps env steps one gradient update runs for all
//    members together (a batch of batch_size transitions sampled from each
//    member's own replay);
//  * every target_update_period_env_steps env steps the target networks sync;
//  * prioritized replay: priorities <- per-sample loss after each update
//    (Dopamine: sqrt(loss + 1e-10) with alpha 0.5 semantics; see replay/).
// Exploration: epsilon-greedy with Dopamine's linearly decaying schedule
// (EpsilonAt); with noisy networks the training epsilon is 0 and the
// network noise is on. Evaluation: epsilon_eval, noise off.
//
// Randomness: every member has its own exploration and replay-sampling
// streams derived from AgentConfig::seed and the member index.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "tokenrl/config/config.h"
#include "tokenrl/core/serialization.h"
#include "tokenrl/core/status.h"
#include "tokenrl/nn/learner.h"

namespace tokenrl::agents {

struct ReplayConfig {
  int64_t capacity = 1000000;  // Transitions per member.
  bool prioritized = false;
  double alpha = 0.5;  // Priority exponent (Dopamine: priorities are sqrt(loss)).
  double beta = 0.5;   // Importance-sampling exponent (Dopamine: fixed 0.5).
  int64_t frame_stack = 1;  // Observations are stacks of this many frames (Atari: 4); stored once per frame.

  template <typename V>
  void VisitFields(V& v) {
    v.Field("capacity", capacity, "Replay capacity in transitions per member", config::InRange<int64_t>(1, 1 << 30));
    v.Field("prioritized", prioritized, "Prioritized replay (Schaul et al.) instead of uniform");
    v.Field("alpha", alpha, "Prioritized replay: priority exponent", config::InRange(0.0, 1.0));
    v.Field("beta", beta, "Prioritized replay: importance-sampling exponent", config::InRange(0.0, 1.0));
    v.Field("frame_stack", frame_stack, "Observations are stacks of this many frames; replay stores each frame once",
            config::InRange<int64_t>(1, 64));
  }
};

struct AgentConfig {
  double gamma = 0.99;
  int64_t n_step = 1;
  int64_t batch_size = 32;
  int64_t min_replay_env_steps = 20000;
  int64_t update_period_env_steps = 4;
  int64_t target_update_period_env_steps = 8000;
  double epsilon_train = 0.01;
  double epsilon_eval = 0.001;
  int64_t epsilon_decay_env_steps = 250000;
  int64_t seed = 0;
  bool clip_rewards = false;
  ReplayConfig replay;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("gamma", gamma, "Discount factor", config::InRange(0.0, 1.0));
    v.Field("n_step", n_step, "n of n-step returns (DQN 1, Rainbow 3, DER 10)", config::InRange<int64_t>(1, 100));
    v.Field("batch_size", batch_size, "Transitions per member per update", config::InRange<int64_t>(1, 1 << 16));
    v.Field("min_replay_env_steps", min_replay_env_steps, "Warm-up: env steps per member before learning starts",
            config::AtLeast<int64_t>(0));
    v.Field("update_period_env_steps", update_period_env_steps, "Env steps per member between gradient updates",
            config::InRange<int64_t>(1, 1 << 30));
    v.Field("target_update_period_env_steps", target_update_period_env_steps,
            "Env steps per member between target-network syncs", config::InRange<int64_t>(1, 1 << 30));
    v.Field("epsilon_train", epsilon_train, "Final training epsilon (0 is used with noisy networks)",
            config::InRange(0.0, 1.0));
    v.Field("epsilon_eval", epsilon_eval, "Evaluation epsilon", config::InRange(0.0, 1.0));
    v.Field("epsilon_decay_env_steps", epsilon_decay_env_steps,
            "Env steps over which epsilon decays linearly from 1 after the warm-up", config::AtLeast<int64_t>(1));
    v.Field("seed", seed, "Root seed of exploration and replay sampling", config::AtLeast<int64_t>(0));
    v.Field("clip_rewards", clip_rewards,
            "Clip each env step's reward to [-1, 1] before it enters replay (n-step returns are sums of clipped "
            "rewards); episode returns stay unclipped. Dopamine's Atari runner does (clip_rewards=True): the Atari "
            "presets set it; MinAtar does not");
    v.Field("replay", replay, "Replay buffer");
  }
};

// Dopamine's linearly_decaying_epsilon: 1 during warm-up, then linear decay
// to epsilon_train over decay env steps.
double EpsilonAt(int64_t env_steps, int64_t warmup_env_steps, int64_t decay_env_steps, double epsilon_train);

// One vectorized env step of all E x N environments, as VectorEnv reports it
// (all spans [E, N, ...], row-major). `observations` are those the actions
// were chosen on; `next_observations` the ones after the step (the first
// observation of a new episode where one ended); `final_observations` hold the
// last observation of the episodes that ended (valid where terminated or
// truncated is set).
struct StepView {
  std::span<const uint8_t> observations;
  std::span<const int32_t> actions;
  std::span<const float> rewards;
  std::span<const uint8_t> terminated;
  std::span<const uint8_t> truncated;
  std::span<const uint8_t> next_observations;
  std::span<const uint8_t> final_observations;
};

// Statistics of the updates run since the last TakeTrainStats call, per member.
struct TrainStats {
  int64_t updates = 0;
  std::vector<double> loss_mean;  // [E]
  std::vector<double> q_mean;     // [E]
};

class Agent {
 public:
  // REQUIRES: learner->members() == members.
  static StatusOr<std::unique_ptr<Agent>> Create(const AgentConfig& config, std::unique_ptr<nn::Learner> learner,
                                                 int members, int envs_per_member);
  virtual ~Agent() = default;

  // Training actions [E, N] for observations [E, N, C, H, W].
  virtual void SelectActions(std::span<const uint8_t> observations, std::span<int32_t> actions) = 0;
  // Evaluation actions (epsilon_eval, noise off), drawn from a separate stream
  // so evaluation never changes the training trajectory.
  virtual void SelectEvalActions(std::span<const uint8_t> observations, int envs_per_member,
                                 std::span<int32_t> actions) = 0;
  // Stores the step's transitions and runs the updates and target syncs that
  // are due. Errors: a learner error (e.g. non-finite loss) stops the agent.
  virtual Status Observe(const StepView& step) = 0;

  virtual int64_t env_steps() const = 0;          // Per member.
  virtual int64_t gradient_updates() const = 0;   // Per member (all members update together).
  virtual double epsilon() const = 0;             // Current training epsilon.
  virtual TrainStats TakeTrainStats() = 0;
  virtual nn::Learner& learner() = 0;

  // The (up to) `n` observations most recently written to each member's
  // replay, oldest first, into `out` ([E, k, C, H, W]); returns k (the least
  // count any member holds; 0 when a replay is empty or the agent keeps
  // none). Reads only: no RNG, no state change, so a pure function of the
  // checkpointed state (used for diagnostics batches).
  virtual int RecentObservations(int n, std::vector<uint8_t>& out) const {
    (void)n;
    out.clear();
    return 0;
  }

  // Everything: learner, replay (contents, samplers, n-step accumulators),
  // RNG streams, counters.
  virtual void Save(ByteWriter& writer) const = 0;
  virtual Status Load(ByteReader& reader) = 0;
};

}  // namespace tokenrl::agents
