#pragma once
// AtariEnvironment: Dopamine's Atari preprocessing (AtariPreprocessing in
// dopamine/discrete_domains/atari_lib.py; ../shared/docs/softmoe_reference.md
// 1.1) as a tokenrl Environment over any AtariEmulator (the real ALE or the
// fake test device). docs/atari.md has the protocol table with each value's
// source.
//
// One agent step (Step):
//  * the action index maps to an ALE action id of the minimal or full set;
//  * the emulator runs frame_skip frames with that action (sticky actions are
//    applied inside the emulator, per frame); the frame rewards are summed;
//  * the step is terminal on game over, or, with terminal_on_life_loss, when
//    the lives counter drops; the frame loop stops at the terminal frame;
//  * the grayscale screens of the last two frames of the loop are kept and
//    the observation is their pixelwise max, area-resized (AreaResizer,
//    OpenCV INTER_AREA semantics) to screen_size x screen_size. As in
//    Dopamine, a loop cut short by a terminal frame leaves the two screen
//    buffers as they were, so a terminal observation can be stale; nothing
//    bootstraps from it. (With frame_skip 1 the last frame is used as is.)
// Reset:
//  * a new game (ALE reset_game), then with noop_max > 0 a number of NOOP
//    frames drawn uniformly from {0..noop_max} from the environment's seed
//    (a new game starts if one ends during them); the observation is the
//    resized current screen (Dopamine: the max with a zero screen);
//  * after a life-loss terminal of a game that is not over, the game goes on
//    without a reset, as in Dopamine's runner, and the observation stays the
//    last one; the episode bookkeeping (return, length, time limit) restarts.
// Time limit: ceil(max_episode_frames / frame_skip) agent steps (Dopamine:
// 27,000), or env.max_episode_steps when set; the Environment base class
// reports it as truncation. With terminal_on_life_loss it counts per life.
// Randomness: Reset(seed) seeds the emulator with `seed` (its sticky-action
// stream) and the no-op stream with DeriveSeed(seed, {1}); nothing else draws.
//
// This class produces one [1, S, S] frame. MakeAtariEnvironment wraps it in
// FrameStack (frame_stack.h) for Dopamine's [k, S, S] stacked state.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/env/atari/area_resize.h"
#include "tokenrl/env/atari/atari_emulator.h"
#include "tokenrl/env/env_config.h"
#include "tokenrl/env/environment.h"

namespace tokenrl::env::atari {

// What the protocol needs to know about the game beyond the emulator.
struct GameInfo {
  std::string description;          // one line for `tokenrl list`
  float min_frame_reward = -1e6f;   // bounds of one frame's reward (for EnvSpec)
  float max_frame_reward = 1e6f;
};

class AtariEnvironment final : public Environment {
 public:
  // REQUIRES: emulator has its ROM loaded; config.atari is valid (parsed).
  AtariEnvironment(const EnvConfig& config, const GameInfo& game, std::unique_ptr<AtariEmulator> emulator);
  AtariEnvironment(const AtariEnvironment& other);

  static EnvSpec MakeSpec(const EnvConfig& config, const GameInfo& game, const AtariEmulator& emulator);

  const AtariEmulator& emulator() const { return *emulator_; }
  // ALE action id of each action index.
  const std::vector<int>& action_ids() const { return action_ids_; }
  // Lives as last seen by the protocol.
  int lives() const { return lives_; }

 protected:
  void DoSeed(uint32_t seed) override;
  void DoReset() override;
  Transition DoStep(int action) override;
  void DoWriteObservation(std::span<uint8_t> zeroed_chw) const override;
  std::unique_ptr<Environment> DoClone() const override { return std::make_unique<AtariEnvironment>(*this); }
  void DoSaveState(ByteWriter& writer) const override;
  Status DoLoadState(ByteReader& reader, const LoadedEpisode& episode) override;
  std::string StatusLine() const override;

 private:
  void CaptureScreen(int slot);
  void PoolAndResize();
  uint64_t NextRandom();

  AtariConfig config_;
  std::unique_ptr<AtariEmulator> emulator_;
  std::vector<int> action_ids_;
  AreaResizer resizer_;
  std::array<std::vector<uint8_t>, 2> screens_;  // the last two frames of a step, [H * W] each
  std::vector<uint8_t> pooled_;                   // their max, [H * W]
  std::vector<uint8_t> observation_;              // [S * S]
  uint64_t noop_rng_ = 0;                         // SplitMix64 stream of the no-op starts
  int lives_ = 0;
  bool continue_game_ = false;  // the last episode ended on a life loss; the game goes on
};

// The environment the registry hands out: AtariEnvironment, wrapped in
// FrameStack when config.atari.frame_stack > 1.
std::unique_ptr<Environment> MakeAtariEnvironment(const EnvConfig& config, const GameInfo& game,
                                                  std::unique_ptr<AtariEmulator> emulator);

}  // namespace tokenrl::env::atari
