#include "tokenrl/stats/aggregates.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace tokenrl::stats {
namespace {

// numpy's mean over axis 0 of a C-contiguous (runs, tasks) array adds the rows
// in order, starting from 0.
void TaskMeans(ScoreView scores, double* out) {
  for (int t = 0; t < scores.num_tasks; ++t) out[t] = 0.0;
  for (int r = 0; r < scores.num_runs; ++r) {
    const double* row = scores.data + static_cast<size_t>(r) * static_cast<size_t>(scores.num_tasks);
    for (int t = 0; t < scores.num_tasks; ++t) out[t] += row[t];
  }
  const double n = static_cast<double>(scores.num_runs);
  for (int t = 0; t < scores.num_tasks; ++t) out[t] /= n;
}

// np.median of a vector (reordered in place). REQUIRES: !v.empty().
double MedianInPlace(std::span<double> v) {
  const size_t n = v.size();
  const size_t mid = n / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double upper = v[mid];
  if (n % 2 == 1) return upper;
  const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2.0;
}

double OptimalityGapOf(ScoreView scores, double gamma, double* scratch) {
  const size_t n = scores.size();
  for (size_t i = 0; i < n; ++i) scratch[i] = std::min(scores.data[i], gamma);
  return gamma - NumpySum({scratch, n}) / static_cast<double>(n);
}

// Per task: (#{x > y} + 0.5 #{x == y}) / (n_x n_y) from sorted columns.
double TaskImprovement(std::span<double> xs, std::span<double> ys) {
  std::sort(xs.begin(), xs.end());
  std::sort(ys.begin(), ys.end());
  // For each x: below = #{y < x}, equal = #{y == x}; both grow with x.
  double wins = 0.0;
  size_t below = 0;
  for (const double x : xs) {
    while (below < ys.size() && ys[below] < x) ++below;
    size_t not_above = below;
    while (not_above < ys.size() && ys[not_above] == x) ++not_above;
    wins += static_cast<double>(below) + 0.5 * static_cast<double>(not_above - below);
  }
  return wins / (static_cast<double>(xs.size()) * static_cast<double>(ys.size()));
}

}  // namespace

double NumpySum(std::span<const double> values) {
  const size_t n = values.size();
  const double* a = values.data();
  if (n < 8) {
    double res = 0.0;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int j = 0; j < 8; ++j) r[j] += a[i + static_cast<size_t>(j)];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return NumpySum(values.subspan(0, n2)) + NumpySum(values.subspan(n2));
}

double TrimmedIqmInPlace(std::span<double> values) {
  TOKENRL_CHECK(!values.empty(), "IQM of an empty sample");
  const size_t n = values.size();
  const size_t cut = n / 4;  // scipy: int(0.25 * n).
  auto begin = values.begin();
  if (cut > 0) {
    std::nth_element(begin, begin + static_cast<std::ptrdiff_t>(cut), values.end());
    std::nth_element(begin + static_cast<std::ptrdiff_t>(cut), begin + static_cast<std::ptrdiff_t>(n - cut),
                     values.end());
  }
  const std::span<const double> kept = values.subspan(cut, n - 2 * cut);
  return NumpySum(kept) / static_cast<double>(kept.size());
}

double Iqm(ScoreView scores) {
  std::vector<double> copy(scores.values().begin(), scores.values().end());
  return TrimmedIqmInPlace(copy);
}

double AggregateMean(ScoreView scores) {
  std::vector<double> means(static_cast<size_t>(scores.num_tasks));
  TaskMeans(scores, means.data());
  return NumpySum(means) / static_cast<double>(means.size());
}

double AggregateMedian(ScoreView scores) {
  std::vector<double> means(static_cast<size_t>(scores.num_tasks));
  TaskMeans(scores, means.data());
  return MedianInPlace(means);
}

double OptimalityGap(ScoreView scores, double gamma) {
  std::vector<double> scratch(scores.size());
  return OptimalityGapOf(scores, gamma, scratch.data());
}

std::string_view AggregateKey(Aggregate aggregate) {
  switch (aggregate) {
    case Aggregate::kIqm: return "iqm";
    case Aggregate::kMean: return "mean";
    case Aggregate::kMedian: return "median";
    case Aggregate::kOptimalityGap: return "optimality_gap";
  }
  return "?";
}

std::string_view AggregateLabel(Aggregate aggregate) {
  switch (aggregate) {
    case Aggregate::kIqm: return "IQM";
    case Aggregate::kMean: return "Mean";
    case Aggregate::kMedian: return "Median";
    case Aggregate::kOptimalityGap: return "Optimality gap";
  }
  return "?";
}

AggregateCalculator::AggregateCalculator(int num_runs, int num_tasks, double gamma)
    : num_runs_(num_runs),
      num_tasks_(num_tasks),
      gamma_(gamma),
      cells_(static_cast<size_t>(num_runs) * static_cast<size_t>(num_tasks)),
      task_means_(static_cast<size_t>(num_tasks)) {
  TOKENRL_CHECK(num_runs >= 1 && num_tasks >= 1, "AggregateCalculator shape {}x{}", num_runs, num_tasks);
}

