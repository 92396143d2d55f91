#include "tokenrl/report/analysis.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <tuple>

#include <fmt/format.h>

#include "tokenrl/report/format.h"
#include "tokenrl/stats/aggregates.h"
#include "tokenrl/stats/normalization.h"
#include "tokenrl/stats/score_matrix.h"

namespace tokenrl::report {

using namespace tokenrl::stats;  // The statistics library this file applies (file-local: a .cc).

namespace {

namespace fs = std::filesystem;

// IQM at each of `points` evaluation points with pointwise stratified
// bootstrap CIs.
StatusOr<std::vector<IntervalEstimate>> CurveIqm(const std::vector<std::vector<double>>& cells, int runs, int tasks,
                                                 int points, const BootstrapOptions& options) {
  // cells[r][m * points + t]: the runs x tasks x points array in rliable's
  // C order, so per-cell run draws follow rliable's sample-efficiency curves.
  std::vector<double> values;
  values.reserve(static_cast<size_t>(runs) * tasks * points);
  for (const auto& row : cells) values.insert(values.end(), row.begin(), row.end());
  std::vector<std::string> names;
  for (int i = 0; i < tasks * points; ++i) names.push_back(fmt::format("c{}", i));
  TOKENRL_ASSIGN_OR_RETURN(const ScoreMatrix matrix,
                           ScoreMatrix::Create(runs, tasks * points, std::move(values), {}, std::move(names)));
  auto scratch = std::make_shared<std::vector<double>>(static_cast<size_t>(runs) * tasks);
  MatrixStatistic statistic = [scratch, runs, tasks, points](ScoreView view, std::span<double> out) {
    for (int t = 0; t < points; ++t) {
      size_t i = 0;
      for (int r = 0; r < runs; ++r)
        for (int m = 0; m < tasks; ++m) (*scratch)[i++] = view.at(r, m * points + t);
      out[t] = TrimmedIqmInPlace(*scratch);
    }
  };
  return StratifiedBootstrapEstimates(matrix, points, statistic, options);
}

// A run's final score from its (env steps, score) points, increasing in
// steps: the last point, or with fraction f > 0 the mean of the points past
// (1 - f) of the last step (the last point at least).
double FinalScore(const std::vector<std::pair<int64_t, double>>& series, double fraction) {
  if (fraction <= 0.0) return series.back().second;
  const double from = (1.0 - fraction) * static_cast<double>(series.back().first);
  double sum = 0.0;
  int n = 0;
  for (auto it = series.rbegin(); it != series.rend() && (n == 0 || static_cast<double>(it->first) > from); ++it) {
    sum += it->second;
    ++n;
  }
  return sum / n;
}

}  // namespace

StatusOr<Analysis> Analyze(const ReportOptions& options, ReportResult& result) {
  if (options.tau_points < 2) return Status::InvalidArgument("tau_points must be at least 2");
  if (!(options.final_fraction >= 0.0 && options.final_fraction < 1.0)) {
    return Status::InvalidArgument(
        fmt::format("final_fraction must be in [0, 1) (0: last point; 0.1: the last 10% of steps), not {}",
                    options.final_fraction));
  }
  Analysis analysis;
  BootstrapOptions& agg_options = analysis.aggregate_options;
  agg_options.reps = options.reps;
  agg_options.seed = options.seed;
  agg_options.confidence = options.confidence;
  TOKENRL_RETURN_IF_ERROR(ValidateBootstrapOptions(agg_options));
  BootstrapOptions& curve_options = analysis.curve_options;
  curve_options = agg_options;
  curve_options.reps = options.curve_reps;
  TOKENRL_RETURN_IF_ERROR(ValidateBootstrapOptions(curve_options).WithContext("curve reps"));
  BootstrapOptions& profile_options = analysis.profile_options;
  profile_options = agg_options;
  profile_options.reps = options.profile_reps;
  TOKENRL_RETURN_IF_ERROR(ValidateBootstrapOptions(profile_options).WithContext("profile reps"));
  BootstrapOptions& improvement_options = analysis.improvement_options;
  improvement_options = agg_options;
  improvement_options.reps = options.improvement_reps;
  TOKENRL_RETURN_IF_ERROR(ValidateBootstrapOptions(improvement_options).WithContext("improvement reps"));
  for (const auto& [x, y] : options.pairs) {
    if (x.empty() || y.empty() || x == y) {
      return Status::InvalidArgument(
          fmt::format("pair \"{}:{}\": name two different variants (X:Y reports P(X > Y))", x, y));
    }
  }
  if (!std::isfinite(options.gamma)) return Status::InvalidArgument("gamma must be finite");

  auto& warnings = result.warnings;

  // 1. Run directories.
  TOKENRL_ASSIGN_OR_RETURN(const std::vector<FoundRunDir> found, FindRunDirectories(options.roots));
  std::vector<LoadedDir>& dirs = analysis.dirs;
  int unfinished = 0;
  for (const auto& d : found) {
    // Checked before loading: a run still starting may have no metrics rows yet.
    std::error_code ec;
    if (options.only_done && !fs::exists(fs::path(d.dir) / "DONE", ec)) {
      ++unfinished;
      continue;
    }
    TOKENRL_ASSIGN_OR_RETURN(LoadedDir loaded, LoadRunDir(d, options.group_by));
    dirs.push_back(std::move(loaded));
  }
  if (unfinished > 0) {
    warnings.push_back(fmt::format("{} run director{} without DONE left out (only_done)", unfinished,
                                   unfinished == 1 ? "y" : "ies"));
  }
  if (dirs.empty()) return Status::NotFound("every run directory found lacks DONE: no finished run to report");

  // Short task names, unless two envs share one.
  std::map<std::string, std::set<std::string>> by_short;
  auto short_name = [](const std::string& env) {
    const size_t slash = env.find_last_of("/:");
    return slash == std::string::npos ? env : env.substr(slash + 1);
  };
  for (const auto& d : dirs) by_short[short_name(d.env_name)].insert(d.env_name);
  auto task_of = [&](const std::string& env) {
    const std::string s = short_name(env);
    return by_short[s].size() == 1 && !s.empty() ? s : env;
  };

  // 2. Runs (members).
  std::vector<std::string> not_done, no_eval;
  for (const auto& d : dirs) {
    if (!d.done) not_done.push_back(d.found.dir);
    int fallback = 0;
    for (const auto& m : d.members) {
      ReportRun run;
      run.run_dir = d.found.dir;
      run.label = fmt::format("{}#{}", d.found.relative == "." ? fs::path(d.found.dir).filename().string()
                                                               : d.found.relative,
                              m.member);
      run.member = m.member;
      run.env_name = d.env_name;
      run.task = task_of(d.env_name);
      run.variant = d.variant;
      const auto& series = m.eval.empty() ? m.train : m.eval;
      if (series.empty()) {
        return Status::InvalidArgument(fmt::format(
            "{}/{}: member {} has neither eval_return_mean nor return_mean_recent values; no score to report "
            "(leave this run out, or let it train longer)",
            d.found.dir, kMetricsFile, m.member));
      }
      run.final_from_eval = !m.eval.empty();
      if (!run.final_from_eval) ++fallback;
      run.final_score = FinalScore(series, options.final_fraction);
      for (const auto& [step, value] : series) {
        run.curve_steps.push_back(step);
        run.curve_scores.push_back(value);
      }
      result.runs.push_back(std::move(run));
    }
    if (fallback > 0) {
      no_eval.push_back(fmt::format("{} ({} of {} members)", d.found.dir, fallback, d.members.size()));
    }
  }
  if (!not_done.empty()) {
    warnings.push_back(fmt::format(
        "{} run director{} without DONE (still running or stopped early); their last logged values are used: {}",
        not_done.size(), not_done.size() == 1 ? "y" : "ies", Join(not_done, ", ")));
  }
  if (!no_eval.empty()) {
    warnings.push_back(fmt::format(
        "no evaluation (eval_return_mean) in {}: their final scores are the last return_mean_recent, a TRAINING "
        "return with exploration on, not comparable to evaluation scores (set schedule.eval_every_env_steps)",
        Join(no_eval, "; ")));
  }

  // 3. Normalization.
  std::string& normalize = analysis.normalize;
  normalize = options.normalize.empty() ? "auto" : options.normalize;
  std::transform(normalize.begin(), normalize.end(), normalize.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::set<std::string>& all_tasks = analysis.all_tasks;
  for (const auto& r : result.runs) all_tasks.insert(r.task);
  if (normalize == "auto") {
    const bool all_minatar = std::all_of(dirs.begin(), dirs.end(),
                                         [](const LoadedDir& d) { return d.env_name.rfind("minatar/", 0) == 0; });
    normalize = all_minatar ? "minatar" : "none";
    if (!all_minatar && all_tasks.size() > 1) {
      warnings.push_back(
          "not every task is a minatar/* env, so scores are NOT normalized (--normalize none) and raw returns of "
          "different games are averaged; pass --normalize atari or minatar when the tasks have references");
    }
  }
  std::optional<Normalizer> normalizer;
  if (normalize == "minatar") {
    TOKENRL_ASSIGN_OR_RETURN(normalizer, Normalizer::MinAtar(options.reference));
  } else if (normalize == "atari") {
    TOKENRL_ASSIGN_OR_RETURN(normalizer, Normalizer::Atari(options.reference));
  } else if (normalize == "none") {
    normalizer = Normalizer::None();
  } else {
    return Status::InvalidArgument(
        fmt::format("unknown normalization \"{}\"; use auto, minatar, atari or none", options.normalize));
  }
  result.normalization = normalize;
  result.normalization_source = normalizer->source();

  // 4. Variants.
  std::map<std::string, std::map<std::string, std::vector<int>>> grouped;  // variant -> task -> run indices
  for (size_t i = 0; i < result.runs.size(); ++i) {
    grouped[result.runs[i].variant][result.runs[i].task].push_back(static_cast<int>(i));
  }
  for (auto& [name, tasks] : grouped) {
    ReportVariant v;
    v.name = name;
    size_t n = SIZE_MAX;
    for (const auto& [task, runs] : tasks) n = std::min(n, runs.size());
    for (auto& [task, runs] : tasks) {
      std::sort(runs.begin(), runs.end(), [&](int a, int b) {
        const auto& x = result.runs[a];
        const auto& y = result.runs[b];
        return std::tie(x.run_dir, x.member) < std::tie(y.run_dir, y.member);
      });
      v.dropped_runs += static_cast<int>(runs.size() - n);
      v.tasks.push_back(task);
      v.runs.emplace_back(runs.begin(), runs.begin() + static_cast<std::ptrdiff_t>(n));
      for (int i : runs) v.run_dirs.push_back(result.runs[i].run_dir);
    }
    std::sort(v.run_dirs.begin(), v.run_dirs.end());
    v.run_dirs.erase(std::unique(v.run_dirs.begin(), v.run_dirs.end()), v.run_dirs.end());
    if (v.dropped_runs > 0) {
      std::vector<std::string> counts;
      for (const auto& [task, runs] : tasks) counts.push_back(fmt::format("{} {}", task, runs.size()));
      warnings.push_back(fmt::format(
          "variant \"{}\": tasks have different numbers of runs ({}); the statistics use the first {} run(s) of "
          "each task and leave {} run(s) out. Run the same seeds on every task",
          name, Join(counts, ", "), n, v.dropped_runs));
    }
    const int runs = static_cast<int>(n);
    const int num_tasks = static_cast<int>(v.tasks.size());
    std::vector<double> values(static_cast<size_t>(runs) * num_tasks);
    for (int k = 0; k < runs; ++k)
      for (int m = 0; m < num_tasks; ++m) {
        values[static_cast<size_t>(k) * num_tasks + m] = result.runs[v.runs[m][k]].final_score;
      }
    std::vector<std::string> labels;
    for (int k = 0; k < runs; ++k) labels.push_back(std::to_string(k));
    TOKENRL_ASSIGN_OR_RETURN(v.raw, ScoreMatrix::Create(runs, num_tasks, std::move(values), labels, v.tasks));
    for (const auto& w : ShapeWarnings(*v.raw, false)) warnings.push_back(fmt::format("variant \"{}\": {}", name, w));
    for (const auto& w : normalizer->Warnings(*v.raw)) warnings.push_back(fmt::format("variant \"{}\": {}", name, w));
    auto normalized = normalizer->Normalize(*v.raw);
    if (!normalized.ok()) {
      return normalized.status().WithContext(fmt::format("variant \"{}\" ({} normalization)", name, normalize));
    }
    v.normalized = std::move(*normalized);
    result.variants.push_back(std::move(v));
  }
  {
    std::set<std::string> union_tasks;
    for (const auto& v : result.variants) union_tasks.insert(v.tasks.begin(), v.tasks.end());
    std::vector<std::string> partial;
    for (const auto& v : result.variants) {
      if (v.tasks.size() != union_tasks.size()) {
        partial.push_back(fmt::format("\"{}\" ({})", v.name, Join(v.tasks, ", ")));
      }
    }
    if (!partial.empty()) {
      warnings.push_back(fmt::format(
          "variants cover different tasks (all tasks: {}); aggregates of different task sets are not comparable: {}",
          Join(std::vector<std::string>(union_tasks.begin(), union_tasks.end()), ", "), Join(partial, "; ")));
    }
  }

  // Pairs name variants that exist and share a task (checked before the
  // bootstrap work); P(X > Y) is estimated over the tasks both cover.
  const auto variant_named = [&](const std::string& name) {
    return std::find_if(result.variants.begin(), result.variants.end(),
                        [&](const ReportVariant& v) { return v.name == name; });
  };
  for (const auto& [x, y] : options.pairs) {
    for (const std::string& name : {x, y}) {
      if (variant_named(name) == result.variants.end()) {
        std::vector<std::string> names;
        for (const auto& v : result.variants) names.push_back("\"" + v.name + "\"");
        return Status::InvalidArgument(fmt::format("pair \"{}:{}\": no variant \"{}\" (variants: {})", x, y, name,
                                                   Join(names, ", ")));
      }
    }
    const std::vector<std::string>& tx = variant_named(x)->normalized->task_names();
    const std::vector<std::string>& ty = variant_named(y)->normalized->task_names();
    ReportImprovement p{x, y, {}, true, {}};
    for (const std::string& task : tx) {
      if (std::count(ty.begin(), ty.end(), task) > 0) p.tasks.push_back(task);
    }
    if (p.tasks.empty()) {
      return Status::InvalidArgument(fmt::format("pair \"{}:{}\": no task in common (\"{}\": {}; \"{}\": {})", x, y,
                                                 x, Join(tx, ", "), y, Join(ty, ", ")));
    }
    p.all_tasks = p.tasks.size() == tx.size() && p.tasks.size() == ty.size();
    if (!p.all_tasks) {
      warnings.push_back(fmt::format("pair \"{}:{}\": P({} > {}) is over the {} task(s) both cover ({}) only", x, y, x,
                                     y, p.tasks.size(), Join(p.tasks, ", ")));
    }
    result.improvements.push_back(std::move(p));
  }

  // 5. Statistics.
  double lo = 0.0, hi = 0.0;
  bool first = true;
  for (auto& v : result.variants) {
    TOKENRL_ASSIGN_OR_RETURN(v.aggregates, AggregateIntervalEstimates(*v.normalized, agg_options, options.gamma));
    for (double x : v.normalized->values()) {
      lo = first ? x : std::min(lo, x);
      hi = first ? x : std::max(hi, x);
      first = false;
    }
    // Per task, the raw-return curve over the points all its runs logged.
    for (size_t m = 0; m < v.tasks.size(); ++m) {
      TaskCurve curve;
      curve.task = v.tasks[m];
      curve.steps = result.runs[v.runs[m].front()].curve_steps;
      for (int i : v.runs[m]) {
        std::vector<int64_t> both;
        const auto& steps = result.runs[i].curve_steps;
        std::set_intersection(curve.steps.begin(), curve.steps.end(), steps.begin(), steps.end(),
                              std::back_inserter(both));
        curve.steps = std::move(both);
      }
      if (curve.steps.empty()) continue;
      for (int64_t step : curve.steps) {
        double sum = 0.0, low = 0.0, high = 0.0;
        for (size_t k = 0; k < v.runs[m].size(); ++k) {
          const ReportRun& run = result.runs[v.runs[m][k]];
          const auto it = std::lower_bound(run.curve_steps.begin(), run.curve_steps.end(), step);
          const double x = run.curve_scores[static_cast<size_t>(it - run.curve_steps.begin())];
          sum += x;
          low = k == 0 ? x : std::min(low, x);
          high = k == 0 ? x : std::max(high, x);
        }
        curve.mean.push_back(sum / static_cast<double>(v.runs[m].size()));
        curve.min.push_back(low);
        curve.max.push_back(high);
      }
      v.task_curves.push_back(std::move(curve));
    }
    // Learning curve over the points every run of the matrix has.
    std::vector<int64_t> common;
    bool init = false;
    size_t most_points = 0;
    for (const auto& task_runs : v.runs) {
      for (int i : task_runs) {
        const auto& steps = result.runs[i].curve_steps;
        most_points = std::max(most_points, steps.size());
        if (!init) {
          common = steps;
          init = true;
        } else {
          std::vector<int64_t> both;
          std::set_intersection(common.begin(), common.end(), steps.begin(), steps.end(), std::back_inserter(both));
          common = std::move(both);
        }
      }
    }
    if (common.empty()) {
      warnings.push_back(fmt::format(
          "variant \"{}\": its runs share no evaluation point (different schedules), so it has no learning curve",
          v.name));
      continue;
    }
    if (common.size() < most_points) {
      warnings.push_back(fmt::format(
          "variant \"{}\": the learning curve uses the {} evaluation point(s) all its runs share (some runs have up "
          "to {})",
          v.name, common.size(), most_points));
    }
    const int runs = v.normalized->num_runs();
    const int num_tasks = v.normalized->num_tasks();
    const int points = static_cast<int>(common.size());
    std::vector<std::vector<double>> cells(static_cast<size_t>(runs),
                                           std::vector<double>(static_cast<size_t>(num_tasks) * points));
    for (int m = 0; m < num_tasks; ++m) {
      const TaskReference ref = normalizer->Find(v.tasks[m]).value_or(TaskReference{v.tasks[m], 0.0, 1.0});
      const bool identity = normalizer->kind() == NormalizationKind::kNone;
      for (int k = 0; k < runs; ++k) {
        const ReportRun& run = result.runs[v.runs[m][k]];
        for (int t = 0; t < points; ++t) {
          const auto it = std::lower_bound(run.curve_steps.begin(), run.curve_steps.end(), common[t]);
          const double raw = run.curve_scores[static_cast<size_t>(it - run.curve_steps.begin())];
          cells[k][static_cast<size_t>(m) * points + t] = identity ? raw : (raw - ref.low) / (ref.high - ref.low);
        }
      }
    }
    TOKENRL_ASSIGN_OR_RETURN(v.curve_iqm, CurveIqm(cells, runs, num_tasks, points, curve_options));
    v.curve_steps = std::move(common);
  }
  // Tau grid shared by every variant.
  double tau_lo = lo, tau_hi = hi;
  if (normalize != "none") {
    tau_lo = std::min(0.0, lo);
    tau_hi = std::max(options.gamma, hi);
  }
  if (!(tau_hi > tau_lo)) tau_hi = tau_lo + 1.0;
  const double pad = 0.02 * (tau_hi - tau_lo);
  if (tau_lo < lo || normalize == "none") tau_lo -= pad;
  tau_hi += pad;
  result.taus = Linspace(tau_lo, tau_hi, options.tau_points);
  for (auto& v : result.variants) {
    TOKENRL_ASSIGN_OR_RETURN(PerformanceProfile p, PerformanceProfileEstimates(*v.normalized, result.taus,
                                                                               ProfileKind::kScoreDistribution,
                                                                               profile_options));
    v.profile = std::move(p.profile);
  }

  // Probability of improvement of each pair, on normalized final scores.
  for (ReportImprovement& p : result.improvements) {
    TOKENRL_ASSIGN_OR_RETURN(const stats::ScoreMatrix x, variant_named(p.x)->normalized->SelectTasks(p.tasks));
    TOKENRL_ASSIGN_OR_RETURN(const stats::ScoreMatrix y, variant_named(p.y)->normalized->SelectTasks(p.tasks));
    auto estimate = ProbabilityOfImprovementEstimate(x, y, improvement_options);
    if (!estimate.ok()) return estimate.status().WithContext(fmt::format("pair \"{}:{}\"", p.x, p.y));
    p.estimate = *estimate;
  }

  // 6. Configurations.
  {
    std::set<std::string> keys;
    for (const auto& d : dirs)
      for (const auto& [k, val] : d.config) keys.insert(k);
    const std::string kMissing = "(unset)";
    for (const auto& key : keys) {
      std::map<std::string, std::set<std::string>> per_variant;  // variant -> values
      std::set<std::string> all;
      for (const auto& d : dirs) {
        auto it = d.config.find(key);
        const std::string val = it == d.config.end() ? kMissing : Unquote(it->second);
        per_variant[d.variant].insert(val);
        all.insert(val);
      }
      if (all.size() == 1) {
        result.common_config[key] = *all.begin();
        continue;
      }
      bool varies_within = false;
      bool differs_between = false;
      for (const auto& [name, vals] : per_variant) {
        varies_within |= vals.size() > 1;
        differs_between |= vals != per_variant.begin()->second;
      }
      const bool bookkeeping = LastSegment(key) == "seed" || key == "env.name";
      if (varies_within && (bookkeeping || !differs_between)) {
        result.varying_keys.push_back(key);
        if (bookkeeping) continue;
      }
      if (!differs_between && !varies_within) continue;
      for (auto& v : result.variants) {
        const auto& vals = per_variant[v.name];
        std::vector<std::string> list(vals.begin(), vals.end());
        v.distinct_config[key] = vals.size() == 1 ? list.front() : "varies: " + Join(list, " | ");
      }
    }
  }

  // 6b. Expert-utilization diagnostics (only when some run logged them).
  LoadDiagnostics(dirs, result);
  return analysis;
}

}  // namespace tokenrl::report
