// Every network preset under configs/networks/ parses strictly (alone and
// layered over every encoder preset) and yields consistent shapes on MinAtar
// and Atari inputs.

#include <algorithm>

#include <gtest/gtest.h>

#include "testing/network_presets.h"
#include "tokenrl/config/config.h"
#include "tokenrl/nn/network_config.h"

namespace tokenrl::nn {
namespace {

using testing::PresetRoot;

TEST(NetworkPresetsTest, EveryPresetBuildsShapesOnEveryEncoder) {
  const auto networks = testing::PresetFiles("networks", true);
  const auto encoders = testing::PresetFiles("encoders", true);
  ASSERT_GE(networks.size(), 40u);
  ASSERT_EQ(encoders.size(), 3u);
  const NetworkIo minatar{.channels = 4, .height = 10, .width = 10, .num_actions = 6};
  const NetworkIo atari{.channels = 4, .height = 84, .width = 84, .num_actions = 18, .input_scale = 1.0f / 255};
  for (const auto& net : networks) {
    for (const auto& enc : encoders) {
      auto root = config::Load<PresetRoot>({enc, net}, {});
      ASSERT_TRUE(root.ok()) << net << ": " << root.status().ToString();
      for (const NetworkIo& io : {minatar, atari}) {
        // Per-patch tokens need a feature map at least one patch wide.
        auto shapes = ComputeShapes(root->network, io);
        ASSERT_TRUE(shapes.ok()) << enc << " + " << net << " on " << io.height << "x" << io.width << ": "
                                 << shapes.status().ToString();
        EXPECT_GT(shapes->features, 0);
        EXPECT_GT(shapes->num_tokens, 0);
      }
    }
  }
}

TEST(NetworkPresetsTest, PaperShapesOnAtari) {
  const NetworkIo atari{.channels = 4, .height = 84, .width = 84, .num_actions = 18};
  auto load = [](const std::string& enc, const std::string& net) {
    const std::string dir = std::string(TOKENRL_SOURCE_DIR) + "/configs/";
    return config::Load<PresetRoot>({dir + "encoders/" + enc + ".toml", dir + "networks/" + net + ".toml"}, {})
        .value()
        .network;
  };
  // softmoe_reference 4.2: Impala PerConv 121 tokens of 32; n=4 -> 31 slots per expert.
  auto s = ComputeShapes(load("impala", "softmoe_4"), atari).value();
  EXPECT_EQ(s.num_tokens, 121);
  EXPECT_EQ(s.token_dim, 32);
  EXPECT_EQ(s.slots_per_expert, 31);
  EXPECT_EQ(s.features, 121 * 32);
  s = ComputeShapes(load("nature", "softmoe_8"), atari).value();
  EXPECT_EQ(s.token_dim, 64);
  EXPECT_EQ(s.slots_per_expert, 16);
  s = ComputeShapes(load("impala", "softmoe_1_scaled_x4_slots_10pct"), atari).value();
  EXPECT_EQ(s.slots_per_expert, 13);  // ceil(0.1 * 121)
  s = ComputeShapes(load("impala", "softmoe_1_scaled_x4_one_slot"), atari).value();
  EXPECT_EQ(s.slots_per_expert, 1);
  s = ComputeShapes(load("impala", "expertchoice_4_unlimited"), atari).value();
  EXPECT_EQ(s.slots_per_expert, 121);
  s = ComputeShapes(load("impala", "tokenized_sum_per_feat_x4"), atari).value();
  EXPECT_EQ(s.num_tokens, 32);
  EXPECT_EQ(s.token_dim, 121);
  EXPECT_EQ(s.features, 2048);
}

}  // namespace
}  // namespace tokenrl::nn