void AggregateCalculator::Compute(ScoreView scores, std::span<double> out) {
  TOKENRL_CHECK(scores.num_runs == num_runs_ && scores.num_tasks == num_tasks_ && out.size() >= kNumAggregates,
                "AggregateCalculator: shape {}x{} != {}x{}", scores.num_runs, scores.num_tasks, num_runs_,
                num_tasks_);
  TaskMeans(scores, task_means_.data());
  out[static_cast<int>(Aggregate::kMean)] = NumpySum(task_means_) / static_cast<double>(num_tasks_);
  out[static_cast<int>(Aggregate::kMedian)] = MedianInPlace(task_means_);
  out[static_cast<int>(Aggregate::kOptimalityGap)] = OptimalityGapOf(scores, gamma_, cells_.data());
  std::copy(scores.data, scores.data + scores.size(), cells_.begin());
  out[static_cast<int>(Aggregate::kIqm)] = TrimmedIqmInPlace(cells_);
}

double ProbabilityOfImprovement(ScoreView x, ScoreView y, std::vector<double>& scratch) {
  TOKENRL_CHECK(x.num_tasks == y.num_tasks, "PoI: {} vs {} tasks", x.num_tasks, y.num_tasks);
  const size_t nx = static_cast<size_t>(x.num_runs);
  const size_t ny = static_cast<size_t>(y.num_runs);
  const size_t tasks = static_cast<size_t>(x.num_tasks);
  scratch.resize(nx + ny + tasks);
  std::span<double> xs(scratch.data(), nx);
  std::span<double> ys(scratch.data() + nx, ny);
  std::span<double> per_task(scratch.data() + nx + ny, tasks);
  for (int t = 0; t < x.num_tasks; ++t) {
    for (size_t r = 0; r < nx; ++r) xs[r] = x.at(static_cast<int>(r), t);
    for (size_t r = 0; r < ny; ++r) ys[r] = y.at(static_cast<int>(r), t);
    per_task[static_cast<size_t>(t)] = TaskImprovement(xs, ys);
  }
  return NumpySum(per_task) / static_cast<double>(tasks);
}

StatusOr<double> ProbabilityOfImprovement(const ScoreMatrix& x, const ScoreMatrix& y) {
  if (x.num_tasks() != y.num_tasks() || x.task_names() != y.task_names()) {
    const std::set<std::string> xs(x.task_names().begin(), x.task_names().end());
    const std::set<std::string> ys(y.task_names().begin(), y.task_names().end());
    std::string only_x, only_y;
    for (const auto& t : xs)
      if (!ys.count(t)) only_x += (only_x.empty() ? "" : ", ") + t;
    for (const auto& t : ys)
      if (!xs.count(t)) only_y += (only_y.empty() ? "" : ", ") + t;
    if (only_x.empty()) only_x = "none";
    if (only_y.empty()) only_y = "none";
    return Status::InvalidArgument(fmt::format(
        "probability of improvement needs the same tasks in both score sets ({} vs {} tasks; only in the first: "
        "{}; only in the second: {}); compare on the common tasks only",
        x.num_tasks(), y.num_tasks(), only_x, only_y));
  }
  std::vector<double> scratch;
  return ProbabilityOfImprovement(x.view(), y.view(), scratch);
}

std::vector<double> ScoreDistribution(ScoreView scores, std::span<const double> taus) {
  std::vector<double> sorted(scores.values().begin(), scores.values().end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> out;
  out.reserve(taus.size());
  const double n = static_cast<double>(sorted.size());
  for (const double tau : taus) {
    const auto above = sorted.end() - std::upper_bound(sorted.begin(), sorted.end(), tau);
    out.push_back(static_cast<double>(above) / n);
  }
  return out;
}

std::vector<double> AverageScoreDistribution(ScoreView scores, std::span<const double> taus) {
  std::vector<double> means(static_cast<size_t>(scores.num_tasks));
  TaskMeans(scores, means.data());
  std::sort(means.begin(), means.end());
  std::vector<double> out;
  out.reserve(taus.size());
  const double n = static_cast<double>(means.size());
  for (const double tau : taus) {
    const auto above = means.end() - std::upper_bound(means.begin(), means.end(), tau);
    out.push_back(static_cast<double>(above) / n);
  }
  return out;
}

std::vector<double> Linspace(double start, double stop, int count) {
  TOKENRL_CHECK(count >= 1, "Linspace count {}", count);
  if (count == 1) return {start};
  const double step = (stop - start) / static_cast<double>(count - 1);
  std::vector<double> out(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) out[static_cast<size_t>(i)] = static_cast<double>(i) * step + start;
  out.back() = stop;
  return out;
}

}  // namespace tokenrl::stats
