#include "tokenrl/replay/replay_buffer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "tokenrl/replay/prioritized_sampler.h"
#include "tokenrl/replay/uniform_sampler.h"

namespace tokenrl::replay {
namespace {

constexpr int64_t kObsSize = 3;

// Observations encode one value v as {v, v, v}.
std::vector<uint8_t> Obs(int v) { return std::vector<uint8_t>(kObsSize, static_cast<uint8_t>(v)); }

ReplayBufferConfig Config(int64_t capacity, int num_envs, int n, double gamma) {
  return ReplayBufferConfig{
      .capacity = capacity, .num_envs = num_envs, .observation_size = kObsSize, .n_step = {.n = n, .gamma = gamma}};
}

std::unique_ptr<ReplayBuffer> Uniform(const ReplayBufferConfig& config) {
  return std::make_unique<ReplayBuffer>(config, std::make_unique<UniformSampler>(config.capacity));
}

// One env step: o_t = obs, o_{t+1} = next (next observation or final one).
void Add(ReplayBuffer& buffer, int env, int obs, int32_t action, float reward, int next, bool terminated = false,
         bool truncated = false) {
  const std::vector<uint8_t> o = Obs(obs), n = Obs(next), empty;
  const bool ended = terminated || truncated;
  buffer.Add(env, o, action, reward, terminated, truncated, ended ? empty : n, ended ? n : empty);
}

struct Transition {
  int obs = 0, action = 0, next = 0;
  float ret = 0, discount = 0;
};

struct Batch {
  explicit Batch(int b)
      : obs(b * kObsSize), next_obs(b * kObsSize), actions(b), returns(b), discounts(b), weights(b), indices(b) {}
  SampleBuffers View() { return {obs, actions, returns, discounts, next_obs, weights, indices}; }
  std::vector<uint8_t> obs, next_obs;
  std::vector<int32_t> actions;
  std::vector<float> returns, discounts, weights;
  std::vector<int64_t> indices;
};

// Every stored transition, keyed by its observation value (found by sampling
// a large batch; checks that the same slot always gives the same data).
std::map<int, Transition> Collect(ReplayBuffer& buffer, int batch_size = 4096) {
  std::mt19937_64 rng(7);
  Batch batch(batch_size);
  buffer.Sample(batch_size, rng, batch.View());
  std::map<int, Transition> out;
  for (int i = 0; i < batch_size; ++i) {
    for (int k = 0; k < kObsSize; ++k) {
      EXPECT_EQ(batch.obs[i * kObsSize + k], batch.obs[i * kObsSize]);
      EXPECT_EQ(batch.next_obs[i * kObsSize + k], batch.next_obs[i * kObsSize]);
    }
    const Transition t{.obs = batch.obs[i * kObsSize],
                       .action = batch.actions[i],
                       .next = batch.next_obs[i * kObsSize],
                       .ret = batch.returns[i],
                       .discount = batch.discounts[i]};
    auto [it, inserted] = out.emplace(t.obs, t);
    if (!inserted) {
      EXPECT_EQ(it->second.action, t.action);
      EXPECT_EQ(it->second.next, t.next);
      EXPECT_EQ(it->second.ret, t.ret);
      EXPECT_EQ(it->second.discount, t.discount);
    }
  }
  return out;
}

void ExpectTransition(const std::map<int, Transition>& all, int obs, int action, double ret, double discount,
                      int next) {
  auto it = all.find(obs);
  ASSERT_NE(it, all.end()) << "no transition starts at observation " << obs;
  EXPECT_EQ(it->second.action, action) << obs;
  EXPECT_NEAR(it->second.ret, ret, 1e-6) << obs;
  EXPECT_NEAR(it->second.discount, discount, 1e-6) << obs;
  EXPECT_EQ(it->second.next, next) << obs;
}

TEST(ReplayBufferTest, ValidateRejectsTooSmallCapacity) {
  EXPECT_TRUE(Config(ReplayBufferConfig::MinCapacity(2, 3), 2, 3, 0.9).Validate().ok());
  EXPECT_FALSE(Config(ReplayBufferConfig::MinCapacity(2, 3) - 1, 2, 3, 0.9).Validate().ok());
  EXPECT_FALSE(Config(100, 0, 1, 0.9).Validate().ok());
  EXPECT_FALSE(Config(100, 1, 0, 0.9).Validate().ok());
}

TEST(ReplayBufferTest, EachObservationIsStoredOnce) {
  auto buffer = Uniform(Config(100, 1, 1, 0.9));
  // Episode of 4 steps: o1..o4, final observation 5 -> 5 observations.
  Add(*buffer, 0, 1, 0, 1.0f, 2);
  Add(*buffer, 0, 2, 0, 1.0f, 3);
  Add(*buffer, 0, 3, 0, 1.0f, 4);
  Add(*buffer, 0, 4, 0, 1.0f, 5, /*terminated=*/true);
  EXPECT_EQ(buffer->observations_written(), 5);
  EXPECT_EQ(buffer->size(), 4);
  // The next episode stores its first observation and then one per step.
  Add(*buffer, 0, 11, 0, 1.0f, 12);
  EXPECT_EQ(buffer->observations_written(), 7);
  Add(*buffer, 0, 12, 0, 1.0f, 13);
  EXPECT_EQ(buffer->observations_written(), 8);
}

TEST(ReplayBufferTest, OneStepTransitions) {
  auto buffer = Uniform(Config(100, 1, 1, 0.9));
  Add(*buffer, 0, 1, 2, 1.0f, 2);
  Add(*buffer, 0, 2, 3, -1.0f, 3, /*terminated=*/true);
  const auto all = Collect(*buffer);
  ASSERT_EQ(all.size(), 2u);
  ExpectTransition(all, 1, 2, 1.0, 0.9, 2);
  ExpectTransition(all, 2, 3, -1.0, 0.0, 3);
}

TEST(ReplayBufferTest, NStepWithTermination) {
  auto buffer = Uniform(Config(100, 1, 3, 0.5));
  const float rewards[] = {1, 2, 4, 8, 16};
  for (int t = 0; t < 5; ++t) Add(*buffer, 0, t, t, rewards[t], t == 4 ? 50 : t + 1, /*terminated=*/t == 4);
  EXPECT_EQ(buffer->size(), 5);
  const auto all = Collect(*buffer);
  ASSERT_EQ(all.size(), 5u);
  ExpectTransition(all, 0, 0, 1 + 0.5 * 2 + 0.25 * 4, 0.125, 3);
  ExpectTransition(all, 1, 1, 2 + 0.5 * 4 + 0.25 * 8, 0.125, 4);
  ExpectTransition(all, 2, 2, 4 + 0.5 * 8 + 0.25 * 16, 0.0, 50);  // Terminal inside the window.
  ExpectTransition(all, 3, 3, 8 + 0.5 * 16, 0.0, 50);
  ExpectTransition(all, 4, 4, 16, 0.0, 50);
}

TEST(ReplayBufferTest, NStepWithTruncationBootstrapsFromFinalObservation) {
  auto buffer = Uniform(Config(100, 1, 3, 0.5));
  const float rewards[] = {1, 2, 4, 8, 16};
  for (int t = 0; t < 5; ++t) Add(*buffer, 0, t, t, rewards[t], t == 4 ? 50 : t + 1, false, /*truncated=*/t == 4);
  const auto all = Collect(*buffer);
  ASSERT_EQ(all.size(), 5u);
  ExpectTransition(all, 0, 0, 3, 0.125, 3);
  ExpectTransition(all, 1, 1, 6, 0.125, 4);
  ExpectTransition(all, 2, 2, 12, 0.125, 50);  // Final observation, gamma^3.
  ExpectTransition(all, 3, 3, 16, 0.25, 50);
  ExpectTransition(all, 4, 4, 16, 0.5, 50);
  // The next episode starts fresh: its first step is pending, nothing mixes.
  Add(*buffer, 0, 60, 1, 1.0f, 61);
  EXPECT_EQ(buffer->size(), 5);
}

TEST(ReplayBufferTest, EnvironmentsKeepSeparateWindows) {
  auto buffer = Uniform(Config(100, 2, 2, 0.5));
  for (int t = 0; t < 4; ++t) {
    Add(*buffer, 0, t, 0, 1.0f, t + 1);
    Add(*buffer, 1, 100 + t, 1, 2.0f, 100 + t + 1, /*terminated=*/t == 3);
  }
  const auto all = Collect(*buffer);
  EXPECT_EQ(all.size(), 3u + 4u);  // env 0: starts 0..2 (3 pending); env 1: all 4 flushed.
  ExpectTransition(all, 0, 0, 1.5, 0.25, 2);
  ExpectTransition(all, 2, 0, 1.5, 0.25, 4);
  ExpectTransition(all, 100, 1, 3.0, 0.25, 102);
  ExpectTransition(all, 102, 1, 3.0, 0.0, 104);
  ExpectTransition(all, 103, 1, 2.0, 0.0, 104);
}

TEST(ReplayBufferTest, OverwriteRemovesOldTransitions) {
  auto buffer = Uniform(Config(8, 1, 1, 0.9));
  for (int t = 0; t < 20; ++t) Add(*buffer, 0, t, 0, static_cast<float>(t), t + 1);
  // The ring holds observations 13..20; transitions start at 13..19 (20 is pending).
  EXPECT_EQ(buffer->observations_written(), 21);
  EXPECT_EQ(buffer->size(), 7);
  const auto all = Collect(*buffer);
  ASSERT_EQ(all.size(), 7u);
  for (const auto& [obs, t] : all) {
    EXPECT_GE(obs, 13);
    EXPECT_EQ(t.next, obs + 1);
    EXPECT_EQ(t.ret, static_cast<float>(obs));
  }
}

TEST(ReplayBufferTest, OverwriteNeverSamplesStaleTransitionsWithEpisodes) {
  // Short episodes (final observations take slots too) and two envs.
  auto buffer = Uniform(Config(12, 2, 2, 0.5));
  int value[2] = {0, 100};
  for (int t = 0; t < 60; ++t) {
    for (int env = 0; env < 2; ++env) {
      const bool end = (t % (3 + env)) == 2;
      Add(*buffer, env, value[env], env, 1.0f, value[env] + 1, end && env == 0, end && env == 1);
      value[env] += end ? 2 : 1;  // A new episode starts at a new value.
    }
    if (buffer->size() == 0) continue;
    for (const auto& [obs, tr] : Collect(*buffer, 256)) {
      // Only recent observations survive; next is 1 or 2 steps later in the same env.
      const int env = obs >= 100 ? 1 : 0;
      EXPECT_GT(obs, value[env] - 12) << "stale transition at t=" << t;
      EXPECT_GT(tr.next, obs);
      EXPECT_LE(tr.next, obs + 2);
      EXPECT_EQ(tr.action, env);
    }
  }
}

TEST(ReplayBufferTest, PrioritizedPrioritiesFollowLosses) {
  const ReplayBufferConfig config = Config(16, 1, 1, 0.9);
  auto sampler = std::make_unique<PrioritizedSampler>(config.capacity, PrioritizedSamplerConfig{});
  PrioritizedSampler* prioritized = sampler.get();
  ReplayBuffer buffer(config, std::move(sampler));
  for (int t = 0; t < 4; ++t) Add(buffer, 0, t, 0, 0.0f, t + 1);
  ASSERT_EQ(buffer.size(), 4);
  std::mt19937_64 rng(1);
  Batch batch(4);
  buffer.Sample(4, rng, batch.View());
  for (float w : batch.weights) EXPECT_FLOAT_EQ(w, 1.0f);  // All at the max priority.
  // Slots are 0..3 here (one env, one episode).
  const std::vector<int64_t> indices = {0, 1, 2, 3};
  const std::vector<float> losses = {0.0f, 1.0f, 4.0f, 9.0f};
  buffer.UpdatePriorities(indices, losses);
  double total = 0;
  for (float l : losses) total += std::sqrt(l + 1e-10);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(prioritized->Probability(i), std::sqrt(losses[i] + 1e-10) / total, 1e-9);
  }
  // IS weights of a sampled batch against the closed form (beta 0.5).
  buffer.Sample(4, rng, batch.View());
  double max_w = 0;
  for (int64_t s : batch.indices) max_w = std::max(max_w, std::pow(4 * prioritized->Probability(s), -0.5));
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(batch.weights[i], std::pow(4 * prioritized->Probability(batch.indices[i]), -0.5) / max_w, 1e-6);
  }
  // Overwritten transitions get probability 0 and their stale updates are skipped.
  for (int t = 4; t < 16; ++t) Add(buffer, 0, t, 0, 0.0f, t + 1);  // o16 (pending) lands in slot 0.
  EXPECT_EQ(prioritized->Probability(0), 0.0);
  EXPECT_EQ(buffer.size(), 15);
  buffer.UpdatePriorities(std::vector<int64_t>{-1}, std::vector<float>{1.0f});
}

