#pragma once
// Learning smoke check shared by the backends' tests: DQN with the flatten
// network on MinAtar Breakout for 15k env steps on `backend`. The random
// policy returns about 0.5 per episode (minatar_spec.md 7.3); the trained
// agent must clearly beat it. The full learning check (return >= 5 within 1M
// steps) is bench/learning_check.sh.

#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "tokenrl/config/config.h"
#include "tokenrl/runner/trainer.h"

namespace tokenrl::testing {

inline void ExpectDqnBeatsRandomOnMinatarBreakout(const std::string& backend) {
  auto config = config::Load<runner::TrainConfig>(
      {std::string(TOKENRL_SOURCE_DIR) + "/configs/train/minatar_breakout_quick.toml"},
      {"schedule.total_env_steps=15000", "schedule.eval_every_env_steps=15000", "schedule.eval_episodes=20",
       "schedule.checkpoint_every_env_steps=15000", "agent.epsilon_decay_env_steps=10000",
       "learner.backend=" + backend});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const std::string out = ::testing::TempDir() + "/learning_smoke_" + backend + "_" + std::to_string(::getpid());
  std::filesystem::remove_all(out);
  auto summary = runner::RunTraining(*config, out, /*resume=*/false, runner::TrainOptions{.progress = false});
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  ASSERT_EQ(summary->env_steps, 15000);
  ASSERT_EQ(summary->return_mean_recent.size(), 1u);
  EXPECT_GT(summary->return_mean_recent[0], 1.0) << "recent training return should be 2x random (0.5)";
  EXPECT_GT(summary->eval_return_mean[0], 1.0) << "greedy evaluation return should be 2x random (0.5)";
  std::filesystem::remove_all(out);
}

}  // namespace tokenrl::testing
