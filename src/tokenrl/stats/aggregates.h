#pragma once
// Point estimates of aggregate performance, defined exactly as rliable 1.2.0
// (rliable/metrics.py and library.py; ../shared/docs/rliable_spec.md sections
// 1 and 3). All inputs are runs x tasks matrices (ScoreMatrix / ScoreView) of
// scores in whatever unit the caller chose, normally normalized scores
// (0 = random, 1 = human or reference); outputs are in the same unit unless
// stated otherwise.
//
// Sums follow numpy's order where it is cheap to do so (per-task means add
// runs in order; means over a vector use numpy's pairwise summation), so
// results agree with rliable to the last bit in most cases and always within
// ~1e-15 relative.

#include <span>
#include <string_view>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/stats/score_matrix.h"

namespace tokenrl::stats {

// numpy's pairwise summation of a contiguous float64 vector (what np.sum and
// np.mean use on a 1-D array). Returns 0 for an empty span.
double NumpySum(std::span<const double> values);

// Interquartile mean of a flat sample: scipy.stats.trim_mean(values, 0.25).
// With N values and c = floor(N / 4), the plain mean of the values at sorted
// ranks c .. N-c-1 (whole elements are trimmed, no fractional weights).
// `values` is reordered (partially sorted) in place. REQUIRES: !values.empty().
double TrimmedIqmInPlace(std::span<double> values);

// IQM of all runs x tasks scores pooled together (NOT per-task IQMs): rliable's
// aggregate_iqm. Allocates one copy of the scores.
double Iqm(ScoreView scores);
// Mean over tasks of each task's mean over runs (rliable aggregate_mean).
double AggregateMean(ScoreView scores);
// Median over tasks of each task's mean over runs (rliable aggregate_median;
// an even task count averages the two middle task means).
double AggregateMedian(ScoreView scores);
// gamma - mean over ALL cells of min(score, gamma) (rliable
// aggregate_optimality_gap). Lower is better; 0 means every run reached gamma.
// gamma is in score units; rliable's default 1 = human level when scores are
// human-normalized.
double OptimalityGap(ScoreView scores, double gamma = 1.0);

// The four aggregates the paper reports, in this order everywhere.
enum class Aggregate { kIqm = 0, kMean = 1, kMedian = 2, kOptimalityGap = 3 };
inline constexpr int kNumAggregates = 4;
// "iqm", "mean", "median", "optimality_gap" (the JSON keys of `tokenrl stats`).
std::string_view AggregateKey(Aggregate aggregate);
// "IQM", "Mean", "Median", "Optimality gap".
std::string_view AggregateLabel(Aggregate aggregate);

// Computes all four aggregates of matrices of one fixed shape without
// allocating per call: the object owns its scratch buffers. Used once per
// bootstrap replicate. Not thread-safe (one calculator per thread).
class AggregateCalculator {
 public:
  // REQUIRES: num_runs >= 1, num_tasks >= 1.
  AggregateCalculator(int num_runs, int num_tasks, double gamma = 1.0);

  // out[Aggregate::k...] for the four aggregates. REQUIRES: scores has the
  // constructor's shape; out.size() >= kNumAggregates.
  void Compute(ScoreView scores, std::span<double> out);

 private:
  int num_runs_;
  int num_tasks_;
  double gamma_;
  std::vector<double> cells_;       // Scratch: a copy of the cells (IQM partition).
  std::vector<double> task_means_;  // Scratch: per-task means.
};

// Probability of improvement P(X > Y) (rliable probability_of_improvement):
// for each task, the Mann-Whitney U1 statistic of X's runs against Y's runs
// divided by n_x * n_y, i.e. the fraction of (x run, y run) pairs where X's
// score is higher, ties counting 1/2; then the unweighted mean over tasks.
// X and Y may have different run counts. 0.5 means no difference;
// P(X > Y) + P(Y > X) = 1.
// Errors (InvalidArgument): different task counts, or different task names
// (the message lists the tasks that differ).
StatusOr<double> ProbabilityOfImprovement(const ScoreMatrix& x, const ScoreMatrix& y);
// The same on views, without name checks or allocation beyond `scratch`
// (resized as needed). REQUIRES: x.num_tasks == y.num_tasks.
double ProbabilityOfImprovement(ScoreView x, ScoreView y, std::vector<double>& scratch);

// Performance profiles (rliable create_performance_profile, point values).
// Score distribution: for each tau, the fraction of ALL runs x tasks scores
// strictly greater than tau.
std::vector<double> ScoreDistribution(ScoreView scores, std::span<const double> taus);
// Average-score distribution: for each tau, the fraction of tasks whose mean
// over runs is strictly greater than tau.
std::vector<double> AverageScoreDistribution(ScoreView scores, std::span<const double> taus);

// numpy.linspace(start, stop, count) (endpoint included, last value exactly
// `stop`). REQUIRES: count >= 1 (count == 1 gives {start}).
std::vector<double> Linspace(double start, double stop, int count);

}  // namespace tokenrl::stats
