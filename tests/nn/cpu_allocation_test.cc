// The CPU engine allocates nothing per update or per action after warm-up
// (issue 5): this binary counts every operator new.

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>

#include <gtest/gtest.h>

#include "tokenrl/nn/learner.h"

namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace tokenrl::nn {
namespace {

TEST(CpuEngineAllocationTest, NoAllocationPerUpdateOrActionAfterWarmUp) {
  for (MixerType mixer : {MixerType::kFlatten, MixerType::kTokenizedSum, MixerType::kSoftMoe,
                          MixerType::kTokenChoice, MixerType::kExpertChoice}) {
    for (int threads : {1, 2}) {
      NetworkConfig network;
      network.mixer.type = mixer;
      network.mixer.hidden_units = 32;
      network.mixer.expert_hidden_units = 16;
      network.head.distributional = network.head.dueling = network.head.noisy = mixer == MixerType::kSoftMoe;
      const NetworkIo io{.channels = 4, .height = 10, .width = 10, .num_actions = 6};
      LearnerConfig config;
      config.backend = "cpu";
      config.num_threads = threads;
      config.double_q = true;
      constexpr int kMembers = 3, kBatch = 8;
      auto learner = MakeLearner(network, config, io, kMembers);
      ASSERT_TRUE(learner.ok()) << learner.status().ToString();
      std::mt19937 rng(1);
      const size_t rows = kMembers * kBatch, obs_size = rows * 400;
      std::vector<uint8_t> obs(obs_size), next_obs(obs_size);
      for (auto& x : obs) x = rng() % 3 == 0;
      for (auto& x : next_obs) x = rng() % 3 == 0;
      std::vector<int32_t> actions(rows), greedy(kMembers);
      for (auto& a : actions) a = static_cast<int32_t>(rng() % 6);
      const std::vector<float> returns(rows, 1.0f), discounts(rows, 0.99f), weights(rows, 0.5f);
      const UpdateBatch batch{kBatch, obs, actions, returns, discounts, next_obs, weights};
      UpdateResult result;
      const std::span<const uint8_t> one(obs.data(), kMembers * 400);
      auto work = [&] {
        for (int i = 0; i < 3; ++i) {
          ASSERT_TRUE((*learner)->Update(batch, result).ok());
          (*learner)->GreedyActions(one, 1, /*noise=*/true, greedy);
          (*learner)->SyncTarget();
        }
      };
      work();  // Warm-up: buffers grow to their sizes.
      const int64_t before = g_allocations.load();
      work();
      EXPECT_EQ(g_allocations.load() - before, 0) << "mixer " << static_cast<int>(mixer) << ", " << threads
                                                  << " thread(s)";
    }
  }
}

}  // namespace
}  // namespace tokenrl::nn
