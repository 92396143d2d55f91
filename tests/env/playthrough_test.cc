// Golden playthroughs (OpenSpiel): for every registered environment, the spec
// and a seeded episode rendered step by step are compared with a file under
// tests/golden/playthroughs/. Any change in behaviour shows up as a diff in
// review. Regenerate after an intended change with
//   TOKENRL_REGENERATE_GOLDENS=1 ./build/tests/env_tests --gtest_filter='*Playthrough*'

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tokenrl/core/file_util.h"
#include "tokenrl/env/registry.h"

namespace tokenrl::env {
namespace {

std::string GoldenPath(const std::string& name) {
  std::string file = name;
  for (char& c : file)
    if (c == '/') c = '_';
  return std::string(TOKENRL_SOURCE_DIR) + "/tests/golden/playthroughs/" + file + ".txt";
}

std::string Playthrough(const std::string& name) {
  EnvConfig config;
  config.name = name;
  auto env = std::move(MakeEnvironment(config)).value();
  const EnvSpec& spec = env->spec();
  std::string out = fmt::format("name: {}\ndescription: {}\nobservation_shape: [{}, {}, {}]\n", spec.name,
                                spec.description, spec.observation_shape[0], spec.observation_shape[1],
                                spec.observation_shape[2]);
  for (size_t c = 0; c < spec.channel_names.size(); ++c)
    out += fmt::format("channel {}: {} '{}'\n", c, spec.channel_names[c], spec.channel_glyphs[c]);
  std::string actions;
  for (const auto& a : spec.action_names) actions += " " + a;
  out += fmt::format("actions:{}\nstep_reward_range: [{}, {}]\nseed: 2024, actions from mt19937_64(7)\n\n",
                     actions, spec.min_step_reward, spec.max_step_reward);
  std::mt19937_64 rng(7);
  env->Reset(2024);
  out += env->ToString();
  for (int t = 0; t < 80; ++t) {
    const int a = static_cast<int>(rng() % static_cast<uint64_t>(spec.num_actions()));
    const StepResult r = *env->Step(a);
    out += fmt::format("\naction {} ({}) -> reward {} terminated {} truncated {}\n", a,
                       spec.action_names[static_cast<size_t>(a)], r.reward, r.terminated, r.truncated);
    out += env->ToString();
    if (r.done()) break;
  }
  return out;
}

class PlaythroughTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PlaythroughTest, MatchesGolden) {
  const std::string path = GoldenPath(GetParam());
  const std::string actual = Playthrough(GetParam());
  if (const char* regen = std::getenv("TOKENRL_REGENERATE_GOLDENS"); regen != nullptr && std::string(regen) == "1") {
    ASSERT_TRUE(WriteFileAtomic(path, actual).ok());
    GTEST_SKIP() << "regenerated " << path;
  }
  auto expected = ReadFile(path);
  ASSERT_TRUE(expected.ok()) << "missing golden " << path << "; run with TOKENRL_REGENERATE_GOLDENS=1";
  EXPECT_EQ(actual, *expected) << "playthrough of " << GetParam() << " changed; if intended, regenerate";
}

std::string Name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(AllRegistered, PlaythroughTest, ::testing::ValuesIn(EnvRegistry::Global().Names()), Name);

}  // namespace
}  // namespace tokenrl::env
