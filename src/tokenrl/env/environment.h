#pragma once
// Environment API (after OpenSpiel's Game/State split and EnvPool's engine).
//
// `EnvSpec` holds the static facts of one configured environment; an
// `Environment` is one mutable instance. The public, non-virtual `Reset` and
// `Step` do every piece of bookkeeping shared by all environments (episode
// return and length, the time limit that sets `truncated`, action-range
// checks, the "episode is over" guard); a concrete environment implements only
// its dynamics in the protected `Do*` hooks.
//
// Contracts every environment obeys (checked by tests/env/env_conformance_test):
//  * Observations are written into caller-owned buffers of exactly
//    `spec().observation_size()` elements, layout CHW, values in
//    [spec().observation_low, spec().observation_high]; no allocation per step.
//  * `Reset(seed)` with the same seed followed by the same actions gives the
//    same trajectory, byte for byte; all randomness comes from that seed.
//  * The running `episode_return()` equals the sum of the step rewards.
//  * `terminated` and `truncated` are never both set: when the time limit and a
//    terminal state coincide, the step is terminated (no bootstrapping).
//  * `Clone()` and `SaveState()`/`LoadState()` capture everything, RNG
//    included: the copy continues exactly as the original would.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/core/serialization.h"
#include "tokenrl/core/status.h"

namespace tokenrl::env {

struct EnvSpec {
  std::string name;         // Registry name, e.g. "minatar/breakout".
  std::string description;  // One line for `tokenrl list`.
  // Observation shape, channels-first: {C, H, W}.
  std::array<int, 3> observation_shape{0, 0, 0};
  std::vector<std::string> channel_names;  // C names, in channel order.
  // One glyph per channel for text rendering; earlier channels win on overlap.
  std::string channel_glyphs;
  float observation_low = 0.0f;
  float observation_high = 1.0f;
  std::vector<std::string> action_names;  // One per action index.
  float min_step_reward = 0.0f;
  float max_step_reward = 0.0f;
  // Time limit in agent steps after which an episode is truncated; 0: none.
  int64_t max_episode_steps = 0;

  int num_actions() const { return static_cast<int>(action_names.size()); }
  int observation_size() const { return observation_shape[0] * observation_shape[1] * observation_shape[2]; }
};

// The outcome of one `Step`.
struct StepResult {
  float reward = 0.0f;
  bool terminated = false;  // The episode reached a terminal state (no bootstrap).
  bool truncated = false;   // The time limit cut the episode (bootstrap from the next state).
  bool done() const { return terminated || truncated; }
};

class Environment {
 public:
  explicit Environment(EnvSpec spec) : spec_(std::move(spec)) {}
  virtual ~Environment() = default;
  Environment(const Environment&) = default;
  Environment& operator=(const Environment&) = delete;

  const EnvSpec& spec() const { return spec_; }

  // Seeds this environment's random stream with `seed` (and clears any state
  // carried between episodes, e.g. MinAtar's sticky last action), then starts
  // an episode. Identical seeds give identical runs.
  void Reset(uint32_t seed);
  // Starts a new episode, continuing the random stream of the previous one.
  // REQUIRES: Reset(seed) was called at least once.
  void Reset();

  // Advances one step with action index `action`.
  // Errors (InvalidArgument): action outside [0, num_actions), no episode
  // running (never reset, or the previous step ended the episode).
  StatusOr<StepResult> Step(int action);

  // Writes the current observation, CHW, into `out`.
  // REQUIRES: out.size() == spec().observation_size().
  void WriteObservation(std::span<uint8_t> out) const;
  void WriteObservation(std::span<float> out) const;

  // Episode bookkeeping.
  bool episode_running() const { return running_; }
  // False until the first Reset(seed): Reset() needs a seed first.
  bool seeded() const { return seeded_; }
  int64_t episode_steps() const { return episode_steps_; }
  double episode_return() const { return episode_return_; }

  // An independent copy that continues exactly as this one would.
  std::unique_ptr<Environment> Clone() const { return DoClone(); }

  // Serializes the full state (dynamics, RNG, bookkeeping) to bytes, and back.
  // LoadState fails with Corruption on bytes not produced by the same kind of
  // environment.
  std::string SaveState() const;
  Status LoadState(std::string_view bytes);

  // Human-readable grid of the current observation (one glyph per cell, '.'
  // for empty), followed by a status line. Used by playthrough goldens and
  // `tokenrl play`.
  std::string ToString() const;

 protected:
  // Seeds the random stream and clears cross-episode state.
  virtual void DoSeed(uint32_t seed) = 0;
  // Starts a new episode from the current random stream.
  virtual void DoReset() = 0;
  // Applies a valid action index; returns reward and terminal flag.
  struct Transition {
    float reward = 0.0f;
    bool terminal = false;
  };
  virtual Transition DoStep(int action) = 0;
  // Writes the observation into a zero-filled CHW byte buffer.
  virtual void DoWriteObservation(std::span<uint8_t> zeroed_chw) const = 0;
  virtual std::unique_ptr<Environment> DoClone() const = 0;
  virtual void DoSaveState(ByteWriter& writer) const = 0;
  // The episode bookkeeping of a state being loaded (already checked for
  // consistency on its own), for wrappers whose inner state must agree with it.
  struct LoadedEpisode {
    bool seeded = false;
    bool running = false;
    int64_t steps = 0;
  };
  // Restores the subclass's state, all or nothing.
  virtual Status DoLoadState(ByteReader& reader, const LoadedEpisode& episode) = 0;
  // Extra text for ToString's status line (e.g. "ramp=3").
  virtual std::string StatusLine() const { return ""; }

 private:
  EnvSpec spec_;
  bool seeded_ = false;
  bool running_ = false;
  int64_t episode_steps_ = 0;
  double episode_return_ = 0.0;
};

}  // namespace tokenrl::env
