// Tokenizers of the libtorch backend: shapes against ComputeShapes, token
// layouts element by element on a hand-built feature map, PerPatch averaging,
// and Shuffled's fixed, saved permutation.

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {
namespace {

NetworkIo Io(int size) { return {.channels = 4, .height = size, .width = size, .num_actions = 6}; }

NetworkShapes Shapes(EncoderType encoder, TokenizerType tokenizer, const NetworkIo& io, int64_t patch = 2) {
  NetworkConfig config;
  config.encoder.type = encoder;
  config.tokenizer.type = tokenizer;
  config.tokenizer.patch_size = patch;
  StatusOr<NetworkShapes> s = ComputeShapes(config, io);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : NetworkShapes{};
}

std::shared_ptr<TokenizerBase> Make(TokenizerType type, const NetworkShapes& shapes, uint64_t seed = 1,
                                    int64_t patch = 2) {
  TokenizerConfig config;
  config.type = type;
  config.patch_size = patch;
  return MakeTokenizer(config, shapes, InitContext(seed, 2, "tokenizer"));
}

constexpr int kC = 3, kH = 2, kW = 4;
float Value(int e, int b, int c, int h, int w) {
  return static_cast<float>(1000 * e + 100 * b + 10 * c + h) + 0.1f * w;
}

// [E=2, B=2, C=3, H=2, W=4] with every element distinct and known.
torch::Tensor HandMap() {
  torch::Tensor x = torch::empty({2, 2, kC, kH, kW});
  auto a = x.accessor<float, 5>();
  for (int e = 0; e < 2; ++e)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < kC; ++c)
        for (int h = 0; h < kH; ++h)
          for (int w = 0; w < kW; ++w) a[e][b][c][h][w] = Value(e, b, c, h, w);
  return x;
}

NetworkShapes HandShapes() {
  NetworkShapes s;
  s.feature_channels = kC, s.feature_height = kH, s.feature_width = kW;
  return s;
}

TEST(TokenizersTest, ShapesAgreeWithComputeShapes) {
  for (int size : {10, 84}) {
    for (EncoderType encoder : {EncoderType::kMinatar, EncoderType::kNature, EncoderType::kImpala}) {
      for (TokenizerType type : {TokenizerType::kPerConv, TokenizerType::kPerFeat, TokenizerType::kPerPatch,
                                 TokenizerType::kShuffled, TokenizerType::kPerSamp}) {
        SCOPED_TRACE(std::to_string(size) + " encoder " + std::to_string(static_cast<int>(encoder)) + " tokenizer " +
                     std::to_string(static_cast<int>(type)));
        const NetworkShapes s = Shapes(encoder, type, Io(size));
        const torch::Tensor map = torch::rand({2, 3, s.feature_channels, s.feature_height, s.feature_width});
        const torch::Tensor tokens = Make(type, s)->forward(map);
        EXPECT_EQ(tokens.sizes(), torch::IntArrayRef({2, 3, s.num_tokens, s.token_dim}));
      }
    }
  }
}

TEST(TokenizersTest, PerConvTokenIsTheChannelVectorAtOnePosition) {
  const torch::Tensor tokens = Make(TokenizerType::kPerConv, HandShapes())->forward(HandMap());
  ASSERT_EQ(tokens.sizes(), torch::IntArrayRef({2, 2, kH * kW, kC}));
  auto a = tokens.accessor<float, 4>();
  for (int e = 0; e < 2; ++e)
    for (int b = 0; b < 2; ++b)
      for (int h = 0; h < kH; ++h)
        for (int w = 0; w < kW; ++w)
          for (int c = 0; c < kC; ++c) ASSERT_EQ(a[e][b][h * kW + w][c], Value(e, b, c, h, w));
}

TEST(TokenizersTest, PerFeatTokenIsOneFeatureMapRowMajor) {
  const torch::Tensor tokens = Make(TokenizerType::kPerFeat, HandShapes())->forward(HandMap());
  ASSERT_EQ(tokens.sizes(), torch::IntArrayRef({2, 2, kC, kH * kW}));
  auto a = tokens.accessor<float, 4>();
  for (int e = 0; e < 2; ++e)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < kC; ++c)
        for (int h = 0; h < kH; ++h)
          for (int w = 0; w < kW; ++w) ASSERT_EQ(a[e][b][c][h * kW + w], Value(e, b, c, h, w));
}

TEST(TokenizersTest, PerSampIsOneChannelsLastToken) {
  const torch::Tensor tokens = Make(TokenizerType::kPerSamp, HandShapes())->forward(HandMap());
  ASSERT_EQ(tokens.sizes(), torch::IntArrayRef({2, 2, 1, kH * kW * kC}));
  auto a = tokens.accessor<float, 4>();
  for (int e = 0; e < 2; ++e)
    for (int b = 0; b < 2; ++b)
      for (int h = 0; h < kH; ++h)
        for (int w = 0; w < kW; ++w)
          for (int c = 0; c < kC; ++c) ASSERT_EQ(a[e][b][0][(h * kW + w) * kC + c], Value(e, b, c, h, w));
}

