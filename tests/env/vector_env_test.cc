// VectorEnv: layout, auto-reset with final observations and episode
// statistics, seed derivation, thread-count independence, input errors.

#include "tokenrl/env/vector_env.h"

#include <random>

#include <gtest/gtest.h>

#include "tokenrl/core/seed.h"
#include "tokenrl/env/registry.h"

namespace tokenrl::env {
namespace {

std::unique_ptr<VectorEnv> MakeVector(const std::string& name, VectorEnvConfig config) {
  EnvConfig env_config;
  env_config.name = name;
  auto v = VectorEnv::Create(env_config, config);
  TOKENRL_CHECK(v.ok(), "{}", v.status().ToString());
  return std::move(v).value();
}

std::vector<int32_t> RandomActions(std::mt19937_64& rng, int n, int num_actions) {
  std::vector<int32_t> a(static_cast<size_t>(n));
  for (auto& x : a) x = static_cast<int32_t>(rng() % static_cast<uint64_t>(num_actions));
  return a;
}

TEST(VectorEnvTest, EachSlotMatchesAnIndependentlySeededEnvironment) {
  const VectorEnvConfig config{.members = 2, .envs_per_member = 3, .seed = 42};
  auto vec = MakeVector("minatar/breakout", config);
  vec->Reset();
  // Reference: 6 standalone environments seeded as documented.
  std::vector<std::unique_ptr<Environment>> refs;
  EnvConfig env_config;
  for (int m = 0; m < 2; ++m)
    for (int e = 0; e < 3; ++e) {
      refs.push_back(std::move(MakeEnvironment(env_config)).value());
      refs.back()->Reset(DeriveSeed32(42, {static_cast<uint64_t>(m), static_cast<uint64_t>(e)}));
    }
  const int obs_size = vec->spec().observation_size();
  std::vector<uint8_t> obs(static_cast<size_t>(obs_size));
  std::mt19937_64 rng(1);
  int episodes_seen = 0;
  for (int t = 0; t < 500; ++t) {
    const auto actions = RandomActions(rng, 6, vec->spec().num_actions());
    ASSERT_TRUE(vec->Step(actions).ok());
    for (int i = 0; i < 6; ++i) {
      auto r = refs[static_cast<size_t>(i)]->Step(actions[static_cast<size_t>(i)]);
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(vec->rewards()[static_cast<size_t>(i)], r->reward);
      ASSERT_EQ(vec->terminated()[static_cast<size_t>(i)], r->terminated);
      ASSERT_EQ(vec->truncated()[static_cast<size_t>(i)], r->truncated);
      refs[static_cast<size_t>(i)]->WriteObservation(std::span<uint8_t>(obs));
      const uint8_t* slot = vec->observations_u8().data() + static_cast<size_t>(i * obs_size);
      if (r->done()) {
        ++episodes_seen;
        const uint8_t* final_slot = vec->final_observations_u8().data() + static_cast<size_t>(i * obs_size);
        ASSERT_TRUE(std::equal(obs.begin(), obs.end(), final_slot)) << "final observation of env " << i;
        ASSERT_EQ(vec->episode_returns()[static_cast<size_t>(i)], refs[static_cast<size_t>(i)]->episode_return());
        ASSERT_EQ(vec->episode_lengths()[static_cast<size_t>(i)], refs[static_cast<size_t>(i)]->episode_steps());
        refs[static_cast<size_t>(i)]->Reset();  // auto-reset continues the stream
        refs[static_cast<size_t>(i)]->WriteObservation(std::span<uint8_t>(obs));
      }
      ASSERT_TRUE(std::equal(obs.begin(), obs.end(), slot)) << "observation of env " << i << " at step " << t;
    }
  }
  EXPECT_GT(episodes_seen, 10);
  EXPECT_EQ(vec->total_env_steps(), 500 * 6);
}

TEST(VectorEnvTest, ResultsDoNotDependOnThreadCountOrDtype) {
  VectorEnvConfig base{.members = 3, .envs_per_member = 5, .seed = 7};
  auto one = MakeVector("minatar/asterix", base);
  VectorEnvConfig threaded = base;
  threaded.num_threads = 2;
  threaded.obs_dtype = ObsDtype::kFloat32;
  auto two = MakeVector("minatar/asterix", threaded);
  one->Reset();
  two->Reset();
  std::mt19937_64 rng(5);
  for (int t = 0; t < 400; ++t) {
    const auto actions = RandomActions(rng, one->num_envs(), one->spec().num_actions());
    ASSERT_TRUE(one->Step(actions).ok());
    ASSERT_TRUE(two->Step(actions).ok());
    ASSERT_TRUE(std::equal(one->rewards().begin(), one->rewards().end(), two->rewards().begin()));
    const auto a = one->observations_u8();
    const auto b = two->observations_f32();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(static_cast<float>(a[i]), b[i]);
  }
}

TEST(VectorEnvTest, MembersAreSeededDifferently) {
  auto vec = MakeVector("minatar/freeway", {.members = 4, .envs_per_member = 1, .seed = 0});
  vec->Reset();
  const int obs_size = vec->spec().observation_size();
  const auto obs = vec->observations_u8();
  int distinct_pairs = 0;
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j)
      distinct_pairs += !std::equal(obs.begin() + i * obs_size, obs.begin() + (i + 1) * obs_size,
                                    obs.begin() + j * obs_size);
  EXPECT_GE(distinct_pairs, 5) << "freeway's random car speeds should differ across members";
}

TEST(VectorEnvTest, RejectsBadActionsWithoutStepping) {
  auto vec = MakeVector("minatar/breakout", {.members = 1, .envs_per_member = 2});
  EXPECT_FALSE(vec->Step(std::vector<int32_t>{0, 0}).ok()) << "Step before Reset must fail";
  vec->Reset();
  auto st = vec->Step(std::vector<int32_t>{0});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("expected 2 actions"), std::string::npos);
  st = vec->Step(std::vector<int32_t>{0, 6});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("action 6 for env 1"), std::string::npos) << st.message();
  EXPECT_EQ(vec->total_env_steps(), 0);
  EXPECT_EQ(vec->env(0, 1).episode_steps(), 0);
}

TEST(VectorEnvTest, UnknownEnvironmentIsAnError) {
  EnvConfig env_config;
  env_config.name = "nope";
  auto v = VectorEnv::Create(env_config, {});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace tokenrl::env
