// Exact resume after SIGKILL (issue 4): a training run killed at a random
// moment and resumed with `tokenrl train --resume` writes a metrics.csv
// byte-identical to the same run left alone. Needs the torch backend in the
// binary; skipped (loudly) without it.

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tokenrl/core/file_util.h"

extern char** environ;

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

pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  EXPECT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool HaveTorchBackend() {
  FILE* pipe = popen((std::string(TOKENRL_BINARY) + " version").c_str(), "r");
  std::string out;
  char buffer[256];
  while (pipe != nullptr && fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
  if (pipe != nullptr) pclose(pipe);
  return out.find("libtorch backend: libtorch") != std::string::npos;
}

TEST(TrainKillTest, ResumeAfterSigkillIsByteIdentical) {
  if (!HaveTorchBackend()) GTEST_SKIP() << "SKIPPED: tokenrl was built without the torch learner backend";
  const std::string root = ::testing::TempDir() + "/train_kill_" + std::to_string(getpid());
  std::filesystem::remove_all(root);
  const std::string a = root + "/uninterrupted", b = root + "/killed";

  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(Wait(Spawn(TrainArgs(a))), 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Kill at a uniformly random moment of the run (seeded from the clock on
  // purpose: every moment must work). Report it so a failure can be replayed.
  std::mt19937_64 rng(std::random_device{}());
  const double kill_after = std::uniform_real_distribution<double>(0.05, 0.95)(rng) * seconds;
  const pid_t pid = Spawn(TrainArgs(b));
  std::this_thread::sleep_for(std::chrono::duration<double>(kill_after));
  kill(pid, SIGKILL);
  const int killed_status = Wait(pid);
  std::printf("killed after %.2f s of %.2f s (exit status %d)\n", kill_after, seconds, killed_status);

  ASSERT_EQ(Wait(Spawn({TOKENRL_BINARY, "train", "--resume", b, "-q"})), 0);
  auto expected = ReadFile(a + "/metrics.csv");
  auto actual = ReadFile(b + "/metrics.csv");
  ASSERT_TRUE(expected.ok() && actual.ok());
  EXPECT_EQ(*actual, *expected) << "metrics.csv differs after kill at " << kill_after << " s";
  EXPECT_TRUE(std::filesystem::exists(b + "/DONE"));
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace tokenrl
