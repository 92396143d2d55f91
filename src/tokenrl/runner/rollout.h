#pragma once
// Batched random-policy rollouts over one or more environments: the first
// "main job" of tokenrl (throughput and episode-return check of the
// environments, before any learning). Torch-free.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tokenrl/config/config.h"
#include "tokenrl/env/env_config.h"
#include "tokenrl/env/vector_env.h"

namespace tokenrl::runner {

struct RolloutConfig {
  // Environments to roll out, one after another; each replaces env.name.
  // Empty: env.name alone.
  std::vector<std::string> games{"minatar/asterix", "minatar/breakout", "minatar/freeway", "minatar/seaquest",
                                 "minatar/space_invaders"};
  // Environment steps per game, summed over all M x N environments.
  int64_t env_steps_per_game = 200000;
  // Seed of the uniform random policy (actions are drawn per env from
  // DeriveSeed(policy_seed, {member, env})).
  int64_t policy_seed = 0;
  env::EnvConfig env;
  env::VectorEnvConfig vector_env{.members = 2, .envs_per_member = 16};

  template <typename V>
  void VisitFields(V& v) {
    v.Field("games", games, "Environments to roll out in turn (registered names; empty = env.name)");
    v.Field("env_steps_per_game", env_steps_per_game, "Environment steps per game, summed over all environments",
            config::InRange<int64_t>(1, int64_t{1} << 40));
    v.Field("policy_seed", policy_seed, "Seed of the uniform random policy", config::AtLeast<int64_t>(0));
    v.Field("env", env, "Environment options (env.name is replaced by each entry of games)");
    v.Field("vector_env", vector_env, "Members, environments per member, threads and seeds");
  }
  // Every game must be a registered environment.
  Status Validate() const;
};

struct RolloutResult {
  std::string game;
  int64_t env_steps = 0;
  double seconds = 0.0;
  int64_t episodes = 0;
  double return_mean = 0.0;
  double return_stderr = 0.0;  // Standard error of the mean over episodes.
  double return_min = 0.0;
  double return_max = 0.0;
  double mean_episode_length = 0.0;
  std::vector<double> member_return_mean;  // Per member (NaN when it finished no episode).
  double steps_per_second() const { return seconds > 0 ? static_cast<double>(env_steps) / seconds : 0.0; }
};

// Called about once a second with (game, env steps done, env steps total).
using RolloutProgress = std::function<void(const std::string&, int64_t, int64_t)>;

// Rolls out every game of config.games with a uniform random policy.
// Errors: unknown environment names (before any stepping).
StatusOr<std::vector<RolloutResult>> RunRollout(const RolloutConfig& config, const RolloutProgress& progress = {});

// JSON text of the results, for summary files.
std::string RolloutResultsToJson(const std::vector<RolloutResult>& results);

}  // namespace tokenrl::runner
