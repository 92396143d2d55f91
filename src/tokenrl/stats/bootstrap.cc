#include "tokenrl/stats/bootstrap.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace tokenrl::stats {
namespace {

constexpr int64_t kMaxReps = 10'000'000;
constexpr int64_t kMaxResults = 200'000'000;

// Calls the progress callback about every 1% of the replicates.
class ProgressReporter {
 public:
  explicit ProgressReporter(const BootstrapOptions& options)
      : callback_(options.progress), total_(options.reps), every_(std::max<int64_t>(1, options.reps / 100)) {}
  void Done(int64_t done) {
    if (callback_ && (done % every_ == 0 || done == total_)) callback_(done, total_);
  }

 private:
  const std::function<void(int64_t, int64_t)>& callback_;
  int64_t total_;
  int64_t every_;
};

Status CheckEngineArgs(int num_outputs, const BootstrapOptions& options) {
  TOKENRL_RETURN_IF_ERROR(ValidateBootstrapOptions(options));
  if (num_outputs < 1) return Status::InvalidArgument("a bootstrap statistic needs at least one output");
  if (options.reps * num_outputs > kMaxResults) {
    return Status::InvalidArgument(fmt::format(
        "{} replicates x {} outputs would store more than {} values; use fewer replicates or outputs",
        options.reps, num_outputs, kMaxResults));
  }
  return Status::Ok();
}

// results holds num_outputs blocks of `reps` replicate values each.
std::vector<IntervalEstimate> Intervals(std::span<const double> point, std::vector<double>& results, int64_t reps,
                                        const BootstrapOptions& options) {
  std::vector<IntervalEstimate> estimates(point.size());
  for (size_t i = 0; i < point.size(); ++i) {
    std::span<double> column(results.data() + i * static_cast<size_t>(reps), static_cast<size_t>(reps));
    const auto [lo, hi] = PercentileInterval(column, options.confidence);
    estimates[i].point = point[i];
    if (options.method == IntervalMethod::kBasic) {
      estimates[i].lower = 2.0 * point[i] - hi;
      estimates[i].upper = 2.0 * point[i] - lo;
    } else {
      estimates[i].lower = lo;
      estimates[i].upper = hi;
    }
  }
  return estimates;
}

// One stratified replicate of `scores` into `out`, drawing from `rng` in
// rliable's order (run indices for all cells, then task indices).
class Resampler {
 public:
  Resampler(ScoreView scores, bool task_bootstrap)
      : scores_(scores),
        run_index_(scores.size()),
        task_index_(task_bootstrap ? static_cast<size_t>(scores.num_tasks) : 0),
        replicate_(scores.size()) {}

  ScoreView Next(NumpyRandomState& rng) {
    DrawIndices(rng, scores_.num_runs, run_index_);
    if (!task_index_.empty()) DrawIndices(rng, scores_.num_tasks, task_index_);
    StratifiedResample(scores_, run_index_, task_index_, replicate_);
    return ScoreView{replicate_.data(), scores_.num_runs, scores_.num_tasks};
  }

 private:
  ScoreView scores_;
  std::vector<int32_t> run_index_;
  std::vector<int32_t> task_index_;
  std::vector<double> replicate_;
};

}  // namespace

Status ValidateBootstrapOptions(const BootstrapOptions& options) {
  if (options.reps < 1 || options.reps > kMaxReps) {
    return Status::InvalidArgument(
        fmt::format("bootstrap reps must be between 1 and {} (got {})", kMaxReps, options.reps));
  }
  if (!(options.confidence > 0.0 && options.confidence < 1.0)) {
    return Status::InvalidArgument(fmt::format(
        "confidence must be strictly between 0 and 1, e.g. 0.95 for 95% intervals (got {})", options.confidence));
  }
  return Status::Ok();
}

double NumpyPercentile(std::span<double> values, double percent) {
  TOKENRL_CHECK(!values.empty() && percent >= 0.0 && percent <= 100.0, "NumpyPercentile({} values, {})",
                values.size(), percent);
  const double q = percent / 100.0;
  const size_t n = values.size();
  const double virtual_index = static_cast<double>(n - 1) * q;
  if (virtual_index >= static_cast<double>(n - 1)) return *std::max_element(values.begin(), values.end());
  const double previous_index = std::floor(virtual_index);
  const size_t prev = static_cast<size_t>(previous_index);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(prev), values.end());
  const double a = values[prev];
  const double b = *std::min_element(values.begin() + static_cast<std::ptrdiff_t>(prev + 1), values.end());
  const double t = virtual_index - previous_index;
  // numpy._lerp: a + (b-a)*t, or b - (b-a)*(1-t) when t >= 0.5.
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

