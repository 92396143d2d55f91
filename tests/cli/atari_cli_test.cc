// End-to-end: the Atari protocol from the `tokenrl` binary. DQN trains on the
// fake emulator (atari-fake/<name>), `bench env` measures it, atari/<game>
// fails cleanly without ALE or ROMs, and every Atari paper preset passes
// `tokenrl sweep --dry-run`.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "testing/process.h"
#include "tokenrl/core/file_util.h"
#include "tokenrl/env/atari/ale/ale_emulator.h"

namespace tokenrl {
namespace {

namespace fs = std::filesystem;
using testing::RunShell;
using testing::ShellResult;
using testing::SpawnProcess;
using testing::WaitProcess;

ShellResult Tokenrl(const std::string& args) { return RunShell(std::string(TOKENRL_BINARY) + " " + args); }

std::string Source(const std::string& path) { return std::string(TOKENRL_SOURCE_DIR) + "/" + path; }

TEST(AtariCliTest, DqnPresetTrainsEndToEndOnTheFakeEmulator) {
  const std::string out = ::testing::TempDir() + "/tokenrl_atari_train_" + std::to_string(getpid());
  fs::remove_all(out);
  const ShellResult run = Tokenrl(
      "train --config " + Source("configs/agents/dqn.toml") + " --config " + Source("configs/encoders/nature.toml") +
      " --config " + Source("configs/networks/baseline.toml") +
      " --set env.name=atari-fake/pong --set schedule.total_env_steps=400 --set agent.min_replay_env_steps=100"
      " --set agent.replay.capacity=2000 --set schedule.eval_every_env_steps=400 --set schedule.eval_episodes=1"
      " --set schedule.log_every_env_steps=100 --set learner.num_threads=1 --out " + out);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(fs::exists(out + "/DONE"));
  const auto resolved = ReadFile(out + "/config.resolved.toml");
  ASSERT_TRUE(resolved.ok());
  // The Atari preset's Dopamine settings reached the run.
  EXPECT_NE(resolved->find("clip_rewards = true"), std::string::npos);
  EXPECT_NE(resolved->find("frame_stack = 4"), std::string::npos);
  const auto summary = ReadFile(out + "/summary.json");
  ASSERT_TRUE(summary.ok());
  EXPECT_NE(summary->find("\"gradient_updates\": 75"), std::string::npos) << *summary;  // (400 - 100) / 4
  // The fake's game lasts 150 agent steps (600 frames), so 400 steps end at least 2 episodes.
  const auto metrics = ReadFile(out + "/metrics.csv");
  ASSERT_TRUE(metrics.ok());
  EXPECT_TRUE(std::regex_search(*metrics, std::regex("\n0,400,75,[2-9],"))) << *metrics;
  fs::remove_all(out);
}

TEST(AtariCliTest, BenchEnvReportsFramesPerSecondOnTheFake) {
  const ShellResult run = Tokenrl("bench env --game atari-fake/pong --steps 300");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(std::regex_match(run.output,
                               std::regex("bench env atari-fake/pong [0-9]+ frames/s [0-9]+ emulator-alone-frames/s "
                                          "[0-9]+ preprocessing-us/step -?[0-9.]+\n")))
      << run.output;
}

TEST(AtariCliTest, RealAtariWithoutAleOrRomIsACleanError) {
  const ShellResult run = Tokenrl("bench env --game atari/pong --steps 10");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  if (!env::atari::AleAvailable()) {
    EXPECT_NE(run.output.find("built without ALE"), std::string::npos) << run.output;
  } else {
    EXPECT_NE(run.output.find("pong"), std::string::npos) << run.output;
  }
  EXPECT_EQ(run.output.find("terminate called"), std::string::npos) << run.output;
  const ShellResult list = Tokenrl("list");
  EXPECT_NE(list.output.find("atari/<game>"), std::string::npos);
  EXPECT_NE(list.output.find("atari-fake/<name>"), std::string::npos);
}

TEST(AtariCliTest, EveryAtariPaperPresetPassesDryRun) {
  std::vector<fs::path> presets;
  for (const auto& entry : fs::directory_iterator(Source("configs/paper/atari"))) {
    if (entry.path().extension() == ".toml") presets.push_back(entry.path());
  }
  ASSERT_GE(presets.size(), 6u) << "Figures 1, 5 (x2), 6, 10 (x2)";
  for (const auto& preset : presets) {
    const ShellResult run = Tokenrl("sweep " + preset.string() + " --dry-run");
    EXPECT_EQ(run.exit_code, 0) << preset << "\n" << run.output;
    // 20 games x 5 seeds per variant, one process each (pack = 1).
    EXPECT_NE(run.output.find("/hero-s4-"), std::string::npos) << preset;
    EXPECT_NE(run.output.find("/up_n_down-s0-"), std::string::npos) << preset;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(run.output, m, std::regex("([0-9]+) train process\\(es\\)"))) << run.output;
    EXPECT_EQ(std::stoi(m[1].str()) % 100, 0) << preset << ": " << m[0];
  }
}

// Exact resume (issue 4) through the Atari path: the environment state (emulator, sticky and no-op streams,
// screen buffers, frame stack) is in the checkpoint, so a run killed mid-way and resumed writes the same
// metrics.csv as the run left alone. "Slow": about 20 s, in ctest's cli_slow entry.
TEST(AtariCliTest, SlowKilledAtariRunResumesByteIdentically) {
  const auto args = [](const std::string& out) {
    std::vector<std::string> a{TOKENRL_BINARY, "train"};
    for (const char* c : {"configs/agents/dqn.toml", "configs/encoders/nature.toml", "configs/networks/baseline.toml"}) {
      a.push_back("--config");
      a.push_back(Source(c));
    }
    for (const char* s : {"env.name=atari-fake/pong", "env.atari.noop_max=5", "env.atari.terminal_on_life_loss=true",
                          "schedule.total_env_steps=800", "agent.min_replay_env_steps=100",
                          "agent.replay.capacity=2000", "schedule.eval_every_env_steps=400",
                          "schedule.eval_episodes=1", "schedule.log_every_env_steps=100",
                          "schedule.checkpoint_every_env_steps=100", "learner.num_threads=1"}) {
      a.push_back("--set");
      a.push_back(s);
    }
    a.push_back("--out");
    a.push_back(out);
    return a;
  };
  const std::string base = ::testing::TempDir() + "/tokenrl_atari_resume_" + std::to_string(getpid());
  const std::string a = base + "_a", b = base + "_b";
  fs::remove_all(a);
  fs::remove_all(b);
  ASSERT_EQ(WaitProcess(SpawnProcess(args(a), "/dev/null")), 0);
  const pid_t pid = SpawnProcess(args(b), "/dev/null");
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  kill(pid, SIGKILL);
  WaitProcess(pid);
  std::vector<std::string> resume = args(b);
  resume.push_back("--resume");
  ASSERT_EQ(WaitProcess(SpawnProcess(resume, "/dev/null")), 0);
  const auto expected = ReadFile(a + "/metrics.csv");
  const auto actual = ReadFile(b + "/metrics.csv");
  ASSERT_TRUE(expected.ok() && actual.ok());
  EXPECT_EQ(*actual, *expected);
  fs::remove_all(a);
  fs::remove_all(b);
}

}  // namespace
}  // namespace tokenrl
