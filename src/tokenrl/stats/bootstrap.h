#pragma once
// Stratified bootstrap confidence intervals, as rliable 1.2.0 computes them
// (rliable/library.py on top of arch 7.2's conf_int; see
// ../shared/docs/rliable_spec.md sections 2-4).
//
// One replicate of a runs x tasks matrix S keeps the task set and, for EVERY
// cell (n, m), draws a run index k uniformly from {0..num_runs-1} with
// replacement: replicate[n][m] = S[k][m]. So each task's column is resampled
// from that task's own runs (tasks are the strata). With task_bootstrap, a task
// index t_m is also drawn per column (shared by all runs) and
// replicate[n][m] = S[k][t_m]. A statistic is evaluated on every replicate; the
// interval is read off the replicate distribution per output (percentile
// method: numpy's default linear interpolation; basic method: the percentile
// endpoints reflected around the point estimate).
//
// Random numbers: a NumpyRandomState (MT19937, numpy's legacy generator)
// seeded with `seed`, drawing indices exactly as numpy's legacy
// `np.random.choice(num_runs, shape)` (masked rejection on 32-bit outputs):
// run indices for all cells in row-major order, then (with task_bootstrap)
// the task indices, for each replicate in turn. rliable draws from numpy's
// GLOBAL legacy RNG (its random_state argument is ignored), so with the same
// seed, the same matrix and the same reps, these intervals reproduce
// `np.random.seed(seed); rly.get_interval_estimates(...)` up to floating-point
// summation order (~1e-15). This is a verified property of the tests, not a
// guarantee across numpy versions. Results are deterministic for a given seed
// on every platform.

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "tokenrl/core/numpy_random.h"
#include "tokenrl/core/status.h"
#include "tokenrl/stats/aggregates.h"
#include "tokenrl/stats/score_matrix.h"

namespace tokenrl::stats {

// How an interval is read off the replicate distribution.
enum class IntervalMethod {
  kPercentile,  // [q_alpha, q_(1-alpha)] of the replicates (rliable's choice).
  kBasic,       // [2*point - q_(1-alpha), 2*point - q_alpha] (arch's default).
};

struct BootstrapOptions {
  // Number of bootstrap replicates. rliable: 50,000 for aggregates (default),
  // 2,000 for performance profiles and probability of improvement.
  int64_t reps = 50000;
  // Two-sided coverage in (0, 1): alpha = (1 - confidence) / 2 in each tail.
  double confidence = 0.95;
  // Seeds the NumpyRandomState; same meaning as numpy.random.seed(seed).
  uint32_t seed = 0;
  // Also resample tasks (rliable's "task + run" variant). Not supported by the
  // two-sample (probability of improvement) bootstrap.
  bool task_bootstrap = false;
  IntervalMethod method = IntervalMethod::kPercentile;
  // Optional progress callback, called with (replicates done, reps) about
  // every 1% of the replicates and once at the end. Never required.
  std::function<void(int64_t done, int64_t total)> progress;
};

// Errors (InvalidArgument): reps < 1 or > 10,000,000; confidence not strictly
// between 0 and 1.
Status ValidateBootstrapOptions(const BootstrapOptions& options);

// A point estimate with its confidence interval (same units as the statistic).
struct IntervalEstimate {
  double point = 0.0;
  double lower = 0.0;
  double upper = 0.0;
};

// ---- Interval step -----------------------------------------------------------

// np.percentile(values, percent) with numpy's default 'linear' method
// (Hyndman-Fan type 7, numpy >= 1.22's interpolation formula, bit-exact):
// h = (R - 1) * percent / 100, result = v[floor h] interpolated towards
// v[floor h + 1]. `values` is reordered in place (partial sort).
// REQUIRES: !values.empty(), 0 <= percent <= 100.
double NumpyPercentile(std::span<double> values, double percent);

// [lower, upper] percentile interval of `values` at two-sided `confidence`,
// computed exactly as arch: alpha = (1 - confidence) / 2, then
// np.percentile(values, [100 * alpha, 100 * (1 - alpha)]).
// `values` is reordered. REQUIRES: !values.empty(), 0 < confidence < 1.
std::pair<double, double> PercentileInterval(std::span<double> values, double confidence);

// ---- Resampling step ---------------------------------------------------------

// Writes one stratified replicate: out[n][m] = scores[run_index[n][m]][t_m],
// with t_m = task_index[m] when task_index is non-empty and t_m = m otherwise.
// REQUIRES: run_index.size() == out.size() == scores.size(), every run index in
// [0, num_runs); task_index empty or of size num_tasks with entries in
// [0, num_tasks).
void StratifiedResample(ScoreView scores, std::span<const int32_t> run_index,
                        std::span<const int32_t> task_index, std::span<double> out);

// Draws `out.size()` independent indices uniform in [0, n), exactly as numpy's
// legacy RandomState.choice(n, size) / randint(0, n, size) does (no draw at all
// when n == 1). REQUIRES: n >= 1.
void DrawIndices(NumpyRandomState& rng, int32_t n, std::span<int32_t> out);

// ---- Generic engines ---------------------------------------------------------

// A statistic of one runs x tasks matrix with a fixed number of outputs. It is
// called once on the original data and once per replicate, always with the
// same shape; it should not allocate per call (capture reusable buffers).
// out.size() equals the engine's num_outputs.
using MatrixStatistic = std::function<void(ScoreView scores, std::span<double> out)>;
// A statistic of two independently resampled matrices (e.g. X and Y of P(X>Y)).
using TwoSampleStatistic = std::function<void(ScoreView x, ScoreView y, std::span<double> out)>;

// Stratified bootstrap of `statistic` (num_outputs values) on `scores`.
// Returns one IntervalEstimate per output: the point is statistic(scores),
// the interval is computed per output (pointwise, no simultaneous band).
// Errors: invalid options (see ValidateBootstrapOptions); num_outputs < 1;
// reps * num_outputs > 200,000,000 (memory).
StatusOr<std::vector<IntervalEstimate>> StratifiedBootstrapEstimates(const ScoreMatrix& scores, int num_outputs,
                                                                     const MatrixStatistic& statistic,
                                                                     const BootstrapOptions& options);

// Independent stratified bootstrap of two matrices (rliable's
// StratifiedIndependentBootstrap): each replicate resamples x (its own run
// count) and then y, each as above. The matrices may differ in runs and tasks;
// the statistic decides what it needs. Errors: as above, plus
// options.task_bootstrap (InvalidArgument: not supported, as in rliable).
StatusOr<std::vector<IntervalEstimate>> StratifiedIndependentBootstrapEstimates(
    const ScoreMatrix& x, const ScoreMatrix& y, int num_outputs, const TwoSampleStatistic& statistic,
    const BootstrapOptions& options);

// ---- The paper's quantities ---------------------------------------------------

struct AggregateEstimates {
  IntervalEstimate iqm;
  IntervalEstimate mean;
  IntervalEstimate median;
  IntervalEstimate optimality_gap;  // With the gamma passed in.

