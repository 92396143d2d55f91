// `tokenrl bench env`: environment throughput, one line per game:
//   bench env GAME STEPS_PER_S
// Random actions (a xorshift generator, so the policy costs next to nothing),
// the observation written into a caller buffer on every step, automatic reset
// at episode ends. One thread by default; with --threads T, T threads each
// step their own environment and the line reports the total rate.
// Atari environments (atari/<game>, atari-fake/<name>; not in the default
// list) keep their full name and add emulator frames per second, the rate of
// the emulator alone (a clone stepped with random actions, reading the two
// screens per step the protocol reads, no preprocessing) and so the cost of
// Dopamine's preprocessing (max-pool, resize, stack, copies) per agent step:
//   bench env NAME STEPS_PER_S frames/s F emulator-alone-frames/s E preprocessing-us/step P

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tokenrl/cli/bench_net.h"
#include "tokenrl/cli/commands.h"
#include "tokenrl/cli/train_commands.h"
#include "tokenrl/env/atari/atari_env.h"
#include "tokenrl/env/frame_stack.h"
#include "tokenrl/env/registry.h"
#include "tokenrl/env/vector_env.h"

namespace tokenrl::cli {
namespace {

struct BenchOptions {
  std::vector<std::string> games;
  int64_t steps = 2'000'000;
  int threads = 1;
  std::string dtype = "uint8";
};

// Steps one environment `steps` times; returns a checksum so the work cannot
// be optimized away.
template <typename T>
uint64_t RunOne(env::Environment& env, int64_t steps, uint32_t seed) {
  std::vector<T> obs(static_cast<size_t>(env.spec().observation_size()));
  const uint32_t num_actions = static_cast<uint32_t>(env.spec().num_actions());
  uint64_t x = 0x9E3779B97F4A7C15ull ^ seed, checksum = 0;
  env.Reset(seed);
  for (int64_t t = 0; t < steps; ++t) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const auto r = *env.Step(static_cast<int>((x >> 32) % num_actions));
    env.WriteObservation(std::span<T>(obs));
    checksum += static_cast<uint64_t>(obs[static_cast<size_t>(t % static_cast<int64_t>(obs.size()))]);
    if (r.done()) env.Reset();
  }
  return checksum;
}

// The Atari protocol inside `env` (possibly under FrameStack), or null.
const env::atari::AtariEnvironment* FindAtari(const env::Environment& e) {
  if (const auto* stack = dynamic_cast<const env::FrameStack*>(&e)) return FindAtari(stack->inner());
  return dynamic_cast<const env::atari::AtariEnvironment*>(&e);
}

// Frames per second of the bare emulator doing what the protocol needs from
// it: `steps` random actions from the game's action set, each held for
// `skip` Act calls, the grayscale screen read on the last two frames of each,
// the game reset when it ends. What the protocol adds on top (max-pool,
// resize, stacking, copies) is the preprocessing.
double EmulatorAloneFramesPerSecond(const env::atari::AtariEnvironment& atari, int64_t steps, int skip) {
  auto emulator = atari.emulator().Clone();
  const auto& ids = atari.action_ids();
  std::vector<uint8_t> screen(static_cast<size_t>(emulator->screen_height()) *
                              static_cast<size_t>(emulator->screen_width()));
  emulator->Seed(0);
  emulator->ResetGame();
  uint64_t x = 0x9E3779B97F4A7C15ull, checksum = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t t = 0; t < steps; ++t) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int action = ids[(x >> 32) % ids.size()];
    for (int f = 0; f < skip; ++f) {
      checksum += static_cast<uint64_t>(emulator->Act(action));
      if (f >= skip - 2) {
        emulator->WriteGrayscaleScreen(screen);
        checksum += screen[static_cast<size_t>(t) % screen.size()];
      }
    }
    if (emulator->game_over()) emulator->ResetGame();
  }
  const int64_t frames = steps * skip;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (checksum == 1) std::cerr << "";  // Keeps the work alive.
  return static_cast<double>(frames) / seconds;
}

