// Exact resume after SIGKILL (issue 4): a training run killed at a random
// moment and resumed with `tokenrl train --resume` writes a metrics.csv
// byte-identical to the same run left alone, on the default learner backend
// (the built-in CPU engine).

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "testing/process.h"
#include "tokenrl/core/file_util.h"


namespace tokenrl {
namespace {

std::vector<std::string> TrainArgs(const std::string& out) {
  return {TOKENRL_BINARY,
          "train",
          "--config",
          std::string(TOKENRL_SOURCE_DIR) + "/configs/train/minatar_breakout_quick.toml",
          "--set",
          "schedule.total_env_steps=8000",
          "--set",
          "schedule.log_every_env_steps=500",
          "--set",
          "schedule.checkpoint_every_env_steps=1000",
          "--set",
          "schedule.eval_every_env_steps=4000",
          "--set",
          "schedule.eval_episodes=5",
          "--out",
          out,
          "-q"};
}

using testing::SpawnProcess;
using testing::WaitProcess;

TEST(TrainKillTest, ResumeAfterSigkillIsByteIdentical) {
  const std::string root = ::testing::TempDir() + "/train_kill_" + std::to_string(getpid());
  std::filesystem::remove_all(root);
  const std::string a = root + "/uninterrupted", b = root + "/killed";

  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(WaitProcess(SpawnProcess(TrainArgs(a), "/dev/null")), 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Kill at a uniformly random moment of the run (seeded from the clock on
  // purpose: every moment must work). Report it so a failure can be replayed.
  std::mt19937_64 rng(std::random_device{}());
  const double kill_after = std::uniform_real_distribution<double>(0.05, 0.95)(rng) * seconds;
  const pid_t pid = SpawnProcess(TrainArgs(b), "/dev/null");
  std::this_thread::sleep_for(std::chrono::duration<double>(kill_after));
  kill(pid, SIGKILL);
  const int killed_status = WaitProcess(pid);
  std::printf("killed after %.2f s of %.2f s (exit status %d)\n", kill_after, seconds, killed_status);

  // The original command plus --resume: it also covers a kill before the run
  // wrote its config (then it starts over), which `train --resume DIR` alone
  // cannot (it refuses: nothing to resume).
  std::vector<std::string> resume = TrainArgs(b);
  resume.push_back("--resume");
  ASSERT_EQ(WaitProcess(SpawnProcess(resume, "/dev/null")), 0);
  auto expected = ReadFile(a + "/metrics.csv");
  auto actual = ReadFile(b + "/metrics.csv");
  ASSERT_TRUE(expected.ok() && actual.ok());
  EXPECT_EQ(*actual, *expected) << "metrics.csv differs after kill at " << kill_after << " s";
  EXPECT_TRUE(std::filesystem::exists(b + "/DONE"));
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace tokenrl
