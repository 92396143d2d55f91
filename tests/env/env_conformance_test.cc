// The conformance suite (OpenSpiel's RandomSimTest, EnvPool's deterministic
// check), run over every registered environment and every wrapper: seeded
// random play with the contracts of environment.h checked on every step.

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "tokenrl/env/atari/ale/ale_emulator.h"
#include "tokenrl/env/frame_stack.h"
#include "tokenrl/env/registry.h"

namespace tokenrl::env {
namespace {

struct Trace {
  std::vector<float> rewards;
  std::vector<uint8_t> observations;
  std::vector<uint8_t> done_flags;
};

std::unique_ptr<Environment> MakeRegistered(const std::string& name, int64_t max_steps) {
  EnvConfig config;
  config.name = name;
  config.max_episode_steps = max_steps;
  auto env = MakeEnvironment(config);
  TOKENRL_CHECK(env.ok(), "{}", env.status().ToString());
  return std::move(env).value();
}

// One environment under test: a label and a factory taking the time limit.
struct EnvCase {
  std::string label;
  std::string name;  // spec().name
  std::function<std::unique_ptr<Environment>(int64_t max_steps)> make;
};

void PrintTo(const EnvCase& c, std::ostream* os) { *os << c.label; }

std::vector<EnvCase> AllCases() {
  std::vector<EnvCase> cases;
  for (const auto& name : EnvRegistry::Global().Names()) {
    cases.push_back({name, name, [name](int64_t max_steps) { return MakeRegistered(name, max_steps); }});
  }
  cases.push_back({"frame_stack_4/minatar/breakout", "minatar/breakout", [](int64_t max_steps) {
                     return std::make_unique<FrameStack>(MakeRegistered("minatar/breakout", max_steps), 4);
                   }});
  // The Atari protocol on the fake emulator (a family, so not in Names()): Dopamine's defaults, and every
  // option switched (life-loss terminals, no-op starts, the full action set, no stacking, frame skip 3).
  cases.push_back({"atari-fake/pong", "atari-fake/pong",
                   [](int64_t max_steps) { return MakeRegistered("atari-fake/pong", max_steps); }});
  cases.push_back({"atari-fake/pong_options", "atari-fake/pong", [](int64_t max_steps) {
                     EnvConfig config;
                     config.name = "atari-fake/pong";
                     config.max_episode_steps = max_steps;
                     config.atari.terminal_on_life_loss = true;
                     config.atari.noop_max = 30;
                     config.atari.action_set = ActionSet::kFull;
                     config.atari.frame_stack = 1;
                     config.atari.frame_skip = 3;
                     return std::move(MakeEnvironment(config)).value();
                   }});
  // The real ALE, where tokenrl was built with it and $TOKENRL_ATARI_ROMS holds tetris.bin (docs/atari.md).
  const char* roms = std::getenv("TOKENRL_ATARI_ROMS");
  if (atari::AleAvailable() && roms != nullptr &&
      std::filesystem::is_regular_file(std::filesystem::path(roms) / "tetris.bin")) {
    cases.push_back({"atari/tetris", "atari/tetris",
                     [](int64_t max_steps) { return MakeRegistered("atari/tetris", max_steps); }});
  }
  return cases;
}

// Seeded random play for `steps` steps (resetting after each episode),
// recording everything observable.
Trace Play(Environment& env, uint32_t seed, int steps, uint64_t action_seed) {
  Trace trace;
  std::mt19937_64 actions(action_seed);
  std::vector<uint8_t> obs(static_cast<size_t>(env.spec().observation_size()));
  env.Reset(seed);
  for (int t = 0; t < steps; ++t) {
    const int a = static_cast<int>(actions() % static_cast<uint64_t>(env.spec().num_actions()));
    auto r = env.Step(a);
    TOKENRL_CHECK(r.ok(), "{}", r.status().ToString());
    env.WriteObservation(std::span<uint8_t>(obs));
    trace.rewards.push_back(r->reward);
    trace.observations.insert(trace.observations.end(), obs.begin(), obs.end());
    trace.done_flags.push_back(static_cast<uint8_t>(r->terminated + 2 * r->truncated));
    if (r->done()) env.Reset();
  }
  return trace;
}

class EnvConformanceTest : public ::testing::TestWithParam<EnvCase> {
 protected:
  std::unique_ptr<Environment> Make(int64_t max_steps = 0) const { return GetParam().make(max_steps); }
};

TEST_P(EnvConformanceTest, SpecIsConsistent) {
  auto env = Make();
  const EnvSpec& spec = env->spec();
  EXPECT_EQ(spec.name, GetParam().name);
  EXPECT_FALSE(spec.description.empty());
  EXPECT_GT(spec.num_actions(), 0);
  for (int d : spec.observation_shape) EXPECT_GT(d, 0);
  EXPECT_EQ(static_cast<int>(spec.channel_names.size()), spec.observation_shape[0]);
  EXPECT_EQ(static_cast<int>(spec.channel_glyphs.size()), spec.observation_shape[0]);
  EXPECT_LE(spec.observation_low, spec.observation_high);
  EXPECT_LE(spec.min_step_reward, spec.max_step_reward);
}

TEST_P(EnvConformanceTest, RandomPlayRespectsContracts) {
  auto env = Make();
  const EnvSpec& spec = env->spec();
  std::mt19937_64 actions(17);
  std::vector<uint8_t> obs(static_cast<size_t>(spec.observation_size()));
  std::vector<float> obs_f(obs.size());
  int episodes = 0;
  env->Reset(123);
  double reward_sum = 0.0;
  for (int t = 0; t < 20000 && episodes < 30; ++t) {
    const int a = static_cast<int>(actions() % static_cast<uint64_t>(spec.num_actions()));
    auto r = env->Step(a);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    reward_sum += r->reward;
    ASSERT_TRUE(std::isfinite(r->reward));
    ASSERT_GE(r->reward, spec.min_step_reward);
    ASSERT_LE(r->reward, spec.max_step_reward);
    ASSERT_FALSE(r->terminated && r->truncated);
    ASSERT_DOUBLE_EQ(env->episode_return(), reward_sum);
    env->WriteObservation(std::span<uint8_t>(obs));
    env->WriteObservation(std::span<float>(obs_f));
    for (size_t i = 0; i < obs.size(); ++i) {
      ASSERT_GE(obs[i], spec.observation_low);
      ASSERT_LE(obs[i], spec.observation_high);
      ASSERT_EQ(obs_f[i], static_cast<float>(obs[i]));
    }
    if (r->done()) {
      ASSERT_FALSE(env->episode_running());
      auto again = env->Step(0);  // Stepping a finished episode is an error, not UB.
      ASSERT_FALSE(again.ok());
      env->Reset();
      ASSERT_EQ(env->episode_steps(), 0);
      reward_sum = 0.0;
      ++episodes;
    }
  }
  EXPECT_GT(episodes, 0) << "random play never ended an episode in 20000 steps";
}

TEST_P(EnvConformanceTest, OutOfRangeActionsAreErrors) {
  auto env = Make();
  env->Reset(0);
  for (int a : {-1, env->spec().num_actions(), 1000}) {
    auto r = env->Step(a);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("out of range"), std::string::npos);
  }
  EXPECT_EQ(env->episode_steps(), 0);
}

TEST_P(EnvConformanceTest, SameSeedSameTrajectoryDifferentSeedDifferent) {
  auto a = Make();
  auto b = Make();
  const Trace ta = Play(*a, 5, 3000, 1);
  const Trace tb = Play(*b, 5, 3000, 1);
  EXPECT_EQ(ta.rewards, tb.rewards);
  EXPECT_EQ(ta.observations, tb.observations);
  EXPECT_EQ(ta.done_flags, tb.done_flags);
  // Reset(seed) restarts the stream on a used environment too.
  const Trace ta2 = Play(*a, 5, 3000, 1);
  EXPECT_EQ(ta.observations, ta2.observations);
  const Trace tc = Play(*b, 6, 3000, 1);
  EXPECT_NE(ta.observations, tc.observations) << "seeds 5 and 6 gave identical trajectories";
}

TEST_P(EnvConformanceTest, CloneAndSaveLoadContinueIdentically) {
  auto env = Make();
  std::mt19937_64 actions(3);
  env->Reset(77);
  for (int t = 0; t < 137; ++t) {
    auto r = env->Step(static_cast<int>(actions() % static_cast<uint64_t>(env->spec().num_actions())));
    ASSERT_TRUE(r.ok());
    if (r->done()) env->Reset();
  }
  auto clone = env->Clone();
  auto restored = Make();
  const std::string state = env->SaveState();
  ASSERT_TRUE(restored->LoadState(state).ok());
  EXPECT_EQ(restored->SaveState(), state) << "save -> load -> save is not byte-identical";
  EXPECT_EQ(clone->SaveState(), state);
  std::vector<uint8_t> o1(static_cast<size_t>(env->spec().observation_size())), o2(o1.size()), o3(o1.size());
  for (int t = 0; t < 2000; ++t) {
    const int a = static_cast<int>(actions() % static_cast<uint64_t>(env->spec().num_actions()));
    auto r1 = env->Step(a);
    auto r2 = clone->Step(a);
    auto r3 = restored->Step(a);
    ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok());
    ASSERT_EQ(r1->reward, r2->reward);
    ASSERT_EQ(r1->reward, r3->reward);
    ASSERT_EQ(r1->terminated, r3->terminated);
    env->WriteObservation(std::span<uint8_t>(o1));
    clone->WriteObservation(std::span<uint8_t>(o2));
    restored->WriteObservation(std::span<uint8_t>(o3));
    ASSERT_EQ(o1, o2) << "clone diverged at step " << t;
    ASSERT_EQ(o1, o3) << "restored state diverged at step " << t;
    if (r1->done()) {
      env->Reset();
      clone->Reset();
      restored->Reset();
    }
  }
}

