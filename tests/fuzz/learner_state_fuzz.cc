// Fuzz target: a learner's checkpointed state (Learner::Load) for the backend
// named by TOKENRL_FUZZ_BACKEND ("cpu", or "torch" in learner_torch_state_fuzz).
// The network has every kind of state tensor (SoftMoE with 2 experts, C51 +
// dueling + noisy head: Adam moments, noise streams), 2 members. Contract
// (CheckStateLoad): rejected = unchanged; accepted = saves and loads back
// identically, then Q-values, an update and diagnostics run.

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "tokenrl/nn/learner.h"
#if TOKENRL_FUZZ_TORCH
#include "tokenrl/nn/torch/torch_learner.h"
#endif

namespace {

using tokenrl::ByteReader;
using tokenrl::ByteWriter;
using tokenrl::fuzz::Require;
namespace nn = tokenrl::nn;

constexpr int kMembers = 2, kBatch = 3;
const nn::NetworkIo kIo{.channels = 4, .height = 5, .width = 5, .num_actions = 3};

struct Fixture {
  std::unique_ptr<nn::Learner> learner;
  std::string valid_state;
  std::vector<uint8_t> observations, next_observations;
  std::vector<int32_t> actions;
  std::vector<float> returns, discounts, weights;
};

Fixture& Get() {
  static Fixture f = [] {
#if TOKENRL_FUZZ_TORCH
    nn::RegisterTorchLearnerBackend();
#endif
    nn::NetworkConfig network;
    network.encoder.minatar_channels = 4;
    network.mixer.type = nn::MixerType::kSoftMoe;
    network.mixer.num_experts = 2;
    network.mixer.expert_hidden_units = 6;
    network.head.distributional = true;
    network.head.num_atoms = 5;
    network.head.dueling = true;
    network.head.noisy = true;
    nn::LearnerConfig config;
    config.backend = TOKENRL_FUZZ_BACKEND;
    config.seed = 9;
    auto made = nn::MakeLearner(network, config, kIo, kMembers);
    Require(made.ok(), "cannot make the learner: " + made.status().ToString());
    Fixture fx;
    fx.learner = std::move(*made);
    std::mt19937 rng(1);
    const size_t rows = kMembers * kBatch, obs = rows * kIo.channels * kIo.height * kIo.width;
    for (size_t i = 0; i < obs; ++i) fx.observations.push_back(static_cast<uint8_t>(rng() % 2));
    for (size_t i = 0; i < obs; ++i) fx.next_observations.push_back(static_cast<uint8_t>(rng() % 2));
    for (size_t i = 0; i < rows; ++i) {
      fx.actions.push_back(static_cast<int32_t>(rng() % kIo.num_actions));
      fx.returns.push_back(static_cast<float>(rng() % 3) - 1.0f);
      fx.discounts.push_back(0.9f);
      fx.weights.push_back(1.0f);
    }
    // Two updates so that the Adam moments and step are not at their initial values.
    nn::UpdateResult result;
    for (int i = 0; i < 2; ++i) {
      const nn::UpdateBatch batch{kBatch, fx.observations, fx.actions, fx.returns, fx.discounts,
                                  fx.next_observations, fx.weights};
      Require(fx.learner->Update(batch, result).ok(), "the fixture's update failed");
    }
    ByteWriter w;
    fx.learner->Save(w);
    fx.valid_state = w.bytes();
    return fx;
  }();
  return f;
}

std::string Save(const nn::Learner& learner) {
  ByteWriter w;
  learner.Save(w);
  return w.Release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = Get();
  nn::Learner& learner = *f.learner;
  {
    ByteReader r(f.valid_state);
    Require(learner.Load(r).ok(), "the valid state no longer loads");
  }
  const std::string state = tokenrl::fuzz::StateFromInput(f.valid_state, data, size);
  tokenrl::fuzz::CheckStateLoad(
      state, [&] { return Save(learner); },
      [&](std::string_view s) {
        ByteReader r(s);
        return learner.Load(r);
      },
      [&] {
        std::vector<float> q(static_cast<size_t>(kMembers * kBatch * kIo.num_actions));
        learner.QValues(f.observations, kBatch, /*noise=*/true, q);
        nn::UpdateResult result;
        const nn::UpdateBatch batch{kBatch, f.observations, f.actions, f.returns, f.discounts,
                                    f.next_observations, f.weights};
        (void)learner.Update(batch, result);  // A state can be valid and still diverge: a Status, not a crash.
        (void)learner.Diagnostics(f.observations, kBatch, {0.0, 0.1});
      });
  return 0;
}
