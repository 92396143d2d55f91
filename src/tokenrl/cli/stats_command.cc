// `tokenrl stats`: rliable-style aggregate metrics with stratified bootstrap
// confidence intervals for a long-format score table, or the probability of
// improvement between two tables. All computation is in tokenrl::stats; this
// file parses options, prints results (stdout) and warnings/progress (stderr).

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tokenrl/cli/commands.h"
#include "tokenrl/stats/aggregates.h"
#include "tokenrl/stats/bootstrap.h"
#include "tokenrl/stats/normalization.h"
#include "tokenrl/stats/score_matrix.h"

namespace tokenrl::cli {
namespace {

constexpr std::string_view kCommand = "stats";

struct StatsOptions {
  std::string scores;
  std::vector<std::string> compare;
  std::string normalize = "none";
  std::string reference;
  double min = 0.0;
  double max = 1.0;
  bool have_min = false;
  bool have_max = false;
  int64_t reps = 50000;
  int64_t seed = 0;
  double confidence = 0.95;
  double gamma = 1.0;
  bool task_bootstrap = false;
  std::string method = "percentile";
  std::string format = "table";
};

void Warn(const std::string& message) {
  std::fprintf(stderr, "tokenrl %.*s: warning: %s\n", static_cast<int>(kCommand.size()), kCommand.data(),
               message.c_str());
}

// Progress on stderr, only when it is a terminal and the bootstrap is long.
std::function<void(int64_t, int64_t)> MakeProgress(size_t cells_per_rep, int64_t reps) {
  if (!::isatty(STDERR_FILENO) || static_cast<double>(cells_per_rep) * static_cast<double>(reps) < 2e7) return {};
  return [last_percent = -1](int64_t done, int64_t total) mutable {
    const int percent = static_cast<int>(100 * done / total);
    if (percent == last_percent) return;
    last_percent = percent;
    std::fprintf(stderr, "\rtokenrl stats: bootstrap %3d%% (%lld/%lld replicates)", percent,
                 static_cast<long long>(done), static_cast<long long>(total));
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
}

StatusOr<stats::Normalizer> MakeNormalizer(const StatsOptions& o) {
  if (o.have_min != o.have_max) {
    return Status::InvalidArgument("--min and --max go together: give both (normalized = (score - min) / (max - min))");
  }
  TOKENRL_ASSIGN_OR_RETURN(const stats::NormalizationKind kind, stats::ParseNormalizationKind(o.normalize));
  if (o.have_min) {
    if (kind != stats::NormalizationKind::kNone && kind != stats::NormalizationKind::kMinMax) {
      return Status::InvalidArgument(fmt::format(
          "--min/--max and --normalize {} are alternatives; use one of them", o.normalize));
    }
    return stats::Normalizer::MinMax(o.min, o.max);
  }
  switch (kind) {
    case stats::NormalizationKind::kAtari: return stats::Normalizer::Atari(o.reference);
    case stats::NormalizationKind::kMinAtar: return stats::Normalizer::MinAtar(o.reference);
    case stats::NormalizationKind::kMinMax:
      return Status::InvalidArgument("--normalize minmax needs --min X --max Y");
    case stats::NormalizationKind::kNone: break;
  }
  if (!o.reference.empty()) {
    return Status::InvalidArgument("--reference only applies to --normalize atari or minatar");
  }
  return stats::Normalizer::None();
}

// Loads, normalizes and checks one score file; prints its warnings.
StatusOr<stats::ScoreMatrix> LoadScores(const std::string& path, const stats::Normalizer& normalizer,
                                        bool task_bootstrap) {
  TOKENRL_ASSIGN_OR_RETURN(const stats::ScoreMatrix raw, stats::LoadScoresCsv(path));
  for (const auto& w : stats::ShapeWarnings(raw, task_bootstrap)) Warn(path + ": " + w);
  for (const auto& w : normalizer.Warnings(raw)) Warn(path + ": " + w);
  auto normalized = normalizer.Normalize(raw);
  if (!normalized.ok()) return normalized.status().WithContext(path);
  return normalized;
}

StatusOr<stats::BootstrapOptions> MakeBootstrapOptions(const StatsOptions& o) {
  if (o.seed < 0 || o.seed > 0xFFFFFFFFll) {
    return Status::InvalidArgument(fmt::format("--seed must be between 0 and 4294967295 (got {})", o.seed));
  }
  stats::BootstrapOptions b;
  b.reps = o.reps;
  b.seed = static_cast<uint32_t>(o.seed);
  b.confidence = o.confidence;
  b.task_bootstrap = o.task_bootstrap;
  if (o.method == "percentile") {
    b.method = stats::IntervalMethod::kPercentile;
  } else if (o.method == "basic") {
    b.method = stats::IntervalMethod::kBasic;
  } else {
    return Status::InvalidArgument(fmt::format("unknown --method \"{}\"; use percentile or basic", o.method));
  }
  TOKENRL_RETURN_IF_ERROR(stats::ValidateBootstrapOptions(b));
  return b;
}

nlohmann::ordered_json EstimateJson(const stats::IntervalEstimate& e) {
  nlohmann::ordered_json j;
  j["point"] = e.point;
  j["ci"] = {e.lower, e.upper};
  return j;
}

std::string Describe(const stats::BootstrapOptions& b, const stats::Normalizer& normalizer) {
  std::string norm(stats::NormalizationKindName(normalizer.kind()));
  if (!normalizer.source().empty()) norm += " (" + normalizer.source() + ")";
  return fmt::format(
      "normalization: {}\nstratified bootstrap: {} replicates, {:g}% {} intervals, {}, seed {}", norm, b.reps,
      100.0 * b.confidence, b.method == stats::IntervalMethod::kBasic ? "basic" : "percentile",
      b.task_bootstrap ? "runs and tasks resampled" : "runs resampled within tasks", b.seed);
}

// Rows of "label  point  [lower, upper]" aligned on the widest label.
void PrintTable(const std::vector<std::pair<std::string, stats::IntervalEstimate>>& rows, double confidence) {
  size_t width = 6;
  for (const auto& [label, e] : rows) width = std::max(width, label.size());
  const std::string ci_header = fmt::format("{:g}% CI", 100.0 * confidence);
  std::printf("%s\n", fmt::format("{:<{}}  {:>10}  {}", "metric", width, "point", ci_header).c_str());
  for (const auto& [label, e] : rows) {
    std::printf("%s\n", fmt::format("{:<{}}  {:>10.4f}  [{:.4f}, {:.4f}]", label, width, e.point, e.lower, e.upper)
                            .c_str());
  }
}

int RunAggregates(const StatsOptions& o) {
  auto normalizer = MakeNormalizer(o);
  if (!normalizer.ok()) return ReportError(kCommand, normalizer.status());
  auto bootstrap = MakeBootstrapOptions(o);
  if (!bootstrap.ok()) return ReportError(kCommand, bootstrap.status());
  auto scores = LoadScores(o.scores, *normalizer, o.task_bootstrap);
  if (!scores.ok()) return ReportError(kCommand, scores.status());
  bootstrap->progress = MakeProgress(scores->size(), bootstrap->reps);
  auto est = stats::AggregateIntervalEstimates(*scores, *bootstrap, o.gamma);
  if (!est.ok()) return ReportError(kCommand, est.status());

  if (o.format == "json") {
    nlohmann::ordered_json j;
    for (int a = 0; a < stats::kNumAggregates; ++a) {
      const auto aggregate = static_cast<stats::Aggregate>(a);
      j[std::string(stats::AggregateKey(aggregate))] = EstimateJson(est->Get(aggregate));
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("scores: %s (%d runs x %d tasks)\n%s\n\n", o.scores.c_str(), scores->num_runs(), scores->num_tasks(),
              Describe(*bootstrap, *normalizer).c_str());
  std::vector<std::pair<std::string, stats::IntervalEstimate>> rows;
  for (int a = 0; a < stats::kNumAggregates; ++a) {
    const auto aggregate = static_cast<stats::Aggregate>(a);
    std::string label(stats::AggregateLabel(aggregate));
    rows.emplace_back(label, est->Get(aggregate));
  }
  PrintTable(rows, bootstrap->confidence);
  std::printf("\nIQM: mean of the middle 50%% of all run x task scores. Mean, median: of per-task means.\n"
              "Optimality gap: mean shortfall below gamma = %g (lower is better).\n",
              o.gamma);
  return 0;
}

int RunCompare(const StatsOptions& o) {
  auto normalizer = MakeNormalizer(o);
  if (!normalizer.ok()) return ReportError(kCommand, normalizer.status());
  auto bootstrap = MakeBootstrapOptions(o);
  if (!bootstrap.ok()) return ReportError(kCommand, bootstrap.status());
  if (bootstrap->task_bootstrap) {
    return ReportError(kCommand, Status::InvalidArgument(
                                     "--task-bootstrap is not supported with --compare (as in rliable); drop it"));
  }
  auto x = LoadScores(o.compare[0], *normalizer, false);
  if (!x.ok()) return ReportError(kCommand, x.status());
  auto y = LoadScores(o.compare[1], *normalizer, false);
  if (!y.ok()) return ReportError(kCommand, y.status());
  bootstrap->progress = MakeProgress(x->size() + y->size(), bootstrap->reps);
  auto est = stats::ProbabilityOfImprovementEstimate(*x, *y, *bootstrap);
  if (!est.ok()) {
    return ReportError(kCommand, est.status().WithContext(fmt::format("{} vs {}", o.compare[0], o.compare[1])));
  }
  if (o.format == "json") {
    nlohmann::ordered_json j;
    j["probability_of_improvement"] = EstimateJson(*est);
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("A: %s (%d runs x %d tasks)\nB: %s (%d runs x %d tasks)\n%s\n\n", o.compare[0].c_str(), x->num_runs(),
              x->num_tasks(), o.compare[1].c_str(), y->num_runs(), y->num_tasks(),
              Describe(*bootstrap, *normalizer).c_str());
  PrintTable({{"P(A > B)", *est}}, bootstrap->confidence);
  std::printf("\nP(A > B): probability that a run of A beats a run of B on a random task (ties count 1/2);\n"
              "0.5 = no difference. An interval that excludes 0.5 suggests a real difference.\n");
  return 0;
}

}  // namespace

void AddStatsCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<StatsOptions>();
  CLI::App* cmd = app.add_subcommand(
      "stats",
      "Aggregate metrics with stratified bootstrap confidence intervals (rliable, Agarwal et al. 2021)");
  cmd->footer(
      "Input: a long-format CSV with header `run,task,score` and one row per run and task, e.g.\n"
      "  run,task,score\n  0,breakout,12.5\n  0,asterix,8.1\n  1,breakout,10.9\n  ...\n"
      "Every run needs a score for every task. Output: IQM (interquartile mean of all run x task scores),\n"
      "mean and median of per-task means, and optimality gap, each with a stratified bootstrap CI\n"
      "(runs resampled within each task). With --seed S the intervals equal rliable's after\n"
      "np.random.seed(S). See docs/stats.md.\n\n"
      "Examples:\n"
      "  tokenrl stats --scores final.csv --normalize minatar\n"
      "  tokenrl stats --scores atari.csv --normalize atari --format json\n"
      "  tokenrl stats --compare dqn.csv tokenrl.csv --normalize minatar --reps 2000");
  auto* scores = cmd->add_option("--scores", o->scores, "Score table (CSV: run,task,score) to summarize")
                     ->check(CLI::ExistingFile);
  auto* compare = cmd->add_option("--compare", o->compare,
                                  "Two score tables A B: probability of improvement P(A > B) with a CI")
                      ->expected(2)
                      ->check(CLI::ExistingFile);
  scores->excludes(compare);
  compare->excludes(scores);
  cmd->add_option("--normalize", o->normalize,
                  "Score normalization: none, atari ((s - random) / (human - random)), or minatar "
                  "((s - random) / (reference - random))")
      ->check(CLI::IsMember({"none", "atari", "minatar"}, CLI::ignore_case))
      ->capture_default_str();
  cmd->add_option("--reference", o->reference,
                  "Reference table for --normalize atari/minatar (default: the shipped "
                  "data/reference_scores/*.csv, or $TOKENRL_DATA_DIR/reference_scores/)");
  auto* min = cmd->add_option("--min", o->min, "Min/max normalization: score that maps to 0 (needs --max)");
  auto* max = cmd->add_option("--max", o->max, "Min/max normalization: score that maps to 1 (needs --min)");
  min->needs(max);
  max->needs(min);
  cmd->add_option("--reps", o->reps, "Bootstrap replicates (rliable: 50000 for aggregates, 2000 for profiles/PoI)")
      ->check(CLI::Range(int64_t{1}, int64_t{10'000'000}))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Bootstrap seed (0 to 4294967295; same meaning as numpy.random.seed)")
      ->capture_default_str();
  cmd->add_option("--confidence", o->confidence, "Two-sided interval coverage, strictly between 0 and 1")
      ->capture_default_str();
  cmd->add_option("--gamma", o->gamma, "Optimality gap threshold in normalized units (1 = human/reference level)")
      ->capture_default_str();
  cmd->add_flag("--task-bootstrap", o->task_bootstrap,
                "Also resample tasks (uncertainty over the task population; not with --compare)");
  cmd->add_option("--method", o->method, "Interval method: percentile (rliable) or basic")
      ->check(CLI::IsMember({"percentile", "basic"}))
      ->capture_default_str();
  cmd->add_option("--format", o->format, "Output format: table (aligned text) or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  cmd->callback([o, &exit_code, min, max] {
    o->have_min = min->count() > 0;
    o->have_max = max->count() > 0;
    if (o->scores.empty() && o->compare.empty()) {
      exit_code = ReportError(kCommand, Status::InvalidArgument(
                                            "give --scores FILE.csv (aggregate metrics) or --compare A.csv B.csv "
                                            "(probability of improvement); see tokenrl stats --help"));
      return;
    }
    exit_code = o->compare.empty() ? RunAggregates(*o) : RunCompare(*o);
  });
}

}  // namespace tokenrl::cli
