#pragma once
// FrameStack: an Environment that stacks the last k observations of another
// (Dopamine's frame stacking, ../shared/docs/softmoe_reference.md 1.1).
//
// The observation is [k * C, H, W]: k frames of the inner [C, H, W]
// observation, oldest first, newest in the last C channels. At every reset the
// stack is zero-filled and the episode's first frame is written last; each
// step shifts the stack by one frame and writes the new frame last. So two
// consecutive observations of an episode share k - 1 frames, which is what
// replay::ReplayBuffer with frame_stack = k relies on to store each frame once.
//
// Everything else is the inner environment's: actions, rewards, termination,
// the time limit (spec().max_episode_steps is the inner one, so both truncate
// on the same step) and the random stream (Reset(seed) seeds the inner
// environment once, so the newest frame follows exactly the trajectory of the
// inner environment run alone). The spec keeps the inner name (states saved by
// the wrapper are tagged with it); the description says "frame stack k".
// Clone/SaveState/LoadState cover the inner environment and the stack.
// Not registered in the registry: wrap an environment the registry made.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "tokenrl/env/environment.h"

namespace tokenrl::env {

class FrameStack final : public Environment {
 public:
  // REQUIRES: inner != nullptr; k >= 1.
  FrameStack(std::unique_ptr<Environment> inner, int k);
  FrameStack(const FrameStack& other);

  int frames() const { return k_; }
  const Environment& inner() const { return *inner_; }

  // The spec of `inner` stacked k times.
  static EnvSpec MakeSpec(const EnvSpec& inner, int k);

 protected:
  void DoSeed(uint32_t seed) override;
  void DoReset() override;
  Transition DoStep(int action) override;
  void DoWriteObservation(std::span<uint8_t> zeroed_chw) const override;
  std::unique_ptr<Environment> DoClone() const override;
  void DoSaveState(ByteWriter& writer) const override;
  Status DoLoadState(ByteReader& reader, const LoadedEpisode& episode) override;
  std::string StatusLine() const override;

 private:
  // Shifts the stack by one frame and writes the inner observation last.
  void PushInnerFrame();

  std::unique_ptr<Environment> inner_;
  int k_;
  size_t frame_size_;            // Bytes of one inner observation.
  std::vector<uint8_t> stack_;   // [k * C, H, W], newest frame last.
  bool pending_seed_ = false;    // DoSeed was called; the next DoReset seeds the inner env.
  uint32_t seed_ = 0;
};

}  // namespace tokenrl::env