TEST_P(EnvConformanceTest, LoadStateRejectsGarbage) {
  auto env = Make();
  env->Reset(1);
  const std::string state = env->SaveState();
  EXPECT_FALSE(env->LoadState("").ok());
  EXPECT_FALSE(env->LoadState(state.substr(0, state.size() / 2)).ok());
  EXPECT_FALSE(env->LoadState(state + "x").ok());
  // The failed loads left the environment untouched.
  EXPECT_EQ(env->SaveState(), state);
}

TEST_P(EnvConformanceTest, TimeLimitTruncatesWithoutTerminating) {
  auto env = Make(/*max_steps=*/7);
  env->Reset(3);
  std::mt19937_64 actions(9);
  for (int episode = 0; episode < 20; ++episode) {
    for (int t = 1;; ++t) {
      auto r = env->Step(static_cast<int>(actions() % static_cast<uint64_t>(env->spec().num_actions())));
      ASSERT_TRUE(r.ok());
      ASSERT_LE(t, 7);
      ASSERT_FALSE(r->terminated && r->truncated);
      if (t == 7 && !r->terminated) {
        ASSERT_TRUE(r->truncated);
      }
      if (t < 7) {
        ASSERT_FALSE(r->truncated);
      }
      if (r->done()) break;
    }
    env->Reset();
  }
}

std::string Name(const ::testing::TestParamInfo<EnvCase>& info) {
  std::string n = info.param.label;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(AllEnvironments, EnvConformanceTest, ::testing::ValuesIn(AllCases()), Name);

TEST(EnvRegistryTest, UnknownNameListsRegisteredEnvironments) {
  EnvConfig config;
  config.name = "minatar/pong";
  auto env = MakeEnvironment(config);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), Status::Code::kNotFound);
  EXPECT_NE(env.status().message().find("unknown environment \"minatar/pong\""), std::string::npos);
  EXPECT_NE(env.status().message().find("minatar/breakout"), std::string::npos);
}

TEST(EnvRegistryTest, AllFiveMinatarGamesAreRegistered) {
  for (const char* game : {"asterix", "breakout", "freeway", "seaquest", "space_invaders"}) {
    EXPECT_TRUE(EnvRegistry::Global().Contains(std::string("minatar/") + game)) << game;
  }
}

}  // namespace
}  // namespace tokenrl::env
