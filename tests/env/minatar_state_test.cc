// MinAtar state restore rejects fields outside the game's ranges (fuzz
// findings: a Breakout state with a brick value of 151 loaded and wrote 151
// into the observation; out-of-range positions would index past the grid; a
// Space Invaders timer of INT_MIN overflowed on the next step), and accepts
// every state that play reaches.

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tokenrl/env/registry.h"

namespace tokenrl::env {
namespace {

// Breakout's state ends with its game: six int32 (ball x, ball y, ball
// direction, paddle x, last x, last y), strike and terminal bytes, 10x10 bricks.
constexpr size_t kBricks = 100, kFlags = 2, kInts = 6 * sizeof(int32_t);

std::string WithInt(std::string state, size_t field, int32_t value) {
  std::memcpy(state.data() + state.size() - kBricks - kFlags - kInts + field * sizeof(int32_t), &value, sizeof value);
  return state;
}

std::string WithByte(std::string state, size_t offset_from_end, uint8_t value) {
  state[state.size() - offset_from_end] = static_cast<char>(value);
  return state;
}

TEST(MinatarStateTest, BreakoutRejectsOutOfRangeFields) {
  EnvConfig config;
  config.name = "minatar/breakout";
  auto made = MakeEnvironment(config);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  Environment& env = **made;
  env.Reset(7);
  const std::string state = env.SaveState();
  // A brick other than 0/1 (the finding), the first and last brick cells.
  for (size_t brick : {size_t{1}, kBricks}) {
    EXPECT_FALSE(env.LoadState(WithByte(state, brick, 151)).ok()) << brick;
    EXPECT_FALSE(env.LoadState(WithByte(state, brick, 2)).ok()) << brick;
  }
  // strike and terminal are booleans.
  EXPECT_FALSE(env.LoadState(WithByte(state, kBricks + 1, 2)).ok());
  EXPECT_FALSE(env.LoadState(WithByte(state, kBricks + 2, 2)).ok());
  // Positions outside the 10x10 grid, a direction outside 0..3.
  for (size_t field : {0, 1, 3, 4, 5}) {
    EXPECT_FALSE(env.LoadState(WithInt(state, field, 10)).ok()) << field;
    EXPECT_FALSE(env.LoadState(WithInt(state, field, -1)).ok()) << field;
  }
  EXPECT_FALSE(env.LoadState(WithInt(state, 2, 4)).ok());
  EXPECT_FALSE(env.LoadState(WithInt(state, 2, -1)).ok());
  // The rejected loads changed nothing; in-range edits load.
  EXPECT_EQ(env.SaveState(), state);
  const std::string edited = WithInt(WithByte(state, 1, 1), 3, 9);
  ASSERT_TRUE(env.LoadState(edited).ok());
  EXPECT_EQ(env.SaveState(), edited);
}

struct GameLayout {
  const char* name;
  size_t game_bytes_after_reset;  // The game's own bytes at the end of the state, right after a reset.
  size_t leading_ints;            // The int32 fields the game's bytes start with.
};

// From each game's Save: its int32 fields, flags, then its entities (Seaquest's lists are empty after a reset).
constexpr GameLayout kLayouts[] = {
    {"minatar/asterix", 8 * 4 + 1 + 8 * 4, 8},  {"minatar/breakout", 6 * 4 + 2 + 100, 6},
    {"minatar/freeway", 3 * 4 + 1 + 8 * 3, 3},  {"minatar/seaquest", 10 * 4 + 3 + 5 * 4, 10},
    {"minatar/space_invaders", 7 * 4 + 1 + 3 * 16, 7},
};

std::unique_ptr<Environment> Make(const std::string& name) {
  EnvConfig config;
  config.name = name;
  auto made = MakeEnvironment(config);
  EXPECT_TRUE(made.ok()) << made.status().ToString();
  return made.ok() ? std::move(*made) : nullptr;
}

// Every int32 a game stores has a bounded range (a counter left unbounded would
// overflow or count on forever): the extremes are rejected, and change nothing.
TEST(MinatarStateTest, EveryIntFieldIsBounded) {
  for (const GameLayout& layout : kLayouts) {
    auto env = Make(layout.name);
    ASSERT_NE(env, nullptr);
    env->Reset(3);
    const std::string state = env->SaveState();
    ASSERT_TRUE(env->LoadState(state).ok()) << layout.name;
    const size_t game_start = state.size() - layout.game_bytes_after_reset;
    for (size_t field = 0; field < layout.leading_ints; ++field) {
      for (int32_t value : {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()}) {
        std::string bad = state;
        std::memcpy(bad.data() + game_start + field * sizeof(int32_t), &value, sizeof value);
        EXPECT_FALSE(env->LoadState(bad).ok()) << layout.name << " int field " << field << " = " << value;
      }
    }
    EXPECT_EQ(env->SaveState(), state) << layout.name;
  }
}

// The ranges are not too tight: every state of long random play (through the
// difficulty ramps, episode ends and resets) loads into a fresh environment and
// saves back the same bytes.
TEST(MinatarStateTest, EveryPlayedStateLoads) {
  for (const GameLayout& layout : kLayouts) {
    auto env = Make(layout.name);
    auto restored = Make(layout.name);
    ASSERT_NE(env, nullptr);
    ASSERT_NE(restored, nullptr);
    std::mt19937 rng(11);
    env->Reset(5);
    int64_t rejected = 0;
    for (int step = 0; step < 30000; ++step) {
      if (!env->episode_running()) env->Reset();
      // Biased towards fire and up so that Seaquest surfaces with divers and ramps now and then.
      const int num_actions = env->spec().num_actions();
      const int action = rng() % 4 == 0 ? num_actions - 1 : static_cast<int>(rng() % num_actions);
      ASSERT_TRUE(env->Step(action).ok());
      const std::string state = env->SaveState();
      if (!restored->LoadState(state).ok() || restored->SaveState() != state) ++rejected;
    }
    EXPECT_EQ(rejected, 0) << layout.name;
  }
}

}  // namespace
}  // namespace tokenrl::env
