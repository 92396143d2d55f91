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
#include <vector>

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

// [diagnostics]: Learner::Diagnostics (nn/learner.h) every every_env_steps
// (0 = off) on the batch_size observations most recently stored in each
// member's replay, one diagnostics.csv row per member (see trainer.h).
struct DiagnosticsConfig {
  int64_t every_env_steps = 0;
  int64_t batch_size = 256;
  std::vector<double> taus{0.0, 0.025};

  template <typename V>
  void VisitFields(V& v) {
    v.Field("every_env_steps", every_env_steps,
            "Env steps per member between diagnostics.csv rows (dormant units, routing, srank; 0 = off)",
            config::AtLeast<int64_t>(0));
    v.Field("batch_size", batch_size, "Most recent replay observations per member the diagnostics run on",
            config::InRange<int64_t>(1, 1 << 20));
    v.Field("taus", taus, "Dormant-unit thresholds tau (Sokar et al. 2023), one column set each");
  }
  Status Validate() const {
    if (taus.empty()) return Status::InvalidArgument("taus: at least one threshold");
    for (double t : taus) {
      if (!(t >= 0.0)) return Status::InvalidArgument("taus: thresholds must be >= 0");
    }
    return Status::Ok();
  }
};

enum class InterventionType { kNone, kReset, kShrinkPerturb, kPrune };

}  // namespace tokenrl::runner

template <>
struct tokenrl::config::EnumNames<tokenrl::runner::InterventionType> {
  static constexpr std::array<std::pair<tokenrl::runner::InterventionType, std::string_view>, 4> kValues{
      {{tokenrl::runner::InterventionType::kNone, "none"},
       {tokenrl::runner::InterventionType::kReset, "reset"},
       {tokenrl::runner::InterventionType::kShrinkPerturb, "shrink_perturb"},
       {tokenrl::runner::InterventionType::kPrune, "prune"}}};
};

namespace tokenrl::runner {

// [interventions] on the experts of a MoE network (agents/
// expert_interventions.h), in env steps per member, applied to every member
// right after the training iteration that reaches the step:
//  * reset / shrink_perturb fire at start_env_steps and then every
//    every_env_steps (0 = only once), on all experts (num_experts = 0) or on
//    the num_experts with the highest expert dormant fraction at
//    dormant_tau (ties to the lower index), measured by the diagnostics on
//    the diagnostics.batch_size most recent replay observations;
//  * prune removes num_experts experts (the most dormant, as above, among
//    those still present), one at a time at evenly spaced steps from
//    start_env_steps to end_env_steps (all at start_env_steps when
//    end_env_steps <= start_env_steps); see expert_interventions.h for what
//    pruning does to the network.
// Every firing is logged to interventions.csv.
struct InterventionsConfig {
  InterventionType type = InterventionType::kNone;
  int64_t start_env_steps = 0;
  int64_t every_env_steps = 0;
  int64_t end_env_steps = 0;
  int64_t num_experts = 0;
  double dormant_tau = 0.0;
  bool include_router = false;
  bool reset_optimizer = true;
  double alpha = 0.5;
  double beta = 0.5;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("type", type, "Expert intervention: none, reset, shrink_perturb, prune");
    v.Field("start_env_steps", start_env_steps, "First firing (env steps per member; 0 = never)",
            config::AtLeast<int64_t>(0));
    v.Field("every_env_steps", every_env_steps, "reset / shrink_perturb: period after the first (0 = once)",
            config::AtLeast<int64_t>(0));
    v.Field("end_env_steps", end_env_steps,
            "prune: the last expert is pruned here (gradual pruning; <= start: all at once)",
            config::AtLeast<int64_t>(0));
    v.Field("num_experts", num_experts,
            "reset / shrink_perturb: the k most dormant experts (0 = all); prune: experts removed",
            config::AtLeast<int64_t>(0));
    v.Field("dormant_tau", dormant_tau, "tau of the dormant fraction that ranks experts", config::AtLeast(0.0));
    v.Field("include_router", include_router, "reset / shrink_perturb the router (phi) too");
    v.Field("reset_optimizer", reset_optimizer, "Zero the Adam moments of the touched values");
    v.Field("alpha", alpha, "shrink_perturb: theta <- alpha theta + beta theta_fresh", config::AtLeast(0.0));
    v.Field("beta", beta, "shrink_perturb: weight of the fresh initialization", config::AtLeast(0.0));
  }
  Status Validate() const {
    if (type == InterventionType::kPrune && num_experts < 1) {
      return Status::InvalidArgument("num_experts: prune needs at least one expert to remove");
    }
    return Status::Ok();
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
  DiagnosticsConfig diagnostics;
  InterventionsConfig interventions;

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
    v.Field("diagnostics", diagnostics, "Expert-utilization diagnostics (diagnostics.csv)");
    v.Field("interventions", interventions, "Expert resets, Shrink & Perturb, pruning (interventions.csv)");
  }
  // Cross-field rules: a registered env.name, uint8 observations.
  Status Validate() const;
  // Fans `seed` out to the component seeds left at 0 (see above). Idempotent.
  void ResolveSeeds();
};

}  // namespace tokenrl::runner