TEST(ReplayBufferTest, SaveLoadContinuesIdentically) {
  for (bool prioritized : {false, true}) {
    const ReplayBufferConfig config = Config(24, 2, 3, 0.9);
    const auto make = [&] {
      std::unique_ptr<Sampler> sampler;
      if (prioritized) {
        sampler = std::make_unique<PrioritizedSampler>(config.capacity, PrioritizedSamplerConfig{});
      } else {
        sampler = std::make_unique<UniformSampler>(config.capacity);
      }
      return std::make_unique<ReplayBuffer>(config, std::move(sampler));
    };
    const auto step = [](ReplayBuffer& b, int t) {
      for (int env = 0; env < 2; ++env) {
        Add(b, env, t * 2 + env, env, static_cast<float>(t), t * 2 + env + 2, (t + env) % 7 == 6, (t + env) % 11 == 10);
      }
    };
    auto a = make();
    for (int t = 0; t < 30; ++t) step(*a, t);  // Wrapped, with windows pending.
    std::mt19937_64 rng_a(3);
    Batch batch_a(8), batch_b(8);
    a->Sample(8, rng_a, batch_a.View());
    a->UpdatePriorities(batch_a.indices, std::vector<float>(8, 2.5f));
    ByteWriter writer;
    a->Save(writer);

    auto b = make();
    ByteReader reader(writer.bytes());
    ASSERT_TRUE(b->Load(reader).ok());
    EXPECT_TRUE(reader.Finish("replay").ok());
    ByteWriter again;
    b->Save(again);
    EXPECT_EQ(writer.bytes(), again.bytes());

    std::mt19937_64 rng_b = rng_a;
    for (int t = 30; t < 50; ++t) {
      step(*a, t);
      step(*b, t);
      a->Sample(8, rng_a, batch_a.View());
      b->Sample(8, rng_b, batch_b.View());
      EXPECT_EQ(batch_a.indices, batch_b.indices);
      EXPECT_EQ(batch_a.obs, batch_b.obs);
      EXPECT_EQ(batch_a.next_obs, batch_b.next_obs);
      EXPECT_EQ(batch_a.returns, batch_b.returns);
      EXPECT_EQ(batch_a.discounts, batch_b.discounts);
      EXPECT_EQ(batch_a.weights, batch_b.weights);
      std::vector<float> losses(8);
      for (int i = 0; i < 8; ++i) losses[i] = static_cast<float>(t + i);
      a->UpdatePriorities(batch_a.indices, losses);
      b->UpdatePriorities(batch_b.indices, losses);
    }
    ByteWriter final_a, final_b;
    a->Save(final_a);
    b->Save(final_b);
    EXPECT_EQ(final_a.bytes(), final_b.bytes());
  }
}

