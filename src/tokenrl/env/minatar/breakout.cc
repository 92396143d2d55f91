#include "tokenrl/env/minatar/breakout.h"

#include <algorithm>

#include "tokenrl/env/minatar/minatar_env.h"

namespace tokenrl::env::minatar {
namespace {

constexpr int kDx[4] = {-1, 1, 1, -1};
constexpr int kDy[4] = {-1, -1, 1, 1};
constexpr int kMirrorHorizontal[4] = {1, 0, 3, 2};  // 0<->1, 2<->3
constexpr int kMirrorVertical[4] = {3, 2, 1, 0};    // 0<->3, 1<->2
constexpr int kReverse[4] = {2, 3, 0, 1};           // 0<->2, 1<->3

}  // namespace

void Breakout::Reset(NumpyRandomState& rng) {
  ball_y_ = 3;
  if (rng.RandInt(2) == 0) {
    ball_x_ = 0;
    ball_dir_ = 2;
  } else {
    ball_x_ = 9;
    ball_dir_ = 3;
  }
  paddle_x_ = 4;
  for (auto& row : bricks_) row.fill(0);
  for (int r = 1; r <= 3; ++r) bricks_[r].fill(1);
  strike_ = false;
  terminal_ = false;
  last_x_ = ball_x_;
  last_y_ = ball_y_;
}

int Breakout::Act(int full_action, NumpyRandomState& /*rng*/) {
  if (terminal_) return 0;
  int reward = 0;
  if (full_action == kLeft) paddle_x_ = std::max(0, paddle_x_ - 1);
  if (full_action == kRight) paddle_x_ = std::min(9, paddle_x_ + 1);

  last_x_ = ball_x_;
  last_y_ = ball_y_;
  int new_x = ball_x_ + kDx[ball_dir_];
  int new_y = ball_y_ + kDy[ball_dir_];
  bool hit = false;
  if (new_x < 0 || new_x > 9) {
    new_x = std::clamp(new_x, 0, 9);
    ball_dir_ = kMirrorHorizontal[ball_dir_];
  }
  if (new_y < 0) {
    new_y = 0;
    ball_dir_ = kMirrorVertical[ball_dir_];
  } else if (bricks_[new_y][new_x]) {
    hit = true;
    // Upstream's strike flag: on a consecutive hit the ball passes into the brick cell.
    if (!strike_) {
      ++reward;
      strike_ = true;
      bricks_[new_y][new_x] = 0;
      new_y = last_y_;
      ball_dir_ = kMirrorVertical[ball_dir_];
    }
  } else if (new_y == 9) {
    bool any_brick = false;
    for (const auto& row : bricks_)
      for (uint8_t b : row) any_brick = any_brick || b;
    if (!any_brick) {
      for (int r = 1; r <= 3; ++r) bricks_[r].fill(1);
    }
    if (ball_x_ == paddle_x_) {  // The old column is tested first.
      ball_dir_ = kMirrorVertical[ball_dir_];
      new_y = last_y_;
    } else if (new_x == paddle_x_) {
      ball_dir_ = kReverse[ball_dir_];
      new_y = last_y_;
    } else {
      terminal_ = true;
    }
  }
  if (!hit) strike_ = false;
  ball_x_ = new_x;
  ball_y_ = new_y;
  return reward;
}

void Breakout::WriteObservation(uint8_t* chw) const {
  chw[CellIndex(0, 9, paddle_x_)] = 1;
  chw[CellIndex(1, ball_y_, ball_x_)] = 1;
  chw[CellIndex(2, last_y_, last_x_)] = 1;
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kCols; ++c) chw[CellIndex(3, r, c)] = bricks_[r][c];
}

// Field by field (never the raw object): padding bytes would make snapshots differ.
void Breakout::Save(ByteWriter& w) const {
  for (int v : {ball_x_, ball_y_, ball_dir_, paddle_x_, last_x_, last_y_}) w.Write<int32_t>(v);
  w.Write<uint8_t>(strike_);
  w.Write<uint8_t>(terminal_);
  w.Write(bricks_);
}

bool Breakout::Load(ByteReader& r) {
  uint8_t strike = 0, terminal = 0;
  for (int* v : {&ball_x_, &ball_y_, &ball_dir_, &paddle_x_, &last_x_, &last_y_}) r.Read(*v);
  r.Read(strike);
  r.Read(terminal);
  r.Read(bricks_);
  strike_ = strike;
  terminal_ = terminal;
  // Every position indexes the 10x10 grid and ball_dir_ the direction tables;
  // bricks are 0/1 (they are written into the observation as they are).
  bool valid = r.ok() && strike <= 1 && terminal <= 1 && ball_dir_ >= 0 && ball_dir_ <= 3;
  for (int v : {ball_x_, ball_y_, paddle_x_, last_x_, last_y_}) valid = valid && v >= 0 && v <= 9;
  for (const auto& row : bricks_)
    for (uint8_t b : row) valid = valid && b <= 1;
  return valid;
}

}  // namespace tokenrl::env::minatar
