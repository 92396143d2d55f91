// Stratified bootstrap: the deterministic percentile and resampling vectors of
// rliable_vectors.json exactly, rliable's Monte-Carlo CIs (both seed-for-seed
// and statistically), edge cases, and (Slow) the coverage of nominal 95% CIs.

#include "tokenrl/stats/bootstrap.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "testing/rliable_vectors.h"

namespace tokenrl::stats {
namespace {

using nlohmann::json;

const json& Vectors() { return tokenrl::testing::RliableVectors(); }

ScoreMatrix CaseMatrix(const std::string& name) {
  for (const auto& c : Vectors()["cases"])
    if (c["name"] == name) return ScoreMatrix::FromRows(c["scores"].get<std::vector<std::vector<double>>>()).value();
  TOKENRL_CHECK(false, "no case {}", name);
  return ScoreMatrix::FromRows({{0.0}}).value();
}

BootstrapOptions Options(int64_t reps, uint32_t seed) {
  BootstrapOptions o;
  o.reps = reps;
  o.seed = seed;
  return o;
}

TEST(PercentileTest, MatchesNumpyPercentileVectorsExactly) {
  const auto& p = Vectors()["percentile_interval_vectors"];
  const auto values = p["values"].get<std::vector<double>>();
  for (const std::string size : {"0.95", "0.9", "0.5"}) {
    std::vector<double> v = values;
    const auto [lo, hi] = PercentileInterval(v, std::stod(size));
    const auto want = p["size_" + size].get<std::vector<double>>();
    EXPECT_EQ(lo, want[0]) << "size " << size;
    EXPECT_EQ(hi, want[1]) << "size " << size;
  }
}

TEST(PercentileTest, EdgesAndInterpolation) {
  std::vector<double> one = {3.5};
  EXPECT_EQ(NumpyPercentile(one, 2.5), 3.5);
  std::vector<double> v = {4, 1, 3, 2};  // sorted 1..4; h = 3 q
  EXPECT_EQ(NumpyPercentile(v, 0), 1.0);
  EXPECT_EQ(NumpyPercentile(v, 100), 4.0);
  EXPECT_DOUBLE_EQ(NumpyPercentile(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(NumpyPercentile(v, 10), 1.3);
}

TEST(StratifiedResampleTest, FixedIndexExampleMatchesRliable) {
  const auto& ex = Vectors()["stratified_resample_example"];
  const ScoreMatrix m = CaseMatrix(ex["matrix"]);
  // The index matrix comes from the same LCG: idx = (state >> 16) mod runs.
  const auto want_idx = ex["run_index"].get<std::vector<std::vector<int32_t>>>();
  uint64_t s = ex["index_seed"].get<uint64_t>();
  std::vector<int32_t> idx;
  for (int n = 0; n < m.num_runs(); ++n)
    for (int t = 0; t < m.num_tasks(); ++t) {
      s = (1103515245ull * s + 12345ull) % 2147483648ull;
      idx.push_back(static_cast<int32_t>((s >> 16) % static_cast<uint64_t>(m.num_runs())));
      ASSERT_EQ(idx.back(), want_idx[static_cast<size_t>(n)][static_cast<size_t>(t)]);
    }
  std::vector<double> out(m.size());
  StratifiedResample(m.view(), idx, {}, out);
  for (int n = 0; n < m.num_runs(); ++n)
    for (int t = 0; t < m.num_tasks(); ++t)
      EXPECT_EQ(out[static_cast<size_t>(n * m.num_tasks() + t)], m(idx[static_cast<size_t>(n * m.num_tasks() + t)], t));
  AggregateCalculator calc(m.num_runs(), m.num_tasks());
  double got[kNumAggregates];
  calc.Compute(ScoreView{out.data(), m.num_runs(), m.num_tasks()}, got);
  const auto& e = ex["expected_on_resampled"];
  EXPECT_NEAR(got[0], e["iqm"].get<double>(), 1e-12);
  EXPECT_NEAR(got[1], e["mean"].get<double>(), 1e-12);
  EXPECT_NEAR(got[2], e["median"].get<double>(), 1e-12);
  EXPECT_NEAR(got[3], e["optimality_gap"].get<double>(), 1e-12);
}

TEST(StratifiedResampleTest, TaskIndexPicksColumns) {
  const ScoreMatrix m = ScoreMatrix::FromRows({{1, 2, 3}, {4, 5, 6}}).value();
  const std::vector<int32_t> runs = {1, 0, 0, 0, 1, 1};
  const std::vector<int32_t> tasks = {2, 2, 0};
  std::vector<double> out(6);
  StratifiedResample(m.view(), runs, tasks, out);
  EXPECT_EQ(out, (std::vector<double>{6, 3, 1, 3, 6, 4}));
}

TEST(DrawIndicesTest, MatchesNumpyRandIntStream) {
  for (int32_t n : {2, 3, 5, 7, 10, 26, 1000}) {
    NumpyRandomState a(123), b(123);
    std::vector<int32_t> idx(500);
    DrawIndices(a, n, idx);
    for (int32_t i : idx) ASSERT_EQ(i, b.RandInt(n));
    EXPECT_EQ(a.draws(), b.draws());
  }
  NumpyRandomState c(5);
  std::vector<int32_t> zeros(10, 7);
  DrawIndices(c, 1, zeros);
  EXPECT_EQ(zeros, std::vector<int32_t>(10, 0));
  EXPECT_EQ(c.draws(), 0u);  // numpy draws nothing for a one-value range
}

// rliable_vectors.json: 95% percentile CIs from rly.get_interval_estimates with
// 50,000 reps after np.random.seed(s), s = 0..4.
struct Metric {
  int index;
  const char* name;
};

TEST(BootstrapReferenceTest, ReproducesRliableSeedForSeed) {
  double max_error = 0.0;
  for (const auto& ref : Vectors()["bootstrap_reference"]) {
    const ScoreMatrix m = CaseMatrix(ref["name"]);
    const auto lowers = ref["ci_lower_per_seed"].get<std::vector<std::vector<double>>>();
    const auto uppers = ref["ci_upper_per_seed"].get<std::vector<std::vector<double>>>();
    const auto seeds = ref["numpy_global_seeds"].get<std::vector<uint32_t>>();
    for (size_t i = 0; i < seeds.size(); ++i) {
      auto est = AggregateIntervalEstimates(m, Options(ref["reps"].get<int64_t>(), seeds[i]));
      ASSERT_TRUE(est.ok());
      for (int a = 0; a < kNumAggregates; ++a) {
        const IntervalEstimate& e = est->Get(static_cast<Aggregate>(a));
        const double dl = std::abs(e.lower - lowers[i][static_cast<size_t>(a)]);
        const double du = std::abs(e.upper - uppers[i][static_cast<size_t>(a)]);
        EXPECT_LT(dl, 1e-9) << ref["name"] << " seed " << seeds[i] << " " << AggregateKey(static_cast<Aggregate>(a));
        EXPECT_LT(du, 1e-9) << ref["name"] << " seed " << seeds[i] << " " << AggregateKey(static_cast<Aggregate>(a));
        max_error = std::max({max_error, dl, du});
      }
    }
  }
  std::printf("max |tokenrl - rliable| over 60 seeded CI endpoints: %.3g\n", max_error);
}

// Seeds rliable never used: statistically consistent within 4 sd + slack.
TEST(BootstrapReferenceTest, StatisticallyConsistentForOtherSeeds) {
  for (const auto& ref : Vectors()["bootstrap_reference"]) {
    const ScoreMatrix m = CaseMatrix(ref["name"]);
    const auto lo_mean = ref["ci_lower_mean_over_seeds"].get<std::vector<double>>();
    const auto hi_mean = ref["ci_upper_mean_over_seeds"].get<std::vector<double>>();
    const auto lo_sd = ref["ci_lower_sd_over_seeds"].get<std::vector<double>>();
    const auto hi_sd = ref["ci_upper_sd_over_seeds"].get<std::vector<double>>();
    for (uint32_t seed : {12345u, 987654321u}) {
      auto est = AggregateIntervalEstimates(m, Options(50000, seed));
      ASSERT_TRUE(est.ok());
      for (size_t a = 0; a < kNumAggregates; ++a) {
        const IntervalEstimate& e = est->Get(static_cast<Aggregate>(a));
        const double slack = 0.005;
        EXPECT_NEAR(e.lower, lo_mean[a], 4 * lo_sd[a] + slack) << ref["name"] << " lower " << a;
        EXPECT_NEAR(e.upper, hi_mean[a], 4 * hi_sd[a] + slack) << ref["name"] << " upper " << a;
        EXPECT_LE(e.lower, e.point);
        EXPECT_GE(e.upper, e.point);
      }
    }
  }
}

TEST(BootstrapTest, FiftyThousandRepsOnFiveByTwentyIsFast) {
  const ScoreMatrix m = CaseMatrix("A_5x20");
  const auto start = std::chrono::steady_clock::now();
  auto est = AggregateIntervalEstimates(m, Options(50000, 0));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(est.ok());
  std::printf("50,000 reps, 5x20, four aggregates: %.3f s\n", seconds);
  EXPECT_LT(seconds, 3.0);
}

TEST(BootstrapTest, SameSeedSameResultOtherSeedDifferent) {
  const ScoreMatrix m = CaseMatrix("B_10x5");
  auto a = AggregateIntervalEstimates(m, Options(500, 7));
  auto b = AggregateIntervalEstimates(m, Options(500, 7));
  auto c = AggregateIntervalEstimates(m, Options(500, 8));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->iqm.lower, b->iqm.lower);
  EXPECT_EQ(a->median.upper, b->median.upper);
  EXPECT_NE(a->iqm.lower, c->iqm.lower);
  EXPECT_EQ(a->iqm.point, c->iqm.point);
}

TEST(BootstrapTest, SingleRunGivesZeroWidthIntervals) {
  const ScoreMatrix m = ScoreMatrix::FromRows({{0.1, 0.9, 1.7, 0.4, 2.0, -0.3, 0.8}}).value();
  auto est = AggregateIntervalEstimates(m, Options(200, 1));
  ASSERT_TRUE(est.ok());
  for (int a = 0; a < kNumAggregates; ++a) {
    const auto& e = est->Get(static_cast<Aggregate>(a));
    EXPECT_EQ(e.lower, e.point);
    EXPECT_EQ(e.upper, e.point);
  }
  EXPECT_FALSE(ShapeWarnings(m, false).empty());
  // Task resampling still varies a single-run matrix.
  BootstrapOptions tb = Options(200, 1);
  tb.task_bootstrap = true;
  auto wide = AggregateIntervalEstimates(m, tb);
  ASSERT_TRUE(wide.ok());
  EXPECT_LT(wide->mean.lower, wide->mean.upper);
}

TEST(BootstrapTest, SingleTaskWithTaskBootstrapEqualsRunOnlyDistribution) {
  const ScoreMatrix m = ScoreMatrix::FromRows({{1.0}, {2.0}, {0.5}, {3.0}, {1.5}, {2.5}}).value();
  BootstrapOptions run_only = Options(1000, 3);
  BootstrapOptions with_tasks = run_only;
  with_tasks.task_bootstrap = true;
  auto a = AggregateIntervalEstimates(m, run_only);
  auto b = AggregateIntervalEstimates(m, with_tasks);
  ASSERT_TRUE(a.ok() && b.ok());
  // One task: the task draw consumes nothing, so the replicates are identical.
  EXPECT_EQ(a->mean.lower, b->mean.lower);
  EXPECT_EQ(a->iqm.upper, b->iqm.upper);
  EXPECT_LT(a->mean.lower, a->mean.upper);
  const auto warnings = ShapeWarnings(m, true);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("task bootstrap"), std::string::npos);
}

TEST(BootstrapTest, TaskBootstrapWidensIntervalsAcrossHeterogeneousTasks) {
  const ScoreMatrix m = CaseMatrix("C_3x26");
  BootstrapOptions tb = Options(2000, 0);
  tb.task_bootstrap = true;
  auto runs = AggregateIntervalEstimates(m, Options(2000, 0));
  auto tasks = AggregateIntervalEstimates(m, tb);
  ASSERT_TRUE(runs.ok() && tasks.ok());
  EXPECT_GT(tasks->mean.upper - tasks->mean.lower, runs->mean.upper - runs->mean.lower);
}

TEST(BootstrapTest, BasicMethodReflectsPercentileEndpoints) {
  const ScoreMatrix m = CaseMatrix("B_10x5");
  BootstrapOptions basic = Options(1000, 2);
  basic.method = IntervalMethod::kBasic;
  auto p = AggregateIntervalEstimates(m, Options(1000, 2));
  auto b = AggregateIntervalEstimates(m, basic);
  ASSERT_TRUE(p.ok() && b.ok());
  EXPECT_DOUBLE_EQ(b->iqm.lower, 2 * p->iqm.point - p->iqm.upper);
  EXPECT_DOUBLE_EQ(b->iqm.upper, 2 * p->iqm.point - p->iqm.lower);
}

TEST(BootstrapTest, InvalidOptionsAreErrorsNotCrashes) {
  const ScoreMatrix m = CaseMatrix("B2_4x5");
  EXPECT_FALSE(AggregateIntervalEstimates(m, Options(0, 0)).ok());
  EXPECT_FALSE(AggregateIntervalEstimates(m, Options(20'000'000, 0)).ok());
  BootstrapOptions o = Options(10, 0);
  for (double c : {0.0, 1.0, -0.5, 1.5, std::nan("")}) {
    o.confidence = c;
    EXPECT_FALSE(AggregateIntervalEstimates(m, o).ok()) << c;
  }
  EXPECT_FALSE(AggregateIntervalEstimates(m, Options(10, 0), std::nan("")).ok());
  EXPECT_FALSE(PerformanceProfileEstimates(m, {}, ProfileKind::kScoreDistribution, Options(10, 0)).ok());
  BootstrapOptions tb = Options(10, 0);
  tb.task_bootstrap = true;
  EXPECT_FALSE(ProbabilityOfImprovementEstimate(m, m, tb).ok());
}

TEST(BootstrapTest, ProgressIsReportedUpToTheEnd) {
  const ScoreMatrix m = CaseMatrix("B2_4x5");
  BootstrapOptions o = Options(1000, 0);
  int64_t calls = 0, last = 0;
  o.progress = [&](int64_t done, int64_t total) {
    ++calls;
    last = done;
    EXPECT_EQ(total, 1000);
  };
  ASSERT_TRUE(AggregateIntervalEstimates(m, o).ok());
  EXPECT_EQ(last, 1000);
  EXPECT_GE(calls, 10);
  EXPECT_LE(calls, 101);
}

TEST(BootstrapTest, LowerConfidenceGivesNarrowerIntervals) {
  const ScoreMatrix m = CaseMatrix("A_5x20");
  BootstrapOptions o90 = Options(2000, 4);
  o90.confidence = 0.5;
  auto e95 = AggregateIntervalEstimates(m, Options(2000, 4));
  auto e50 = AggregateIntervalEstimates(m, o90);
  ASSERT_TRUE(e95.ok() && e50.ok());
  EXPECT_LT(e50->iqm.upper - e50->iqm.lower, e95->iqm.upper - e95->iqm.lower);
  EXPECT_GE(e50->iqm.lower, e95->iqm.lower);
}

TEST(PerformanceProfileTest, PointsMatchAndBandsAreOrdered) {
  const ScoreMatrix m = CaseMatrix("A_5x20");
  const std::vector<double> taus = Linspace(-0.5, 3.0, 15);
  for (ProfileKind kind : {ProfileKind::kScoreDistribution, ProfileKind::kAverageScoreDistribution}) {
    auto p = PerformanceProfileEstimates(m, taus, kind, Options(2000, 0));
    ASSERT_TRUE(p.ok());
    const auto want = kind == ProfileKind::kScoreDistribution ? ScoreDistribution(m.view(), taus)
                                                              : AverageScoreDistribution(m.view(), taus);
    ASSERT_EQ(p->profile.size(), taus.size());
    for (size_t i = 0; i < taus.size(); ++i) {
      EXPECT_EQ(p->profile[i].point, want[i]);
      EXPECT_LE(0.0, p->profile[i].lower);
      EXPECT_LE(p->profile[i].lower, p->profile[i].upper);
      EXPECT_LE(p->profile[i].upper, 1.0);
      if (i > 0) {
        EXPECT_LE(p->profile[i].upper, p->profile[i - 1].upper + 1e-12);  // non-increasing in tau
      }
    }
    EXPECT_EQ(p->profile.front().point, 1.0);
    EXPECT_EQ(p->profile.back().point, 0.0);
  }
}

TEST(ProbabilityOfImprovementTest, IntervalsAroundHalfForIdenticalAndAboveForBetter) {
  const ScoreMatrix c = CaseMatrix("C_3x26");
  auto same = ProbabilityOfImprovementEstimate(c, c, Options(2000, 0));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->point, 0.5);
  EXPECT_LT(same->lower, 0.5);
  EXPECT_GT(same->upper, 0.5);

