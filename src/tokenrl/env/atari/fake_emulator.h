#pragma once
// FakeAtariEmulator: a scripted stand-in for ALE behind the AtariEmulator
// seam. It is a TEST AND BENCHMARK DEVICE, not a game: it lets the Atari
// protocol (frame skip, max-pooling, sticky actions, lives, caps, no-op
// starts, resizing, stacking, save/restore) be tested with hand-computed
// values, and `tokenrl train`/`bench env` run end to end without ALE or ROMs.
// Registered as `atari-fake/<name>` (any name; all names run the same script).
//
// The script, every quantity a function of the frame counter f (frames since
// ResetGame, counting the current one) and the paddle column p:
//  * Screen (210 x 160 grayscale): pixel (r, c) = (r + 2c + f) mod 256, except
//    the paddle, rows [kPaddleRow, kPaddleRow + 4) x columns [p, p + 8), = 255.
//    ScreenAt() computes it for tests.
//  * Actions (ALE ids, after the sticky rule): any action with RIGHT moves the
//    paddle one column right, any with LEFT one left, clamped to [0, 152];
//    p starts at 76.
//  * Reward of frame f: +1 if f % 5 == 0; +2 more if the action has FIRE and
//    f % 3 == 0; -4 if f % 50 == 0 (so rewards exceed [-1, 1] and clipping
//    shows). FrameReward() computes it.
//  * Lives: 3 at reset, one lost on every frame with f % kFramesPerLife == 0;
//    the game is over when the last is lost (frame 3 * kFramesPerLife). After
//    game over Act emulates nothing and returns 0 (as ALE).
//  * Sticky actions with ALE's rule (StickyActions): one uniform draw per Act
//    from the seeded stream, also after game over; if draw >= the probability
//    the new action is taken, else the previous frame's action repeats.
//    ResetGame sets it to NOOP.
//  * Minimal action set {NOOP, FIRE, RIGHT, LEFT}; full set: all 18.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/env/atari/atari_emulator.h"

namespace tokenrl::env::atari {

class FakeAtariEmulator final : public AtariEmulator {
 public:
  static constexpr int kHeight = 210, kWidth = 160;
  static constexpr int kPaddleRow = 190, kPaddleWidth = 8, kPaddleStart = 76;
  static constexpr int kLives = 3;
  static constexpr int kFramesPerLife = 200;
  static constexpr int kMinReward = -4, kMaxReward = 3;

  explicit FakeAtariEmulator(const EmulatorOptions& options) : sticky_(options.repeat_action_probability) {}

  // The script's pure functions, for tests.
  static void ScreenAt(int64_t frame, int paddle, std::span<uint8_t> out);
  static int FrameReward(int64_t frame, int action);
  static int PaddleAfter(int paddle, int action);

  // Any non-empty name is accepted; the name is only a label.
  Status LoadRom(const std::string& rom) override;
  void Seed(uint32_t seed) override;
  void ResetGame() override;
  int Act(int action) override;
  int screen_height() const override { return kHeight; }
  int screen_width() const override { return kWidth; }
  void WriteGrayscaleScreen(std::span<uint8_t> out) const override;
  int lives() const override { return lives_; }
  bool game_over() const override { return lives_ == 0; }
  std::vector<int> MinimalActionSet() const override { return {0, 1, 3, 4}; }
  std::vector<int> FullActionSet() const override;
  std::string SaveState() const override;
  Status LoadState(std::string_view bytes) override;
  std::unique_ptr<AtariEmulator> Clone() const override { return std::make_unique<FakeAtariEmulator>(*this); }

  // Introspection for tests.
  int64_t frame() const { return frame_; }
  int paddle() const { return paddle_; }
  int last_action() const { return sticky_.last_action(); }
  uint64_t draws() const { return sticky_.draws(); }

 private:
  StickyActions sticky_;
  std::string rom_;
  int64_t frame_ = 0;
  int paddle_ = kPaddleStart;
  int lives_ = kLives;
};

}  // namespace tokenrl::env::atari