Status BenchEnv(const BenchOptions& options) {
  std::vector<std::string> games = options.games;
  if (games.empty()) games = env::EnvRegistry::Global().Names();
  for (auto& g : games) {
    if (g.find('/') == std::string::npos) g = "minatar/" + g;  // `--game breakout` is fine.
    // Families (atari/<game>) are claimed by name but can still fail to build (no ALE, no ROM).
    env::EnvConfig probe;
    probe.name = g;
    if (auto made = env::MakeEnvironment(probe); !made.ok()) return made.status();
  }
  const bool as_float = options.dtype == "float32";
  for (const auto& game : games) {
    env::EnvConfig config;
    config.name = game;
    std::vector<std::unique_ptr<env::Environment>> envs;
    for (int t = 0; t < options.threads; ++t) envs.push_back(std::move(env::MakeEnvironment(config)).value());
    std::atomic<uint64_t> checksum{0};
    const auto start = std::chrono::steady_clock::now();
    auto work = [&](int t) {
      checksum += as_float ? RunOne<float>(*envs[static_cast<size_t>(t)], options.steps, static_cast<uint32_t>(t))
                           : RunOne<uint8_t>(*envs[static_cast<size_t>(t)], options.steps, static_cast<uint32_t>(t));
    };
    if (options.threads == 1) {
      work(0);
    } else {
      std::vector<std::thread> threads;
      for (int t = 0; t < options.threads; ++t) threads.emplace_back(work, t);
      for (auto& th : threads) th.join();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double rate = static_cast<double>(options.steps) * options.threads / seconds;
    if (const auto* atari = FindAtari(*envs.front())) {
      const int frame_skip = static_cast<int>(env::EnvConfig().atari.frame_skip);
      const double skip = static_cast<double>(frame_skip);
      const double alone = EmulatorAloneFramesPerSecond(*atari, options.steps, frame_skip);
      // Per agent step: total time minus the emulator's share (the same frames on the bare emulator).
      const double preprocessing_us = 1e6 * (static_cast<double>(options.threads) / rate - skip / alone);
      std::cout << fmt::format("bench env {} {:.0f} frames/s {:.0f} emulator-alone-frames/s {:.0f} "
                               "preprocessing-us/step {:.2f}",
                               game, rate, rate * skip, alone, preprocessing_us)
                << std::endl;
      continue;
    }
    const std::string short_name = game.substr(game.find('/') + 1);
    std::cout << fmt::format("bench env {} {:.0f}", short_name, rate) << std::endl;
    if (checksum.load() == 1) std::cerr << "";  // Keeps the checksum alive.
  }
  return Status::Ok();
}

}  // namespace

void AddBenchCommand(CLI::App& app, int& exit_code) {
  auto* bench = app.add_subcommand("bench", "Benchmarks (throughput figures; not tests)");
  bench->require_subcommand(1);
  auto* env_cmd = bench->add_subcommand(
      "env", "Environment steps per second per game: random actions, observation written every step.\n"
             "Prints one line per game: `bench env GAME STEPS_PER_S`");
  auto options = std::make_shared<BenchOptions>();
  env_cmd->add_option("-g,--game", options->games,
                      "Game(s) to measure (default: all registered MinAtar games; atari-fake/<name> and atari/<game> "
                      "by name, ROMs from $TOKENRL_ATARI_ROMS)");
  env_cmd->add_option("-n,--steps", options->steps, "Steps per thread per game")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  env_cmd->add_option("-t,--threads", options->threads, "Threads, each stepping its own environment")
      ->check(CLI::Range(1, 256));
  env_cmd->add_option("--dtype", options->dtype, "Observation element type")
      ->check(CLI::IsMember({"uint8", "float32"}));
  env_cmd->callback([options, &exit_code] {
    const Status st = BenchEnv(*options);
    exit_code = st.ok() ? 0 : ReportError("bench env", st);
  });
  AddBenchNetCommand(*bench, exit_code);
  AddBenchTrainCommand(*bench, exit_code);
}

}  // namespace tokenrl::cli