  const ScoreMatrix a = CaseMatrix("A_5x20");
  const ScoreMatrix a2 = CaseMatrix("A2_7x20");  // Different run counts are fine.
  auto xy = ProbabilityOfImprovementEstimate(a, a2, Options(2000, 0));
  ASSERT_TRUE(xy.ok());
  EXPECT_NEAR(xy->point, 0.43785714285714283, 1e-12);
  EXPECT_LE(xy->lower, xy->point);
  EXPECT_GE(xy->upper, xy->point);

  std::vector<double> better(a.values().begin(), a.values().end());
  for (double& v : better) v += 2.0;
  const ScoreMatrix b = a.WithValues(better).value();
  auto up = ProbabilityOfImprovementEstimate(b, a, Options(500, 0));
  ASSERT_TRUE(up.ok());
  EXPECT_GT(up->lower, 0.5);
}

// Nominal 95% intervals for the mean (of per-task means) and for the IQM should
// cover the true value about 95% of the time. Synthetic data: 5 tasks with
// different true means, 20 runs each, Gaussian noise (sd 1), so the true
// aggregate mean is the mean of the task means and, by symmetry of the pooled
// distribution around it (task means placed symmetrically), so is the true IQM.
TEST(BootstrapCoverageSlow, NominalNinetyFivePercentCoversTheTruth) {
  const std::vector<double> task_means = {-1.0, -0.5, 0.0, 0.5, 1.0};
  const double truth = 0.0;
  const int runs = 20, tasks = 5, datasets = 2000;
  std::mt19937_64 rng(2024);
  std::normal_distribution<double> noise(0.0, 1.0);
  int covered_mean = 0, covered_iqm = 0;
  for (int d = 0; d < datasets; ++d) {
    std::vector<double> values;
    for (int r = 0; r < runs; ++r)
      for (int t = 0; t < tasks; ++t) values.push_back(task_means[static_cast<size_t>(t)] + noise(rng));
    const ScoreMatrix m = ScoreMatrix::Create(runs, tasks, values).value();
    auto est = AggregateIntervalEstimates(m, Options(1000, static_cast<uint32_t>(d)));
    ASSERT_TRUE(est.ok());
    covered_mean += est->mean.lower <= truth && truth <= est->mean.upper;
    covered_iqm += est->iqm.lower <= truth && truth <= est->iqm.upper;
  }
  const double mean_rate = static_cast<double>(covered_mean) / datasets;
  const double iqm_rate = static_cast<double>(covered_iqm) / datasets;
  std::printf("coverage of nominal 95%% CIs over %d datasets: mean %.3f, IQM %.3f\n", datasets, mean_rate, iqm_rate);
  // Percentile bootstrap CIs run slightly narrow at n = 20 runs per task (the
  // bootstrap variance carries a (n-1)/n factor and uses the sample sd): with
  // 10,000 datasets this setup covers 0.936 (mean) / 0.939 (IQM), and 0.945 /
  // 0.943 at n = 80. The binomial sd of a rate over 2,000 datasets is ~0.005.
  EXPECT_GT(mean_rate, 0.92);
  EXPECT_LT(mean_rate, 0.97);
  EXPECT_GT(iqm_rate, 0.92);
  EXPECT_LT(iqm_rate, 0.975);
}

}  // namespace
}  // namespace tokenrl::stats
