#include "tokenrl/env/minatar/asterix.h"

#include <algorithm>

#include "tokenrl/env/minatar/minatar_env.h"

namespace tokenrl::env::minatar {
namespace {

constexpr int kInitialSpawnSpeed = 10;
constexpr int kInitialMoveSpeed = 5;
constexpr int kRampInterval = 100;
// Ramps stop once both speeds are 1: nine ramps take the spawn speed from 10 to 1.
constexpr int kMaxRampIndex = kInitialSpawnSpeed - 1;

}  // namespace

void Asterix::Reset(NumpyRandomState& /*rng*/) {
  player_x_ = 5;
  player_y_ = 5;
  entities_.fill(Entity{});
  spawn_speed_ = spawn_timer_ = kInitialSpawnSpeed;
  move_speed_ = move_timer_ = kInitialMoveSpeed;
  ramp_timer_ = kRampInterval;
  ramp_index_ = 0;
  terminal_ = false;
}

int Asterix::Act(int full_action, NumpyRandomState& rng) {
  if (terminal_) return 0;
  int reward = 0;

  // 1. Spawn: both draws happen even when every row is occupied.
  if (spawn_timer_ == 0) {
    const bool right = rng.Rand() < 0.5;
    const bool gold = rng.Rand() < 1.0 / 3.0;
    std::array<int, kSlots> free{};
    int num_free = 0;
    for (int i = 0; i < kSlots; ++i) {
      free[num_free] = i;
      num_free += !entities_[i].active;
    }
    if (num_free > 0) {  // randint(1) draws nothing.
      const int slot = free[static_cast<size_t>(rng.RandInt(num_free))];
      entities_[slot] = {static_cast<int8_t>(right ? 0 : 9), static_cast<int8_t>(right ? 1 : -1), 1, gold};
    }
    spawn_timer_ = spawn_speed_;
  }

  // 2. Player.
  switch (full_action) {
    case kLeft: player_x_ = std::max(0, player_x_ - 1); break;
    case kRight: player_x_ = std::min(9, player_x_ + 1); break;
    case kUp: player_y_ = std::max(1, player_y_ - 1); break;
    case kDown: player_y_ = std::min(8, player_y_ + 1); break;
    default: break;
  }

  // 3./4. Only the player's row (slot player_y_-1) can touch the player.
  Entity& mine = entities_[player_y_ - 1];
  auto touch = [&] {
    if (mine.active && mine.x == player_x_) {
      if (mine.gold) {
        mine = Entity{};  // Empty slots are all-zero (dx == 0 keeps them in place).
        ++reward;
      } else {
        terminal_ = true;  // The enemy stays; the step continues.
      }
    }
  };
  touch();
  if (move_timer_ == 0) {
    move_timer_ = move_speed_;
    for (Entity& e : entities_) {
      e.x = static_cast<int8_t>(e.x + e.dx);  // Inactive slots have dx == 0.
      if (e.x < 0 || e.x > 9) e = Entity{};
    }
    touch();
  }

  // 5. Timers (never negative: they are reset in the step where they are 0).
  --spawn_timer_;
  --move_timer_;

  // 6. Difficulty ramp.
  if (ramping_ && (spawn_speed_ > 1 || move_speed_ > 1)) {
    if (ramp_timer_ >= 0) {
      --ramp_timer_;
    } else {
      if (move_speed_ > 1 && (ramp_index_ & 1)) --move_speed_;
      if (spawn_speed_ > 1) --spawn_speed_;
      ++ramp_index_;
      ramp_timer_ = kRampInterval;
    }
  }
  return reward;
}

void Asterix::WriteObservation(uint8_t* chw) const {
  chw[CellIndex(0, player_y_, player_x_)] = 1;
  for (int i = 0; i < kSlots; ++i) {
    const Entity& e = entities_[i];
    if (!e.active) continue;
    chw[CellIndex(e.gold ? 3 : 1, i + 1, e.x)] = 1;
    const int back = e.x - e.dx;
    if (back >= 0 && back <= 9) chw[CellIndex(2, i + 1, back)] = 1;
  }
}

// Field by field (never the raw object): padding bytes would make snapshots differ.
void Asterix::Save(ByteWriter& w) const {
  for (int v : {player_x_, player_y_, spawn_speed_, spawn_timer_, move_speed_, move_timer_, ramp_timer_, ramp_index_})
    w.Write<int32_t>(v);
  w.Write<uint8_t>(terminal_);
  for (const Entity& e : entities_) {
    w.Write<int8_t>(e.x);
    w.Write<int8_t>(e.dx);
    w.Write<uint8_t>(e.active);
    w.Write<uint8_t>(e.gold);
  }
}

bool Asterix::Load(ByteReader& r) {
  uint8_t terminal = 0;
  for (int* v : {&player_x_, &player_y_, &spawn_speed_, &spawn_timer_, &move_speed_, &move_timer_, &ramp_timer_,
                 &ramp_index_})
    r.Read(*v);
  r.Read(terminal);
  terminal_ = terminal;
  // Every field within what a run can reach: timers count down to 0 (the ramp
  // timer to -1) from their speed, and the speeds only ramp down.
  bool valid = terminal <= 1 && InRange(player_x_, 0, 9) && InRange(player_y_, 1, 8) &&
               InRange(spawn_speed_, 1, kInitialSpawnSpeed) && InRange(spawn_timer_, 0, kInitialSpawnSpeed) &&
               InRange(move_speed_, 1, kInitialMoveSpeed) && InRange(move_timer_, 0, kInitialMoveSpeed) &&
               InRange(ramp_timer_, -1, kRampInterval) && InRange(ramp_index_, 0, kMaxRampIndex);
  for (Entity& e : entities_) {
    r.Read(e.x);
    r.Read(e.dx);
    r.Read(e.active);
    r.Read(e.gold);
    valid = valid && e.active <= 1 && e.gold <= 1;
    if (!e.active) e = Entity{};
    valid = valid && e.x >= 0 && e.x <= 9 && (!e.active || e.dx == 1 || e.dx == -1);
  }
  return r.ok() && valid;
}

}  // namespace tokenrl::env::minatar
