#include "tokenrl/replay/replay_buffer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
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

}  // namespace
}  // namespace tokenrl::replay