TEST(ReplayBufferTest, LoadRejectsTruncatedOrMismatchedState) {
  auto a = Uniform(Config(24, 2, 3, 0.9));
  for (int t = 0; t < 5; ++t) Add(*a, 0, t, 0, 1.0f, t + 1);
  ByteWriter writer;
  a->Save(writer);
  const std::string& bytes = writer.bytes();
  auto b = Uniform(Config(24, 2, 3, 0.9));
  ByteReader truncated(std::string_view(bytes).substr(0, bytes.size() - 3));
  EXPECT_EQ(b->Load(truncated).code(), Status::Code::kCorruption);
  auto c = Uniform(Config(32, 2, 3, 0.9));
  ByteReader other(bytes);
  EXPECT_EQ(c->Load(other).code(), Status::Code::kCorruption);
  auto d = Uniform(Config(24, 2, 2, 0.9));
  ByteReader other_n(bytes);
  EXPECT_EQ(d->Load(other_n).code(), Status::Code::kCorruption);
  // A failed Load is followed by a good one.
  ByteReader good(bytes);
  ASSERT_TRUE(b->Load(good).ok());
  ByteWriter again;
  b->Save(again);
  EXPECT_EQ(again.bytes(), bytes);
}


// ---- Frame stacks (Atari: each frame stored once, stacks rebuilt) ----------

