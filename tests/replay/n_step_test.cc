#include "tokenrl/replay/n_step.h"

#include <vector>

#include <gtest/gtest.h>

namespace tokenrl::replay {
namespace {

StepRecord Step(int64_t id, double reward, bool terminated = false, bool truncated = false) {
  return StepRecord{.id = id, .action = static_cast<int32_t>(id % 4), .reward = reward, .terminated = terminated,
                    .truncated = truncated};
}

void ExpectTransition(const NStepTransition& t, int64_t first, int64_t last, double reward, double discount,
                      int steps) {
  EXPECT_EQ(t.first_id, first);
  EXPECT_EQ(t.last_id, last);
  EXPECT_EQ(t.action, first % 4);
  EXPECT_NEAR(t.reward, reward, 1e-12);
  EXPECT_NEAR(t.discount, discount, 1e-12);
  EXPECT_EQ(t.steps, steps);
}

TEST(NStepAccumulatorTest, OneStepIsTheRawTransition) {
  NStepAccumulator acc({.n = 1, .gamma = 0.9});
  std::vector<NStepTransition> out;
  EXPECT_EQ(acc.Push(Step(0, 1.0), &out), 1);
  EXPECT_EQ(acc.Push(Step(1, 2.0, /*terminated=*/true), &out), 1);
  ASSERT_EQ(out.size(), 2u);
  ExpectTransition(out[0], 0, 0, 1.0, 0.9, 1);
  ExpectTransition(out[1], 1, 1, 2.0, 0.0, 1);
  EXPECT_EQ(acc.pending(), 0);
}

TEST(NStepAccumulatorTest, ThreeStepMidEpisode) {
  NStepAccumulator acc({.n = 3, .gamma = 0.5});
  std::vector<NStepTransition> out;
  EXPECT_EQ(acc.Push(Step(10, 1.0), &out), 0);
  EXPECT_EQ(acc.Push(Step(11, 2.0), &out), 0);
  EXPECT_EQ(acc.pending(), 2);
  EXPECT_EQ(acc.Push(Step(12, 4.0), &out), 1);
  EXPECT_EQ(acc.Push(Step(13, 8.0), &out), 1);
  ASSERT_EQ(out.size(), 2u);
  ExpectTransition(out[0], 10, 12, 1.0 + 0.5 * 2.0 + 0.25 * 4.0, 0.125, 3);  // 3.0
  ExpectTransition(out[1], 11, 13, 2.0 + 0.5 * 4.0 + 0.25 * 8.0, 0.125, 3);  // 6.0
  EXPECT_EQ(acc.pending(), 2);
}

TEST(NStepAccumulatorTest, TerminationInsideWindowFlushesWithZeroDiscount) {
  NStepAccumulator acc({.n = 3, .gamma = 0.5});
  std::vector<NStepTransition> out;
  acc.Push(Step(0, 1.0), &out);
  acc.Push(Step(1, 2.0), &out);
  acc.Push(Step(2, 4.0), &out);  // Emits start 0.
  EXPECT_EQ(acc.Push(Step(3, 8.0, /*terminated=*/true), &out), 3);
  ASSERT_EQ(out.size(), 4u);
  ExpectTransition(out[0], 0, 2, 3.0, 0.125, 3);                      // Window ends before the terminal.
  ExpectTransition(out[1], 1, 3, 2.0 + 0.5 * 4.0 + 0.25 * 8.0, 0.0, 3);  // Terminal is its last step.
  ExpectTransition(out[2], 2, 3, 4.0 + 0.5 * 8.0, 0.0, 2);
  ExpectTransition(out[3], 3, 3, 8.0, 0.0, 1);
  EXPECT_EQ(acc.pending(), 0);

  // The next episode starts fresh: nothing leaks across the boundary.
  out.clear();
  EXPECT_EQ(acc.Push(Step(4, 100.0), &out), 0);
  EXPECT_EQ(acc.Push(Step(5, 0.0, /*terminated=*/true), &out), 2);
  ExpectTransition(out[0], 4, 5, 100.0, 0.0, 2);
  ExpectTransition(out[1], 5, 5, 0.0, 0.0, 1);
}

TEST(NStepAccumulatorTest, EpisodeShorterThanN) {
  NStepAccumulator acc({.n = 5, .gamma = 0.9});
  std::vector<NStepTransition> out;
  acc.Push(Step(0, 1.0), &out);
  EXPECT_EQ(acc.Push(Step(1, 1.0, /*terminated=*/true), &out), 2);
  ExpectTransition(out[0], 0, 1, 1.9, 0.0, 2);
  ExpectTransition(out[1], 1, 1, 1.0, 0.0, 1);
}

TEST(NStepAccumulatorTest, TruncationInsideWindowBootstraps) {
  NStepAccumulator acc({.n = 3, .gamma = 0.5});
  std::vector<NStepTransition> out;
  acc.Push(Step(0, 1.0), &out);
  acc.Push(Step(1, 2.0), &out);
  acc.Push(Step(2, 4.0), &out);
  EXPECT_EQ(acc.Push(Step(3, 8.0, /*terminated=*/false, /*truncated=*/true), &out), 3);
  ASSERT_EQ(out.size(), 4u);
  ExpectTransition(out[0], 0, 2, 3.0, 0.125, 3);
  ExpectTransition(out[1], 1, 3, 6.0, 0.125, 3);  // gamma^3, not 0.
  ExpectTransition(out[2], 2, 3, 8.0, 0.25, 2);   // gamma^2.
  ExpectTransition(out[3], 3, 3, 8.0, 0.5, 1);    // gamma^1.
  EXPECT_EQ(acc.pending(), 0);
}

TEST(NStepAccumulatorTest, TerminatedWinsOverTruncated) {
  NStepAccumulator acc({.n = 2, .gamma = 0.5});
  std::vector<NStepTransition> out;
  acc.Push(Step(0, 1.0), &out);
  acc.Push(Step(1, 1.0, /*terminated=*/true, /*truncated=*/true), &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].discount, 0.0);
  EXPECT_EQ(out[1].discount, 0.0);
}

TEST(NStepAccumulatorTest, SaveLoadContinuesIdentically) {
  const NStepConfig config{.n = 4, .gamma = 0.99};
  NStepAccumulator a(config);
  std::vector<NStepTransition> out_a, out_b;
  for (int i = 0; i < 6; ++i) a.Push(Step(i, 0.1 * i), &out_a);
  ByteWriter writer;
  a.Save(writer);
  NStepAccumulator b(config);
  ByteReader reader(writer.bytes());
  ASSERT_TRUE(b.Load(reader).ok());
  ASSERT_TRUE(reader.Finish("n-step").ok());
  EXPECT_EQ(b.pending(), a.pending());
  out_a.clear();
  for (int i = 6; i < 12; ++i) {
    const bool end = (i == 11);
    a.Push(Step(i, 0.3 * i, false, end), &out_a);
    b.Push(Step(i, 0.3 * i, false, end), &out_b);
  }
  ASSERT_EQ(out_a.size(), out_b.size());
  for (size_t k = 0; k < out_a.size(); ++k) {
    EXPECT_EQ(out_a[k].first_id, out_b[k].first_id);
    EXPECT_EQ(out_a[k].reward, out_b[k].reward);
    EXPECT_EQ(out_a[k].discount, out_b[k].discount);
  }
  NStepAccumulator other({.n = 3, .gamma = 0.99});
  ByteReader r2(writer.bytes());
  EXPECT_EQ(other.Load(r2).code(), Status::Code::kCorruption);
}

TEST(NStepAccumulatorTest, ConfigValidation) {
  EXPECT_TRUE(NStepConfig{}.Validate().ok());
  EXPECT_FALSE((NStepConfig{.n = 0}).Validate().ok());
  EXPECT_FALSE((NStepConfig{.gamma = 1.5}).Validate().ok());
}

}  // namespace
}  // namespace tokenrl::replay
