#pragma once
// MinAtar Asterix (spec: ../shared/docs/minatar_spec.md section 4.1).
//
// The player moves freely on rows 1..8; enemies and gold cross the screen
// horizontally, one entity slot per row (slot i lives on row i+1). +1 per gold
// collected; touching an enemy ends the episode. With difficulty ramping the
// spawn and move periods shrink every 102 steps down to 1.
// Randomness: when the spawn timer fires, `rand()` (direction), `rand()`
// (gold?) and, if at least one row is free, `randint(#free rows)`.
//
// Channels: 0 player, 1 enemy, 2 trail (cell behind an entity), 3 gold.
// Minimal action set: n l u r d.

#include <array>
#include <cstdint>
#include <string_view>

#include "tokenrl/core/numpy_random.h"
#include "tokenrl/core/serialization.h"

namespace tokenrl::env::minatar {

class Asterix {
 public:
  static constexpr std::string_view kName = "asterix";
  static constexpr std::string_view kDescription =
      "MinAtar Asterix: collect gold (+1 each) and dodge the enemies crossing the screen";
  static constexpr int kChannels = 4;
  static constexpr std::array<std::string_view, kChannels> kChannelNames{"player", "enemy", "trail", "gold"};
  static constexpr std::string_view kGlyphs = "@X-$";
  static constexpr std::array<int, 5> kMinimalActions{0, 1, 2, 3, 4};
  // Only the entity in the player's row (slot py-1) can ever touch the player,
  // and a gold collected in the contact phase empties that slot before the
  // movement phase, so a step collects at most one gold.
  static constexpr float kMaxStepReward = 1.0f;

  explicit Asterix(bool difficulty_ramping) : ramping_(difficulty_ramping) {}

  void Reset(NumpyRandomState& rng);
  int Act(int full_action, NumpyRandomState& rng);
  bool terminal() const { return terminal_; }
  int ramp_index() const { return ramp_index_; }
  void WriteObservation(uint8_t* chw) const;
  void Save(ByteWriter& writer) const;
  bool Load(ByteReader& reader);

 private:
  static constexpr int kSlots = 8;
  // One entity slot; slot i is on row i+1.
  struct Entity {
    int8_t x = 0;        // Column 0..9.
    int8_t dx = 0;       // +1 moving right, -1 moving left.
    uint8_t active = 0;  // The slot holds an entity.
    uint8_t gold = 0;    // Gold (collect) rather than enemy (deadly).
  };

  bool ramping_;
  int player_x_ = 5, player_y_ = 5;
  std::array<Entity, kSlots> entities_{};
  int spawn_speed_ = 10, spawn_timer_ = 10;
  int move_speed_ = 5, move_timer_ = 5;
  int ramp_timer_ = 100, ramp_index_ = 0;
  bool terminal_ = false;
};

}  // namespace tokenrl::env::minatar