// A simulated frame-stacking environment stream (Dopamine semantics: stack of
// k frames, zero-filled at episode start, newest last) feeding a buffer, with
// a mirror of which observation every slot holds.
class StackedStreams {
 public:
  struct Episode {
    std::vector<std::vector<uint8_t>> obs;  // o_0 .. o_L
    std::vector<int32_t> actions;
    bool ended = false;
  };
  struct SlotInfo {
    int episode = -1;
    int t = 0;
  };

  StackedStreams(ReplayBuffer& buffer, int k, int frame, uint64_t seed)
      : buffer_(buffer), k_(k), frame_(frame), rng_(seed), current_(buffer.config().num_envs, -1),
        slots_(buffer.config().capacity) {}

  // One step of env `env`; the episode ends with the given probabilities.
  void Step(int env, double p_terminate, double p_truncate) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    if (current_[env] < 0) {
      episodes_.push_back({});
      current_[env] = static_cast<int>(episodes_.size()) - 1;
      std::vector<uint8_t> first(static_cast<size_t>(k_ * frame_), 0);
      WriteFrame(first);
      episodes_.back().obs.push_back(first);
    }
    Episode& ep = episodes_[current_[env]];
    std::vector<uint8_t> next = ep.obs.back();
    std::memmove(next.data(), next.data() + frame_, static_cast<size_t>((k_ - 1) * frame_));
    WriteFrame(next);
    const double x = u(rng_);
    const bool terminated = x < p_terminate;
    const bool truncated = !terminated && x < p_terminate + p_truncate;
    const bool ended = terminated || truncated;
    const int32_t action = static_cast<int32_t>(rng_() % 6);
    const int t = static_cast<int>(ep.obs.size()) - 1;
    int64_t w = buffer_.observations_written();
    const int64_t cap = buffer_.config().capacity;
    if (t == 0) slots_[w++ % cap] = {current_[env], 0};
    slots_[w % cap] = {current_[env], t + 1};
    const std::vector<uint8_t> empty;
    buffer_.Add(env, ep.obs.back(), action, 1.0f, terminated, truncated, ended ? empty : next, ended ? next : empty);
    ep.obs.push_back(next);
    ep.actions.push_back(action);
    if (ended) {
      ep.ended = true;
      current_[env] = -1;
    }
    ++steps_;
  }

  // Every transition the buffer can sample holds exactly the stacks passed
  // in: o_t and o_{t+m}, m = n, or fewer at the end of an episode.
  void CheckSamples(int batch_size, std::mt19937_64& rng) {
    if (buffer_.size() == 0) return;
    const int64_t obs = buffer_.config().observation_size;
    const int n = buffer_.config().n_step.n;
    std::vector<uint8_t> o(batch_size * obs), no(batch_size * obs), read(obs);
    std::vector<int32_t> actions(batch_size);
    std::vector<float> returns(batch_size), discounts(batch_size), weights(batch_size);
    std::vector<int64_t> indices(batch_size);
    buffer_.Sample(batch_size, rng, {o, actions, returns, discounts, no, weights, indices});
    for (int i = 0; i < batch_size; ++i) {
      const SlotInfo& info = slots_[indices[i]];
      ASSERT_GE(info.episode, 0);
      const Episode& ep = episodes_[info.episode];
      const int steps = static_cast<int>(ep.obs.size()) - 1;
      const int m = ep.ended ? std::min(n, steps - info.t) : n;
      ASSERT_GE(m, 1);
      ASSERT_LE(info.t + m, steps);
      const std::vector<uint8_t> got(o.begin() + i * obs, o.begin() + (i + 1) * obs);
      const std::vector<uint8_t> got_next(no.begin() + i * obs, no.begin() + (i + 1) * obs);
      ASSERT_EQ(got, ep.obs[info.t]) << "slot " << indices[i];
      ASSERT_EQ(got_next, ep.obs[info.t + m]) << "slot " << indices[i];
      ASSERT_EQ(actions[i], ep.actions[info.t]);
      buffer_.ReadObservation(indices[i], read);
      ASSERT_EQ(read, ep.obs[info.t]);
    }
  }

  const std::vector<Episode>& episodes() const { return episodes_; }
  const SlotInfo& slot(int64_t s) const { return slots_[s]; }
  int64_t steps() const { return steps_; }

 private:
  void WriteFrame(std::vector<uint8_t>& stack) {
    // Random frames, often with zero bytes (MinAtar-like grids), sometimes all zero.
    const bool blank = rng_() % 8 == 0;
    for (int i = 0; i < frame_; ++i) {
      stack[(k_ - 1) * frame_ + i] = blank ? 0 : static_cast<uint8_t>(rng_() % 3 == 0 ? 0 : rng_() % 256);
    }
  }

  ReplayBuffer& buffer_;
  int k_, frame_;
  std::mt19937_64 rng_;
  std::vector<int> current_;
  std::vector<SlotInfo> slots_;
  std::vector<Episode> episodes_;
  int64_t steps_ = 0;
};

