// Every network preset under configs/networks/ (on the MinAtar encoder, with
// the plain Q head and with the full Rainbow head) builds through the Learner
// interface on the torch backend and takes finite gradient steps: "every
// variant of the paper can be built from a config and trained".

#include <algorithm>
#include <random>

#include <gtest/gtest.h>

#include "testing/network_presets.h"
#include "tokenrl/config/config.h"
#include "tokenrl/nn/learner.h"
#include "tokenrl/nn/torch/torch_learner.h"

namespace tokenrl::nn {
namespace {

using testing::PresetRoot;

class NetworkPresetTrainTest : public ::testing::TestWithParam<std::string> {};

TEST_P(NetworkPresetTrainTest, TrainsOnMinatarWithQAndRainbowHeads) {
  RegisterTorchLearnerBackend();
  const std::string dir = std::string(TOKENRL_SOURCE_DIR) + "/configs/";
  for (bool rainbow : {false, true}) {
    std::vector<std::string> overrides;
    if (rainbow) {
      overrides = {"network.head.distributional=true", "network.head.dueling=true", "network.head.noisy=true"};
    }
    auto root = config::Load<PresetRoot>({dir + "encoders/minatar.toml", dir + "networks/" + GetParam() + ".toml"},
                                         overrides);
    ASSERT_TRUE(root.ok()) << root.status().ToString();
    // Keep the widest presets cheap: the structure, not the width, is under test.
    root->network.mixer.hidden_units = std::min<int64_t>(root->network.mixer.hidden_units, 64);
    root->network.mixer.expert_hidden_units = std::min<int64_t>(root->network.mixer.expert_hidden_units, 64);
    LearnerConfig learner_config;
    learner_config.backend = "torch";
    learner_config.double_q = rainbow;
    const NetworkIo io{.channels = 4, .height = 10, .width = 10, .num_actions = 6};
    constexpr int kMembers = 2, kBatch = 4;
    auto learner = MakeLearner(root->network, learner_config, io, kMembers);
    ASSERT_TRUE(learner.ok()) << GetParam() << ": " << learner.status().ToString();
    std::mt19937 rng(1);
    const size_t obs_size = static_cast<size_t>(kMembers * kBatch * 4 * 10 * 10);
    std::vector<uint8_t> obs(obs_size), next_obs(obs_size);
    for (auto& x : obs) x = static_cast<uint8_t>(rng() % 2);
    for (auto& x : next_obs) x = static_cast<uint8_t>(rng() % 2);
    std::vector<int32_t> actions(kMembers * kBatch);
    for (auto& a : actions) a = static_cast<int32_t>(rng() % 6);
    const std::vector<float> returns(kMembers * kBatch, 1.0f), discounts(kMembers * kBatch, 0.99f);
    UpdateBatch batch{.batch_size = kBatch, .observations = obs, .actions = actions, .returns = returns,
                      .discounts = discounts, .next_observations = next_obs, .weights = {}};
    UpdateResult result;
    for (int step = 0; step < 2; ++step) {
      ASSERT_TRUE((*learner)->Update(batch, result).ok()) << GetParam();
      for (float l : result.loss) ASSERT_TRUE(std::isfinite(l)) << GetParam() << (rainbow ? " rainbow" : " q");
    }
    std::vector<int32_t> greedy(kMembers * kBatch);
    (*learner)->GreedyActions(obs, kBatch, /*noise=*/false, greedy);
    for (int32_t a : greedy) ASSERT_TRUE(a >= 0 && a < 6);
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, NetworkPresetTrainTest, ::testing::ValuesIn(testing::PresetFiles("networks", false)),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace tokenrl::nn
