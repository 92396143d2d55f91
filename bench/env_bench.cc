// Micro-benchmarks of environment stepping (Google Benchmark). The headline
// figures come from `tokenrl bench env`; these isolate single env vs VectorEnv.
//   ./build/bench/tokenrl_bench --benchmark_filter=Minatar

#include <benchmark/benchmark.h>

#include <random>

#include "tokenrl/env/registry.h"
#include "tokenrl/env/vector_env.h"

namespace tokenrl::env {
namespace {

const char* kGames[] = {"minatar/asterix", "minatar/breakout", "minatar/freeway", "minatar/seaquest",
                        "minatar/space_invaders"};

void BM_MinatarStep(benchmark::State& state) {
  EnvConfig config;
  config.name = kGames[state.range(0)];
  auto env = std::move(MakeEnvironment(config)).value();
  std::vector<uint8_t> obs(static_cast<size_t>(env->spec().observation_size()));
  std::mt19937 rng(0);
  env->Reset(0);
  for (auto _ : state) {
    const StepResult r = *env->Step(static_cast<int>(rng() % 6));
    env->WriteObservation(std::span<uint8_t>(obs));
    benchmark::DoNotOptimize(obs.data());
    if (r.done()) env->Reset();
  }
  state.SetLabel(config.name);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MinatarStep)->DenseRange(0, 4);

void BM_MinatarVectorStep(benchmark::State& state) {
  EnvConfig config;
  config.name = kGames[state.range(0)];
  VectorEnvConfig vconfig{.members = 4, .envs_per_member = 16, .num_threads = state.range(1)};
  auto vec = std::move(VectorEnv::Create(config, vconfig)).value();
  std::vector<int32_t> actions(static_cast<size_t>(vec->num_envs()));
  std::mt19937 rng(0);
  vec->Reset();
  for (auto _ : state) {
    for (auto& a : actions) a = static_cast<int32_t>(rng() % 6);
    benchmark::DoNotOptimize(vec->Step(actions).ok());
  }
  state.SetLabel(config.name);
  state.SetItemsProcessed(state.iterations() * vec->num_envs());
}
BENCHMARK(BM_MinatarVectorStep)->ArgsProduct({{1, 4}, {1, 2}});

}  // namespace
}  // namespace tokenrl::env
