// Fuzz target: the replay buffer's checkpointed state (ReplayBuffer::Load:
// frames, slot links, n-step accumulators, the prioritized sum tree). The
// buffer is the Atari-shaped kind: 2 env streams, 2-frame stacks, 3-step
// returns, prioritized sampling, capacity 40, filled past wrap-around with
// episodes that end by termination and by truncation. Contract
// (CheckStateLoad): rejected = unchanged; accepted = saves and loads back
// identically, then sampling, priority updates and more adds run.

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "tokenrl/replay/prioritized_sampler.h"
#include "tokenrl/replay/replay_buffer.h"

namespace {

using tokenrl::ByteReader;
using tokenrl::ByteWriter;
using tokenrl::fuzz::Require;
namespace replay = tokenrl::replay;

constexpr int kEnvs = 2, kFrame = 4, kStack = 2, kBatch = 4;
constexpr int kObs = kFrame * kStack;

// Per env stream: the stacked observation of the running episode, made the
// way env::FrameStack makes it (zero-filled at reset, newest frame last).
struct Streams {
  std::vector<std::vector<uint8_t>> current;
  std::mt19937 rng{7};

  std::vector<uint8_t> Frame() {
    std::vector<uint8_t> f(kFrame);
    for (auto& v : f) v = static_cast<uint8_t>(rng() % 256);
    return f;
  }
  std::vector<uint8_t> Push(std::vector<uint8_t> stack, const std::vector<uint8_t>& frame) {
    std::copy(stack.begin() + kFrame, stack.end(), stack.begin());
    std::copy(frame.begin(), frame.end(), stack.end() - kFrame);
    return stack;
  }
  std::vector<uint8_t> Start() { return Push(std::vector<uint8_t>(kObs, 0), Frame()); }

  // One step of every stream into `buffer`.
  void Step(replay::ReplayBuffer& buffer) {
    if (current.empty()) {
      for (int e = 0; e < kEnvs; ++e) current.push_back(Start());
    }
    for (int e = 0; e < kEnvs; ++e) {
      const uint32_t r = rng();
      const bool terminated = r % 9 == 0, truncated = !terminated && r % 13 == 0;
      const std::vector<uint8_t> next = Push(current[e], Frame());
      const std::vector<uint8_t> after = terminated || truncated ? Start() : next;
      buffer.Add(e, current[e], static_cast<int32_t>(r % 4), static_cast<float>(r % 3) - 1.0f, terminated, truncated,
                 after, next);
      current[e] = after;
    }
  }
};

struct Fixture {
  std::unique_ptr<replay::ReplayBuffer> buffer;
  Streams streams_at_save;
  std::string valid_state;
};

std::string Save(const replay::ReplayBuffer& buffer) {
  ByteWriter w;
  buffer.Save(w);
  return w.Release();
}

Fixture& Get() {
  static Fixture f = [] {
    replay::ReplayBufferConfig config;
    config.capacity = 40;
    config.num_envs = kEnvs;
    config.observation_size = kObs;
    config.frame_stack = kStack;
    config.n_step.n = 3;
    config.num_actions = 4;
    config.verify_stacks = false;
    Require(config.Validate().ok(), "bad fixture config");
    Fixture fx;
    fx.buffer = std::make_unique<replay::ReplayBuffer>(
        config, std::make_unique<replay::PrioritizedSampler>(config.capacity, replay::PrioritizedSamplerConfig{}));
    for (int i = 0; i < 33; ++i) fx.streams_at_save.Step(*fx.buffer);
    fx.valid_state = Save(*fx.buffer);
    return fx;
  }();
  return f;
}

void Exercise(Fixture& f) {
  replay::ReplayBuffer& buffer = *f.buffer;
  std::vector<uint8_t> obs(kBatch * kObs), next(kBatch * kObs);
  std::vector<int32_t> actions(kBatch);
  std::vector<float> returns(kBatch), discounts(kBatch), weights(kBatch), losses(kBatch, 0.5f);
  std::vector<int64_t> indices(kBatch);
  std::mt19937_64 rng(2);
  // The streams continue from where the valid state was saved, as restored
  // environments would (stack verification is off: edited frames differ).
  Streams streams = f.streams_at_save;
  for (int round = 0; round < 3; ++round) {
    if (buffer.size() > 0) {
      buffer.Sample(kBatch, rng, {obs, actions, returns, discounts, next, weights, indices});
      for (int i = 0; i < kBatch; ++i) Require(actions[i] >= 0 && actions[i] < 4, "a sampled action out of range");
      buffer.UpdatePriorities(indices, losses);
    }
    for (int i = 0; i < 25; ++i) streams.Step(buffer);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = Get();
  replay::ReplayBuffer& buffer = *f.buffer;
  {
    ByteReader r(f.valid_state);
    Require(buffer.Load(r).ok(), "the valid state no longer loads");
  }
  const std::string state = tokenrl::fuzz::StateFromInput(f.valid_state, data, size);
  tokenrl::fuzz::CheckStateLoad(
      state, [&] { return Save(buffer); },
      [&](std::string_view s) {
        ByteReader r(s);
        return buffer.Load(r);  // Trailing bytes are the caller's to reject (Agent::Load, the trainer).
      },
      [&] { Exercise(f); });
  return 0;
}
