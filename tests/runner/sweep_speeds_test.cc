// Measured speeds and the core-hour estimate of a sweep (runner/sweep_speeds.h):
// a strict speed table, the speed key of a job (agent and network presets,
// encoder, width, members, threads), exact-match lookup, and core-hours that
// are "unknown" rather than guessed when a key has no measurement.

#include "tokenrl/runner/sweep_speeds.h"

#include <string>

#include <gtest/gtest.h>

#include "tokenrl/runner/sweep.h"

namespace tokenrl::runner {
namespace {

const std::string kConfigs = std::string(TOKENRL_SOURCE_DIR) + "/configs";

// 2 variants x 2 games x 3 seeds; pack 3: 4 jobs of 3 members, 1 thread each.
constexpr char kSweep[] = R"(
base = ["agents/minatar_dqn.toml", "encoders/minatar.toml"]
set = ["learner.num_threads=1"]
games = ["minatar/breakout", "minatar/asterix"]
seeds = [0, 1, 2]
budget = 36000
[variants.softmoe_4]
configs = ["networks/softmoe_4.toml"]
set = ["network.mixer.expert_hidden_units=32"]
[variants]
flat = "networks/baseline.toml"
)";

SweepPlan Plan() {
  auto config = ParseSweepConfig(kSweep, kConfigs, "test.toml");
  EXPECT_TRUE(config.ok()) << config.status().message();
  auto plan = ExpandSweep(*config);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return *plan;
}

constexpr char kFlatEntry[] = R"(
[[speed]]
agent = "minatar_dqn"
encoder = "minatar"
network = "baseline"
width = 512
members = 3
threads = 1
env_steps_per_s = 100.0
machine = "test"
measured = "2026-12-05"
)";

TEST(SweepSpeedsTest, StrictTableErrorsNameTheEntryAndKey) {
  auto expect_error = [](const std::string& text, const std::string& needle) {
    auto t = ParseSpeedTable(text, "speeds.toml");
    ASSERT_FALSE(t.ok()) << "accepted: " << text;
    EXPECT_NE(t.status().message().find(needle), std::string::npos) << t.status().message();
  };
  expect_error("speeds = 1\n", "speeds: unknown key");
  expect_error(std::string(kFlatEntry) + "[[speed]]\nagent = \"a\"\nwdth = 3\n", "speed[1].wdth: unknown key");
  expect_error("[[speed]]\nagent = \"a\"\nencoder = \"minatar\"\nnetwork = \"n\"\nwidth = 1\nmembers = 1\n",
               "speed[0].env_steps_per_s: required key is missing");
  expect_error("[[speed]]\nagent = \"a\"\nencoder = \"minatar\"\nnetwork = \"n\"\nwidth = 1\nmembers = 1\n"
               "env_steps_per_s = -2.0\n",
               "speed[0].env_steps_per_s: value -2 must be > 0");
  expect_error("[[speed]]\nagent = \"a\"\nencoder = \"minatar\"\nnetwork = \"n\"\nwidth = \"wide\"\n",
               "speed[0].width: expected an integer");
  expect_error(std::string(kFlatEntry) + kFlatEntry, "speed[1]: a second entry for agent=minatar_dqn");
  auto ok = ParseSpeedTable(kFlatEntry, "speeds.toml");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  ASSERT_EQ(ok->entries.size(), 1u);
  EXPECT_EQ(ok->entries[0].key.network, "baseline");
  EXPECT_EQ(ok->entries[0].key.threads, 1);
  EXPECT_DOUBLE_EQ(ok->entries[0].env_steps_per_s, 100.0);
  auto empty = ParseSpeedTable("# nothing measured yet\n", "speeds.toml");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->entries.empty());
}

TEST(SweepSpeedsTest, JobKeyComesFromThePresetFilesAndTheResolvedConfig) {
  const SweepPlan plan = Plan();
  ASSERT_EQ(plan.jobs.size(), 4u);
  auto config = config::Load<TrainConfig>(plan.jobs[2].files, plan.jobs[2].overrides);
  ASSERT_TRUE(config.ok()) << config.status().message();
  const SpeedKey key = JobSpeedKey(plan.jobs[2], *config);
  EXPECT_EQ(plan.jobs[2].group, "softmoe_4");
  EXPECT_EQ(key.agent, "minatar_dqn");
  EXPECT_EQ(key.encoder, "minatar");
  EXPECT_EQ(key.network, "softmoe_4");
  EXPECT_EQ(key.width, 32);  // The variant's override, not the preset's 512.
  EXPECT_EQ(key.members, 3);
  EXPECT_EQ(key.threads, 1);
  EXPECT_EQ(key.ToString(), "agent=minatar_dqn encoder=minatar network=softmoe_4 width=32 E=3 threads=1");
}

