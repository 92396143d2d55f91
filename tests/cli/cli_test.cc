// End-to-end tests of the `tokenrl` binary: output formats, exit codes, and
// bad input answered with one clear error line (never a crash or a trace).

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tokenrl/core/file_util.h"

namespace tokenrl {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

CommandResult Tokenrl(const std::string& args) {
  // Unique per process and call: ctest runs these tests in parallel processes.
  static int calls = 0;
  const std::string err_path =
      ::testing::TempDir() + "/tokenrl_stderr_" + std::to_string(getpid()) + "_" + std::to_string(calls++) + ".txt";
  const std::string command = std::string(TOKENRL_BINARY) + " " + args + " 2>" + err_path;
  CommandResult run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) run.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.err = ReadFile(err_path).value();
  std::filesystem::remove(err_path);
  return run;
}

void ExpectCleanError(const CommandResult& run, const std::string& needle) {
  EXPECT_EQ(run.exit_code, 2) << run.out << run.err;
  EXPECT_NE(run.err.find(needle), std::string::npos) << "stderr: " << run.err;
  EXPECT_EQ(run.err.find("terminate called"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("internal check failed"), std::string::npos) << run.err;
}

TEST(CliTest, HelpListsCommands) {
  const CommandResult run = Tokenrl("--help");
  EXPECT_EQ(run.exit_code, 0);
  for (const char* cmd : {"list", "rollout", "bench", "play", "stats", "version"})
    EXPECT_NE(run.out.find(cmd), std::string::npos) << cmd;
}

TEST(CliTest, ListShowsEveryMinatarGame) {
  const CommandResult run = Tokenrl("list");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  for (const char* game : {"asterix", "breakout", "freeway", "seaquest", "space_invaders"})
    EXPECT_NE(run.out.find(std::string("minatar/") + game), std::string::npos) << game;
  EXPECT_NE(run.out.find("[C,H,W] = [10,10,10]"), std::string::npos) << "seaquest has 10 channels";
  const CommandResult json = Tokenrl("list --json");
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_NE(json.out.find("\"observation_shape\""), std::string::npos);
}

TEST(CliTest, BenchEnvPrintsOneLinePerGame) {
  const CommandResult run = Tokenrl("bench env --steps 20000 --game breakout --game minatar/seaquest");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(std::regex_match(run.out, std::regex("bench env breakout [0-9]+\nbench env seaquest [0-9]+\n"))) << run.out;
  const CommandResult threads = Tokenrl("bench env --steps 20000 --game freeway --threads 2 --dtype float32");
  EXPECT_EQ(threads.exit_code, 0) << threads.err;
  EXPECT_TRUE(std::regex_match(threads.out, std::regex("bench env freeway [0-9]+\n"))) << threads.out;
}

TEST(CliTest, BenchNetPrintsOneLinePerVariantAndBackend) {
  const CommandResult run = Tokenrl(
      "bench net --backend cpu --variant flatten --members 1 2 --seconds 0.02 --hidden-units 16 --rounds 2");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string number = "[0-9]+(\\.[0-9])?";
  EXPECT_TRUE(std::regex_match(run.out, std::regex("bench net flatten E=1 " + number + " [0-9]+ backend=cpu\n"
                                                   "bench net flatten E=2 " + number + " [0-9]+ backend=cpu\n")))
      << run.out;
  const CommandResult nature =
      Tokenrl("bench net --variant softmoe-4 --encoder nature --members 1 --seconds 0.02 --hidden-units 16");
  ASSERT_EQ(nature.exit_code, 0) << nature.err;
  EXPECT_TRUE(std::regex_match(nature.out, std::regex("bench net softmoe-4 E=1 " + number + " [0-9]+ backend=cpu\n")))
      << nature.out;
  ExpectCleanError(Tokenrl("bench net --backend nope --seconds 0.01"), "learner backend \"nope\" is not available");
}

TEST(CliTest, RolloutWritesResolvedConfigAndSummary) {
  const std::string out = ::testing::TempDir() + "/rollout_out_" + std::to_string(getpid());
  std::filesystem::remove_all(out);
  const CommandResult run = Tokenrl("rollout --set env_steps_per_game=4000 --set 'games=[\"minatar/breakout\", \"minatar/space_invaders\"]' "
                          "--set vector_env.members=2 --set vector_env.envs_per_member=4 --out " + out);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("minatar/breakout"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("minatar/space_invaders"), std::string::npos) << run.out;
  auto resolved = ReadFile(out + "/config.resolved.toml");
  ASSERT_TRUE(resolved.ok());
  EXPECT_NE(resolved->find("env_steps_per_game = 4000"), std::string::npos);
  auto summary = ReadFile(out + "/rollout.json");
  ASSERT_TRUE(summary.ok());
  EXPECT_NE(summary->find("\"steps_per_second\""), std::string::npos);
  // The resolved config reproduces the run's config when fed back.
  const CommandResult again = Tokenrl("rollout --config " + out + "/config.resolved.toml --print-config");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, *resolved);
}

