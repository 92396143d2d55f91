#include "tokenrl/replay/replay_buffer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>

namespace tokenrl::replay {
namespace {

constexpr uint32_t kMagic = 0x42504c52;  // "RLPB"
constexpr uint32_t kVersion = 2;  // 2: frame stacks.
#ifdef NDEBUG
constexpr bool kDebugChecks = false;
#else
constexpr bool kDebugChecks = true;
#endif

// The first `count` elements of `values` as one length-prefixed byte string.
template <typename T>
void WritePrefix(ByteWriter& writer, const std::vector<T>& values, int64_t count) {
  writer.WriteString(std::string_view(reinterpret_cast<const char*>(values.data()), count * sizeof(T)));
}

// Reads what WritePrefix wrote into the first `count` elements of `values`
// (already sized >= count); false on truncation or a size mismatch.
template <typename T>
bool ReadPrefix(ByteReader& reader, std::vector<T>& values, int64_t count) {
  std::string bytes;
  if (!reader.ReadString(bytes) || bytes.size() != count * sizeof(T)) return false;
  if (!bytes.empty()) std::memcpy(values.data(), bytes.data(), bytes.size());  // data() may be null when empty.
  return true;
}

}  // namespace

Status ReplayBufferConfig::Validate() const {
  TOKENRL_RETURN_IF_ERROR(n_step.Validate());
  if (num_envs < 1) return Status::InvalidArgument(fmt::format("replay: num_envs must be >= 1, got {}", num_envs));
  if (observation_size < 1) {
    return Status::InvalidArgument(fmt::format("replay: observation_size must be >= 1, got {}", observation_size));
  }
  if (frame_stack < 1 || observation_size % frame_stack != 0) {
    return Status::InvalidArgument(fmt::format(
        "replay: frame_stack must be >= 1 and divide observation_size {}, got {}", observation_size, frame_stack));
  }
  const int64_t min_capacity = MinCapacity(num_envs, n_step.n, frame_stack);
  if (capacity < min_capacity || capacity >= (int64_t{1} << 31)) {
    return Status::InvalidArgument(fmt::format(
        "replay: capacity {} must be in [2 * envs * (n + frame_stack) = {}, 2^31) (pending n-step windows and their "
        "frame stacks of {} envs)",
        capacity, min_capacity, num_envs));
  }
  return Status::Ok();
}

int64_t ReplayBufferConfig::BytesPerSlot() const {
  int64_t bytes = frame_size();
  bytes += sizeof(uint8_t) + 2 * sizeof(int32_t) + sizeof(int32_t) + 2 * sizeof(float);  // state, links, data
  if (frame_stack > 1) bytes += sizeof(int64_t);                                         // predecessor link
  return bytes;
}

ReplayBuffer::ReplayBuffer(const ReplayBufferConfig& config, std::unique_ptr<Sampler> sampler)
    : config_(config),
      frame_size_(config.frame_stack >= 1 ? config.observation_size / config.frame_stack : 0),
      sampler_(std::move(sampler)),
      accumulators_(config.num_envs, NStepAccumulator(config.n_step)),
      current_(config.num_envs, -1),
      state_(config.capacity, kEmpty),
      successor_(config.capacity, -1),
      next_slot_(config.capacity, -1),
      action_(config.capacity, 0),
      return_(config.capacity, 0.0f),
      discount_(config.capacity, 0.0f),
      prev_write_(config.frame_stack > 1 ? config.capacity : 0, -1) {
  const Status status = config.Validate();
  TOKENRL_CHECK(status.ok(), "{}", status.message());
  TOKENRL_CHECK(sampler_ != nullptr && sampler_->capacity() == config.capacity,
                "sampler capacity must equal the replay capacity {}", config.capacity);
}

void ReplayBuffer::RemoveTransition(int64_t slot) {
  if (state_[slot] != kTransition) return;
  sampler_->Remove(slot);
  state_[slot] = kEmpty;
}

bool ReplayBuffer::StackComplete(int64_t slot) const {
  if (config_.frame_stack == 1) return true;
  const int64_t oldest_live = writes_ - config_.capacity;
  int64_t cur = slot;
  for (int j = 1; j < config_.frame_stack; ++j) {
    const int64_t prev = prev_write_[cur];
    if (prev < 0) return true;  // Zero-filled before the episode's first observation.
    if (prev < oldest_live) return false;
    cur = prev % config_.capacity;
  }
  return true;
}

void ReplayBuffer::Rebuild(int64_t slot, uint8_t* out) const {
  const int k = config_.frame_stack;
  const size_t f = static_cast<size_t>(frame_size_);
  int64_t cur = slot;
  for (int j = k - 1; j >= 0; --j) {
    std::memcpy(out + j * f, SlotData(cur), f);
    if (j == 0) break;
    const int64_t prev = prev_write_[cur];
    if (prev < 0) {
      std::memset(out, 0, j * f);  // Frames before the episode's first observation.
      break;
    }
    if constexpr (kDebugChecks) {
      TOKENRL_CHECK(prev >= writes_ - config_.capacity, "replay slot {}: frame overwritten", slot);
    }
    cur = prev % config_.capacity;
  }
}

void ReplayBuffer::ReadObservation(int64_t slot, std::span<uint8_t> out) const {
  TOKENRL_CHECK(slot >= 0 && slot < std::min(writes_, config_.capacity), "replay slot {} holds no observation", slot);
  TOKENRL_CHECK(static_cast<int64_t>(out.size()) == config_.observation_size, "buffer of {} bytes, expected {}",
                out.size(), config_.observation_size);
  Rebuild(slot, out.data());
}

int64_t ReplayBuffer::WriteObservation(std::span<const uint8_t> observation, SlotState state, int64_t prev_write) {
  TOKENRL_CHECK(static_cast<int64_t>(observation.size()) == config_.observation_size,
                "observation of {} bytes, expected {}", observation.size(), config_.observation_size);
  const int k = config_.frame_stack;
  const size_t f = static_cast<size_t>(frame_size_);
  if (k > 1 && prev_write < 0) {
    // Dopamine: an episode's first stack is zero-filled except its newest frame.
    const size_t older = (k - 1) * f;
    TOKENRL_CHECK(std::all_of(observation.begin(), observation.begin() + older, [](uint8_t b) { return b == 0; }),
                  "replay: the first observation of an episode must have zero-filled older frames "
                  "(frame_stack {}, newest frame last)",
                  k);
  }
  const int64_t slot = writes_ % config_.capacity;
  // Validate() sizes the ring so that pending steps are never reached.
  TOKENRL_CHECK(state_[slot] != kPending, "replay slot {} overwritten while its step is pending", slot);
  RemoveTransition(slot);
  if (k > 1 && writes_ >= config_.capacity) {
    // The k-1 successors of the overwritten observation lose a frame of their
    // stacks: their transitions leave the sampler (see the header).
    int64_t d = successor_[slot];
    for (int j = 1; j < k && d >= 0; ++j) {
      RemoveTransition(d);
      d = successor_[d];
    }
  }
  state_[slot] = state;
  successor_[slot] = -1;
  next_slot_[slot] = -1;
  if (k > 1) prev_write_[slot] = prev_write;
  const size_t needed = static_cast<size_t>(slot + 1) * f;
  if (obs_.size() < needed) {
    const size_t full = static_cast<size_t>(config_.capacity) * f;
    obs_.resize(std::min(full, std::max(needed, 2 * obs_.size())));
  }
  std::memcpy(SlotData(slot), observation.data() + (k - 1) * f, f);
  ++writes_;
  if (config_.verify_stacks && StackComplete(slot)) {
    verify_.resize(observation.size());
    Rebuild(slot, verify_.data());
    TOKENRL_CHECK(std::memcmp(verify_.data(), observation.data(), observation.size()) == 0,
                  "replay: observation stored in slot {} does not rebuild exactly (frame_stack {}: consecutive "
                  "observations of an episode must shift by one frame, newest last)",
                  slot, k);
  }
  return slot;
}

void ReplayBuffer::Add(int env, std::span<const uint8_t> observation, int32_t action, float reward, bool terminated,
                       bool truncated, std::span<const uint8_t> next_observation,
                       std::span<const uint8_t> final_observation) {
  TOKENRL_CHECK(env >= 0 && env < config_.num_envs, "env {} out of range [0, {})", env, config_.num_envs);
  int64_t& current = current_[env];
  if (current < 0) current = WriteObservation(observation, kPending, -1);
  const bool ended = terminated || truncated;
  const int64_t next = WriteObservation(ended ? final_observation : next_observation, ended ? kEmpty : kPending,
                                        WriteIndexOf(current));
  successor_[current] = static_cast<int32_t>(next);

  emitted_.clear();
  accumulators_[env].Push(
      StepRecord{.id = current, .action = action, .reward = reward, .terminated = terminated, .truncated = truncated},
      &emitted_);
  for (const NStepTransition& t : emitted_) {
    const int64_t s = t.first_id;
    const int64_t next_obs = successor_[t.last_id];
    if (!StackComplete(s) || !StackComplete(next_obs)) {
      // A frame of its stacks was overwritten while the window was pending
      // (only with frame stacks and envs stepped very unevenly): dropped.
      state_[s] = kEmpty;
      continue;
    }
    state_[s] = kTransition;
    next_slot_[s] = static_cast<int32_t>(next_obs);
    action_[s] = t.action;
    return_[s] = static_cast<float>(t.reward);
    discount_[s] = static_cast<float>(t.discount);
    sampler_->Add(s);
  }
  current = ended ? -1 : next;
}

void ReplayBuffer::Sample(int batch_size, std::mt19937_64& rng, const SampleBuffers& out) {
  const size_t b = static_cast<size_t>(batch_size);
  const size_t obs_bytes = b * static_cast<size_t>(config_.observation_size);
  TOKENRL_CHECK(out.observations.size() == obs_bytes && out.next_observations.size() == obs_bytes &&
                    out.actions.size() == b && out.returns.size() == b && out.discounts.size() == b &&
                    out.weights.size() == b && out.indices.size() == b,
                "SampleBuffers not sized for batch_size {}", batch_size);
  sampler_->Sample(batch_size, rng, &sample_indices_, &sample_weights_);
  const size_t size = static_cast<size_t>(config_.observation_size);
  for (size_t i = 0; i < b; ++i) {
    const int64_t s = sample_indices_[i];
    TOKENRL_CHECK(state_[s] == kTransition, "sampler returned slot {} without a transition", s);
    if constexpr (kDebugChecks) {
      TOKENRL_CHECK(StackComplete(s) && StackComplete(next_slot_[s]), "replay slot {}: incomplete stack", s);
    }
    Rebuild(s, out.observations.data() + i * size);
    Rebuild(next_slot_[s], out.next_observations.data() + i * size);
    out.actions[i] = action_[s];
    out.returns[i] = return_[s];
    out.discounts[i] = discount_[s];
    out.weights[i] = static_cast<float>(sample_weights_[i]);
    out.indices[i] = s;
  }
}

void ReplayBuffer::UpdatePriorities(std::span<const int64_t> indices, std::span<const float> losses) {
  TOKENRL_CHECK(indices.size() == losses.size(), "{} indices but {} losses", indices.size(), losses.size());
  update_indices_.clear();
  update_priorities_.clear();
  for (size_t i = 0; i < indices.size(); ++i) {
    TOKENRL_CHECK(std::isfinite(losses[i]) && losses[i] >= 0.0f, "invalid loss {}", losses[i]);
    const int64_t s = indices[i];
    if (s < 0 || s >= config_.capacity || state_[s] != kTransition) continue;
    update_indices_.push_back(s);
    update_priorities_.push_back(static_cast<double>(losses[i]) + 1e-10);
  }
  sampler_->Update(update_indices_, update_priorities_);
}

void ReplayBuffer::Save(ByteWriter& writer) const {
  writer.Write(kMagic);
  writer.Write(kVersion);
  writer.Write<int64_t>(config_.capacity);
  writer.Write<int64_t>(config_.num_envs);
  writer.Write<int64_t>(config_.observation_size);
  writer.Write<int64_t>(config_.frame_stack);
  writer.Write<int64_t>(writes_);
  const int64_t used = std::min(writes_, config_.capacity);
  WritePrefix(writer, obs_, used * frame_size_);
  WritePrefix(writer, state_, used);
  WritePrefix(writer, successor_, used);
  WritePrefix(writer, next_slot_, used);
  WritePrefix(writer, action_, used);
  WritePrefix(writer, return_, used);
  WritePrefix(writer, discount_, used);
  if (config_.frame_stack > 1) WritePrefix(writer, prev_write_, used);
  writer.WriteVector(current_);
  for (const NStepAccumulator& acc : accumulators_) acc.Save(writer);
  sampler_->Save(writer);
}

Status ReplayBuffer::Load(ByteReader& reader) {
  const auto corrupt = [](std::string_view what) { return Status::Corruption(fmt::format("ReplayBuffer: {}", what)); };
  uint32_t magic = 0, version = 0;
  int64_t capacity = 0, num_envs = 0, observation_size = 0, frame_stack = 0, writes = 0;
  if (!reader.Read(magic) || !reader.Read(version) || !reader.Read(capacity) || !reader.Read(num_envs) ||
      !reader.Read(observation_size) || !reader.Read(frame_stack) || !reader.Read(writes)) {
    return corrupt("truncated state");
  }
  if (magic != kMagic || version != kVersion) return corrupt("not a replay buffer state (bad magic or version)");
  if (capacity != config_.capacity || num_envs != config_.num_envs || observation_size != config_.observation_size ||
      frame_stack != config_.frame_stack) {
    return corrupt(fmt::format(
        "saved capacity {} / envs {} / observation bytes {} / frame stack {} != configured {} / {} / {} / {}", capacity,
        num_envs, observation_size, frame_stack, config_.capacity, config_.num_envs, config_.observation_size,
        config_.frame_stack));
  }
  if (writes < 0) return corrupt("negative write count");
  const int64_t used = std::min(writes, capacity);
  std::vector<uint8_t> obs(static_cast<size_t>(used * frame_size_));
  std::vector<int64_t> prev_write(frame_stack > 1 ? capacity : 0, -1);
  std::vector<uint8_t> state(capacity, kEmpty);
  std::vector<int32_t> successor(capacity, -1), next_slot(capacity, -1);
  std::vector<int64_t> current;
  std::vector<int32_t> action(capacity, 0);
  std::vector<float> returns(capacity, 0.0f), discounts(capacity, 0.0f);
  if (!ReadPrefix(reader, obs, used * frame_size_) || !ReadPrefix(reader, state, used) ||
      !ReadPrefix(reader, successor, used) || !ReadPrefix(reader, next_slot, used) ||
      !ReadPrefix(reader, action, used) || !ReadPrefix(reader, returns, used) || !ReadPrefix(reader, discounts, used) ||
      (frame_stack > 1 && !ReadPrefix(reader, prev_write, used)) || !reader.ReadVector(current)) {
    return corrupt("truncated state");
  }
  if (static_cast<int64_t>(current.size()) != num_envs) return corrupt("wrong number of environment streams");
  const auto valid_action = [&](int32_t a) { return a >= 0 && (config_.num_actions == 0 || a < config_.num_actions); };
  int64_t transitions = 0;
  for (int64_t s = 0; s < used; ++s) {
    if (!valid_action(action[s]) || !std::isfinite(returns[s]) || !(discounts[s] >= 0.0f && discounts[s] <= 1.0f)) {
      return corrupt(fmt::format("slot {}: action {}, return {} or discount {} out of range", s, action[s], returns[s],
                                 discounts[s]));
    }
    if (state[s] > kTransition || successor[s] < -1 || successor[s] >= used ||
        (state[s] == kTransition && (next_slot[s] < 0 || next_slot[s] >= used)) ||
        (frame_stack > 1 && (prev_write[s] < -1 || prev_write[s] >= writes))) {
      return corrupt(fmt::format("inconsistent slot {}", s));
    }
    transitions += state[s] == kTransition;
  }
  for (int64_t c : current) {
    if (c < -1 || c >= used || (c >= 0 && state[c] != kPending)) return corrupt("inconsistent current slot");
  }
  std::vector<NStepAccumulator> accumulators(config_.num_envs, NStepAccumulator(config_.n_step));
  for (NStepAccumulator& acc : accumulators) {
    TOKENRL_RETURN_IF_ERROR(acc.Load(reader).WithContext("ReplayBuffer"));
    // A pending step names the slot of its observation, whose successor
    // (the next observation) is already written.
    for (int i = 0; i < acc.pending(); ++i) {
      const StepRecord& step = acc.pending_step(i);
      if (step.id < 0 || step.id >= used || state[step.id] != kPending || successor[step.id] < 0 ||
          !valid_action(step.action) || !std::isfinite(step.reward)) {
        return corrupt("inconsistent pending n-step window");
      }
    }
  }
  // Every pending slot is referenced once, by its env's window or current
  // observation, and survives the writes until its window emits it: with envs
  // stepped in turn, each round writes at most 2 slots per env, and the slot
  // at position i of a window with p pending steps (the current observation
  // is position p) is emitted within n - p + i rounds. A state that fails this
  // could not come from Add, and loading it would overwrite a pending slot.
  std::vector<uint8_t> referenced(used, 0);
  for (int env = 0; env < config_.num_envs; ++env) {
    const NStepAccumulator& acc = accumulators[env];
    const int p = acc.pending();
    for (int i = 0; i <= p; ++i) {
      const int64_t slot = i < p ? acc.pending_step(i).id : current[env];
      if (slot < 0) continue;
      const int64_t last = writes - 1;
      const int64_t age_in_writes = writes - (last - (last - slot) % capacity);
      const int64_t writes_until_emitted = 2 * int64_t{config_.num_envs} * (config_.n_step.n - p + i);
      if (referenced[slot]++ || age_in_writes + writes_until_emitted > capacity) {
        return corrupt(fmt::format("pending slot {} referenced twice or overwritten before its window ends", slot));
      }
    }
  }
  for (int64_t s = 0; s < used; ++s) {
    if (state[s] == kPending && !referenced[s]) return corrupt(fmt::format("pending slot {} is not referenced", s));
  }
  // The sampler loads in place; keep its state to put back if it disagrees
  // with the storage (a rejected state changes nothing).
  ByteWriter sampler_before;
  sampler_->Save(sampler_before);
  TOKENRL_RETURN_IF_ERROR(sampler_->Load(reader).WithContext("ReplayBuffer"));
  bool agree = sampler_->size() == transitions;
  for (int64_t s = 0; s < capacity && agree; ++s) agree = sampler_->Contains(s) == (s < used && state[s] == kTransition);
  if (!agree) {
    ByteReader restore(sampler_before.bytes());
    (void)sampler_->Load(restore);  // Its own saved state: always loads.
    return corrupt("sampler and storage disagree on the stored transitions");
  }

  writes_ = writes;
  obs_ = std::move(obs);
  state_ = std::move(state);
  successor_ = std::move(successor);
  next_slot_ = std::move(next_slot);
  action_ = std::move(action);
  return_ = std::move(returns);
  discount_ = std::move(discounts);
  prev_write_ = std::move(prev_write);
  current_ = std::move(current);
  accumulators_ = std::move(accumulators);
  return Status::Ok();
}

}  // namespace tokenrl::replay
