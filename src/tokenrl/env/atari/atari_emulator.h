#pragma once
// AtariEmulator: the seam between tokenrl's Atari protocol (AtariEnvironment)
// and an Atari 2600 emulator. It holds the few calls the protocol needs, with
// ALE's semantics (ALEInterface), so that the protocol is written, and tested,
// without the emulator:
//  * AleEmulator (ale/ale_emulator.h): the real ALE, compiled only when CMake
//    finds it;
//  * FakeAtariEmulator (fake_emulator.h): a scripted test and benchmark device
//    with deterministic screens, lives, rewards and game over.
//
// Contracts (as ALE):
//  * Act(a) emulates exactly ONE frame. Sticky actions live here, as in ALE:
//    on every frame, with probability repeat_action_probability, the action of
//    the previous frame is executed instead of `a` (ALE's rule: take `a` iff a
//    uniform draw >= the probability; one draw per frame from the emulator's
//    own seeded stream, StickyActions below); ResetGame makes NOOP the previous
//    action. Frame skipping is the protocol's job, not the emulator's.
//  * Seed(s) seeds the emulator's random stream and power-cycles the console
//    (ALE: setInt("random_seed") and loadROM). Same ROM, same seed, same
//    actions: same frames, byte for byte.
//  * SaveState()/LoadState() capture everything that determines the future,
//    random stream and sticky action included; Clone() is an independent copy.
//  * Action ids are ALE's (0 NOOP, 1 FIRE, 2 UP, 3 RIGHT, 4 LEFT, 5 DOWN, ...,
//    17 DOWNLEFTFIRE; kAleActionNames).

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/core/seed.h"
#include "tokenrl/core/serialization.h"
#include "tokenrl/core/status.h"

namespace tokenrl::env::atari {

inline constexpr int kNumAleActions = 18;
inline constexpr std::array<std::string_view, kNumAleActions> kAleActionNames{
    "NOOP",      "FIRE",      "UP",          "RIGHT",      "LEFT",          "DOWN",
    "UPRIGHT",   "UPLEFT",    "DOWNRIGHT",   "DOWNLEFT",   "UPFIRE",        "RIGHTFIRE",
    "LEFTFIRE",  "DOWNFIRE",  "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE", "DOWNLEFTFIRE"};
inline constexpr int kAleNoop = 0;

// Options fixed when the emulator is created (ALE: settings read by loadROM).
struct EmulatorOptions {
  double repeat_action_probability = 0.25;
};

// ALE's sticky-action rule with its own SplitMix64 stream, shared by the
// emulators. (AleEmulator uses it instead of ALE's internal rule because
// ALE's saved states do not include the sticky action: see ale_emulator.h.)
class StickyActions {
 public:
  explicit StickyActions(double repeat_action_probability) : p_(repeat_action_probability) {}
  void Seed(uint32_t seed) {
    state_ = SplitMix64(seed);
    draws_ = 0;
    last_ = kAleNoop;
  }
  void ResetGame() { last_ = kAleNoop; }
  // The action this frame executes: `action` unless the draw keeps the last.
  int Apply(int action) {
    ++draws_;
    state_ += 0x9E3779B97F4A7C15ull;
    const double u = static_cast<double>(SplitMix64(state_) >> 11) * 0x1.0p-53;
    if (u >= p_) last_ = action;
    return last_;
  }
  int last_action() const { return last_; }
  uint64_t draws() const { return draws_; }
  void Save(ByteWriter& writer) const {
    writer.Write(state_);
    writer.Write(draws_);
    writer.Write<int32_t>(last_);
  }
  bool Load(ByteReader& reader) {
    uint64_t state = 0, draws = 0;
    int32_t last = 0;
    if (!reader.Read(state) || !reader.Read(draws) || !reader.Read(last) || last < 0 || last >= kNumAleActions) {
      return false;
    }
    state_ = state;
    draws_ = draws;
    last_ = last;
    return true;
  }

 private:
  double p_;
  uint64_t state_ = 0;
  uint64_t draws_ = 0;
  int last_ = kAleNoop;
};

class AtariEmulator {
 public:
  virtual ~AtariEmulator() = default;

  // Loads a ROM (a file path for ALE; a script name for the fake) and
  // power-cycles the console. Errors: NotFound / InvalidArgument with the path.
  virtual Status LoadRom(const std::string& rom) = 0;
  // Seeds the random stream and power-cycles the console (see above).
  // REQUIRES: LoadRom succeeded.
  virtual void Seed(uint32_t seed) = 0;
  // Starts a new game (ALE reset_game); the random stream continues.
  virtual void ResetGame() = 0;
  // Emulates one frame with ALE action id `action`; returns the frame's reward.
  // REQUIRES: 0 <= action < kNumAleActions.
  virtual int Act(int action) = 0;

  // The screen size (ALE: 210 x 160).
  virtual int screen_height() const = 0;
  virtual int screen_width() const = 0;
  // Writes the current screen as grayscale bytes, row-major, into `out`.
  // REQUIRES: out.size() == screen_height() * screen_width().
  virtual void WriteGrayscaleScreen(std::span<uint8_t> out) const = 0;

  virtual int lives() const = 0;
  virtual bool game_over() const = 0;
  // ALE action ids of the game's minimal set, and of the full (legal) set.
  virtual std::vector<int> MinimalActionSet() const = 0;
  virtual std::vector<int> FullActionSet() const = 0;

  // The emulator's full state (random stream and sticky action included).
  virtual std::string SaveState() const = 0;
  // Restores a SaveState() of an emulator with the same ROM and options.
  // Corruption, with nothing changed, on other bytes.
  virtual Status LoadState(std::string_view bytes) = 0;
  virtual std::unique_ptr<AtariEmulator> Clone() const = 0;
};

}  // namespace tokenrl::env::atari
