#pragma once
// MinAtar Space Invaders (spec: ../shared/docs/minatar_spec.md section 4.5).
//
// The player moves a cannon along the bottom row and shoots upwards at a 4x6
// block of aliens that marches sideways and steps down one row at each edge;
// +1 per alien; the episode ends when an enemy bullet or an alien reaches the
// cannon cell, or when the block steps down while an alien is on the bottom
// row. A cleared wave respawns, faster when ramping. Fully deterministic: the
// only randomness is the wrapper's sticky-action draw.
//
// Representation: each 10x10 map (aliens, friendly and enemy bullets) is one
// 128-bit mask with bit `row*10 + col`, so a row roll is a shift by 10, a
// column shift a shift by 1, kills a popcount, and the bit index of a cell is
// also its CHW offset within a channel.
//
// Channels: 0 cannon, 1 alien, 2 alien_left, 3 alien_right (the alien map
// again, on the channel of the block's direction), 4 friendly_bullet,
// 5 enemy_bullet.
// Minimal action set: n l r f.

#include <array>
#include <cstdint>
#include <string_view>

#include "tokenrl/core/numpy_random.h"
#include "tokenrl/core/serialization.h"

namespace tokenrl::env::minatar {

class SpaceInvaders {
 public:
  static constexpr std::string_view kName = "space_invaders";
  static constexpr std::string_view kDescription =
      "MinAtar Space Invaders: shoot the marching alien block before it reaches you (+1 per alien)";
  static constexpr int kChannels = 6;
  static constexpr std::array<std::string_view, kChannels> kChannelNames{
      "cannon", "alien", "alien_left", "alien_right", "friendly_bullet", "enemy_bullet"};
  static constexpr std::string_view kGlyphs = "^A<>|!";
  static constexpr std::array<int, 4> kMinimalActions{0, 1, 3, 5};
  // Kills are cells holding both an alien and a friendly bullet. The cannon
  // fires at most every 5 steps and a bullet lives 9 steps (rows 8..0), so at
  // most 2 friendly bullets exist at once: at most 2 kills per step.
  static constexpr float kMaxStepReward = 2.0f;

  explicit SpaceInvaders(bool difficulty_ramping) : ramping_(difficulty_ramping) {}

  void Reset(NumpyRandomState& rng);
  int Act(int full_action, NumpyRandomState& rng);
  bool terminal() const { return terminal_; }
  int ramp_index() const { return ramp_index_; }
  void WriteObservation(uint8_t* chw) const;
  void Save(ByteWriter& writer) const;
  bool Load(ByteReader& reader);

 private:
  using Map = unsigned __int128;  // Bit row*10 + col; bits 100..127 always 0.

  bool ramping_;
  int pos_ = 5;        // Cannon column (row 9).
  int alien_dir_ = -1;  // -1 left, +1 right.
  int enemy_move_interval_ = 12;
  int alien_move_timer_ = 12;
  int alien_shot_timer_ = 10;
  int ramp_index_ = 0;
  int shot_timer_ = 0;
  bool terminal_ = false;
  Map aliens_ = 0;
  Map f_bullets_ = 0;
  Map e_bullets_ = 0;
};

}  // namespace tokenrl::env::minatar
