// Fuzz target: environment state restore (Environment::LoadState: the states
// in checkpoints and MinAtar state files). The first input byte picks the
// environment (every registered name, then atari-fake/pong), the rest makes
// the state (StateFromInput: raw, or edits of a real mid-episode state).
// Contract (CheckStateLoad): rejected = unchanged; accepted = saves and loads
// back identically, then 60 steps (with resets), renders and clones run.

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "tokenrl/env/registry.h"

namespace {

using tokenrl::fuzz::Require;
namespace env = tokenrl::env;

std::vector<std::string> EnvNames() {
  std::vector<std::string> names = env::EnvRegistry::Global().Names();
  names.push_back("atari-fake/pong");
  return names;
}

struct Case {
  std::unique_ptr<env::Environment> environment;
  std::string valid_state;
};

// One environment per name, reset and stepped into an episode, made once.
std::vector<Case>& Cases() {
  static std::vector<Case> cases = [] {
    std::vector<Case> out;
    for (const std::string& name : EnvNames()) {
      env::EnvConfig config;
      config.name = name;
      auto made = env::MakeEnvironment(config);
      Require(made.ok(), "cannot make " + name + ": " + made.status().ToString());
      Case c{std::move(*made), ""};
      c.environment->Reset(11);
      std::mt19937 rng(5);
      for (int i = 0; i < 40; ++i) {
        auto step = c.environment->Step(static_cast<int>(rng() % c.environment->spec().num_actions()));
        if (!step.ok() || step->done()) c.environment->Reset();
      }
      c.valid_state = c.environment->SaveState();
      out.push_back(std::move(c));
    }
    return out;
  }();
  return cases;
}

void Exercise(env::Environment& e) {
  std::vector<uint8_t> observation(static_cast<size_t>(e.spec().observation_size()));
  std::mt19937 rng(3);
  // A state saved before the first reset is valid; it needs a seeded reset first (Reset() requires one).
  if (!e.seeded()) e.Reset(17);
  for (int i = 0; i < 60; ++i) {
    if (!e.episode_running()) e.Reset();
    auto step = e.Step(static_cast<int>(rng() % e.spec().num_actions()));
    Require(step.ok(), "a running episode refused a valid action: " + step.status().ToString());
    e.WriteObservation(observation);
    for (uint8_t v : observation) {
      Require(v >= e.spec().observation_low && v <= e.spec().observation_high, "an observation value out of range");
    }
  }
  (void)e.ToString();
  auto copy = e.Clone();
  Require(copy->SaveState() == e.SaveState(), "a clone saves different bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<Case>& cases = Cases();
  Case& c = cases[data[0] % cases.size()];
  env::Environment& e = *c.environment;
  Require(e.LoadState(c.valid_state).ok(), "the valid state no longer loads");
  const std::string state = tokenrl::fuzz::StateFromInput(c.valid_state, data + 1, size - 1);
  tokenrl::fuzz::CheckStateLoad(
      state, [&] { return e.SaveState(); }, [&](std::string_view s) { return e.LoadState(s); },
      [&] { Exercise(e); });
  return 0;
}