constexpr int kStack = 4;
constexpr int kFrame = 9;  // c = 1, H = W = 3.

ReplayBufferConfig StackConfig(int64_t capacity, int num_envs, int n) {
  return ReplayBufferConfig{.capacity = capacity,
                            .num_envs = num_envs,
                            .observation_size = kStack * kFrame,
                            .n_step = {.n = n, .gamma = 0.9},
                            .frame_stack = kStack,
                            .verify_stacks = true};
}

TEST(ReplayBufferFrameStackTest, ValidateNeedsDivisibleObservationAndRoomForStacks) {
  EXPECT_TRUE(StackConfig(ReplayBufferConfig::MinCapacity(2, 3, kStack), 2, 3).Validate().ok());
  EXPECT_FALSE(StackConfig(ReplayBufferConfig::MinCapacity(2, 3, kStack) - 1, 2, 3).Validate().ok());
  ReplayBufferConfig bad = StackConfig(1000, 1, 1);
  bad.observation_size = kStack * kFrame + 1;
  EXPECT_FALSE(bad.Validate().ok());
  bad = StackConfig(1000, 1, 1);
  bad.frame_stack = 0;
  EXPECT_FALSE(bad.Validate().ok());
}

TEST(ReplayBufferFrameStackTest, StoresOneFramePerObservation) {
  auto buffer = Uniform(StackConfig(100, 1, 1));
  StackedStreams streams(*buffer, kStack, kFrame, 1);
  for (int t = 0; t < 5; ++t) streams.Step(0, 0.0, 0.0);
  EXPECT_EQ(buffer->observations_written(), 6);
  EXPECT_EQ(buffer->config().frame_size(), kFrame);
  // Memory per stored transition, for an Atari observation [4, 84, 84]:
  // one 84x84 frame per slot instead of the whole stack.
  ReplayBufferConfig atari{.capacity = 1000000, .num_envs = 1, .observation_size = 4 * 84 * 84, .n_step = {}};
  const int64_t full = atari.BytesPerSlot();
  atari.frame_stack = 4;
  const int64_t stacked = atari.BytesPerSlot();
  EXPECT_EQ(full, 4 * 84 * 84 + 21);
  EXPECT_EQ(stacked, 84 * 84 + 21 + 8);
  std::printf("replay bytes per transition, Atari [4, 84, 84]: full stacks %lld, frame_stack=4 %lld (%.2fx less)\n",
              static_cast<long long>(full), static_cast<long long>(stacked), static_cast<double>(full) / stacked);
}

