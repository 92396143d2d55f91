// Point estimates against rliable's own values (tests/data/reference_scores/
// rliable_vectors.json): IQM, mean, median, optimality gap, performance
// profiles and probability of improvement, plus edge cases.

#include "tokenrl/stats/aggregates.h"

#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "testing/rliable_vectors.h"

namespace tokenrl::stats {
namespace {

using nlohmann::json;

constexpr double kTol = 1e-12;

const json& Vectors() { return tokenrl::testing::RliableVectors(); }

ScoreMatrix FromJson(const json& rows) {
  auto m = ScoreMatrix::FromRows(rows.get<std::vector<std::vector<double>>>());
  TOKENRL_CHECK(m.ok(), "{}", m.status().ToString());
  return std::move(m).value();
}

const json& Case(const std::string& name) {
  for (const auto& c : Vectors()["cases"])
    if (c["name"] == name) return c;
  TOKENRL_CHECK(false, "no case {}", name);
  return Vectors();
}

// The generator recipe from the JSON ("lcg31-dyadic").
std::vector<std::vector<double>> Generate(const json& p) {
  uint64_t s = p["seed"].get<uint64_t>();
  const int runs = p["runs"], tasks = p["tasks"], power = p["power"];
  const int64_t modulus = p["modulus"], offset = p["offset"], divisor = p["divisor"];
  std::vector<std::vector<double>> rows(static_cast<size_t>(runs), std::vector<double>(static_cast<size_t>(tasks)));
  for (auto& row : rows)
    for (auto& v : row) {
      s = (1103515245ull * s + 12345ull) % 2147483648ull;
      const int64_t r = static_cast<int64_t>(s >> 16);
      int64_t k = 1;
      for (int i = 0; i < power; ++i) k *= r % modulus;
      v = static_cast<double>(k - offset) / static_cast<double>(divisor);
    }
  return rows;
}

TEST(RliableVectorsTest, GeneratorReproducesEveryMatrix) {
  for (const auto& c : Vectors()["cases"]) {
    EXPECT_EQ(Generate(c["generator_params"]), c["scores"].get<std::vector<std::vector<double>>>()) << c["name"];
  }
}

TEST(RliableVectorsTest, PointEstimatesMatchRliable) {
  double max_error = 0.0;
  for (const auto& c : Vectors()["cases"]) {
    const ScoreMatrix m = FromJson(c["scores"]);
    const auto& e = c["expected"];
    const std::string name = c["name"];
    ASSERT_EQ(m.num_runs(), c["shape"][0].get<int>());
    ASSERT_EQ(m.num_tasks(), c["shape"][1].get<int>());
    const std::map<std::string, double> got = {{"iqm", Iqm(m.view())},
                                               {"mean", AggregateMean(m.view())},
                                               {"median", AggregateMedian(m.view())},
                                               {"optimality_gap", OptimalityGap(m.view())},
                                               {"optimality_gap_gamma_2", OptimalityGap(m.view(), 2.0)}};
    for (const auto& [key, value] : got) {
      const double want = e[key].get<double>();
      EXPECT_NEAR(value, want, kTol) << name << " " << key;
      max_error = std::max(max_error, std::abs(value - want));
    }
    // The allocation-free calculator used by the bootstrap agrees bit for bit.
    AggregateCalculator calc(m.num_runs(), m.num_tasks(), 1.0);
    double out[kNumAggregates];
    calc.Compute(m.view(), out);
    EXPECT_EQ(out[static_cast<int>(Aggregate::kIqm)], got.at("iqm"));
    EXPECT_EQ(out[static_cast<int>(Aggregate::kMean)], got.at("mean"));
    EXPECT_EQ(out[static_cast<int>(Aggregate::kMedian)], got.at("median"));
    EXPECT_EQ(out[static_cast<int>(Aggregate::kOptimalityGap)], got.at("optimality_gap"));
  }
  std::printf("max |tokenrl - rliable| over point estimates: %.3g\n", max_error);
}

TEST(RliableVectorsTest, PerformanceProfilesMatchRliable) {
  for (const auto& c : Vectors()["cases"]) {
    const ScoreMatrix m = FromJson(c["scores"]);
    const auto& p = c["expected"]["performance_profiles"];
    const auto taus = p["tau"].get<std::vector<double>>();
    const auto score = ScoreDistribution(m.view(), taus);
    const auto average = AverageScoreDistribution(m.view(), taus);
    const auto want_score = p["score_distribution"].get<std::vector<double>>();
    const auto want_average = p["average_score_distribution"].get<std::vector<double>>();
    ASSERT_EQ(score.size(), taus.size());
    for (size_t i = 0; i < taus.size(); ++i) {
      EXPECT_NEAR(score[i], want_score[i], kTol) << c["name"] << " tau " << taus[i];
      EXPECT_NEAR(average[i], want_average[i], kTol) << c["name"] << " tau " << taus[i];
    }
  }
}

TEST(RliableVectorsTest, ProbabilityOfImprovementMatchesRliable) {
  for (const auto& pair : Vectors()["probability_of_improvement_pairs"]) {
    const ScoreMatrix x = FromJson(Case(pair["x"])["scores"]);
    const ScoreMatrix y = FromJson(Case(pair["y"])["scores"]);
    auto xy = ProbabilityOfImprovement(x, y);
    auto yx = ProbabilityOfImprovement(y, x);
    ASSERT_TRUE(xy.ok()) << xy.status().ToString();
    ASSERT_TRUE(yx.ok());
    EXPECT_NEAR(*xy, pair["probability_of_improvement_x_over_y"].get<double>(), kTol);
    EXPECT_NEAR(*yx, pair["probability_of_improvement_y_over_x"].get<double>(), kTol);
    EXPECT_NEAR(*xy + *yx, 1.0, kTol);
  }
}

TEST(RliableVectorsTest, StratifiedResampleExampleMetrics) {
  // Only the metric side here; bootstrap_test checks the resampling itself.
  const auto& ex = Vectors()["stratified_resample_example"];
  const ScoreMatrix m = FromJson(Case(ex["matrix"])["scores"]);
  const auto idx = ex["run_index"].get<std::vector<std::vector<int>>>();
  std::vector<std::vector<double>> rows(idx.size(), std::vector<double>(idx[0].size()));
  for (size_t n = 0; n < idx.size(); ++n)
    for (size_t t = 0; t < idx[n].size(); ++t) rows[n][t] = m(idx[n][t], static_cast<int>(t));
  const ScoreMatrix r = ScoreMatrix::FromRows(rows).value();
  const auto& e = ex["expected_on_resampled"];
  EXPECT_NEAR(Iqm(r.view()), e["iqm"].get<double>(), kTol);
  EXPECT_NEAR(AggregateMean(r.view()), e["mean"].get<double>(), kTol);
  EXPECT_NEAR(AggregateMedian(r.view()), e["median"].get<double>(), kTol);
  EXPECT_NEAR(OptimalityGap(r.view()), e["optimality_gap"].get<double>(), kTol);
  EXPECT_NEAR(OptimalityGap(r.view(), 2.0), e["optimality_gap_gamma_2"].get<double>(), kTol);
}

// rliable's own unit-test matrices (metrics_test.py).
TEST(AggregatesTest, RliableUnitTestSanityValues) {
  const ScoreMatrix x = ScoreMatrix::FromRows({{1, 2}, {2, 2}, {1, 1}, {2, 1}}).value();
  const ScoreMatrix y = ScoreMatrix::FromRows({{1, 1}, {2, 2}, {3, 3}}).value();
  EXPECT_DOUBLE_EQ(AggregateMedian(x.view()), 1.5);
  EXPECT_DOUBLE_EQ(AggregateMean(x.view()), 1.5);
  EXPECT_DOUBLE_EQ(Iqm(x.view()), 1.5);
  EXPECT_DOUBLE_EQ(AggregateMedian(y.view()), 2.0);
  EXPECT_DOUBLE_EQ(AggregateMean(y.view()), 2.0);
  EXPECT_DOUBLE_EQ(Iqm(y.view()), 2.0);
  EXPECT_DOUBLE_EQ(ProbabilityOfImprovement(x, y).value(), 1.0 / 3.0);
}

// scipy trim_mean(0.25) trims whole elements: N=7 -> drop 1 each side.
TEST(AggregatesTest, IqmTrimsWholeElementsWhenNIsNotDivisibleByFour) {
  std::vector<double> v = {7, 1, 6, 2, 5, 3, 4};  // sorted 1..7, keep 2..6
  EXPECT_DOUBLE_EQ(TrimmedIqmInPlace(v), 4.0);
  std::vector<double> w = {10, 0, 1, 2, 3, 100};  // N=6, c=1: keep 1,2,3,10
  EXPECT_DOUBLE_EQ(TrimmedIqmInPlace(w), 4.0);
  std::vector<double> three = {3, 1, 2};  // N=3, c=0: plain mean
  EXPECT_DOUBLE_EQ(TrimmedIqmInPlace(three), 2.0);
  std::vector<double> one = {5};
  EXPECT_DOUBLE_EQ(TrimmedIqmInPlace(one), 5.0);
  // N = 78 (3 x 26): c = 19, 40 values kept.
  std::vector<double> seq(78);
  for (int i = 0; i < 78; ++i) seq[static_cast<size_t>(i)] = 77 - i;
  EXPECT_DOUBLE_EQ(TrimmedIqmInPlace(seq), (19 + 58) / 2.0);
}

TEST(AggregatesTest, SingleRun) {
  const ScoreMatrix m = ScoreMatrix::FromRows({{0.5, 2.0, -1.0, 1.5, 0.0}}).value();
  EXPECT_DOUBLE_EQ(AggregateMean(m.view()), 0.6);
  EXPECT_DOUBLE_EQ(AggregateMedian(m.view()), 0.5);
  EXPECT_DOUBLE_EQ(Iqm(m.view()), (0.0 + 0.5 + 1.5) / 3.0);  // N=5, c=1
  EXPECT_DOUBLE_EQ(OptimalityGap(m.view()), 1.0 - (0.5 + 1.0 - 1.0 + 1.0 + 0.0) / 5.0);
}

TEST(AggregatesTest, SingleTask) {
  const ScoreMatrix m = ScoreMatrix::FromRows({{1.0}, {3.0}, {2.0}, {10.0}, {0.0}, {4.0}}).value();
  EXPECT_DOUBLE_EQ(AggregateMean(m.view()), 20.0 / 6.0);
  EXPECT_DOUBLE_EQ(AggregateMedian(m.view()), 20.0 / 6.0);  // median of one task mean
  EXPECT_DOUBLE_EQ(Iqm(m.view()), (1.0 + 2.0 + 3.0 + 4.0) / 4.0);  // N=6, c=1
}

TEST(AggregatesTest, TiesAndIdenticalMatrices) {
  const ScoreMatrix a = ScoreMatrix::FromRows({{1, 1, 2}, {1, 1, 2}, {1, 3, 2}}).value();
  EXPECT_DOUBLE_EQ(ProbabilityOfImprovement(a, a).value(), 0.5);
  const ScoreMatrix b = ScoreMatrix::FromRows({{1, 1, 1}, {1, 1, 1}}).value();
  // Task 0: all ties -> 0.5; task 1: a has one 3 > 1 -> (3*... ) ; task 2: 2 > 1 always -> 1.
  // Task 1: pairs 3x2=6; a values {1,1,3} vs {1,1}: wins 2, ties 4 -> (2 + 2)/6.
  EXPECT_DOUBLE_EQ(ProbabilityOfImprovement(a, b).value(), (0.5 + 4.0 / 6.0 + 1.0) / 3.0);
  EXPECT_DOUBLE_EQ(ProbabilityOfImprovement(a, b).value() + ProbabilityOfImprovement(b, a).value(), 1.0);
  const ScoreMatrix flat = ScoreMatrix::FromRows({{2, 2, 2, 2}, {2, 2, 2, 2}}).value();
  EXPECT_DOUBLE_EQ(Iqm(flat.view()), 2.0);
  EXPECT_DOUBLE_EQ(OptimalityGap(flat.view()), 0.0);
  EXPECT_EQ(ScoreDistribution(flat.view(), std::vector<double>{2.0}), std::vector<double>{0.0});  // strict >
}

TEST(AggregatesTest, ProbabilityOfImprovementRejectsDifferentTasks) {
  const ScoreMatrix a = ScoreMatrix::Create(1, 2, {1, 2}, {}, {"pong", "breakout"}).value();
  const ScoreMatrix b = ScoreMatrix::Create(1, 2, {1, 2}, {}, {"pong", "qbert"}).value();
  auto p = ProbabilityOfImprovement(a, b);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("breakout"), std::string::npos);
  EXPECT_NE(p.status().message().find("qbert"), std::string::npos);
  const ScoreMatrix c = ScoreMatrix::FromRows({{1, 2, 3}}).value();
  const ScoreMatrix d = ScoreMatrix::FromRows({{1, 2}}).value();
  EXPECT_FALSE(ProbabilityOfImprovement(c, d).ok());
}

TEST(AggregatesTest, NumpySumMatchesPairwiseOrder) {
  std::vector<double> v(300);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 1.0 / static_cast<double>(i + 1);
  double plain = 0.0;
  for (double x : v) plain += x;
  EXPECT_NEAR(NumpySum(v), plain, 1e-13);
  EXPECT_EQ(NumpySum(std::vector<double>{}), 0.0);
}

TEST(AggregatesTest, LinspaceMatchesNumpy) {
  const auto grid = Linspace(0.0, 8.0, 81);
  ASSERT_EQ(grid.size(), 81u);
  EXPECT_EQ(grid[0], 0.0);
  EXPECT_EQ(grid[10], 10 * 0.1);  // numpy: i * step + start
  EXPECT_EQ(grid[80], 8.0);
  EXPECT_EQ(Linspace(1.0, 2.0, 1), std::vector<double>{1.0});
}

}  // namespace
}  // namespace tokenrl::stats