std::pair<double, double> PercentileInterval(std::span<double> values, double confidence) {
  TOKENRL_CHECK(confidence > 0.0 && confidence < 1.0, "confidence {}", confidence);
  const double alpha = (1.0 - confidence) / 2.0;
  const double lower = NumpyPercentile(values, 100.0 * alpha);
  const double upper = NumpyPercentile(values, 100.0 * (1.0 - alpha));
  return {lower, upper};
}

void StratifiedResample(ScoreView scores, std::span<const int32_t> run_index, std::span<const int32_t> task_index,
                        std::span<double> out) {
  const size_t tasks = static_cast<size_t>(scores.num_tasks);
  TOKENRL_CHECK(run_index.size() == scores.size() && out.size() == scores.size() &&
                    (task_index.empty() || task_index.size() == tasks),
                "StratifiedResample: bad index sizes");
  for (size_t n = 0; n < static_cast<size_t>(scores.num_runs); ++n) {
    const int32_t* k = run_index.data() + n * tasks;
    double* o = out.data() + n * tasks;
    if (task_index.empty()) {
      for (size_t m = 0; m < tasks; ++m) o[m] = scores.data[static_cast<size_t>(k[m]) * tasks + m];
    } else {
      for (size_t m = 0; m < tasks; ++m) {
        o[m] = scores.data[static_cast<size_t>(k[m]) * tasks + static_cast<size_t>(task_index[m])];
      }
    }
  }
}

void DrawIndices(NumpyRandomState& rng, int32_t n, std::span<int32_t> out) {
  TOKENRL_CHECK(n >= 1, "DrawIndices n = {}", n);
  if (n == 1) {  // numpy's bounded ints consume no draw for a one-value range.
    std::fill(out.begin(), out.end(), 0);
    return;
  }
  const uint32_t range = static_cast<uint32_t>(n - 1);
  uint32_t mask = range;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  for (int32_t& index : out) {
    uint32_t v;
    do {
      v = rng.Next32() & mask;
    } while (v > range);
    index = static_cast<int32_t>(v);
  }
}

StatusOr<std::vector<IntervalEstimate>> StratifiedBootstrapEstimates(const ScoreMatrix& scores, int num_outputs,
                                                                     const MatrixStatistic& statistic,
                                                                     const BootstrapOptions& options) {
  TOKENRL_RETURN_IF_ERROR(CheckEngineArgs(num_outputs, options));
  const size_t k = static_cast<size_t>(num_outputs);
  const int64_t reps = options.reps;
  std::vector<double> point(k);
  statistic(scores.view(), point);

  NumpyRandomState rng(options.seed);
  Resampler resampler(scores.view(), options.task_bootstrap);
  std::vector<double> out(k);
  std::vector<double> results(k * static_cast<size_t>(reps));
  ProgressReporter progress(options);
  for (int64_t rep = 0; rep < reps; ++rep) {
    statistic(resampler.Next(rng), out);
    for (size_t i = 0; i < k; ++i) results[i * static_cast<size_t>(reps) + static_cast<size_t>(rep)] = out[i];
    progress.Done(rep + 1);
  }
  return Intervals(point, results, reps, options);
}

StatusOr<std::vector<IntervalEstimate>> StratifiedIndependentBootstrapEstimates(
    const ScoreMatrix& x, const ScoreMatrix& y, int num_outputs, const TwoSampleStatistic& statistic,
    const BootstrapOptions& options) {
  TOKENRL_RETURN_IF_ERROR(CheckEngineArgs(num_outputs, options));
  if (options.task_bootstrap) {
    return Status::InvalidArgument(
        "task bootstrap is not supported for two-sample statistics such as probability of improvement (as in "
        "rliable); turn it off");
  }
  const size_t k = static_cast<size_t>(num_outputs);
  const int64_t reps = options.reps;
  std::vector<double> point(k);
  statistic(x.view(), y.view(), point);

  NumpyRandomState rng(options.seed);
  Resampler x_resampler(x.view(), false);
  Resampler y_resampler(y.view(), false);
  std::vector<double> out(k);
  std::vector<double> results(k * static_cast<size_t>(reps));
  ProgressReporter progress(options);
  for (int64_t rep = 0; rep < reps; ++rep) {
    const ScoreView xr = x_resampler.Next(rng);
    const ScoreView yr = y_resampler.Next(rng);
    statistic(xr, yr, out);
    for (size_t i = 0; i < k; ++i) results[i * static_cast<size_t>(reps) + static_cast<size_t>(rep)] = out[i];
    progress.Done(rep + 1);
  }
  return Intervals(point, results, reps, options);
}