TEST(ReplayBufferFrameStackTest, RebuildEqualsInputForRandomEpisodes) {
  // No wrap-around: every observation ever written rebuilds exactly; episodes
  // of 2 interleaved envs end by termination and by truncation (final
  // observations), many shorter than the stack.
  for (int n : {1, 3}) {
    auto buffer = Uniform(StackConfig(100000, 2, n));
    StackedStreams streams(*buffer, kStack, kFrame, 11 + n);
    std::mt19937_64 pick(5);
    for (int t = 0; t < 5000; ++t) streams.Step(static_cast<int>(pick() % 2), 0.08, 0.08);
    std::vector<uint8_t> read(kStack * kFrame);
    for (int64_t s = 0; s < buffer->observations_written(); ++s) {
      buffer->ReadObservation(s, read);
      const auto& info = streams.slot(s);
      ASSERT_EQ(read, streams.episodes()[info.episode].obs[info.t]) << "slot " << s;
    }
    // Every step whose window completed is a transition (nothing dropped).
    int64_t expected = 0;
    for (const auto& ep : streams.episodes()) {
      const int steps = static_cast<int>(ep.obs.size()) - 1;
      expected += ep.ended ? steps : std::max(0, steps - n + 1);
    }
    EXPECT_EQ(buffer->size(), expected);
    std::mt19937_64 rng(3);
    streams.CheckSamples(2048, rng);
  }
}

TEST(ReplayBufferFrameStackTest, WrapAroundRemovesTransitionsThatLostAFrame) {
  // Small rings: predecessors are overwritten constantly; the sampler must
  // never return a stack that differs from the one passed in.
  for (int n : {1, 3}) {
    for (int envs : {1, 2}) {
      const int64_t capacity = ReplayBufferConfig::MinCapacity(envs, n, kStack) + 3;
      for (bool prioritized : {false, true}) {
        const ReplayBufferConfig config = StackConfig(capacity, envs, n);
        std::unique_ptr<ReplayBuffer> buffer =
            prioritized ? std::make_unique<ReplayBuffer>(config, std::make_unique<PrioritizedSampler>(capacity, PrioritizedSamplerConfig{}))
                        : Uniform(config);
        StackedStreams streams(*buffer, kStack, kFrame, 100 + n + envs);
        std::mt19937_64 rng(9);
        for (int t = 0; t < 3000; ++t) {
          streams.Step(t % envs, 0.05, 0.05);
          ASSERT_LE(buffer->size(), capacity);
          ASSERT_NO_FATAL_FAILURE(streams.CheckSamples(8, rng));
        }
        EXPECT_GT(buffer->size(), capacity / 3);
      }
    }
  }
}

