#include "tokenrl/runner/rollout.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include "tokenrl/core/seed.h"
#include "tokenrl/env/registry.h"

namespace tokenrl::runner {

Status RolloutConfig::Validate() const {
  for (size_t i = 0; i < games.size(); ++i) {
    if (!env::EnvRegistry::Global().Contains(games[i])) {
      env::EnvConfig probe = env;
      probe.name = games[i];
      return env::MakeEnvironment(probe).status().WithContext(fmt::format("games[{}]", i));
    }
  }
  if (games.empty() && !env::EnvRegistry::Global().Contains(env.name)) {
    return env::MakeEnvironment(env).status().WithContext("env.name");
  }
  return Status::Ok();
}

StatusOr<std::vector<RolloutResult>> RunRollout(const RolloutConfig& config, const RolloutProgress& progress) {
  TOKENRL_RETURN_IF_ERROR(config.Validate());  // Fail on unknown names before doing work.
  std::vector<std::string> games = config.games;
  if (games.empty()) games.push_back(config.env.name);

  std::vector<RolloutResult> results;
  for (const auto& game : games) {
    env::EnvConfig env_config = config.env;
    env_config.name = game;
    TOKENRL_ASSIGN_OR_RETURN(auto vec, env::VectorEnv::Create(env_config, config.vector_env));
    const int n = vec->num_envs();
    const int per_member = vec->envs_per_member();
    const uint64_t num_actions = static_cast<uint64_t>(vec->spec().num_actions());
    std::vector<std::mt19937_64> policies;
    for (int i = 0; i < n; ++i) {
      policies.emplace_back(DeriveSeed(static_cast<uint64_t>(config.policy_seed),
                                       {static_cast<uint64_t>(i / per_member), static_cast<uint64_t>(i % per_member)}));
    }
    std::vector<int32_t> actions(static_cast<size_t>(n));
    std::vector<double> returns;
    std::vector<double> member_sum(static_cast<size_t>(vec->members()), 0.0);
    std::vector<int64_t> member_count(static_cast<size_t>(vec->members()), 0);
    int64_t length_sum = 0;

    RolloutResult result;
    result.game = game;
    const auto start = std::chrono::steady_clock::now();
    auto last_report = start;
    vec->Reset();
    while (result.env_steps < config.env_steps_per_game) {
      for (int i = 0; i < n; ++i) actions[static_cast<size_t>(i)] = static_cast<int32_t>(policies[static_cast<size_t>(i)]() % num_actions);
      TOKENRL_RETURN_IF_ERROR(vec->Step(actions));
      result.env_steps += n;
      for (int i = 0; i < n; ++i) {
        if (vec->terminated()[static_cast<size_t>(i)] || vec->truncated()[static_cast<size_t>(i)]) {
          const double r = vec->episode_returns()[static_cast<size_t>(i)];
          returns.push_back(r);
          length_sum += vec->episode_lengths()[static_cast<size_t>(i)];
          member_sum[static_cast<size_t>(i / per_member)] += r;
          member_count[static_cast<size_t>(i / per_member)] += 1;
        }
      }
      if (progress) {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_report > std::chrono::seconds(1)) {
          progress(game, result.env_steps, config.env_steps_per_game);
          last_report = now;
        }
      }
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.episodes = static_cast<int64_t>(returns.size());
    if (!returns.empty()) {
      double sum = 0.0, sq = 0.0;
      result.return_min = returns.front();
      result.return_max = returns.front();
      for (double r : returns) {
        sum += r;
        result.return_min = std::min(result.return_min, r);
        result.return_max = std::max(result.return_max, r);
      }
      result.return_mean = sum / static_cast<double>(returns.size());
      for (double r : returns) sq += (r - result.return_mean) * (r - result.return_mean);
      if (returns.size() > 1) {
        result.return_stderr = std::sqrt(sq / static_cast<double>(returns.size() - 1) / static_cast<double>(returns.size()));
      }
      result.mean_episode_length = static_cast<double>(length_sum) / static_cast<double>(returns.size());
    }
    for (size_t m = 0; m < member_sum.size(); ++m) {
      result.member_return_mean.push_back(member_count[m] > 0 ? member_sum[m] / static_cast<double>(member_count[m])
                                                              : std::numeric_limits<double>::quiet_NaN());
    }
    results.push_back(std::move(result));
  }
  return results;
}

std::string RolloutResultsToJson(const std::vector<RolloutResult>& results) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : results) {
    nlohmann::json members = nlohmann::json::array();
    for (double m : r.member_return_mean) members.push_back(std::isnan(m) ? nlohmann::json(nullptr) : nlohmann::json(m));
    out.push_back({{"game", r.game},
                   {"env_steps", r.env_steps},
                   {"seconds", r.seconds},
                   {"steps_per_second", r.steps_per_second()},
                   {"episodes", r.episodes},
                   {"return_mean", r.return_mean},
                   {"return_stderr", r.return_stderr},
                   {"return_min", r.return_min},
                   {"return_max", r.return_max},
                   {"mean_episode_length", r.mean_episode_length},
                   {"member_return_mean", members}});
  }
  return out.dump(2) + "\n";
}

}  // namespace tokenrl::runner
