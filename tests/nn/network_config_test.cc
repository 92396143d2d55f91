// ComputeShapes for every encoder x tokenizer x mixer on MinAtar [4, 10, 10]
// and Atari [4, 84, 84] inputs, with expected shapes worked out by hand
// (softmoe_reference.md sections 1.2-1.4, 3.1 and 4.2), and the combinations
// it must reject.

#include "tokenrl/nn/network_config.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace tokenrl::nn {
namespace {

constexpr std::array kEncoders{EncoderType::kMinatar, EncoderType::kNature, EncoderType::kImpala};
constexpr std::array kTokenizers{TokenizerType::kPerConv, TokenizerType::kPerFeat, TokenizerType::kPerPatch,
                                 TokenizerType::kShuffled, TokenizerType::kPerSamp};
constexpr std::array kMixers{MixerType::kFlatten, MixerType::kTokenizedSum, MixerType::kTokenizedMean, MixerType::kGap,
                             MixerType::kSoftMoe, MixerType::kTokenChoice,  MixerType::kExpertChoice};

NetworkIo Io(int size) { return {.channels = 4, .height = size, .width = size, .num_actions = 6}; }

struct FeatureMap {
  int channels, height, width;
};

// Encoder outputs, by hand: SAME padding gives ceil(n / stride) per layer.
//  * MinAtar: stride 1 keeps the grid.
//  * Nature: strides 4, 2, 1: 84 -> 21 -> 11 -> 11; 10 -> 3 -> 2 -> 2.
//  * Impala: three max-pools of stride 2: 84 -> 42 -> 21 -> 11; 10 -> 5 -> 3 -> 2.
FeatureMap ExpectedFeatures(EncoderType type, int size, int k) {
  switch (type) {
    case EncoderType::kMinatar:
      return {16 * k, size, size};
    case EncoderType::kNature:
      return size == 84 ? FeatureMap{64 * k, 11, 11} : FeatureMap{64 * k, 2, 2};
    case EncoderType::kImpala:
      return size == 84 ? FeatureMap{32 * k, 11, 11} : FeatureMap{32 * k, 2, 2};
  }
  return {};
}

std::string Name(EncoderType e, TokenizerType t, MixerType m, int size, int k) {
  return std::string(config::EnumNames<EncoderType>::kValues[static_cast<int>(e)].second) + "/" +
         std::string(config::EnumNames<TokenizerType>::kValues[static_cast<int>(t)].second) + "/" +
         std::string(config::EnumNames<MixerType>::kValues[static_cast<int>(m)].second) + " on " +
         std::to_string(size) + "x" + std::to_string(size) + " width x" + std::to_string(k);
}

TEST(NetworkConfigTest, ShapesOfEveryCombination) {
  constexpr int kPatch = 2, kExperts = 4, kHidden = 64;
  int checked = 0;
  for (int size : {10, 84}) {
    for (int k : {1, 2}) {
      for (EncoderType e : kEncoders) {
        for (TokenizerType t : kTokenizers) {
          for (MixerType m : kMixers) {
            SCOPED_TRACE(Name(e, t, m, size, k));
            NetworkConfig config;
            config.encoder.type = e;
            config.encoder.width_multiplier = k;
            config.tokenizer.type = t;
            config.tokenizer.patch_size = kPatch;
            config.mixer.type = m;
            config.mixer.hidden_units = kHidden;
            config.mixer.num_experts = kExperts;
            const FeatureMap f = ExpectedFeatures(e, size, k);
            const int hw = f.height * f.width;
            int tokens = 0, dim = 0;
            switch (t) {
              case TokenizerType::kPerConv:
              case TokenizerType::kShuffled:
                tokens = hw, dim = f.channels;
                break;
              case TokenizerType::kPerFeat:
                tokens = f.channels, dim = hw;
                break;
              case TokenizerType::kPerPatch:
                tokens = (f.height / kPatch) * (f.width / kPatch), dim = f.channels;
                break;
              case TokenizerType::kPerSamp:
                tokens = 1, dim = hw * f.channels;
                break;
            }
            const bool moe = m == MixerType::kSoftMoe || m == MixerType::kTokenChoice || m == MixerType::kExpertChoice;
            StatusOr<NetworkShapes> shapes = ComputeShapes(config, Io(size));
            ASSERT_TRUE(shapes.ok()) << shapes.status().ToString();
            EXPECT_EQ(shapes->feature_channels, f.channels);
            EXPECT_EQ(shapes->feature_height, f.height);
            EXPECT_EQ(shapes->feature_width, f.width);
            EXPECT_EQ(shapes->num_tokens, tokens);
            EXPECT_EQ(shapes->token_dim, dim);
            EXPECT_EQ(shapes->features, moe ? tokens * dim : kHidden);
            if (moe) {
              EXPECT_EQ(shapes->slots_per_expert, (tokens + kExperts - 1) / kExperts);
            }
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 2 * 2 * 3 * 5 * 7);
}

TEST(NetworkConfigTest, PaperShapesOn84x84) {
  // softmoe_reference.md section 3.1 table (p = 4 for PerPatch).
  struct Row {
    EncoderType encoder;
    TokenizerType tokenizer;
    int tokens, dim;
  };
  const Row rows[] = {
      {EncoderType::kImpala, TokenizerType::kPerConv, 121, 32},
      {EncoderType::kImpala, TokenizerType::kPerFeat, 32, 121},
      {EncoderType::kImpala, TokenizerType::kPerSamp, 1, 3872},
      {EncoderType::kImpala, TokenizerType::kPerPatch, 4, 32},
      {EncoderType::kNature, TokenizerType::kPerConv, 121, 64},
      {EncoderType::kNature, TokenizerType::kPerFeat, 64, 121},
      {EncoderType::kNature, TokenizerType::kPerSamp, 1, 7744},
      {EncoderType::kNature, TokenizerType::kPerPatch, 4, 64},
  };
  for (const Row& row : rows) {
    NetworkConfig config;
    config.encoder.type = row.encoder;
    config.tokenizer.type = row.tokenizer;
    config.tokenizer.patch_size = 4;
    config.mixer.type = MixerType::kSoftMoe;
    config.mixer.num_experts = 4;
    StatusOr<NetworkShapes> shapes = ComputeShapes(config, Io(84));
    ASSERT_TRUE(shapes.ok()) << shapes.status().ToString();
    EXPECT_EQ(shapes->num_tokens, row.tokens);
    EXPECT_EQ(shapes->token_dim, row.dim);
    EXPECT_EQ(shapes->features, row.tokens * row.dim);  // Tokens flattened into the head.
  }
}

TEST(NetworkConfigTest, SlotCounts) {
  NetworkConfig config;  // MinAtar encoder, PerConv: 100 tokens of 16.
  config.mixer.type = MixerType::kSoftMoe;
  config.mixer.num_experts = 1;
  auto slots = [&] {
    StatusOr<NetworkShapes> s = ComputeShapes(config, Io(10));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->slots_per_expert : -1;
  };
  EXPECT_EQ(slots(), 100);
  config.mixer.total_slots = 10;  // Fig. 8: 10% of the default.
  EXPECT_EQ(slots(), 10);
  config.mixer.total_slots = 1;  // Fig. 8: a single slot.
  EXPECT_EQ(slots(), 1);
  config.mixer.num_experts = 4;
  config.mixer.total_slots = 10;  // Rounded up per expert.
  EXPECT_EQ(slots(), 3);
  config.mixer.total_slots = 0;
  config.mixer.slots_per_expert = 7;
  EXPECT_EQ(slots(), 7);
  config.mixer.slots_per_expert = 0;
  config.mixer.num_experts = 8;
  EXPECT_EQ(slots(), 13);
  // Token choice: capacity, default ceil(T / n).
  config.mixer.type = MixerType::kTokenChoice;
  config.mixer.num_experts = 3;
  EXPECT_EQ(slots(), 34);
  config.mixer.capacity = 5;
  EXPECT_EQ(slots(), 5);
  // Expert choice with "unlimited capacity": every expert may take every token.
  config.mixer.type = MixerType::kExpertChoice;
  config.mixer.slots_per_expert = 100;
  EXPECT_EQ(slots(), 100);
  // Post-MoE dense sets the mixer output width.
  config.mixer.post_moe_dense = true;
  config.mixer.post_moe_dense_units = 96;
  StatusOr<NetworkShapes> s = ComputeShapes(config, Io(10));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->features, 96);
}

TEST(NetworkConfigTest, RejectsPatchLargerThanTheMap) {
  NetworkConfig config;
  config.tokenizer.type = TokenizerType::kPerPatch;
  config.mixer.type = MixerType::kSoftMoe;
  config.encoder.type = EncoderType::kImpala;  // 2x2 on MinAtar.
  config.tokenizer.patch_size = 2;
  EXPECT_TRUE(ComputeShapes(config, Io(10)).ok());
  config.tokenizer.patch_size = 3;
  StatusOr<NetworkShapes> s = ComputeShapes(config, Io(10));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.status().message().find("patch_size"), std::string::npos) << s.status().message();
  config.encoder.type = EncoderType::kNature;  // 11x11 on Atari.
  config.tokenizer.patch_size = 11;
  ASSERT_TRUE(ComputeShapes(config, Io(84)).ok());
  EXPECT_EQ(ComputeShapes(config, Io(84))->num_tokens, 1);
  config.tokenizer.patch_size = 12;
  EXPECT_FALSE(ComputeShapes(config, Io(84)).ok());
}

TEST(NetworkConfigTest, RejectsExpertChoiceWithMoreSlotsThanTokens) {
  NetworkConfig config;  // 100 tokens on MinAtar.
  config.mixer.type = MixerType::kExpertChoice;
  config.mixer.num_experts = 4;
  config.mixer.slots_per_expert = 101;
  StatusOr<NetworkShapes> s = ComputeShapes(config, Io(10));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument);
  config.mixer.slots_per_expert = 0;
  config.mixer.total_slots = 4 * 101;
  EXPECT_FALSE(ComputeShapes(config, Io(10)).ok());
  // PerSamp: one token, one slot per expert by default; two are too many.
  config.mixer.total_slots = 0;
  config.tokenizer.type = TokenizerType::kPerSamp;
  EXPECT_TRUE(ComputeShapes(config, Io(10)).ok());
  config.mixer.slots_per_expert = 2;
  EXPECT_FALSE(ComputeShapes(config, Io(10)).ok());
  // SoftMoE slots are mixtures of tokens: more slots than tokens is allowed.
  config.mixer.type = MixerType::kSoftMoe;
  EXPECT_TRUE(ComputeShapes(config, Io(10)).ok());
}

TEST(NetworkConfigTest, RejectsEmptyIo) {
  NetworkConfig config;
  NetworkIo io = Io(10);
  io.num_actions = 0;
  EXPECT_FALSE(ComputeShapes(config, io).ok());
  io = Io(10);
  io.height = 0;
  EXPECT_FALSE(ComputeShapes(config, io).ok());
}

}  // namespace
}  // namespace tokenrl::nn