// Steps t of episode 0 (env 0's) whose transitions the buffer samples (a
// large batch covers them all).
std::set<int> SampledEnv0Steps(ReplayBuffer& buffer, const StackedStreams& streams) {
  const int b = 4096;
  const int64_t obs = buffer.config().observation_size;
  std::vector<uint8_t> o(b * obs), no(b * obs);
  std::vector<int32_t> actions(b);
  std::vector<float> returns(b), discounts(b), weights(b);
  std::vector<int64_t> indices(b);
  std::mt19937_64 rng(1);
  buffer.Sample(b, rng, {o, actions, returns, discounts, no, weights, indices});
  std::set<int> steps;
  for (int64_t s : indices) {
    if (streams.slot(s).episode == 0) steps.insert(streams.slot(s).t);
  }
  return steps;
}

TEST(ReplayBufferFrameStackTest, PendingWindowThatLostAFrameIsDropped) {
  // Env 0 stays idle while env 1 overwrites env 0's older frames (but not its
  // pending step): env 0's next transition cannot be rebuilt and is dropped.
  const ReplayBufferConfig config = StackConfig(ReplayBufferConfig::MinCapacity(2, 1, kStack), 2, 1);
  ASSERT_EQ(config.capacity, 20);
  auto buffer = Uniform(config);
  StackedStreams streams(*buffer, kStack, kFrame, 4);
  for (int t = 0; t < 6; ++t) streams.Step(0, 0.0, 0.0);  // Env 0's o_0..o_6 in slots 0..6.
  EXPECT_EQ(buffer->size(), 6);
  EXPECT_EQ(SampledEnv0Steps(*buffer, streams), (std::set<int>{0, 1, 2, 3, 4, 5}));
  for (int t = 0; t < 14; ++t) streams.Step(1, 0.0, 0.0);  // Env 1 in slots 7..19, 0, 1.
  // Env 0's o_0, o_1 are gone: transitions from o_0..o_4 lost a frame.
  EXPECT_EQ(SampledEnv0Steps(*buffer, streams), (std::set<int>{5}));
  // o_7 overwrites slot 2 (o_2): o_5 loses a frame; o_6's transition is added.
  streams.Step(0, 0.0, 0.0);
  EXPECT_EQ(SampledEnv0Steps(*buffer, streams), (std::set<int>{6}));
  for (int t = 0; t < 6; ++t) streams.Step(1, 0.0, 0.0);  // Slots 3..8: env 0's o_3..o_6 are gone.
  EXPECT_EQ(SampledEnv0Steps(*buffer, streams), (std::set<int>{}));
  // o_8 in slot 9; the transition from o_7 (needs o_6) is dropped when emitted.
  streams.Step(0, 0.0, 0.0);
  EXPECT_EQ(SampledEnv0Steps(*buffer, streams), (std::set<int>{}));
  std::mt19937_64 rng(2);
  ASSERT_NO_FATAL_FAILURE(streams.CheckSamples(256, rng));
  // o_9..o_12 in slots 10..13: from o_10 on (stack o_7..o_10, o_7 still in
  // slot 2), transitions come back; o_8, o_9 need o_5, o_6 (gone).
  for (int t = 0; t < 4; ++t) streams.Step(0, 0.0, 0.0);
  EXPECT_EQ(SampledEnv0Steps(*buffer, streams), (std::set<int>{10, 11}));
  ASSERT_NO_FATAL_FAILURE(streams.CheckSamples(256, rng));
}

