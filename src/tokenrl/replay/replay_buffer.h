#pragma once
// ReplayBuffer: one member's replay, composed as Dopamine composes it
// (style.md, "ReplayBuffer"): a circular observation store, one
// NStepAccumulator per environment stream, and a Sampler over the stored
// n-step transitions.
//
// Observations are stored ONCE. The store is a ring of `capacity` slots of
// uint8 [C, H, W] observations, written strictly in order (slot = write count
// mod capacity). Each Add(env, ...) writes the observation that follows the
// step (o_{t+1}, or the final observation of an episode that ended: it gets its
// own slot), plus o_t itself when the step starts an episode. Mid-episode, o_t
// is the slot written as the previous step's next observation, so an episode
// of L steps uses L + 1 slots.
//
// A transition is identified by the slot of its first observation o_t (each
// slot starts at most one transition; final observations start none), so the
// sampler indexes slots directly:
//   obs        slot s (o_t)
//   action     a_t
//   return     sum_{k<m} gamma^k r_{t+k}                     (NStepAccumulator)
//   discount   gamma^m, or 0 if the episode terminated in the window
//   next obs   the slot written after step t+m-1 (o_{t+m}; for an episode's
//              last step, its final observation, so a truncated episode
//              bootstraps from the stored final observation)
// Before a slot is overwritten, the transition it starts is removed from the
// sampler (Sampler::Remove), so it is never sampled again. Next observations
// are written after their first observation, so they outlive it in the ring.
// Capacity is therefore in transitions (at most `capacity` are stored; slots
// holding final observations or steps still pending in an accumulator hold
// none).
//
// Prioritized replay (Dopamine Rainbow/DER): UpdatePriorities(indices, losses)
// passes loss_i + 1e-10 to the sampler, whose alpha (0.5 for Dopamine) makes
// the stored value sqrt(loss_i + 1e-10), Dopamine's convention; see
// prioritized_sampler.h.
//
// Observations are stored as uint8 (MinAtar's 0/1 grids are not bit-packed).
// Not thread-safe; one buffer per member.
//
// Frame stacks (Atari, Dopamine; ../shared/docs/softmoe_reference.md 1.1).
// With frame_stack = k > 1 an observation is [k*c, H, W]: k frames of
// f = observation_size / k bytes, oldest first, newest last, zero-filled before
// an episode's first observation; consecutive observations of one episode
// shift by one frame. A slot then stores only its observation's newest frame
// (f bytes) and the write index of its predecessor in the same episode (-1 for
// an episode's first observation). Sample rebuilds a stack by following those
// links back k-1 times, zero-filling once the episode's start is reached, so
// an episode's first observation must have all-zero older frames (checked on
// every Add; the error names the requirement). Streams of different envs
// interleave in the ring; the links keep each episode's chain separate.
//
// Ring wrap-around with stacks: a slot's stack needs its k-1 predecessors,
// which are older and so are overwritten first. This buffer keeps every
// sampled stack exact by REMOVING transitions whose stacks lost a frame:
//  * when a slot is overwritten, the transitions starting at it and at its
//    k-1 successors in the same episode are removed from the sampler (a
//    transition's bootstrap stack only needs frames that its first stack or
//    its own younger frames also need, so nothing else can break);
//  * a transition emitted by an accumulator after one of its predecessors
//    was overwritten is not added at all.
// MinCapacity grows by k - 1 slots per env pair so that, with envs stepped in
// turn, neither case happens to a pending window. The sampler therefore never
// returns a stack that differs from the one passed to Add.
//
// Verification: with verify_stacks (on by default in builds without NDEBUG,
// and in the tests), every stored observation is rebuilt right after it is
// written and compared with the observation passed in; a mismatch (an
// environment whose observations do not shift by one frame) is a CHECK failure.

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "tokenrl/core/serialization.h"
#include "tokenrl/core/status.h"
#include "tokenrl/replay/n_step.h"
#include "tokenrl/replay/sampler.h"

namespace tokenrl::replay {

struct ReplayBufferConfig {
  int64_t capacity = 1000000;    // Observation slots = most transitions held.
  int num_envs = 1;              // Environment streams (one accumulator each).
  int64_t observation_size = 0;  // Bytes per observation (C * H * W; with frame stacks k * c * H * W).
  NStepConfig n_step;
  // Observations are stacks of this many frames (newest last); each frame is
  // stored once. 1: observations are stored whole.
  int frame_stack = 1;
  // > 0: Load rejects stored actions outside [0, num_actions) (the agent sets
  // its action count); 0: any action >= 0.
  int num_actions = 0;
  // Rebuild every stored observation and compare it with the one passed in.
#ifdef NDEBUG
  bool verify_stacks = false;
#else
  bool verify_stacks = true;
#endif

  // InvalidArgument unless every field is in range (frame_stack >= 1 divides
  // observation_size) and capacity >= MinCapacity(num_envs, n, frame_stack)
  // (so pending steps and their stacks are never overwritten) and capacity < 2^31.
  Status Validate() const;
  static int64_t MinCapacity(int num_envs, int n, int frame_stack = 1) {
    return 2 * static_cast<int64_t>(num_envs) * (n + frame_stack);
  }
  // Bytes of one stored frame: observation_size / frame_stack.
  int64_t frame_size() const { return observation_size / frame_stack; }
  // Bytes the buffer holds per slot (= per stored transition) once full:
  // the frame, the per-slot transition data and, with frame stacks, the
  // predecessor link. The sampler's own per-slot arrays are not included.
  int64_t BytesPerSlot() const;
};

// Caller-owned destination of Sample (B = batch size; obs = observation_size).
struct SampleBuffers {
  std::span<uint8_t> observations;       // [B, obs]
  std::span<int32_t> actions;            // [B]
  std::span<float> returns;              // [B]
  std::span<float> discounts;            // [B]
  std::span<uint8_t> next_observations;  // [B, obs]
  std::span<float> weights;              // [B] importance weights (1 for a uniform sampler)
  std::span<int64_t> indices;            // [B] slots, for UpdatePriorities
};

class ReplayBuffer {
 public:
  // REQUIRES: config.Validate().ok(); sampler->capacity() == config.capacity.
  ReplayBuffer(const ReplayBufferConfig& config, std::unique_ptr<Sampler> sampler);

