#include "tokenrl/replay/prioritized_sampler.h"

#include <cmath>
#include <random>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "tokenrl/core/seed.h"

namespace tokenrl::replay {
namespace {

// Chi-square statistic of observed counts against expected probabilities.
double ChiSquare(const std::vector<int64_t>& counts, const std::vector<double>& probs, int64_t draws) {
  double chi2 = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double expected = probs[i] * draws;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

// Upper 0.1% point of chi-square with 9 degrees of freedom.
constexpr double kChiSquare9Dof999 = 27.877;

PrioritizedSampler MakeSampler(const PrioritizedSamplerConfig& config, const std::vector<double>& priorities) {
  PrioritizedSampler sampler(static_cast<int64_t>(priorities.size()), config);
  std::vector<int64_t> indices;
  for (size_t i = 0; i < priorities.size(); ++i) {
    sampler.Add(i);
    indices.push_back(i);
  }
  sampler.Update(indices, priorities);
  return sampler;
}

TEST(PrioritizedSamplerTest, ConfigValidation) {
  EXPECT_TRUE(PrioritizedSamplerConfig{}.Validate().ok());
  EXPECT_FALSE((PrioritizedSamplerConfig{.alpha = -0.1}).Validate().ok());
  EXPECT_FALSE((PrioritizedSamplerConfig{.beta = 1.5}).Validate().ok());
  EXPECT_FALSE((PrioritizedSamplerConfig{.beta = std::nan("")}).Validate().ok());
}

TEST(PrioritizedSamplerTest, NewItemsGetMaxPriority) {
  PrioritizedSampler sampler(8, {.alpha = 1.0});
  sampler.Add(0);
  EXPECT_EQ(sampler.size(), 1);
  EXPECT_EQ(sampler.Probability(0), 1.0);  // Initial max priority 1.0.
  const std::vector<int64_t> idx = {0};
  sampler.Update(idx, std::vector<double>{4.0});
  EXPECT_EQ(sampler.max_recorded_priority(), 4.0);
  sampler.Add(1);  // Gets 4.0 as well.
  EXPECT_DOUBLE_EQ(sampler.Probability(1), 0.5);
  sampler.Update(idx, std::vector<double>{0.5});
  sampler.Add(2);  // Max recorded never decreases: still 4.0.
  EXPECT_DOUBLE_EQ(sampler.Probability(2), 4.0 / 8.5);
  sampler.Add(0);  // Re-adding an overwritten slot resets it to the max.
  EXPECT_EQ(sampler.size(), 3);
  EXPECT_DOUBLE_EQ(sampler.Probability(0), 1.0 / 3.0);
}

TEST(PrioritizedSamplerTest, StoresPriorityToTheAlpha) {
  PrioritizedSampler sampler = MakeSampler({.alpha = 0.5}, {1.0, 4.0, 9.0, 16.0});
  // Stored values 1, 2, 3, 4.
  EXPECT_DOUBLE_EQ(sampler.Probability(0), 0.1);
  EXPECT_DOUBLE_EQ(sampler.Probability(3), 0.4);
  EXPECT_EQ(sampler.max_recorded_priority(), 4.0);
}

TEST(PrioritizedSamplerTest, SamplingFrequenciesMatchPriorities) {
  const std::vector<double> priorities = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  for (double alpha : {1.0, 0.6}) {
    for (bool stratified : {true, false}) {
      SCOPED_TRACE(::testing::Message() << "alpha " << alpha << " stratified " << stratified);
      PrioritizedSampler sampler = MakeSampler({.alpha = alpha, .stratified = stratified}, priorities);
      std::vector<double> probs;
      double total = 0.0;
      for (double p : priorities) total += std::pow(p, alpha);
      for (double p : priorities) probs.push_back(std::pow(p, alpha) / total);
      std::mt19937_64 rng(DeriveSeed(42, {static_cast<uint64_t>(alpha * 10), stratified}));
      std::vector<int64_t> counts(priorities.size(), 0), indices;
      std::vector<double> weights;
      const int kBatches = 5000, kBatch = 32;
      for (int b = 0; b < kBatches; ++b) {
        sampler.Sample(kBatch, rng, &indices, &weights);
        for (int64_t i : indices) ++counts[i];
      }
      const double chi2 = ChiSquare(counts, probs, int64_t{kBatches} * kBatch);
      EXPECT_LT(chi2, kChiSquare9Dof999);
    }
  }
}

TEST(PrioritizedSamplerTest, RemovedAndZeroPrioritySlotsAreNeverSampled) {
  PrioritizedSampler sampler = MakeSampler({.alpha = 1.0}, {1, 0, 3, 4, 5});
  sampler.Remove(3);
  EXPECT_EQ(sampler.size(), 4);
  std::mt19937_64 rng(3);
  std::vector<int64_t> indices;
  std::vector<double> weights;
  for (int b = 0; b < 200; ++b) {
    sampler.Sample(16, rng, &indices, &weights);
    for (int64_t i : indices) {
      ASSERT_NE(i, 1);
      ASSERT_NE(i, 3);
    }
  }
  sampler.Clear();
  EXPECT_EQ(sampler.size(), 0);
  EXPECT_EQ(sampler.max_recorded_priority(), 1.0);
}

TEST(PrioritizedSamplerTest, ImportanceWeightsMatchClosedForm) {
  const std::vector<double> priorities = {0.5, 1.0, 2.0, 3.0, 7.0, 0.25};
  const double alpha = 0.7, beta = 0.4;
  PrioritizedSampler sampler = MakeSampler({.alpha = alpha, .beta = beta}, priorities);
  const double n = static_cast<double>(priorities.size());
  double total = 0.0;
  for (double p : priorities) total += std::pow(p, alpha);
  std::mt19937_64 rng(5);
  std::vector<int64_t> indices;
  std::vector<double> weights;
  for (int b = 0; b < 50; ++b) {
    sampler.Sample(8, rng, &indices, &weights);
    std::vector<double> raw;
    double max_raw = 0.0;
    for (int64_t i : indices) {
      raw.push_back(std::pow(n * std::pow(priorities[i], alpha) / total, -beta));
      max_raw = std::max(max_raw, raw.back());
    }
    double max_weight = 0.0;
    for (size_t k = 0; k < indices.size(); ++k) {
      EXPECT_NEAR(weights[k], raw[k] / max_raw, 1e-12);
      max_weight = std::max(max_weight, weights[k]);
    }
    EXPECT_EQ(max_weight, 1.0);
  }
  // beta = 0: no correction.
  sampler.SetBeta(0.0);
  sampler.Sample(8, rng, &indices, &weights);
  for (double w : weights) EXPECT_EQ(w, 1.0);
}

TEST(PrioritizedSamplerTest, DefaultsReproduceDopamineRainbowWeights) {
  // Dopamine: tree value sqrt(loss + 1e-10); weight 1/sqrt(P + 1e-10) / batch max.
  const std::vector<double> losses = {0.1, 0.5, 2.0, 0.0, 1.3};
  std::vector<double> priorities;
  for (double l : losses) priorities.push_back(l + 1e-10);
  PrioritizedSampler sampler = MakeSampler(PrioritizedSamplerConfig{}, priorities);
  double total = 0.0;
  for (double l : losses) total += std::sqrt(l + 1e-10);
  std::mt19937_64 rng(9);
  std::vector<int64_t> indices;
  std::vector<double> weights;
  sampler.Sample(32, rng, &indices, &weights);
  std::vector<double> dopamine;
  double max_w = 0.0;
  for (int64_t i : indices) {
    dopamine.push_back(1.0 / std::sqrt(std::sqrt(losses[i] + 1e-10) / total + 1e-10));
    max_w = std::max(max_w, dopamine.back());
  }
  for (size_t k = 0; k < indices.size(); ++k) EXPECT_NEAR(weights[k], dopamine[k] / max_w, 1e-6);
}

TEST(PrioritizedSamplerTest, SaveLoadContinuesIdentically) {
  PrioritizedSampler a(20, {.alpha = 0.6, .beta = 0.4});
  for (int i = 0; i < 15; ++i) a.Add(i);
  std::mt19937_64 rng_a(DeriveSeed(1, {2}));
  std::vector<int64_t> indices;
  std::vector<double> weights;
  a.Sample(8, rng_a, &indices, &weights);
  a.Update(indices, std::vector<double>{0.1, 0.2, 3.0, 0.4, 0.5, 0.6, 0.7, 0.8});
  a.Remove(2);

  ByteWriter writer;
  a.Save(writer);
  std::stringstream rng_state;
  rng_state << rng_a;

  PrioritizedSampler b(20, {.alpha = 0.6, .beta = 0.4});
  ByteReader reader(writer.bytes());
  ASSERT_TRUE(b.Load(reader).ok());
  ASSERT_TRUE(reader.Finish("prioritized sampler").ok());
  std::mt19937_64 rng_b;
  rng_state >> rng_b;
  EXPECT_EQ(b.size(), a.size());
  EXPECT_EQ(b.max_recorded_priority(), a.max_recorded_priority());

  std::vector<int64_t> indices_b;
  std::vector<double> weights_b;
  for (int step = 0; step < 20; ++step) {
    a.Sample(8, rng_a, &indices, &weights);
    b.Sample(8, rng_b, &indices_b, &weights_b);
    ASSERT_EQ(indices, indices_b);
    ASSERT_EQ(weights, weights_b);
    std::vector<double> new_priorities(8, 0.1 * (step + 1));
    a.Update(indices, new_priorities);
    b.Update(indices_b, new_priorities);
    a.Add(15 + step % 5);
    b.Add(15 + step % 5);
  }
}

TEST(PrioritizedSamplerTest, LoadRejectsMismatchedConfigAndTruncation) {
  PrioritizedSampler a(4, {.alpha = 0.6});
  a.Add(1);
  ByteWriter writer;
  a.Save(writer);
  PrioritizedSampler other_alpha(4, {.alpha = 0.5});
  ByteReader r1(writer.bytes());
  EXPECT_EQ(other_alpha.Load(r1).code(), Status::Code::kCorruption);
  PrioritizedSampler other_capacity(5, {.alpha = 0.6});
  ByteReader r2(writer.bytes());
  EXPECT_EQ(other_capacity.Load(r2).code(), Status::Code::kCorruption);
  PrioritizedSampler truncated(4, {.alpha = 0.6});
  ByteReader r3(std::string_view(writer.bytes()).substr(0, writer.bytes().size() - 1));
  EXPECT_FALSE(truncated.Load(r3).ok());
  EXPECT_EQ(truncated.size(), 0);
}

TEST(PrioritizedSamplerDeathTest, RejectsInvalidUse) {
  PrioritizedSampler sampler(4, {});
  std::mt19937_64 rng(1);
  std::vector<int64_t> indices;
  std::vector<double> weights;
  EXPECT_DEATH(sampler.Sample(4, rng, &indices, &weights), "empty");
  sampler.Add(0);
  const std::vector<int64_t> idx = {0};
  EXPECT_DEATH(sampler.Update(idx, std::vector<double>{-1.0}), "invalid priority");
  EXPECT_DEATH(sampler.Update(std::vector<int64_t>{1}, std::vector<double>{1.0}), "invalid slot");
  EXPECT_DEATH(sampler.Add(4), "out of range");
}

}  // namespace
}  // namespace tokenrl::replay