TEST(ReplayBufferFrameStackTest, SaveLoadIsByteIdenticalAndContinuesIdentically) {
  const ReplayBufferConfig config = StackConfig(ReplayBufferConfig::MinCapacity(2, 3, kStack) + 5, 2, 3);
  auto a = std::make_unique<ReplayBuffer>(config, std::make_unique<PrioritizedSampler>(config.capacity, PrioritizedSamplerConfig{}));
  auto b = std::make_unique<ReplayBuffer>(config, std::make_unique<PrioritizedSampler>(config.capacity, PrioritizedSamplerConfig{}));
  StackedStreams streams(*a, kStack, kFrame, 8);
  for (int t = 0; t < 300; ++t) streams.Step(t % 2, 0.05, 0.05);
  ByteWriter writer;
  a->Save(writer);
  const std::string bytes = writer.Release();
  ByteReader reader(bytes);
  ASSERT_TRUE(b->Load(reader).ok());
  ByteWriter again;
  b->Save(again);
  EXPECT_EQ(again.Release(), bytes);
  std::mt19937_64 ra(4), rb(4);
  for (int i = 0; i < 3; ++i) {
    const int64_t obs = config.observation_size;
    std::vector<uint8_t> oa(16 * obs), na(16 * obs), ob(16 * obs), nb(16 * obs);
    std::vector<int32_t> aa(16), ab(16);
    std::vector<float> r1(16), d1(16), w1(16), r2(16), d2(16), w2(16);
    std::vector<int64_t> ia(16), ib(16);
    a->Sample(16, ra, {oa, aa, r1, d1, na, w1, ia});
    b->Sample(16, rb, {ob, ab, r2, d2, nb, w2, ib});
    EXPECT_EQ(oa, ob);
    EXPECT_EQ(na, nb);
    EXPECT_EQ(ia, ib);
  }
  // A buffer with another frame_stack rejects the state.
  ReplayBufferConfig other = config;
  other.frame_stack = 2;
  auto c = std::make_unique<ReplayBuffer>(other, std::make_unique<PrioritizedSampler>(other.capacity, PrioritizedSamplerConfig{}));
  ByteReader other_reader(bytes);
  EXPECT_EQ(c->Load(other_reader).code(), Status::Code::kCorruption);
  ByteReader truncated(std::string_view(bytes).substr(0, bytes.size() / 2));
  EXPECT_EQ(b->Load(truncated).code(), Status::Code::kCorruption);
}

// Load checks that no pending slot can be overwritten before its window
// emits it; every state that Add reaches with envs stepped in turn, at the
// smallest capacity and with short episodes, must pass that check.
TEST(ReplayBufferFrameStackTest, EveryReachableStateAtMinimalCapacityLoads) {
  for (int k : {1, kStack}) {
    for (int n : {1, 3}) {
      const int envs = 3;
      ReplayBufferConfig config{.capacity = ReplayBufferConfig::MinCapacity(envs, n, k),
                                .num_envs = envs,
                                .observation_size = k * kFrame,
                                .n_step = {.n = n, .gamma = 0.9},
                                .frame_stack = k,
                                .verify_stacks = true};
      ReplayBuffer a(config, std::make_unique<UniformSampler>(config.capacity));
      ReplayBuffer b(config, std::make_unique<UniformSampler>(config.capacity));
      StackedStreams streams(a, k, kFrame, 11);
      for (int round = 0; round < 200; ++round) {
        for (int env = 0; env < envs; ++env) streams.Step(env, 0.15, 0.1);
        ByteWriter writer;
        a.Save(writer);
        ByteReader reader(writer.bytes());
        const Status loaded = b.Load(reader);
        ASSERT_TRUE(loaded.ok()) << "k " << k << " n " << n << " round " << round << ": " << loaded.ToString();
      }
    }
  }
}

TEST(ReplayBufferFrameStackDeathTest, RejectsObservationsThatAreNotStacks) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const ReplayBufferConfig config = StackConfig(100, 1, 1);
  // An episode's first observation with a non-zero older frame.
  const auto nonzero_first = [&config] {
    auto buffer = Uniform(config);
    std::vector<uint8_t> o(kStack * kFrame, 1), empty;
    buffer->Add(0, o, 0, 0.0f, false, false, o, empty);
  };
  EXPECT_DEATH(nonzero_first(), "zero-filled");
  // A next observation that does not shift by one frame.
  const auto not_shifted = [&config] {
    auto buffer = Uniform(config);
    std::vector<uint8_t> o(kStack * kFrame, 0), next(kStack * kFrame, 0), empty;
    o.back() = 1;
    next.back() = 2;  // Its frame k-2 should be o's newest frame (1s).
    buffer->Add(0, o, 0, 0.0f, false, false, next, empty);
  };
  EXPECT_DEATH(not_shifted(), "rebuild exactly");
}

}  // namespace
}  // namespace tokenrl::replay
