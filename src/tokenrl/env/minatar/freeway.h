#pragma once
// MinAtar Freeway (spec: ../shared/docs/minatar_spec.md section 4.3).
//
// The chicken (column 4) crosses eight lanes of traffic from row 9 to row 0;
// +1 per crossing, after which it restarts on row 9 and the car speeds are
// re-drawn. Being hit sends it back to row 9. The episode ends after 2500
// steps (terminal on the 2501st), the only internal time limit in MinAtar.
// Randomness: `randint(1, 6, size=8)` then `rand(8)` at reset and on every
// crossing (speed magnitudes, then directions).
//
// Channels: 0 chicken, 1 car, 2..6 speed1..speed5 (the cell behind a car,
// on the channel of its speed). Minimal action set: n u d.

#include <array>
#include <cstdint>
#include <string_view>

#include "tokenrl/core/numpy_random.h"
#include "tokenrl/core/serialization.h"

namespace tokenrl::env::minatar {

class Freeway {
 public:
  static constexpr std::string_view kName = "freeway";
  static constexpr std::string_view kDescription =
      "MinAtar Freeway: guide the chicken across eight lanes of traffic (+1 per crossing)";
  static constexpr int kChannels = 7;
  static constexpr std::array<std::string_view, kChannels> kChannelNames{"chicken", "car",    "speed1", "speed2",
                                                                         "speed3",  "speed4", "speed5"};
  static constexpr std::string_view kGlyphs = "CX12345";
  static constexpr std::array<int, 3> kMinimalActions{0, 2, 4};
  // A step completes at most one crossing.
  static constexpr float kMaxStepReward = 1.0f;

  // Freeway has no difficulty ramping; the flag is accepted and ignored as upstream.
  explicit Freeway(bool /*difficulty_ramping*/) {}

  void Reset(NumpyRandomState& rng);
  int Act(int full_action, NumpyRandomState& rng);
  bool terminal() const { return terminal_; }
  int ramp_index() const { return -1; }
  void WriteObservation(uint8_t* chw) const;
  void Save(ByteWriter& writer) const;
  bool Load(ByteReader& reader);

 private:
  static constexpr int kCars = 8;
  // Car i drives on row i+1.
  struct Car {
    int8_t x = 0;      // Column 0..9.
    int8_t timer = 0;  // Steps until the next move.
    int8_t speed = 0;  // +-1..5: sign is the direction (+ right), magnitude the period - 1.
  };

  // Re-draws every car's speed and direction; positions are kept.
  void RandomizeCars(NumpyRandomState& rng);

  int pos_ = 9;  // Chicken row.
  int move_timer_ = 3;
  int terminate_timer_ = 2500;
  bool terminal_ = false;
  std::array<Car, kCars> cars_{};
};

}  // namespace tokenrl::env::minatar
