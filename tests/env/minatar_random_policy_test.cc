// Distribution-level check against the original game (spec section 7.3): the
// mean return of a uniform random policy over 1000 episodes (default options)
// must lie within 4 combined standard errors of the anchor measured on the
// original MinAtar. Exact parity is the fixture test's job; this guards the
// defaults (sticky 0.1, ramping, 6 actions) and the episode protocol.

#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "tokenrl/env/registry.h"

namespace tokenrl::env {
namespace {

struct Anchor {
  const char* game;
  double mean;
  double stderr_mean;
  double mean_length;
};

class RandomPolicyTest : public ::testing::TestWithParam<Anchor> {};

TEST_P(RandomPolicyTest, MeanReturnMatchesOriginal) {
  const Anchor anchor = GetParam();
  EnvConfig config;
  config.name = std::string("minatar/") + anchor.game;
  auto env = std::move(MakeEnvironment(config)).value();
  std::mt19937_64 rng(12345);
  env->Reset(0);
  double sum = 0.0, sq = 0.0, length = 0.0;
  constexpr int kEpisodes = 1000;
  for (int e = 0; e < kEpisodes; ++e) {
    StepResult r;
    do {
      r = *env->Step(static_cast<int>(rng() % 6));
    } while (!r.done());
    sum += env->episode_return();
    sq += env->episode_return() * env->episode_return();
    length += static_cast<double>(env->episode_steps());
    env->Reset();
  }
  const double mean = sum / kEpisodes;
  const double se = std::sqrt((sq / kEpisodes - mean * mean) / (kEpisodes - 1));
  const double tolerance = 4.0 * std::hypot(se, anchor.stderr_mean);
  EXPECT_NEAR(mean, anchor.mean, tolerance) << anchor.game << ": ours " << mean << " ± " << se;
  EXPECT_NEAR(length / kEpisodes, anchor.mean_length, 0.15 * anchor.mean_length) << anchor.game;
}

INSTANTIATE_TEST_SUITE_P(Anchors, RandomPolicyTest,
                         ::testing::Values(Anchor{"asterix", 0.465, 0.025, 69.8}, Anchor{"breakout", 0.501, 0.024, 11.1},
                                           Anchor{"freeway", 0.147, 0.012, 2501.0},
                                           Anchor{"seaquest", 0.125, 0.014, 31.7},
                                           Anchor{"space_invaders", 3.006, 0.075, 52.4}),
                         [](const auto& info) { return std::string(info.param.game); });

}  // namespace
}  // namespace tokenrl::env