TEST(TokenizersTest, PerPatchAveragesPatchesAndDropsTheRemainder) {
  // 5x5 map, rho = 2: 2x2 patches, the last row and column dropped (VALID).
  const torch::Tensor map = torch::rand({2, 3, 4, 5, 5});
  NetworkShapes s;
  s.feature_channels = 4, s.feature_height = 5, s.feature_width = 5;
  const torch::Tensor tokens = Make(TokenizerType::kPerPatch, s, 1, 2)->forward(map);
  ASSERT_EQ(tokens.sizes(), torch::IntArrayRef({2, 3, 4, 4}));
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      const torch::Tensor patch = map.slice(3, 2 * i, 2 * i + 2).slice(4, 2 * j, 2 * j + 2);  // [E, B, C, 2, 2]
      const torch::Tensor expected = patch.mean({3, 4});                                      // [E, B, C]
      EXPECT_TRUE(torch::allclose(tokens.select(2, i * 2 + j), expected, 1e-6, 1e-7)) << i << "," << j;
    }
  }
  // A patch as large as the map gives its global average.
  const torch::Tensor one = Make(TokenizerType::kPerPatch, s, 1, 5)->forward(map);
  ASSERT_EQ(one.sizes(), torch::IntArrayRef({2, 3, 1, 4}));
  EXPECT_TRUE(torch::allclose(one.select(2, 0), map.mean({3, 4}), 1e-6, 1e-7));
}

torch::Tensor Permutation(TokenizerBase& tokenizer) {
  const auto buffers = tokenizer.named_buffers();
  EXPECT_TRUE(buffers.contains("permutation"));
  return buffers.contains("permutation") ? buffers["permutation"] : torch::Tensor();
}

TEST(TokenizersTest, ShuffledPermutationIsFixedTrueAndShared) {
  const NetworkShapes s = Shapes(EncoderType::kMinatar, TokenizerType::kShuffled, Io(10));  // 100 x 16.
  auto tokenizer = Make(TokenizerType::kShuffled, s, 7);
  const torch::Tensor perm = Permutation(*tokenizer);
  ASSERT_TRUE(perm.defined());
  EXPECT_EQ(perm.scalar_type(), torch::kInt64);
  const int64_t n = int64_t{s.num_tokens} * s.token_dim;
  ASSERT_EQ(perm.sizes(), torch::IntArrayRef({n}));
  EXPECT_TRUE(torch::equal(std::get<0>(perm.sort()), torch::arange(n, torch::kInt64)));  // A true permutation.
  EXPECT_FALSE(torch::equal(perm, torch::arange(n, torch::kInt64)));                     // Not the identity.
  // Tokens are PerConv tokens of the permuted channels-last flattened map.
  torch::Tensor map = torch::rand({2, 3, s.feature_channels, s.feature_height, s.feature_width});
  map[1] = map[0];  // Both members see the same input.
  const torch::Tensor first = tokenizer->forward(map);
  const torch::Tensor flat = FlattenChannelsLast(map);
  EXPECT_TRUE(torch::equal(first, flat.index_select(2, perm).reshape({2, 3, s.num_tokens, s.token_dim})));
  EXPECT_TRUE(torch::equal(first[0], first[1]));              // The same permutation for every member.
  EXPECT_TRUE(torch::equal(tokenizer->forward(map), first));  // Fixed across calls.
  EXPECT_TRUE(torch::equal(Permutation(*tokenizer), perm));
  // Drawn from the seed: the same seed gives the same permutation, another seed another.
  EXPECT_TRUE(torch::equal(Permutation(*Make(TokenizerType::kShuffled, s, 7)), perm));
  EXPECT_FALSE(torch::equal(Permutation(*Make(TokenizerType::kShuffled, s, 8)), perm));
}

TEST(TokenizersTest, ShuffledPermutationIsSavedWithTheModel) {
  const NetworkShapes s = Shapes(EncoderType::kImpala, TokenizerType::kShuffled, Io(84));
  auto saved = Make(TokenizerType::kShuffled, s, 21);
  std::stringstream stream;
  torch::save(std::static_pointer_cast<torch::nn::Module>(saved), stream);
  auto loaded = Make(TokenizerType::kShuffled, s, 22);
  ASSERT_FALSE(torch::equal(Permutation(*loaded), Permutation(*saved)));
  std::shared_ptr<torch::nn::Module> loaded_module = loaded;
  torch::load(loaded_module, stream);
  EXPECT_TRUE(torch::equal(Permutation(*loaded), Permutation(*saved)));
  const torch::Tensor map = torch::rand({2, 1, s.feature_channels, s.feature_height, s.feature_width});
  EXPECT_TRUE(torch::equal(loaded->forward(map), saved->forward(map)));
}

TEST(TokenizersTest, ForwardBackwardIsFinite) {
  torch::manual_seed(0);
  for (TokenizerType type : {TokenizerType::kPerConv, TokenizerType::kPerFeat, TokenizerType::kPerPatch,
                             TokenizerType::kShuffled, TokenizerType::kPerSamp}) {
    const NetworkShapes s = Shapes(EncoderType::kNature, type, Io(84));
    // Inputs in [0.5, 1.5): an exact zero from rand() would give an exactly zero gradient below.
    const torch::Tensor map =
        (torch::rand({2, 2, s.feature_channels, s.feature_height, s.feature_width}) + 0.5).requires_grad_(true);
    const torch::Tensor tokens = Make(type, s)->forward(map);
    EXPECT_TRUE(torch::isfinite(tokens).all().item<bool>());
    tokens.square().sum().backward();
    ASSERT_TRUE(map.grad().defined());
    EXPECT_TRUE(torch::isfinite(map.grad()).all().item<bool>());
    // Every tokenizer but PerPatch (which drops the 11th row and column) uses every input element.
    if (type != TokenizerType::kPerPatch) {
      EXPECT_TRUE((map.grad() != 0).all().item<bool>());
    }
  }
}

}  // namespace
}  // namespace tokenrl::nn::torch_backend
