// MinAtar state restore rejects fields outside the game's ranges (fuzz
// finding: a Breakout state with a brick value of 151 loaded and wrote 151
// into the observation; out-of-range positions would index past the grid).

#include <cstdint>
#include <cstring>
#include <string>

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

}  // namespace
}  // namespace tokenrl::env
