#pragma once
// NStepAccumulator: turns one environment stream's steps into n-step
// transitions (Sutton & Barto 7.1; Dopamine's `update_horizon`, see
// ../shared/docs/softmoe_reference.md 6.1). For a transition that starts at
// step t and spans m <= n steps:
//
//   return   = sum_{k<m} gamma^k r_{t+k}
//   discount = 0        if the episode terminated at step t+m-1 (inside the window)
//              gamma^m  otherwise (mid-episode, m = n; or truncated, m <= n)
//
// so the learner's target is return + discount * V(o_{t+m}). Mid-episode m is
// always n. When an episode ends (terminated or truncated) the window is
// flushed: every pending start t emits a transition whose window runs to the
// episode's last step, so the last n-1 starts get m < n. Truncation (a time
// limit, not a true end) bootstraps from the final observation with gamma^m;
// termination does not bootstrap. Terminated and truncated are never merged
// (style.md, EnvSpec); if both are set, terminated wins.
//
// The accumulator stores no observations: each step carries an opaque id
// (typically the storage slot of o_t). A transition names its first step
// (`first_id`, whose observation is o_t and whose action is a_t) and its last
// step (`last_id`, step t+m-1); the bootstrap observation o_{t+m} is the one
// that follows step `last_id` (the next observation the environment returned;
// for the last step of an episode, the final observation), which the storage
// resolves.
//
// One accumulator per environment stream (per member and env); not thread-safe.

#include <cstdint>
#include <deque>
#include <vector>

#include "tokenrl/core/serialization.h"
#include "tokenrl/core/status.h"

namespace tokenrl::replay {

struct NStepConfig {
  // The n in n-step returns, in agent steps. Default 3 (Dopamine Rainbow,
  // full_rainbow.gin); DER uses 10; DQN uses 1.
  int n = 3;
  // Per-step discount factor. Default 0.99 (Dopamine presets).
  double gamma = 0.99;

  // InvalidArgument unless n >= 1 and 0 <= gamma <= 1.
  Status Validate() const;
};

// One step as the environment produced it: observation o_t (by id), action
// a_t taken in it, and the result of that action.
struct StepRecord {
  int64_t id = 0;           // Opaque id of step t (e.g. the storage slot of o_t).
  int32_t action = 0;       // a_t.
  double reward = 0.0;      // r_t, received for a_t.
  bool terminated = false;  // The episode truly ended after a_t (no bootstrap).
  bool truncated = false;   // The episode was cut after a_t (time limit; bootstrap).
};

struct NStepTransition {
  int64_t first_id = 0;   // Id of step t.
  int64_t last_id = 0;    // Id of step t + steps - 1.
  int32_t action = 0;     // a_t.
  double reward = 0.0;    // sum_{k<steps} gamma^k r_{t+k}.
  double discount = 0.0;  // gamma^steps, or 0 if the episode terminated in the window.
  int steps = 0;          // m, in [1, n].
};

class NStepAccumulator {
 public:
  // REQUIRES: config.Validate().ok().
  explicit NStepAccumulator(const NStepConfig& config);

  const NStepConfig& config() const { return config_; }

  // Records one step and appends to *out every transition it completes:
  // mid-episode, one transition (the window's oldest start) once n steps are
  // pending, none before; at an episode end, every pending start, oldest first,
  // after which the accumulator is empty and the next Push starts a new episode.
  // Returns the number of transitions appended.
  int Push(const StepRecord& step, std::vector<NStepTransition>* out);

  // Number of steps waiting for their window to fill (at most n - 1 between Pushes).
  int pending() const { return static_cast<int>(window_.size()); }
  // Pending step i, oldest first. REQUIRES: 0 <= i < pending().
  const StepRecord& pending_step(int i) const { return window_[static_cast<size_t>(i)]; }

  // Drops the pending steps without emitting them (e.g. when a stream is reset
  // without an end-of-episode flag).
  void Clear() { window_.clear(); }

  // Checkpointing of the pending steps. Load fails with Corruption on truncated
  // input, a different n or gamma, or more than n - 1 pending steps, and then
  // leaves the accumulator unchanged.
  void Save(ByteWriter& writer) const;
  Status Load(ByteReader& reader);

 private:
  // The transition that starts at window_[start] and ends at window_.back().
  NStepTransition MakeTransition(size_t start) const;

  NStepConfig config_;
  std::deque<StepRecord> window_;  // Pending steps, oldest first.
};

}  // namespace tokenrl::replay
