#include "tokenrl/env/minatar/freeway.h"

#include <algorithm>
#include <cstdlib>

#include "tokenrl/env/minatar/minatar_env.h"

namespace tokenrl::env::minatar {
namespace {

constexpr int kPlayerSpeed = 3;
constexpr int kTimeLimit = 2500;
constexpr int kChickenCol = 4;

}  // namespace

void Freeway::RandomizeCars(NumpyRandomState& rng) {
  std::array<int, kCars> magnitude{};
  for (int& m : magnitude) m = static_cast<int>(rng.RandInt(1, 6));  // All eight first,
  for (int i = 0; i < kCars; ++i) {                                  // then eight doubles.
    const double u = rng.Rand() - 0.5;
    // Upstream multiplies by np.sign(u - 0.5): exactly 0.5 gives speed 0.
    const int sign = (u > 0.0) - (u < 0.0);
    cars_[i].speed = static_cast<int8_t>(sign * magnitude[i]);
    cars_[i].timer = static_cast<int8_t>(magnitude[i] * (sign != 0));
  }
}

void Freeway::Reset(NumpyRandomState& rng) {
  for (Car& car : cars_) car.x = 0;
  RandomizeCars(rng);
  pos_ = 9;
  move_timer_ = kPlayerSpeed;
  terminate_timer_ = kTimeLimit;
  terminal_ = false;
}

int Freeway::Act(int full_action, NumpyRandomState& rng) {
  if (terminal_) return 0;
  int reward = 0;

  // 1. Chicken: a press while the timer runs does nothing.
  if (move_timer_ == 0) {
    if (full_action == kUp) {
      move_timer_ = kPlayerSpeed;
      pos_ = std::max(0, pos_ - 1);
    } else if (full_action == kDown) {
      move_timer_ = kPlayerSpeed;
      pos_ = std::min(9, pos_ + 1);
    }
  }

  // 2. Crossing.
  if (pos_ == 0) {
    ++reward;
    RandomizeCars(rng);
    pos_ = 9;
  }

  // 3. Cars: collisions before and after each car's move send the chicken home.
  for (int i = 0; i < kCars; ++i) {
    Car& car = cars_[i];
    const int row = i + 1;
    if (car.x == kChickenCol && row == pos_) pos_ = 9;
    if (car.timer == 0) {
      car.timer = static_cast<int8_t>(std::abs(car.speed));
      int x = car.x + (car.speed > 0 ? 1 : -1);
      if (x < 0) x = 9;
      if (x > 9) x = 0;
      car.x = static_cast<int8_t>(x);
      if (x == kChickenCol && row == pos_) pos_ = 9;
    } else {
      --car.timer;
    }
  }

  // 4. Timers; the 2501st step is terminal (its reward still counts).
  move_timer_ -= move_timer_ > 0;
  if (--terminate_timer_ < 0) terminal_ = true;
  return reward;
}

void Freeway::WriteObservation(uint8_t* chw) const {
  chw[CellIndex(0, pos_, kChickenCol)] = 1;
  for (int i = 0; i < kCars; ++i) {
    const Car& car = cars_[i];
    chw[CellIndex(1, i + 1, car.x)] = 1;
    int back = car.x + (car.speed > 0 ? -1 : 1);
    if (back < 0) back = 9;
    if (back > 9) back = 0;
    chw[CellIndex(1 + std::abs(car.speed), i + 1, back)] = 1;
  }
}

// Field by field (never the raw object): padding bytes would make snapshots differ.
void Freeway::Save(ByteWriter& w) const {
  for (int v : {pos_, move_timer_, terminate_timer_}) w.Write<int32_t>(v);
  w.Write<uint8_t>(terminal_);
  for (const Car& car : cars_) {
    w.Write<int8_t>(car.x);
    w.Write<int8_t>(car.timer);
    w.Write<int8_t>(car.speed);
  }
}

bool Freeway::Load(ByteReader& r) {
  uint8_t terminal = 0;
  for (int* v : {&pos_, &move_timer_, &terminate_timer_}) r.Read(*v);
  r.Read(terminal);
  terminal_ = terminal;
  // The time limit counts down to -1 (the terminal step); a car's timer counts down from its speed.
  bool valid = terminal <= 1 && InRange(pos_, 0, 9) && InRange(move_timer_, 0, kPlayerSpeed) &&
               InRange(terminate_timer_, -1, kTimeLimit);
  for (Car& car : cars_) {
    r.Read(car.x);
    r.Read(car.timer);
    r.Read(car.speed);
    valid = valid && InRange(car.x, 0, 9) && InRange(car.speed, -5, 5) && InRange(car.timer, 0, std::abs(car.speed));
  }
  return r.ok() && valid;
}

}  // namespace tokenrl::env::minatar
