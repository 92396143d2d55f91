// NumpyRandomState against numpy's legacy RandomState: the MT19937 test vector
// and the draw-consumption rules of ../shared/docs/minatar_spec.md section 2.

#include "tokenrl/core/numpy_random.h"

#include <random>

#include <gtest/gtest.h>

namespace tokenrl {
namespace {

TEST(NumpyRandomStateTest, Seed0MatchesNumpyRawStream) {
  // numpy: RandomState(0).randint(2**32, dtype=np.uint32) stream / spec test vector.
  NumpyRandomState rng(0);
  const uint32_t expected[] = {2357136044u, 2546248239u, 3071714933u, 3626093760u, 2588848963u};
  for (uint32_t e : expected) EXPECT_EQ(rng.Next32(), e);
  EXPECT_EQ(rng.draws(), 5u);
}

TEST(NumpyRandomStateTest, MatchesStdMt19937OverSeveralTwists) {
  // init_genrand is what std::mt19937(seed) does; the streams must agree.
  for (uint32_t seed : {0u, 1u, 42u, 12345u, 4294967295u}) {
    NumpyRandomState rng(seed);
    std::mt19937 reference(seed);
    for (int i = 0; i < 2000; ++i) ASSERT_EQ(rng.Next32(), reference()) << "seed " << seed << " draw " << i;
  }
}

TEST(NumpyRandomStateTest, RandCombinesTwoDrawsLikeNumpy) {
  NumpyRandomState rng(0);
  std::mt19937 reference(0);
  const uint32_t a = reference() >> 5, b = reference() >> 6;
  EXPECT_EQ(rng.Rand(), (a * 67108864.0 + b) / 9007199254740992.0);
  EXPECT_EQ(rng.draws(), 2u);
  // numpy: np.random.RandomState(0).rand() == 0.5488135039273248
  EXPECT_EQ(NumpyRandomState(0).Rand(), 0.5488135039273248);
}

TEST(NumpyRandomStateTest, RandIntOfOneConsumesNothing) {
  NumpyRandomState rng(7);
  EXPECT_EQ(rng.RandInt(1), 0);
  EXPECT_EQ(rng.RandInt(5, 6), 5);
  EXPECT_EQ(rng.draws(), 0u);
}

TEST(NumpyRandomStateTest, RandIntUsesMaskedRejectionOnLowBits) {
  // randint(1, 6): range 4, mask 7; values 5..7 of (draw & 7) are rejected.
  NumpyRandomState rng(3);
  std::mt19937 reference(3);
  for (int i = 0; i < 200; ++i) {
    uint32_t v;
    int consumed = 0;
    do {
      v = reference() & 7u;
      ++consumed;
    } while (v > 4);
    const uint64_t before = rng.draws();
    ASSERT_EQ(rng.RandInt(1, 6), 1 + static_cast<int64_t>(v));
    ASSERT_EQ(rng.draws() - before, static_cast<uint64_t>(consumed));
  }
}

TEST(NumpyRandomStateTest, RandIntKnownNumpyValues) {
  // numpy: np.random.RandomState(0).randint(10, size=8) -> [5 0 3 3 7 9 3 5]
  NumpyRandomState rng(0);
  const int64_t expected[] = {5, 0, 3, 3, 7, 9, 3, 5};
  for (int64_t e : expected) EXPECT_EQ(rng.RandInt(10), e);
}

TEST(NumpyRandomStateTest, WideRangesUseOneOrTwoWords) {
  NumpyRandomState a(11), b(11);
  std::mt19937 ref(11);
  EXPECT_EQ(a.RandInt(0, int64_t{1} << 32), static_cast<int64_t>(ref()));  // range 2^32-1: one raw draw
  EXPECT_EQ(a.draws(), 1u);
  b.RandInt(0, (int64_t{1} << 32) + 1);  // 64-bit path: two words per attempt
  EXPECT_EQ(b.draws() % 2, 0u);
}

TEST(NumpyRandomStateTest, ChoiceIndexesWithRandInt) {
  NumpyRandomState a(5), b(5);
  const int items[] = {10, 20, 30, 40, 50};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.Choice(std::span<const int>(items)), items[b.RandInt(5)]);
}

TEST(NumpyRandomStateTest, SaveLoadRoundTripContinuesStream) {
  NumpyRandomState rng(99);
  for (int i = 0; i < 700; ++i) rng.Next32();  // cross a twist
  ByteWriter writer;
  rng.Save(writer);
  NumpyRandomState restored(1);
  ByteReader reader(writer.bytes());
  ASSERT_TRUE(restored.Load(reader));
  EXPECT_TRUE(reader.at_end());
  EXPECT_EQ(restored, rng);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(restored.Next32(), rng.Next32());
}

TEST(NumpyRandomStateTest, LoadRejectsTruncatedBytes) {
  NumpyRandomState rng(1);
  ByteWriter writer;
  rng.Save(writer);
  const std::string bytes = writer.bytes().substr(0, 100);
  ByteReader reader(bytes);
  EXPECT_FALSE(rng.Load(reader));
}

}  // namespace
}  // namespace tokenrl
