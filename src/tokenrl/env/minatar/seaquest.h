#pragma once
// MinAtar Seaquest (spec: ../shared/docs/minatar_spec.md section 4.4).
//
// The player steers a submarine that shoots enemy fish and subs (+1 each),
// rescues divers, and must surface before its oxygen runs out; surfacing with
// six divers pays a bonus of up to 10 from the oxygen left, surfacing with
// none ends the episode, as does touching a fish, sub or enemy bullet. Enemies
// and divers spawn at random rows from either side; surfacing speeds the game
// up when ramping.
//
// Upstream keeps its entities in Python lists, and the exact list semantics
// are observable (reverse iteration that re-checks the length, `list.remove`
// by value, appends seen by later phases), so each list here is an ordered
// fixed-capacity array reproducing them; see the bounds below.
//
// Channels: 0 sub_front, 1 sub_back, 2 friendly_bullet, 3 trail,
// 4 enemy_bullet, 5 enemy_fish, 6 enemy_sub, 7 oxygen_guage, 8 diver_guage,
// 9 diver (upstream spells "guage").
// Minimal action set: all six actions.

#include <array>
#include <cassert>
#include <cstdint>
#include <string_view>

#include "tokenrl/core/numpy_random.h"
#include "tokenrl/core/serialization.h"

namespace tokenrl::env::minatar {

class Seaquest {
 public:
  static constexpr std::string_view kName = "seaquest";
  static constexpr std::string_view kDescription =
      "MinAtar Seaquest: shoot fish and subs, rescue divers and surface before the oxygen runs out";
  static constexpr int kChannels = 10;
  static constexpr std::array<std::string_view, kChannels> kChannelNames{
      "sub_front",  "sub_back",  "friendly_bullet", "trail",       "enemy_bullet",
      "enemy_fish", "enemy_sub", "oxygen_guage",    "diver_guage", "diver"};
  static constexpr std::string_view kGlyphs = "@o-:*fs=+d";
  static constexpr std::array<int, 6> kMinimalActions{0, 1, 2, 3, 4, 5};
  // Surfacing with six divers pays oxygen*10/200 <= 10; every kill consumes a
  // friendly bullet and at most 2 exist in a step (see kMaxFriendlyBullets).
  static constexpr float kMaxStepReward = 12.0f;

  explicit Seaquest(bool difficulty_ramping) : ramping_(difficulty_ramping) {}

  void Reset(NumpyRandomState& rng);
  int Act(int full_action, NumpyRandomState& rng);
  bool terminal() const { return terminal_; }
  int ramp_index() const { return ramp_index_; }
  void WriteObservation(uint8_t* chw) const;
  void Save(ByteWriter& writer) const;
  bool Load(ByteReader& reader);

  // Entities, fields in upstream's list order. A sub that just left the grid
  // can hold x = -1 or 10 for the rest of its step (and so can its bullet).
  struct Bullet {  // Friendly and enemy bullets: [x, y, right].
    int8_t x, y;
    bool right;
    friend bool operator==(const Bullet&, const Bullet&) = default;
  };
  struct Mover {  // Fish and divers: [x, y, right, move_t].
    int8_t x, y;
    bool right;
    int8_t move_t;
    friend bool operator==(const Mover&, const Mover&) = default;
  };
  struct Sub {  // Enemy subs: [x, y, right, move_t, shot_t].
    int8_t x, y;
    bool right;
    int8_t move_t, shot_t;
    friend bool operator==(const Sub&, const Sub&) = default;
  };

  // An ordered list with fixed capacity (no allocation, trivially copyable),
  // with the Python list operations upstream uses.
  template <typename T, int N>
  class List {
   public:
    static constexpr int kCapacity = N;
    int size() const { return size_; }
    T& operator[](int i) { return items_[i]; }
    const T& operator[](int i) const { return items_[i]; }
    void clear() { size_ = 0; }
    // list.append; the capacities below are proven bounds, so this never drops.
    void push_back(const T& item) {
      assert(size_ < N);
      if (size_ < N) items_[size_++] = item;
    }
    void erase(int i) {
      for (int j = i + 1; j < size_; ++j) items_[j - 1] = items_[j];
      --size_;
    }
    // list.remove(item): deletes the first element equal by value; returns its
    // index. REQUIRES: an equal element is present.
    int remove(T item) {
      int i = 0;
      while (!(items_[i] == item)) ++i;
      erase(i);
      return i;
    }
    // Index of the first element on cell (x, y), or -1.
    int find_cell(int x, int y) const {
      for (int i = 0; i < size_; ++i)
        if (items_[i].x == x && items_[i].y == y) return i;
      return -1;
    }

   private:
    std::array<T, N> items_{};
    int size_ = 0;
  };

  // Capacity bounds (the lists never exceed them):
  // * Friendly bullets: the sub fires at most every 5 steps and a bullet
  //   leaves the grid at the latest in the 10th step of its life (it moves
  //   one cell per step, including the step it is fired), so at most 2 exist.
  // * Divers: one spawns every 30 steps and leaves the grid after 10 moves,
  //   one every 6 steps, i.e. within 60 steps: at most 2 exist.
  // * Fish and subs: at most one enemy spawns per step; its move timer is
  //   reset to move_speed <= 5, so it moves at least every 6 steps and its
  //   10th move (off the grid) comes within 60 steps of its spawn: at most 60
  //   enemies exist at once.
  // * Enemy bullets: one lives at most 10 steps; a sub fires at most once in
  //   any 11 steps and not before its 11th step, so every bullet alive in a
  //   step was fired by a distinct one of the <= 60 subs alive 9 steps before.
  static constexpr int kMaxFriendlyBullets = 4;
  static constexpr int kMaxDivers = 4;
  static constexpr int kMaxEnemies = 64;
  static constexpr int kMaxEnemyBullets = 64;

 private:
  void SpawnEnemy(NumpyRandomState& rng);

  bool ramping_;
  int sub_x_ = 5, sub_y_ = 0;
  bool facing_right_ = false;
  int oxygen_ = 0;
  int diver_count_ = 0;  // Can become negative (see the spec).
  int e_spawn_speed_ = 0;
  int e_spawn_timer_ = 0;
  int d_spawn_timer_ = 0;
  int move_speed_ = 0;
  int ramp_index_ = 0;
  int shot_timer_ = 0;
  bool surface_ = true;
  bool terminal_ = false;
  List<Bullet, kMaxFriendlyBullets> f_bullets_;
  List<Bullet, kMaxEnemyBullets> e_bullets_;
  List<Mover, kMaxEnemies> fish_;
  List<Sub, kMaxEnemies> subs_;
  List<Mover, kMaxDivers> divers_;
};

}  // namespace tokenrl::env::minatar
