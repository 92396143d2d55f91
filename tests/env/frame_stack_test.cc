// FrameStack (Dopamine frame stacking, ../shared/docs/softmoe_reference.md
// 1.1) over minatar/breakout with k = 4: the stacking semantics against the
// inner environment run alone, and the contracts of environment.h
// (env_conformance_test's checks, which only run over registered names).

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

struct Trace {
  std::vector<float> rewards;
  std::vector<uint8_t> observations;
  std::vector<uint8_t> done_flags;
};

Trace Play(Environment& env, uint32_t seed, int steps, uint64_t action_seed) {
  Trace trace;
  std::mt19937_64 actions(action_seed);
  env.Reset(seed);
  for (int t = 0; t < steps; ++t) {
    auto r = env.Step(static_cast<int>(actions() % static_cast<uint64_t>(env.spec().num_actions())));
    TOKENRL_CHECK(r.ok(), "{}", r.status().ToString());
    const std::vector<uint8_t> obs = Observe(env);
    trace.rewards.push_back(r->reward);
    trace.observations.insert(trace.observations.end(), obs.begin(), obs.end());
    trace.done_flags.push_back(static_cast<uint8_t>(r->terminated + 2 * r->truncated));
    if (r->done()) env.Reset();
  }
  return trace;
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

TEST(FrameStackTest, RandomPlayRespectsContracts) {
  auto env = Stacked();
  const EnvSpec& spec = env->spec();
  std::mt19937_64 actions(17);
  std::vector<uint8_t> obs(static_cast<size_t>(spec.observation_size()));
  std::vector<float> obs_f(obs.size());
  int episodes = 0;
  env->Reset(123);
  double reward_sum = 0.0;
  for (int t = 0; t < 20000 && episodes < 30; ++t) {
    auto r = env->Step(static_cast<int>(actions() % static_cast<uint64_t>(spec.num_actions())));
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
      ASSERT_FALSE(env->Step(0).ok());
      env->Reset();
      ASSERT_EQ(env->episode_steps(), 0);
      reward_sum = 0.0;
      ++episodes;
    }
  }
  EXPECT_GT(episodes, 0);
  // Out-of-range actions are errors.
  env->Reset(0);
  for (int a : {-1, spec.num_actions(), 1000}) {
    auto r = env->Step(a);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  }
  EXPECT_FALSE(env->ToString().empty());
}

TEST(FrameStackTest, SameSeedSameTrajectoryDifferentSeedDifferent) {
  auto a = Stacked();
  auto b = Stacked();
  const Trace ta = Play(*a, 5, 3000, 1);
  const Trace tb = Play(*b, 5, 3000, 1);
  EXPECT_EQ(ta.rewards, tb.rewards);
  EXPECT_EQ(ta.observations, tb.observations);
  EXPECT_EQ(ta.done_flags, tb.done_flags);
  const Trace ta2 = Play(*a, 5, 3000, 1);
  EXPECT_EQ(ta.observations, ta2.observations);
  const Trace tc = Play(*b, 6, 3000, 1);
  EXPECT_NE(ta.observations, tc.observations);
}

TEST(FrameStackTest, CloneAndSaveLoadContinueIdentically) {
  auto env = Stacked();
  std::mt19937_64 actions(3);
  env->Reset(77);
  for (int t = 0; t < 137; ++t) {
    auto r = env->Step(static_cast<int>(actions() % static_cast<uint64_t>(env->spec().num_actions())));
    ASSERT_TRUE(r.ok());
    if (r->done()) env->Reset();
  }
  auto clone = env->Clone();
  auto restored = Stacked();
  const std::string state = env->SaveState();
  ASSERT_TRUE(restored->LoadState(state).ok());
  EXPECT_EQ(restored->SaveState(), state) << "save -> load -> save is not byte-identical";
  EXPECT_EQ(clone->SaveState(), state);
  EXPECT_EQ(Observe(*restored), Observe(*env));
  for (int t = 0; t < 2000; ++t) {
    const int a = static_cast<int>(actions() % static_cast<uint64_t>(env->spec().num_actions()));
    auto r1 = env->Step(a);
    auto r2 = clone->Step(a);
    auto r3 = restored->Step(a);
    ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok());
    ASSERT_EQ(r1->reward, r2->reward);
    ASSERT_EQ(r1->reward, r3->reward);
    ASSERT_EQ(r1->terminated, r3->terminated);
    ASSERT_EQ(Observe(*env), Observe(*clone)) << "clone diverged at step " << t;
    ASSERT_EQ(Observe(*env), Observe(*restored)) << "restored state diverged at step " << t;
    if (r1->done()) {
      env->Reset();
      clone->Reset();
      restored->Reset();
    }
  }
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

TEST(FrameStackTest, TimeLimitTruncatesWithoutTerminating) {
  auto env = Stacked(/*max_steps=*/7);
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

}  // namespace
}  // namespace tokenrl::env