TEST(SweepSpeedsTest, CoreHoursFromMeasuredSpeedsAndUnknownOtherwise) {
  const SweepPlan plan = Plan();
  auto table = ParseSpeedTable(kFlatEntry, "speeds.toml");
  ASSERT_TRUE(table.ok());
  auto hours = EstimateCoreHours(plan, *table);
  ASSERT_TRUE(hours.ok()) << hours.status().message();
  ASSERT_EQ(hours->groups.size(), 2u);
  const GroupHours& flat = hours->groups[0];
  EXPECT_EQ(flat.group, "flat");
  EXPECT_EQ(flat.jobs, 2);
  EXPECT_EQ(flat.env_steps_per_member, 36000);
  // 2 jobs x 36,000 env steps / 100 env steps/s per member = 720 s = 0.2 core-hours (one thread each).
  ASSERT_TRUE(flat.core_hours.has_value());
  EXPECT_NEAR(*flat.core_hours, 0.2, 1e-12);
  const GroupHours& moe = hours->groups[1];
  EXPECT_FALSE(moe.core_hours.has_value());  // Nothing measured for softmoe_4 at width 32.
  EXPECT_FALSE(hours->total_core_hours.has_value());
  EXPECT_EQ(hours->unknown_groups, 1);
  EXPECT_NEAR(hours->known_core_hours, 0.2, 1e-12);
  const std::string text = CoreHoursText(*hours, "speeds.toml");
  EXPECT_NE(text.find("0.2 core-hours"), std::string::npos) << text;
  EXPECT_NE(text.find("unknown (no measured speed for agent=minatar_dqn encoder=minatar network=softmoe_4 width=32"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("total: unknown (1 of 2 variant(s) without a measured speed; the others: 0.2 core-hours)"),
            std::string::npos)
      << text;

  // Two threads per process double the core-hours; a measured MoE completes the total.
  auto two = ParseSpeedTable(std::string(kFlatEntry) +
                                 "[[speed]]\nagent = \"minatar_dqn\"\nencoder = \"minatar\"\nnetwork = \"softmoe_4\"\n"
                                 "width = 32\nmembers = 3\nthreads = 1\nenv_steps_per_s = 50\n",
                             "speeds.toml");
  ASSERT_TRUE(two.ok()) << two.status().message();
  auto full = EstimateCoreHours(plan, *two);
  ASSERT_TRUE(full.ok());
  ASSERT_TRUE(full->total_core_hours.has_value());
  EXPECT_NEAR(*full->total_core_hours, 0.2 + 0.4, 1e-12);
  EXPECT_NE(CoreHoursText(*full, "speeds.toml").find("total: 0.6 core-hours"), std::string::npos);
}

TEST(SweepSpeedsTest, SweepFileSpeedsKeyMustNameAnExistingTable) {
  auto bad = ParseSweepConfig(std::string(kSweep) + "\n", kConfigs, "test.toml");
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(bad->speeds.empty());
  auto missing = ParseSweepConfig("speeds = \"no_such_speeds.toml\"\n" + std::string(kSweep), kConfigs, "test.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("speeds: speed table"), std::string::npos) << missing.status().message();
  auto typed = ParseSweepConfig("speeds = 3\n" + std::string(kSweep), kConfigs, "test.toml");
  ASSERT_FALSE(typed.ok());
  EXPECT_NE(typed.status().message().find("speeds: expected a string"), std::string::npos);
  auto found = ParseSweepConfig("speeds = \"paper/speeds.toml\"\n" + std::string(kSweep), kConfigs, "test.toml");
  ASSERT_TRUE(found.ok()) << found.status().message();
  EXPECT_EQ(found->speeds, kConfigs + "/paper/speeds.toml");
}

}  // namespace
}  // namespace tokenrl::runner
