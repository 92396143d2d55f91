#pragma once
// TrainConfig: everything `tokenrl train` needs, as one typed, strict config
// (TOML tables [env], [vector_env], [network], [learner], [agent],
// [schedule], plus the root `seed`). Layers as everywhere (config.h): struct
// defaults < preset files (configs/agents/*.toml, configs/networks/*.toml) <
// experiment file < `--set`.
//
// Units: every count and period in [schedule] is in ENV STEPS PER MEMBER, the
// agent's unit (agents/agent.h): one loop iteration advances each member by
// vector_env.envs_per_member env steps.
//
// Seeds. `seed` is the root of the run. ResolveSeeds() fans it out: every
// component seed left at 0 (vector_env.seed, agent.seed, learner.seed)
// becomes its own stream DeriveSeed(seed, {stream}) (62 bits), so the
// components never share randomness; a non-zero component seed is kept as
// set. Evaluation environments are seeded from `seed` and the evaluation
// index (never from the training streams), so evaluation cannot perturb
// training. The resolved config (written as config.resolved.toml) holds the
// fanned-out values, so feeding it back reproduces the run.

#include <cstdint>

#include "tokenrl/agents/agent.h"
#include "tokenrl/config/config.h"
#include "tokenrl/core/status.h"
#include "tokenrl/env/env_config.h"
#include "tokenrl/env/vector_env.h"
#include "tokenrl/nn/learner.h"
#include "tokenrl/nn/network_config.h"

namespace tokenrl::runner {

struct ScheduleConfig {
  int64_t total_env_steps = 1000000;            // Per member.
  int64_t eval_every_env_steps = 100000;        // 0 = no evaluation.
  int64_t eval_episodes = 10;                   // Per member per evaluation.
  int64_t eval_max_episode_steps = 27000;       // Dopamine's cap; an eval episode is truncated there.
  int64_t log_every_env_steps = 10000;          // A metrics.csv row per member.
  int64_t checkpoint_every_env_steps = 100000;  // 0 = only the final checkpoint.
  int64_t keep_checkpoints = 2;                 // Newest checkpoints kept on disk.

  template <typename V>
  void VisitFields(V& v) {
    v.Field("total_env_steps", total_env_steps, "Training length in env steps per member",
            config::InRange<int64_t>(1, int64_t{1} << 40));
    v.Field("eval_every_env_steps", eval_every_env_steps,
            "Env steps per member between evaluations (0 = none; a final one runs when > 0)",
            config::AtLeast<int64_t>(0));
    v.Field("eval_episodes", eval_episodes, "Evaluation episodes per member (epsilon_eval, noise off)",
            config::InRange<int64_t>(1, 100000));
    v.Field("eval_max_episode_steps", eval_max_episode_steps,
            "Evaluation episodes are truncated after this many steps (Dopamine: 27000)",
            config::InRange<int64_t>(1, int64_t{1} << 40));
    v.Field("log_every_env_steps", log_every_env_steps, "Env steps per member between metrics.csv rows",
            config::InRange<int64_t>(1, int64_t{1} << 40));
    v.Field("checkpoint_every_env_steps", checkpoint_every_env_steps,
            "Env steps per member between checkpoints (0 = only the final one)", config::AtLeast<int64_t>(0));
    v.Field("keep_checkpoints", keep_checkpoints, "Newest checkpoints kept (>= 2 so a corrupted one has a fallback)",
            config::InRange<int64_t>(1, 1000));
  }
};

struct TrainConfig {
  int64_t seed = 0;
  env::EnvConfig env;
  env::VectorEnvConfig vector_env;
  nn::NetworkConfig network;
  nn::LearnerConfig learner;
  agents::AgentConfig agent;
  ScheduleConfig schedule;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("seed", seed,
            "Root seed: vector_env.seed, agent.seed and learner.seed left at 0 are derived from it; "
            "evaluation environments are seeded from it and the evaluation index",
            config::InRange<int64_t>(0, INT64_MAX));
    v.Field("env", env, "Environment");
    v.Field("vector_env", vector_env, "Members (independent runs), environments per member, threads");
    v.Field("network", network, "Q-network (presets: configs/networks/, configs/encoders/)");
    v.Field("learner", learner, "Learner backend, loss and optimizer");
    v.Field("agent", agent, "Agent: cadence, exploration, replay (presets: configs/agents/)");
    v.Field("schedule", schedule, "Training length, evaluation, logging and checkpoint periods");
  }
  // Cross-field rules: a registered env.name, uint8 observations.
  Status Validate() const;
  // Fans `seed` out to the component seeds left at 0 (see above). Idempotent.
  void ResolveSeeds();
};

}  // namespace tokenrl::runner
