#include "tokenrl/env/minatar/seaquest.h"

#include <algorithm>

#include "tokenrl/env/minatar/minatar_env.h"

namespace tokenrl::env::minatar {
namespace {

constexpr int kMaxOxygen = 200;
constexpr int kInitSpawnSpeed = 20;
constexpr int kDiverSpawnSpeed = 30;
constexpr int kInitMoveInterval = 5;
constexpr int kMinMoveInterval = 2;  // Ramping stops shortening the move interval at 2.
// Ramps stop once the spawn interval is 1 and the move interval 2: 19 ramps.
constexpr int kMaxRampIndex = kInitSpawnSpeed - 1;
constexpr int kShotCooldown = 5;
constexpr int kEnemyShotInterval = 10;
constexpr int kDiverMoveInterval = 5;
constexpr int kMaxDiverCount = 6;

constexpr int Step(bool right) { return right ? 1 : -1; }
constexpr bool OffGrid(int x) { return x < 0 || x > 9; }

// Python's `for item in reversed(list)`: indices from the last to the first,
// stopping as soon as the index is no longer below the (shrinking) length.
#define TOKENRL_FOR_REVERSED(i, list) for (int i = (list).size() - 1; i >= 0 && i < (list).size(); --i)

}  // namespace

void Seaquest::Reset(NumpyRandomState& /*rng*/) {
  oxygen_ = kMaxOxygen;
  diver_count_ = 0;
  sub_x_ = 5;
  sub_y_ = 0;
  facing_right_ = false;
  f_bullets_.clear();
  e_bullets_.clear();
  fish_.clear();
  subs_.clear();
  divers_.clear();
  e_spawn_speed_ = kInitSpawnSpeed;
  e_spawn_timer_ = kInitSpawnSpeed;
  d_spawn_timer_ = kDiverSpawnSpeed;
  move_speed_ = kInitMoveInterval;
  ramp_index_ = 0;
  shot_timer_ = 0;
  surface_ = true;
  terminal_ = false;
}

void Seaquest::SpawnEnemy(NumpyRandomState& rng) {
  // All three draws happen even when the spawn is then vetoed.
  const bool right = rng.Rand() < 0.5;
  const bool is_sub = rng.Rand() < 1.0 / 3.0;
  const auto row = static_cast<int8_t>(rng.RandInt(1, 9));
  const auto x = static_cast<int8_t>(right ? 0 : 9);
  // No spawn on a row holding an enemy moving the opposite way.
  for (int i = 0; i < subs_.size(); ++i)
    if (subs_[i].y == row && subs_[i].right != right) return;
  for (int i = 0; i < fish_.size(); ++i)
    if (fish_[i].y == row && fish_[i].right != right) return;
  if (is_sub) {
    subs_.push_back({x, row, right, static_cast<int8_t>(move_speed_), static_cast<int8_t>(kEnemyShotInterval)});
  } else {
    fish_.push_back({x, row, right, static_cast<int8_t>(move_speed_)});
  }
}

int Seaquest::Act(int full_action, NumpyRandomState& rng) {
  if (terminal_) return 0;
  int reward = 0;
  bool terminal = false;

  // 1-2. Spawns.
  if (e_spawn_timer_ == 0) {
    SpawnEnemy(rng);
    e_spawn_timer_ = e_spawn_speed_;
  }
  if (d_spawn_timer_ == 0) {
    const bool right = rng.Rand() < 0.5;
    const auto row = static_cast<int8_t>(rng.RandInt(1, 9));
    divers_.push_back({static_cast<int8_t>(right ? 0 : 9), row, right, static_cast<int8_t>(kDiverMoveInterval)});
    d_spawn_timer_ = kDiverSpawnSpeed;
  }

  // 3. Player.
  if (full_action == kFire) {
    if (shot_timer_ == 0) {
      f_bullets_.push_back({static_cast<int8_t>(sub_x_), static_cast<int8_t>(sub_y_), facing_right_});
      shot_timer_ = kShotCooldown;
    }
  } else if (full_action == kLeft) {
    sub_x_ = std::max(0, sub_x_ - 1);
    facing_right_ = false;
  } else if (full_action == kRight) {
    sub_x_ = std::min(9, sub_x_ + 1);
    facing_right_ = true;
  } else if (full_action == kUp) {
    sub_y_ = std::max(0, sub_y_ - 1);
  } else if (full_action == kDown) {
    sub_y_ = std::min(8, sub_y_ + 1);
  }
  const int px = sub_x_, py = sub_y_;
  auto at_player = [px, py](const auto& e) { return e.x == px && e.y == py; };

  // 4. Friendly bullets: the first fish on the bullet's cell, else the first sub.
  TOKENRL_FOR_REVERSED(i, f_bullets_) {
    Bullet& b = f_bullets_[i];
    b.x = static_cast<int8_t>(b.x + Step(b.right));
    if (OffGrid(b.x)) {
      f_bullets_.remove(b);
      continue;
    }
    int hit = fish_.find_cell(b.x, b.y);
    if (hit >= 0) {
      fish_.erase(hit);
    } else if ((hit = subs_.find_cell(b.x, b.y)) >= 0) {
      subs_.erase(hit);
    }
    if (hit >= 0) {
      f_bullets_.remove(b);
      ++reward;
    }
  }

  // 5. Divers.
  TOKENRL_FOR_REVERSED(i, divers_) {
    Mover& d = divers_[i];
    if (at_player(d) && diver_count_ < kMaxDiverCount) {
      divers_.remove(d);
      ++diver_count_;
    } else if (d.move_t == 0) {
      d.move_t = kDiverMoveInterval;
      d.x = static_cast<int8_t>(d.x + Step(d.right));
      if (OffGrid(d.x)) {
        divers_.remove(d);
      } else if (at_player(d) && diver_count_ < kMaxDiverCount) {
        divers_.remove(d);
        ++diver_count_;
      }
    } else {
      --d.move_t;
    }
  }

  // 6. Enemy subs. A sub removed during its update still runs its shot logic,
  // so it is updated as a copy `s` that lives at index `at` of the list (-1
  // once removed). list.remove can delete an earlier equal element instead,
  // which shifts `s` down one place (and the loop then visits it again).
  TOKENRL_FOR_REVERSED(i, subs_) {
    Sub s = subs_[i];
    int at = i;
    auto remove_self = [&] {
      subs_[at] = s;
      const int removed = subs_.remove(s);
      at = removed == at ? -1 : at - 1;
    };
    if (at_player(s)) terminal = true;
    if (s.move_t == 0) {
      s.move_t = static_cast<int8_t>(move_speed_);
      s.x = static_cast<int8_t>(s.x + Step(s.right));
      if (OffGrid(s.x)) {
        remove_self();
      } else if (at_player(s)) {
        terminal = true;
      } else if (const int hit = f_bullets_.find_cell(s.x, s.y); hit >= 0) {
        ++reward;
        f_bullets_.erase(hit);
        remove_self();
      }
    } else {
      --s.move_t;
    }
    if (s.shot_t == 0) {
      s.shot_t = kEnemyShotInterval;
      e_bullets_.push_back({s.x, s.y, s.right});
    } else {
      --s.shot_t;
    }
    if (at >= 0) subs_[at] = s;
  }

  // 7. Enemy bullets.
  TOKENRL_FOR_REVERSED(i, e_bullets_) {
    Bullet& b = e_bullets_[i];
    if (at_player(b)) terminal = true;
    b.x = static_cast<int8_t>(b.x + Step(b.right));
    if (OffGrid(b.x)) {
      e_bullets_.remove(b);
    } else if (at_player(b)) {
      terminal = true;
    }
  }

  // 8. Fish: as subs, without shooting.
  TOKENRL_FOR_REVERSED(i, fish_) {
    Mover& f = fish_[i];
    if (at_player(f)) terminal = true;
    if (f.move_t == 0) {
      f.move_t = static_cast<int8_t>(move_speed_);
      f.x = static_cast<int8_t>(f.x + Step(f.right));
      if (OffGrid(f.x)) {
        fish_.remove(f);
      } else if (at_player(f)) {
        terminal = true;
      } else if (const int hit = f_bullets_.find_cell(f.x, f.y); hit >= 0) {
        ++reward;
        f_bullets_.erase(hit);
        fish_.remove(f);
      }
    } else {
      --f.move_t;
    }
  }

  // 9. Timers.
  if (e_spawn_timer_ > 0) --e_spawn_timer_;
  if (d_spawn_timer_ > 0) --d_spawn_timer_;
  if (shot_timer_ > 0) --shot_timer_;

  // 10. Oxygen, checked before this step's decrement; surfacing.
  if (oxygen_ <= 0) terminal = true;
  if (sub_y_ > 0) {
    --oxygen_;
    surface_ = false;
  } else if (!surface_) {
    if (diver_count_ == 0) {
      terminal = true;
    } else {
      surface_ = true;
      if (diver_count_ == kMaxDiverCount) {
        diver_count_ = 0;
        reward += oxygen_ * 10 / kMaxOxygen;  // The oxygen before the refill.
      }
      oxygen_ = kMaxOxygen;
      --diver_count_;  // Also after the six-diver reset: -1.
      if (ramping_ && (e_spawn_speed_ > 1 || move_speed_ > kMinMoveInterval)) {
        if (move_speed_ > kMinMoveInterval && ramp_index_ % 2 == 1) --move_speed_;
        if (e_spawn_speed_ > 1) --e_spawn_speed_;
        ++ramp_index_;
      }
    }
  }
  terminal_ = terminal;
  return reward;
}

#undef TOKENRL_FOR_REVERSED

void Seaquest::WriteObservation(uint8_t* chw) const {
  chw[CellIndex(0, sub_y_, sub_x_)] = 1;
  chw[CellIndex(1, sub_y_, facing_right_ ? sub_x_ - 1 : sub_x_ + 1)] = 1;
  const int oxygen_cells = std::max(0, oxygen_) * 10 / kMaxOxygen;
  for (int c = 0; c < oxygen_cells; ++c) chw[CellIndex(7, 9, c)] = 1;
  for (int c = 9 - diver_count_; c < 9; ++c) chw[CellIndex(8, 9, c)] = 1;  // Empty when diver_count <= 0.
  // Bullets have no trail.
  for (int i = 0; i < f_bullets_.size(); ++i) chw[CellIndex(2, f_bullets_[i].y, f_bullets_[i].x)] = 1;
  for (int i = 0; i < e_bullets_.size(); ++i) chw[CellIndex(4, e_bullets_[i].y, e_bullets_[i].x)] = 1;
  // Entity on channel ch plus its trail on channel 3 (the cell behind it, if on the grid).
  auto with_trail = [chw](int ch, const auto& e) {
    chw[CellIndex(ch, e.y, e.x)] = 1;
    const int back = e.right ? e.x - 1 : e.x + 1;
    if (!OffGrid(back)) chw[CellIndex(3, e.y, back)] = 1;
  };
  for (int i = 0; i < fish_.size(); ++i) with_trail(5, fish_[i]);
  for (int i = 0; i < subs_.size(); ++i) with_trail(6, subs_[i]);
  for (int i = 0; i < divers_.size(); ++i) with_trail(9, divers_[i]);
}

namespace {

// Lists: the size, then every element field by field.
void WriteFields(ByteWriter& w, const Seaquest::Bullet& b) {
  w.Write<int8_t>(b.x);
  w.Write<int8_t>(b.y);
  w.Write<uint8_t>(b.right);
}
void WriteFields(ByteWriter& w, const Seaquest::Mover& m) {
  w.Write<int8_t>(m.x);
  w.Write<int8_t>(m.y);
  w.Write<uint8_t>(m.right);
  w.Write<int8_t>(m.move_t);
}
void WriteFields(ByteWriter& w, const Seaquest::Sub& s) {
  w.Write<int8_t>(s.x);
  w.Write<int8_t>(s.y);
  w.Write<uint8_t>(s.right);
  w.Write<int8_t>(s.move_t);
  w.Write<int8_t>(s.shot_t);
}
template <typename T, int N>
void WriteList(ByteWriter& w, const Seaquest::List<T, N>& list) {
  w.Write<int32_t>(list.size());
  for (int i = 0; i < list.size(); ++i) WriteFields(w, list[i]);
}

// Reads x, y, right; fails on a cell off the grid (between steps every entity is on it).
template <typename T>
bool ReadCommon(ByteReader& r, T& e) {
  uint8_t right = 0;
  r.Read(e.x);
  r.Read(e.y);
  r.Read(right);
  e.right = right != 0;
  return r.ok() && right <= 1 && !OffGrid(e.x) && InRange(e.y, 0, 8);
}
// Movers count down to their next move from at most the slowest interval (5,
// fish and subs start there and only speed up); subs' shots from 10.
bool ReadFields(ByteReader& r, Seaquest::Bullet& b) { return ReadCommon(r, b); }
bool ReadFields(ByteReader& r, Seaquest::Mover& m) {
  return ReadCommon(r, m) && r.Read(m.move_t) && InRange(m.move_t, 0, kInitMoveInterval);
}
bool ReadFields(ByteReader& r, Seaquest::Sub& s) {
  return ReadCommon(r, s) && r.Read(s.move_t) && r.Read(s.shot_t) && InRange(s.move_t, 0, kInitMoveInterval) &&
         InRange(s.shot_t, 0, kEnemyShotInterval);
}
template <typename T, int N>
bool ReadList(ByteReader& r, Seaquest::List<T, N>& list) {
  int32_t size = 0;
  if (!r.Read(size) || size < 0 || size > N) return false;
  list.clear();
  for (int i = 0; i < size; ++i) {
    T item{};
    if (!ReadFields(r, item)) return false;
    list.push_back(item);
  }
  return true;
}

}  // namespace

// Field by field (never the raw object): padding bytes would make snapshots differ.
void Seaquest::Save(ByteWriter& w) const {
  for (int v : {sub_x_, sub_y_, oxygen_, diver_count_, e_spawn_speed_, e_spawn_timer_, d_spawn_timer_, move_speed_,
                ramp_index_, shot_timer_})
    w.Write<int32_t>(v);
  w.Write<uint8_t>(facing_right_);
  w.Write<uint8_t>(surface_);
  w.Write<uint8_t>(terminal_);
  WriteList(w, f_bullets_);
  WriteList(w, e_bullets_);
  WriteList(w, fish_);
  WriteList(w, subs_);
  WriteList(w, divers_);
}

// Upstream decrements the diver count on every surfacing with divers, and after
// the six-diver reset it goes negative (-1, -2, ...), so negative counts are
// real states; this floor (2^30 surfacings) keeps `--diver_count_` and
// `9 - diver_count_` from overflowing on a crafted state (fuzz finding).
constexpr int kMinDiverCount = -(1 << 30);

bool Seaquest::Load(ByteReader& r) {
  Seaquest s(ramping_);
  uint8_t facing_right = 0, surface = 0, terminal = 0;
  for (int* v : {&s.sub_x_, &s.sub_y_, &s.oxygen_, &s.diver_count_, &s.e_spawn_speed_, &s.e_spawn_timer_,
                 &s.d_spawn_timer_, &s.move_speed_, &s.ramp_index_, &s.shot_timer_})
    r.Read(*v);
  r.Read(facing_right);
  r.Read(surface);
  r.Read(terminal);
  // Oxygen runs out at 0 and is decremented once more in that (terminal) step;
  // timers count down to 0 from their intervals; ramps only shorten intervals.
  if (!r.ok() || OffGrid(s.sub_x_) || !InRange(s.sub_y_, 0, 8) || !InRange(s.oxygen_, -1, kMaxOxygen) ||
      !InRange(s.diver_count_, kMinDiverCount, kMaxDiverCount) || facing_right > 1 || surface > 1 || terminal > 1 ||
      OffGrid(facing_right ? s.sub_x_ - 1 : s.sub_x_ + 1) || !InRange(s.e_spawn_speed_, 1, kInitSpawnSpeed) ||
      !InRange(s.e_spawn_timer_, 0, kInitSpawnSpeed) || !InRange(s.d_spawn_timer_, 0, kDiverSpawnSpeed) ||
      !InRange(s.move_speed_, kMinMoveInterval, kInitMoveInterval) || !InRange(s.ramp_index_, 0, kMaxRampIndex) ||
      !InRange(s.shot_timer_, 0, kShotCooldown)) {
    return false;
  }
  if (!ReadList(r, s.f_bullets_) || !ReadList(r, s.e_bullets_) || !ReadList(r, s.fish_) || !ReadList(r, s.subs_) ||
      !ReadList(r, s.divers_)) {
    return false;
  }
  s.facing_right_ = facing_right;
  s.surface_ = surface;
  s.terminal_ = terminal;
  *this = s;
  return true;
}

}  // namespace tokenrl::env::minatar
