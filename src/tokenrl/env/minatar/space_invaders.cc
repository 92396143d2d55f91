#include "tokenrl/env/minatar/space_invaders.h"

#include <algorithm>

#include "tokenrl/env/minatar/minatar_env.h"

namespace tokenrl::env::minatar {
namespace {

using Map = unsigned __int128;

constexpr int kShotCooldown = 5;
constexpr int kEnemyShotInterval = 10;
constexpr int kEnemyMoveInterval = 12;
constexpr int kMinEnemyMoveInterval = 6;  // Ramping stops once the interval is 6.

constexpr Map Bit(int row, int col) { return Map{1} << (row * kCols + col); }
constexpr Map kAllCells = (Map{1} << (kRows * kCols)) - 1;
constexpr Map kRowMask = 0x3FF;
constexpr Map kBottomRow = kRowMask << (9 * kCols);
constexpr Map kLeftColumn = [] {
  Map m = 0;
  for (int r = 0; r < kRows; ++r) m |= Bit(r, 0);
  return m;
}();
constexpr Map kRightColumn = kLeftColumn << 9;
// The 4x6 alien block of a new wave: rows 0-3, columns 2-7.
constexpr Map kWave = [] {
  Map m = 0;
  for (int r = 0; r < 4; ++r)
    for (int c = 2; c < 8; ++c) m |= Bit(r, c);
  return m;
}();

int PopCount(Map m) {
  return __builtin_popcountll(static_cast<uint64_t>(m)) + __builtin_popcountll(static_cast<uint64_t>(m >> 64));
}

// Sets chw[offset + bit] for every set bit (bit = row*10 + col, the CHW cell offset).
void WriteBits(Map m, uint8_t* channel) {
  for (uint64_t lo = static_cast<uint64_t>(m); lo != 0; lo &= lo - 1) channel[__builtin_ctzll(lo)] = 1;
  for (uint64_t hi = static_cast<uint64_t>(m >> 64); hi != 0; hi &= hi - 1) channel[64 + __builtin_ctzll(hi)] = 1;
}

}  // namespace

void SpaceInvaders::Reset(NumpyRandomState& /*rng*/) {
  pos_ = 5;
  f_bullets_ = 0;
  e_bullets_ = 0;
  aliens_ = kWave;
  alien_dir_ = -1;
  enemy_move_interval_ = kEnemyMoveInterval;
  alien_move_timer_ = kEnemyMoveInterval;
  alien_shot_timer_ = kEnemyShotInterval;
  ramp_index_ = 0;
  shot_timer_ = 0;
  terminal_ = false;
}

int SpaceInvaders::Act(int full_action, NumpyRandomState& /*rng*/) {
  if (terminal_) return 0;
  const Map cannon = Bit(9, pos_);
  if (full_action == kFire && shot_timer_ == 0) {
    f_bullets_ |= cannon;
    shot_timer_ = kShotCooldown;
  } else if (full_action == kLeft) {
    pos_ = std::max(0, pos_ - 1);
  } else if (full_action == kRight) {
    pos_ = std::min(9, pos_ + 1);
  }
  const Map cell = Bit(9, pos_);

  // Friendly bullets roll up (row 0 wraps to row 9, which is then cleared);
  // enemy bullets roll down (row 9 wraps to row 0, which is then cleared).
  f_bullets_ >>= kCols;
  e_bullets_ = (e_bullets_ << kCols) & kAllCells;
  bool terminal = (e_bullets_ & cell) != 0;
  terminal |= (aliens_ & cell) != 0;

  if (alien_move_timer_ == 0) {
    // The alien count before this step's kills.
    alien_move_timer_ = std::min(PopCount(aliens_), enemy_move_interval_);
    if (((aliens_ & kLeftColumn) && alien_dir_ < 0) || ((aliens_ & kRightColumn) && alien_dir_ > 0)) {
      alien_dir_ = -alien_dir_;
      terminal |= (aliens_ & kBottomRow) != 0;
      // Step down with wrap-around: row 9 goes to row 0 (seen in the terminal observation).
      aliens_ = ((aliens_ << kCols) | (aliens_ >> (9 * kCols))) & kAllCells;
    } else {
      // The edge test above guarantees that no alien wraps around.
      aliens_ = alien_dir_ < 0 ? aliens_ >> 1 : aliens_ << 1;
    }
    terminal |= (aliens_ & cell) != 0;
  }

  if (alien_shot_timer_ == 0) {
    alien_shot_timer_ = kEnemyShotInterval;
    Map columns = 0;  // Bit c: column c holds an alien.
    for (int r = 0; r < kRows; ++r) columns |= (aliens_ >> (r * kCols)) & kRowMask;
    const auto occupied = static_cast<uint32_t>(columns);
    // Columns by distance from the cannon, ties to the smaller column.
    int col = -1;
    for (int d = 0; d < kCols && col < 0; ++d) {
      if (pos_ - d >= 0 && ((occupied >> (pos_ - d)) & 1u)) {
        col = pos_ - d;
      } else if (pos_ + d < kCols && ((occupied >> (pos_ + d)) & 1u)) {
        col = pos_ + d;
      }
    }
    if (col >= 0) {
      int row = kRows - 1;
      while ((aliens_ & Bit(row, col)) == 0) --row;  // The lowest alien of the column.
      e_bullets_ |= Bit(row, col);
    }
  }

  const Map kills = aliens_ & f_bullets_;
  const int reward = PopCount(kills);
  aliens_ &= ~kills;
  f_bullets_ &= ~kills;

  if (shot_timer_ > 0) --shot_timer_;
  --alien_move_timer_;
  --alien_shot_timer_;
  if (aliens_ == 0) {
    if (enemy_move_interval_ > kMinEnemyMoveInterval && ramping_) {
      --enemy_move_interval_;
      ++ramp_index_;
    }
    aliens_ = kWave;
  }
  terminal_ = terminal;
  return reward;
}

void SpaceInvaders::WriteObservation(uint8_t* chw) const {
  chw[CellIndex(0, 9, pos_)] = 1;
  WriteBits(aliens_, chw + CellIndex(1, 0, 0));
  WriteBits(aliens_, chw + CellIndex(alien_dir_ < 0 ? 2 : 3, 0, 0));
  WriteBits(f_bullets_, chw + CellIndex(4, 0, 0));
  WriteBits(e_bullets_, chw + CellIndex(5, 0, 0));
}

// Field by field (never the raw object): padding bytes would make snapshots differ.
void SpaceInvaders::Save(ByteWriter& w) const {
  for (int v : {pos_, alien_dir_, enemy_move_interval_, alien_move_timer_, alien_shot_timer_, ramp_index_, shot_timer_})
    w.Write<int32_t>(v);
  w.Write<uint8_t>(terminal_);
  for (Map m : {aliens_, f_bullets_, e_bullets_}) {
    w.Write<uint64_t>(static_cast<uint64_t>(m));
    w.Write<uint64_t>(static_cast<uint64_t>(m >> 64));
  }
}

bool SpaceInvaders::Load(ByteReader& r) {
  int32_t pos = 0, dir = 0, interval = 0, move_timer = 0, shot_timer_alien = 0, ramp = 0, shot_timer = 0;
  uint8_t terminal = 0;
  for (int32_t* v : {&pos, &dir, &interval, &move_timer, &shot_timer_alien, &ramp, &shot_timer}) r.Read(*v);
  r.Read(terminal);
  Map maps[3] = {0, 0, 0};
  for (Map& m : maps) {
    uint64_t lo = 0, hi = 0;
    r.Read(lo);
    r.Read(hi);
    m = (Map{hi} << 64) | lo;
  }
  // Timers count down to 0 from their intervals; each ramp shortens the alien
  // move interval by one; a cleared wave is replaced in the same step.
  if (!r.ok() || !InRange(pos, 0, 9) || (dir != -1 && dir != 1) || terminal > 1 ||
      !InRange(interval, kMinEnemyMoveInterval, kEnemyMoveInterval) || ramp != kEnemyMoveInterval - interval ||
      !InRange(move_timer, 0, kEnemyMoveInterval) || !InRange(shot_timer_alien, 0, kEnemyShotInterval) ||
      !InRange(shot_timer, 0, kShotCooldown) || maps[0] == 0) {
    return false;
  }
  for (Map m : maps)
    if ((m & ~kAllCells) != 0) return false;
  pos_ = pos;
  alien_dir_ = dir;
  enemy_move_interval_ = interval;
  alien_move_timer_ = move_timer;
  alien_shot_timer_ = shot_timer_alien;
  ramp_index_ = ramp;
  shot_timer_ = shot_timer;
  terminal_ = terminal;
  aliens_ = maps[0];
  f_bullets_ = maps[1];
  e_bullets_ = maps[2];
  return true;
}

}  // namespace tokenrl::env::minatar