  const ReplayBufferConfig& config() const { return config_; }
  // Transitions that can be sampled.
  int64_t size() const { return sampler_->size(); }
  // Observations written since construction (each stored once).
  int64_t observations_written() const { return writes_; }
  Sampler& sampler() { return *sampler_; }

  // Records one step of environment `env`: o_t (`observation`, read only when
  // the step starts an episode: mid-episode o_t is the previous step's next
  // observation), a_t, r_t and the end flags; `next_observation` is o_{t+1}
  // (read only when the episode goes on) and `final_observation` the episode's
  // last observation (read only when terminated or truncated). Completed
  // n-step transitions enter the sampler. REQUIRES: 0 <= env < num_envs; every
  // span has observation_size bytes (those not read may be empty).
  void Add(int env, std::span<const uint8_t> observation, int32_t action, float reward, bool terminated, bool truncated,
           std::span<const uint8_t> next_observation, std::span<const uint8_t> final_observation);

  // Draws `batch_size` transitions (with replacement) from `rng` into `out`;
  // no allocation after the first call with this batch size.
  // REQUIRES: size() > 0; every span of `out` sized for batch_size.
  void Sample(int batch_size, std::mt19937_64& rng, const SampleBuffers& out);

  // New priorities from per-sample losses: the sampler receives loss + 1e-10
  // (sqrt(loss + 1e-10) stored with alpha 0.5). Indices whose transition was
  // overwritten since Sample are skipped. A uniform sampler ignores them.
  // REQUIRES: equal sizes; losses finite and >= 0.
  void UpdatePriorities(std::span<const int64_t> indices, std::span<const float> losses);

  // Writes the observation stored in `slot` (rebuilt from its frames when
  // frame_stack > 1) into `out` (observation_size bytes). Exact for every slot
  // that starts a sampleable transition or is its bootstrap observation.
  // REQUIRES: slot holds an observation (slot < observations_written()).
  void ReadObservation(int64_t slot, std::span<uint8_t> out) const;

  // Checkpointing: the stored observations (frames) and transitions, the
  // frame links, the write position, every accumulator and the sampler. Save -> Load -> Save gives
  // identical bytes. Load fails with Corruption on truncated input, a
  // different configuration or an inconsistent state, and then changes
  // nothing (tests/fuzz/replay_state_fuzz.cc checks both).
  void Save(ByteWriter& writer) const;
  Status Load(ByteReader& reader);

 private:
  enum SlotState : uint8_t { kEmpty = 0, kPending = 1, kTransition = 2 };

  // Writes an observation (its newest frame) into the next slot, removing the
  // transition it started, if any, and those whose stacks needed it; marks
  // the slot `state`, links it to the write index `prev_write` of the same
  // episode's previous observation (-1: the episode's first) and returns it.
  int64_t WriteObservation(std::span<const uint8_t> observation, SlotState state, int64_t prev_write);
  // Write index of the observation a live slot holds.
  int64_t WriteIndexOf(int64_t slot) const {
    const int64_t last = writes_ - 1;
    return last - (last - slot) % config_.capacity;
  }
  uint8_t* SlotData(int64_t slot) { return obs_.data() + slot * frame_size_; }
  const uint8_t* SlotData(int64_t slot) const { return obs_.data() + slot * frame_size_; }
  // Rebuilds the observation of `slot` into `out` (observation_size bytes).
  void Rebuild(int64_t slot, uint8_t* out) const;
  // Whether every frame of slot's stack is still stored (always, for k = 1).
  bool StackComplete(int64_t slot) const;
  // Removes the transition starting at `slot`, if any.
  void RemoveTransition(int64_t slot);

  ReplayBufferConfig config_;
  int64_t frame_size_ = 0;  // Bytes stored per slot.
  std::unique_ptr<Sampler> sampler_;
  std::vector<NStepAccumulator> accumulators_;  // [num_envs]
  std::vector<int64_t> current_;                // [num_envs] slot of o_t, or -1 at an episode start.
  int64_t writes_ = 0;                          // Observations written; next slot = writes_ % capacity.
  std::vector<uint8_t> obs_;                    // Grows to capacity * frame_size.
  // Per slot (capacity entries).
  std::vector<uint8_t> state_;
  std::vector<int32_t> successor_;  // Slot of the observation after this step (-1: none yet).
  std::vector<int32_t> next_slot_;  // Transition: slot of its bootstrap observation.
  std::vector<int32_t> action_;
  std::vector<float> return_;
  std::vector<float> discount_;
  // Frame stacks only (empty for k = 1): write index of the same episode's
  // previous observation, -1 for an episode's first. It is still stored iff
  // index >= writes_ - capacity.
  std::vector<int64_t> prev_write_;
  // Scratch.
  std::vector<uint8_t> verify_;
  std::vector<NStepTransition> emitted_;
  std::vector<int64_t> sample_indices_;
  std::vector<double> sample_weights_;
  std::vector<int64_t> update_indices_;
  std::vector<double> update_priorities_;
};

}  // namespace tokenrl::replay