TEST(CliTest, UnknownEnvironmentListsRegisteredOnes) {
  ExpectCleanError(Tokenrl("play minatar/pong --random --steps 1 --delay-ms 0"),
                   "unknown environment \"minatar/pong\"; registered environments: minatar/asterix");
  ExpectCleanError(Tokenrl("bench env --game pong --steps 10"), "registered environments:");
  ExpectCleanError(Tokenrl("rollout --set 'games=[\"minatar/pong\"]'"), "games[0]: unknown environment");
}

TEST(CliTest, BadConfigNamesTheKey) {
  ExpectCleanError(Tokenrl("rollout --set env.minatar.sticky=0.2"), "env.minatar.sticky: unknown key");
  ExpectCleanError(Tokenrl("rollout --set vector_env.members=two"), "vector_env.members: expected an integer");
  ExpectCleanError(Tokenrl("rollout --set env.minatar.sticky_action_prob=2"),
                   "env.minatar.sticky_action_prob: value 2.0 is out of range; allowed: in [0, 1]");
  ExpectCleanError(Tokenrl("rollout --set vector_env.obs_dtype=int8"), "allowed values: uint8, float32");
  const std::string path = ::testing::TempDir() + "/broken_" + std::to_string(getpid()) + ".toml";
  std::ofstream(path) << "[vector_env]\nmembrs = 3\n";
  ExpectCleanError(Tokenrl("rollout --config " + path), "vector_env.membrs: unknown key; allowed keys here: members");
}

TEST(CliTest, BadFlagsAreUsageErrors) {
  const CommandResult run = Tokenrl("bench env --steps -5");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(run.err.find("terminate called"), std::string::npos);
  const CommandResult missing = Tokenrl("rollout --config /nonexistent.toml");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("/nonexistent.toml"), std::string::npos) << missing.err;
}

TEST(CliTest, PlayRendersFramesAndAcceptsKeys) {
  const CommandResult run = Tokenrl("play breakout --random --steps 3 --delay-ms 0 --no-color");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("minatar/breakout step 3"), std::string::npos) << run.out;
  const CommandResult keys = Tokenrl("play minatar/seaquest --no-color < /dev/null");
  EXPECT_EQ(keys.exit_code, 0) << keys.err;
  const std::string keys_path = ::testing::TempDir() + "/keys_" + std::to_string(getpid()) + ".txt";
  std::ofstream(keys_path) << "ddq\n";
  const CommandResult typed = Tokenrl("play minatar/asterix --no-color < " + keys_path);
  EXPECT_EQ(typed.exit_code, 0) << typed.err;
  EXPECT_NE(typed.out.find("step 2"), std::string::npos) << typed.out;
}

}  // namespace
}  // namespace tokenrl
