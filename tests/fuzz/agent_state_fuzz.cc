// Fuzz target: a whole agent's checkpointed state (Agent::Load: counters,
// random streams, every member's replay, the learner), the payload of the
// trainer's checkpoints after their header. The agent is a MinAtar Rainbow
// (prioritized 3-step replay, C51 + dueling + noisy, CPU engine) made small:
// 2 members, replay capacity 64, a 4-channel encoder and a flatten head of
// width 8 (the learner's own target covers SoftMoE), updates from step 20.
// Contract (CheckStateLoad): rejected = unchanged; accepted = saves and loads
// back identically, then 30 more steps of acting and learning run.

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "tokenrl/agents/agent.h"
#include "tokenrl/config/config.h"
#include "tokenrl/env/vector_env.h"
#include "tokenrl/runner/trainer.h"

namespace {

using tokenrl::ByteReader;
using tokenrl::ByteWriter;
using tokenrl::fuzz::Require;
namespace agents = tokenrl::agents;
namespace env = tokenrl::env;
namespace runner = tokenrl::runner;

struct Fixture {
  std::unique_ptr<env::VectorEnv> envs;
  std::unique_ptr<agents::Agent> agent;
  std::string valid_state;
  std::vector<uint8_t> observations;
  std::vector<int32_t> actions;
};

// Steps every environment once with the agent's actions and lets it observe.
void Step(Fixture& f) {
  env::VectorEnv& envs = *f.envs;
  f.observations.assign(envs.observations_u8().begin(), envs.observations_u8().end());
  f.agent->SelectActions(f.observations, f.actions);
  Require(envs.Step(f.actions).ok(), "the agent chose an invalid action");
  const agents::StepView view{f.observations,     f.actions,         envs.rewards(),
                              envs.terminated(),  envs.truncated(),  envs.observations_u8(),
                              envs.final_observations_u8()};
  (void)f.agent->Observe(view);  // A fuzzed state may diverge: a Status, not a crash.
}

Fixture& Get() {
  static Fixture f = [] {
    auto config = tokenrl::config::Load<runner::TrainConfig>(
        {TOKENRL_SOURCE_DIR "/configs/agents/minatar_rainbow.toml"},
        {"vector_env.members=2", "agent.replay.capacity=64", "agent.min_replay_env_steps=20", "agent.batch_size=4",
         "agent.target_update_period_env_steps=8", "network.encoder.minatar_channels=4",
         "network.mixer.type=flatten", "network.mixer.hidden_units=8", "network.head.num_atoms=5", "learner.backend=cpu", "seed=3"});
    Require(config.ok(), "bad fixture config: " + config.status().ToString());
    config->ResolveSeeds();
    Fixture fx;
    auto envs = env::VectorEnv::Create(config->env, config->vector_env);
    Require(envs.ok(), "cannot make the environments: " + envs.status().ToString());
    fx.envs = std::move(*envs);
    auto agent = runner::MakeAgent(*config, fx.envs->spec());
    Require(agent.ok(), "cannot make the agent: " + agent.status().ToString());
    fx.agent = std::move(*agent);
    fx.actions.resize(static_cast<size_t>(fx.envs->num_envs()));
    fx.envs->Reset();
    for (int i = 0; i < 90; ++i) Step(fx);  // Past the replay's wrap-around, with updates and target syncs.
    ByteWriter w;
    fx.agent->Save(w);
    fx.valid_state = w.bytes();
    return fx;
  }();
  return f;
}

std::string Save(const agents::Agent& agent) {
  ByteWriter w;
  agent.Save(w);
  return w.Release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = Get();
  agents::Agent& agent = *f.agent;
  {
    ByteReader r(f.valid_state);
    Require(agent.Load(r).ok(), "the valid state no longer loads");
  }
  const std::string state = tokenrl::fuzz::StateFromInput(f.valid_state, data, size);
  tokenrl::fuzz::CheckStateLoad(
      state, [&] { return Save(agent); },
      [&](std::string_view s) {
        ByteReader r(s);
        return agent.Load(r);
      },
      [&] {
        for (int i = 0; i < 30; ++i) Step(f);
      });
  return 0;
}
