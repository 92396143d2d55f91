// FrameStack (Dopamine frame stacking, ../shared/docs/softmoe_reference.md
// 1.1) over minatar/breakout with k = 4: the stacking semantics against the
// inner environment run alone. The contracts of environment.h are checked by
// env_conformance_test, which includes this wrapper.

#include "tokenrl/env/frame_stack.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "tokenrl/env/registry.h"

namespace tokenrl::env {
namespace {

constexpr int kK = 4;

std::unique_ptr<Environment> Inner(int64_t max_steps = 0) {
  EnvConfig config;
  config.name = "minatar/breakout";
  config.max_episode_steps = max_steps;
  auto env = MakeEnvironment(config);
  TOKENRL_CHECK(env.ok(), "{}", env.status().ToString());
  return std::move(env).value();
}

std::unique_ptr<Environment> Stacked(int64_t max_steps = 0) {
  return std::make_unique<FrameStack>(Inner(max_steps), kK);
}

std::vector<uint8_t> Observe(const Environment& env) {
  std::vector<uint8_t> obs(static_cast<size_t>(env.spec().observation_size()));
  env.WriteObservation(std::span<uint8_t>(obs));
  return obs;
}

TEST(FrameStackTest, SpecStacksChannels) {
  auto inner = Inner();
  const EnvSpec inner_spec = inner->spec();
  FrameStack env(std::move(inner), kK);
  const EnvSpec& spec = env.spec();
  EXPECT_EQ(spec.name, inner_spec.name);
  EXPECT_NE(spec.description.find("frame stack 4"), std::string::npos);
  EXPECT_EQ(spec.observation_shape[0], kK * inner_spec.observation_shape[0]);
  EXPECT_EQ(spec.observation_shape[1], inner_spec.observation_shape[1]);
  EXPECT_EQ(spec.observation_shape[2], inner_spec.observation_shape[2]);
  EXPECT_EQ(spec.observation_size(), kK * inner_spec.observation_size());
  ASSERT_EQ(static_cast<int>(spec.channel_names.size()), spec.observation_shape[0]);
  EXPECT_EQ(static_cast<int>(spec.channel_glyphs.size()), spec.observation_shape[0]);
  // Newest frame last, under the inner names.
  const int c = inner_spec.observation_shape[0];
  for (int i = 0; i < c; ++i) {
    EXPECT_EQ(spec.channel_names[(kK - 1) * c + i], inner_spec.channel_names[i]);
    EXPECT_EQ(spec.channel_names[i], inner_spec.channel_names[i] + "@t-3");
  }
  EXPECT_EQ(spec.action_names, inner_spec.action_names);
  EXPECT_EQ(spec.max_episode_steps, inner_spec.max_episode_steps);
  EXPECT_EQ(spec.min_step_reward, inner_spec.min_step_reward);
  EXPECT_EQ(spec.max_step_reward, inner_spec.max_step_reward);
}

TEST(FrameStackTest, StacksTheInnerTrajectoryNewestLastZeroFilledAtReset) {
  // The wrapper and the inner environment alone, same seed and actions.
  auto alone = Inner(/*max_steps=*/60);
  FrameStack env(Inner(/*max_steps=*/60), kK);
  const size_t f = static_cast<size_t>(alone->spec().observation_size());
  std::mt19937_64 actions(5);
  alone->Reset(42);
  env.Reset(42);
  std::vector<std::vector<uint8_t>> history{Observe(*alone)};  // Frames of the current episode.
  int episodes = 0, truncations = 0;
  for (int t = 0; t < 5000; ++t) {
    const std::vector<uint8_t> obs = Observe(env);
    ASSERT_EQ(obs.size(), kK * f);
    // Frame j (oldest first) is the inner frame k-1-j steps ago, zeros before the episode.
    for (int j = 0; j < kK; ++j) {
      const int age = kK - 1 - j;
      const std::vector<uint8_t> frame(obs.begin() + j * f, obs.begin() + (j + 1) * f);
      if (age < static_cast<int>(history.size())) {
        ASSERT_EQ(frame, history[history.size() - 1 - age]) << "step " << t << " frame " << j;
      } else {
        ASSERT_EQ(frame, std::vector<uint8_t>(f, 0)) << "step " << t << " frame " << j;
      }
    }
    const int a = static_cast<int>(actions() % static_cast<uint64_t>(env.spec().num_actions()));
    auto r1 = alone->Step(a);
    auto r2 = env.Step(a);
    ASSERT_TRUE(r1.ok() && r2.ok());
    ASSERT_EQ(r1->reward, r2->reward);
    ASSERT_EQ(r1->terminated, r2->terminated);
    ASSERT_EQ(r1->truncated, r2->truncated);
    ASSERT_EQ(env.episode_return(), alone->episode_return());
    history.push_back(Observe(*alone));
    if (r2->done()) {
      // The final observation still shifts by one frame.
      const std::vector<uint8_t> last = Observe(env);
      ASSERT_TRUE(std::equal(history.back().begin(), history.back().end(), last.end() - f));
      ++episodes;
      truncations += r2->truncated;
      alone->Reset();
      env.Reset();
      history.assign(1, Observe(*alone));
    }
  }
  EXPECT_GT(episodes, 5);
  EXPECT_GT(truncations, 0);
}

TEST(FrameStackTest, LoadStateRejectsGarbageAndOtherStacks) {
  auto env = Stacked();
  env->Reset(1);
  const std::string state = env->SaveState();
  EXPECT_FALSE(env->LoadState("").ok());
  EXPECT_FALSE(env->LoadState(state.substr(0, state.size() / 2)).ok());
  EXPECT_FALSE(env->LoadState(state + "x").ok());
  EXPECT_EQ(env->SaveState(), state);
  // A state of the unwrapped environment, or of another k, is rejected.
  auto inner = Inner();
  inner->Reset(1);
  EXPECT_FALSE(env->LoadState(inner->SaveState()).ok());
  FrameStack two(Inner(), 2);
  two.Reset(1);
  EXPECT_FALSE(env->LoadState(two.SaveState()).ok());
  EXPECT_EQ(env->SaveState(), state);
}

// The wrapper's own bookkeeping (name, seeded, running, steps, return) leads
// its state; it must agree with the inner environment's (fuzz finding: a
// "running" wrapper over a finished inner episode failed a CHECK on Step).
TEST(FrameStackTest, LoadStateRejectsBookkeepingThatDisagreesWithTheInnerEpisode) {
  auto env = Stacked();
  env->Reset(1);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(env->Step(0).ok());
  const std::string state = env->SaveState();
  const size_t running_at = sizeof(uint64_t) + env->spec().name.size() + 1;
  const size_t steps_at = running_at + 1;
  auto edited = [&state](size_t offset, const void* value, size_t size) {
    std::string out = state;
    std::memcpy(out.data() + offset, value, size);
    return out;
  };
  const uint8_t not_running = 0;
  const int64_t other_steps = 2;
  EXPECT_FALSE(env->LoadState(edited(running_at, &not_running, 1)).ok());
  EXPECT_FALSE(env->LoadState(edited(steps_at, &other_steps, sizeof other_steps)).ok());
  EXPECT_EQ(env->SaveState(), state);
  // The unedited state loads and steps on.
  ASSERT_TRUE(env->LoadState(state).ok());
  EXPECT_TRUE(env->Step(0).ok());
}

}  // namespace
}  // namespace tokenrl::env