const IntervalEstimate& AggregateEstimates::Get(Aggregate aggregate) const {
  switch (aggregate) {
    case Aggregate::kIqm: return iqm;
    case Aggregate::kMean: return mean;
    case Aggregate::kMedian: return median;
    case Aggregate::kOptimalityGap: return optimality_gap;
  }
  return iqm;
}

StatusOr<AggregateEstimates> AggregateIntervalEstimates(const ScoreMatrix& scores, const BootstrapOptions& options,
                                                        double gamma) {
  if (!std::isfinite(gamma)) {
    return Status::InvalidArgument(fmt::format("optimality gap threshold gamma must be finite (got {})", gamma));
  }
  AggregateCalculator calculator(scores.num_runs(), scores.num_tasks(), gamma);
  TOKENRL_ASSIGN_OR_RETURN(
      const std::vector<IntervalEstimate> estimates,
      StratifiedBootstrapEstimates(scores, kNumAggregates,
                                   [&calculator](ScoreView s, std::span<double> out) { calculator.Compute(s, out); },
                                   options));
  AggregateEstimates result;
  result.iqm = estimates[static_cast<size_t>(Aggregate::kIqm)];
  result.mean = estimates[static_cast<size_t>(Aggregate::kMean)];
  result.median = estimates[static_cast<size_t>(Aggregate::kMedian)];
  result.optimality_gap = estimates[static_cast<size_t>(Aggregate::kOptimalityGap)];
  return result;
}

StatusOr<PerformanceProfile> PerformanceProfileEstimates(const ScoreMatrix& scores, std::span<const double> taus,
                                                         ProfileKind kind, const BootstrapOptions& options) {
  if (taus.empty()) return Status::InvalidArgument("a performance profile needs at least one threshold tau");
  for (const double tau : taus) {
    if (!std::isfinite(tau)) return Status::InvalidArgument(fmt::format("profile threshold tau = {}", tau));
  }
  const size_t cells = kind == ProfileKind::kScoreDistribution ? scores.size()
                                                               : static_cast<size_t>(scores.num_tasks());
  std::vector<double> sorted(cells);
  MatrixStatistic statistic = [&sorted, taus, kind](ScoreView s, std::span<double> out) {
    if (kind == ProfileKind::kScoreDistribution) {
      std::copy(s.data, s.data + s.size(), sorted.begin());
    } else {
      std::fill(sorted.begin(), sorted.end(), 0.0);
      for (int r = 0; r < s.num_runs; ++r)
        for (int t = 0; t < s.num_tasks; ++t) sorted[static_cast<size_t>(t)] += s.at(r, t);
      for (double& v : sorted) v /= static_cast<double>(s.num_runs);
    }
    std::sort(sorted.begin(), sorted.end());
    const double n = static_cast<double>(sorted.size());
    for (size_t i = 0; i < taus.size(); ++i) {
      const auto above = sorted.end() - std::upper_bound(sorted.begin(), sorted.end(), taus[i]);
      out[i] = static_cast<double>(above) / n;
    }
  };
  TOKENRL_ASSIGN_OR_RETURN(
      std::vector<IntervalEstimate> profile,
      StratifiedBootstrapEstimates(scores, static_cast<int>(taus.size()), statistic, options));
  return PerformanceProfile{std::vector<double>(taus.begin(), taus.end()), std::move(profile)};
}

StatusOr<IntervalEstimate> ProbabilityOfImprovementEstimate(const ScoreMatrix& x, const ScoreMatrix& y,
                                                            const BootstrapOptions& options) {
  TOKENRL_RETURN_IF_ERROR(ProbabilityOfImprovement(x, y).status());  // Same task sets?
  std::vector<double> scratch;
  TOKENRL_ASSIGN_OR_RETURN(
      const std::vector<IntervalEstimate> estimates,
      StratifiedIndependentBootstrapEstimates(
          x, y, 1,
          [&scratch](ScoreView xs, ScoreView ys, std::span<double> out) {
            out[0] = ProbabilityOfImprovement(xs, ys, scratch);
          },
          options));
  return estimates[0];
}

}  // namespace tokenrl::stats