  const IntervalEstimate& Get(Aggregate aggregate) const;
};

// IQM, mean, median and optimality gap (threshold `gamma`, score units) with
// stratified bootstrap CIs: rliable's get_interval_estimates with
// func = [iqm, mean, median, optimality_gap]. Errors: as
// StratifiedBootstrapEstimates; a non-finite gamma.
StatusOr<AggregateEstimates> AggregateIntervalEstimates(const ScoreMatrix& scores, const BootstrapOptions& options,
                                                        double gamma = 1.0);

enum class ProfileKind {
  kScoreDistribution,         // Fraction of all runs x tasks scores > tau (rliable default).
  kAverageScoreDistribution,  // Fraction of tasks whose run-mean score > tau.
};

struct PerformanceProfile {
  std::vector<double> taus;               // The thresholds, as given.
  std::vector<IntervalEstimate> profile;  // One per tau: fraction in [0, 1], pointwise CI.
};

// A performance profile on the grid `taus` (score units; e.g.
// Linspace(0, 8, 81) for Atari 200M) with pointwise bootstrap bands (rliable
// create_performance_profile; rliable's default there is reps = 2000, so pass
// options with reps = 2000 to match it). Errors: as
// StratifiedBootstrapEstimates; empty taus or a non-finite tau.
StatusOr<PerformanceProfile> PerformanceProfileEstimates(const ScoreMatrix& scores, std::span<const double> taus,
                                                         ProfileKind kind, const BootstrapOptions& options);

// P(X > Y) (see ProbabilityOfImprovement in aggregates.h) with a CI from the
// independent two-sample stratified bootstrap (rliable uses reps = 2000 here).
// Errors: different task sets (InvalidArgument, listing them); as
// StratifiedIndependentBootstrapEstimates.
StatusOr<IntervalEstimate> ProbabilityOfImprovementEstimate(const ScoreMatrix& x, const ScoreMatrix& y,
                                                            const BootstrapOptions& options);

}  // namespace tokenrl::stats
