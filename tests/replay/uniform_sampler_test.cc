#include "tokenrl/replay/uniform_sampler.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace tokenrl::replay {
namespace {

TEST(UniformSamplerTest, SamplesValidSlotsUniformly) {
  UniformSampler sampler(16);
  for (int i = 0; i < 12; ++i) sampler.Add(i);
  sampler.Remove(3);
  sampler.Remove(3);  // No-op.
  sampler.Add(5);     // Already valid: no-op.
  EXPECT_EQ(sampler.size(), 11);
  std::mt19937_64 rng(17);
  std::vector<int64_t> counts(16, 0), indices;
  std::vector<double> weights;
  const int kBatches = 4000, kBatch = 32;
  for (int b = 0; b < kBatches; ++b) {
    sampler.Sample(kBatch, rng, &indices, &weights);
    ASSERT_EQ(indices.size(), kBatch);
    for (double w : weights) ASSERT_EQ(w, 1.0);
    for (int64_t i : indices) ++counts[i];
  }
  EXPECT_EQ(counts[3], 0);
  for (int i = 12; i < 16; ++i) EXPECT_EQ(counts[i], 0);
  const double expected = double{kBatches} * kBatch / 11.0;
  double chi2 = 0.0;
  for (int i = 0; i < 12; ++i) {
    if (i == 3) continue;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  EXPECT_LT(chi2, 29.588);  // Upper 0.1% point, 10 degrees of freedom.
}

TEST(UniformSamplerTest, SaveLoadContinuesIdentically) {
  UniformSampler a(10);
  for (int i : {4, 1, 7, 9, 0}) a.Add(i);
  a.Remove(1);
  ByteWriter writer;
  a.Save(writer);
  UniformSampler b(10);
  ByteReader reader(writer.bytes());
  ASSERT_TRUE(b.Load(reader).ok());
  ASSERT_TRUE(reader.Finish("uniform sampler").ok());
  std::mt19937_64 rng_a(3), rng_b(3);
  std::vector<int64_t> ia, ib;
  std::vector<double> wa, wb;
  for (int step = 0; step < 10; ++step) {
    a.Sample(8, rng_a, &ia, &wa);
    b.Sample(8, rng_b, &ib, &wb);
    ASSERT_EQ(ia, ib);
  }
  UniformSampler wrong(11);
  ByteReader r2(writer.bytes());
  EXPECT_EQ(wrong.Load(r2).code(), Status::Code::kCorruption);
}

TEST(UniformSamplerTest, ClearEmpties) {
  UniformSampler sampler(4);
  sampler.Add(2);
  sampler.Clear();
  EXPECT_EQ(sampler.size(), 0);
  sampler.Add(2);
  EXPECT_EQ(sampler.size(), 1);
}

TEST(UniformSamplerTest, UniformIndexIsInRange) {
  std::mt19937_64 rng(1);
  for (uint64_t n : {1ull, 2ull, 3ull, 1000ull, (1ull << 63) + 5}) {
    for (int k = 0; k < 100; ++k) ASSERT_LT(UniformIndex(rng, n), n);
  }
  for (int k = 0; k < 1000; ++k) {
    const double u = UniformUnitDouble(rng);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

}  // namespace
}  // namespace tokenrl::replay
