#pragma once
// MinAtar Breakout (spec: ../shared/docs/minatar_spec.md section 4.2).
//
// The player moves a paddle on the bottom row to bounce a ball into three rows
// of bricks; +1 per brick; the episode ends when the ball reaches the bottom
// row without the paddle under it. Bricks are refilled when the ball comes
// down to the bottom row with none left. Randomness: one `randint(2)` at reset
// (ball starts top-left moving down-right, or top-right moving down-left).
//
// This file is the commented template for a MinAtar game: a plain value type
// with the dynamics only; MinatarEnvironment<Game> adds the sticky-action
// wrapper and the Environment bookkeeping.
//
// Channels: 0 paddle, 1 ball, 2 trail (previous ball cell), 3 brick.
// Minimal action set: n l r.

#include <array>
#include <cstdint>
#include <string_view>

#include "tokenrl/core/numpy_random.h"
#include "tokenrl/core/serialization.h"

namespace tokenrl::env::minatar {

class Breakout {
 public:
  static constexpr std::string_view kName = "breakout";
  static constexpr std::string_view kDescription =
      "MinAtar Breakout: bounce the ball into three rows of bricks (+1 per brick)";
  static constexpr int kChannels = 4;
  static constexpr std::array<std::string_view, kChannels> kChannelNames{"paddle", "ball", "trail", "brick"};
  static constexpr std::string_view kGlyphs = "=o*#";
  static constexpr std::array<int, 3> kMinimalActions{0, 1, 3};
  // A step breaks at most one brick.
  static constexpr float kMaxStepReward = 1.0f;

  // Breakout has no difficulty ramping; the flag is accepted and ignored as upstream.
  explicit Breakout(bool /*difficulty_ramping*/) {}

  void Reset(NumpyRandomState& rng);
  int Act(int full_action, NumpyRandomState& rng);
  bool terminal() const { return terminal_; }
  int ramp_index() const { return -1; }
  void WriteObservation(uint8_t* chw) const;
  void Save(ByteWriter& writer) const;
  bool Load(ByteReader& reader);

 private:
  int ball_x_ = 0, ball_y_ = 0;
  int ball_dir_ = 0;  // 0 up-left, 1 up-right, 2 down-right, 3 down-left.
  int paddle_x_ = 0;
  int last_x_ = 0, last_y_ = 0;  // Previous ball cell (the trail).
  bool strike_ = false;          // A brick was hit on the previous step.
  bool terminal_ = false;
  std::array<std::array<uint8_t, 10>, 10> bricks_{};
};

}  // namespace tokenrl::env::minatar
