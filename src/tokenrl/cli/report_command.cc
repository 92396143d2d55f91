// `tokenrl report`: reads run directories of `tokenrl train`, groups runs into
// variants, and writes the paper's aggregate table, learning curves,
// performance profiles, plots (gnuplot) and report.md/report.html. All the
// work is in tokenrl::report::RunReport; this file parses options and prints.

#include "tokenrl/cli/report_command.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tokenrl/cli/commands.h"
#include "tokenrl/stats/aggregates.h"
#include "tokenrl/report/report.h"

namespace tokenrl::cli {
namespace {

constexpr std::string_view kCommand = "report";

struct ReportCliOptions {
  std::vector<std::string> dirs;
  std::string out;
  std::string group_by;
  std::string normalize = "auto";
  std::string reference;
  int64_t reps = 50000;
  int64_t curve_reps = 2000;
  int64_t profile_reps = 2000;
  int64_t seed = 0;
  double confidence = 0.95;
  double gamma = 1.0;
  double final_fraction = 0.0;
  std::vector<std::string> pairs;
  int64_t improvement_reps = 2000;
  bool only_done = false;
  bool no_plots = false;
  std::string gnuplot;
};

std::vector<std::string> SplitKeys(const std::string& text) {
  std::vector<std::string> keys;
  std::string cur;
  for (char c : text + ",") {
    if (c == ',') {
      while (!cur.empty() && cur.back() == ' ') cur.pop_back();
      if (!cur.empty()) keys.push_back(cur);
      cur.clear();
    } else if (c != ' ' || !cur.empty()) {
      cur += c;
    }
  }
  return keys;
}

int Run(const ReportCliOptions& o) {
  if (o.seed < 0 || o.seed > 0xFFFFFFFFll) {
    return ReportError(kCommand, Status::InvalidArgument(
                                     fmt::format("--seed must be between 0 and 4294967295 (got {})", o.seed)));
  }
  report::ReportOptions r;
  r.roots = o.dirs;
  r.out_dir = o.out;
  r.group_by = SplitKeys(o.group_by);
  r.normalize = o.normalize;
  r.reference = o.reference;
  r.reps = o.reps;
  r.curve_reps = o.curve_reps;
  r.profile_reps = o.profile_reps;
  r.seed = static_cast<uint32_t>(o.seed);
  r.confidence = o.confidence;
  r.gamma = o.gamma;
  r.final_fraction = o.final_fraction;
  for (const std::string& pair : o.pairs) {
    const size_t colon = pair.find(':');
    if (colon == std::string::npos || pair.find(':', colon + 1) != std::string::npos) {
      return ReportError(kCommand, Status::InvalidArgument(fmt::format(
                                       "--pair \"{}\": write X:Y, two variant names and one colon", pair)));
    }
    r.pairs.emplace_back(pair.substr(0, colon), pair.substr(colon + 1));
  }
  r.improvement_reps = o.improvement_reps;
  r.only_done = o.only_done;
  r.plots = !o.no_plots;
  r.gnuplot = o.gnuplot;
  auto result = report::RunReport(r);
  if (!result.ok()) return ReportError(kCommand, result.status());
  for (const auto& w : result->warnings) std::fprintf(stderr, "tokenrl report: warning: %s\n", w.c_str());

  std::printf("%zu run(s) in %zu variant(s); normalization: %s\n\n", result->runs.size(), result->variants.size(),
              result->normalization.c_str());
  size_t width = 7;
  for (const auto& v : result->variants) width = std::max(width, v.name.size());
  std::printf("%s\n", fmt::format("{:<{}}  {:>4}  {:>5}  {:>24}  {:>24}  {:>24}  {:>24}", "variant", width, "runs",
                                  "tasks", "IQM", "Median", "Mean", "Optimality gap")
                          .c_str());
  for (const auto& v : result->variants) {
    std::string line = fmt::format("{:<{}}  {:>4}  {:>5}", v.name, width, v.normalized->num_runs(),
                                   v.normalized->num_tasks());
    for (auto a : {stats::Aggregate::kIqm, stats::Aggregate::kMedian, stats::Aggregate::kMean,
                   stats::Aggregate::kOptimalityGap}) {
      const auto& e = v.aggregates.Get(a);
      line += fmt::format("  {:>24}", fmt::format("{:.3f} [{:.3f}, {:.3f}]", e.point, e.lower, e.upper));
    }
    std::printf("%s\n", line.c_str());
  }
  if (!result->improvements.empty()) std::printf("\n");
  for (const auto& p : result->improvements) {
    std::printf("%s\n", fmt::format("P({} > {}) = {:.3f} [{:.3f}, {:.3f}]", p.x, p.y, p.estimate.point,
                                    p.estimate.lower, p.estimate.upper)
                            .c_str());
  }
  std::printf("\nwrote %zu files to %s: report.md, report.html, table.md, table.csv, scores.csv, ...%s%s\n",
              result->files.size(), o.out.c_str(),
              result->diagnostics.empty() ? "" : "\n(with expert diagnostics: diagnostics_curves.csv, diagnostics.png)",
              result->plots_drawn ? "" : "\n(plots NOT drawn; see the warnings above)");
  return 0;
}

}  // namespace

void AddReportCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ReportCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Tables, learning curves, performance profiles and plots from `tokenrl train` run directories");
  cmd->footer(
      "Searches DIR... recursively for run directories (config.resolved.toml + metrics.csv). A run's task is its\n"
      "env.name; its variant is the path of its parent directory under DIR, or the values of --group-by keys;\n"
      "every member of a run is one run (seed). Final score = last eval_return_mean (or return_mean_recent), or\n"
      "with --final-fraction F the mean over the last fraction F of steps. Writes to OUT: table.md, table.csv,\n"
      "scores.csv, scores/<variant>.csv, curves.csv, task_curves.csv, profiles.csv, (with --pair) improvement.csv,\n"
      "aggregates/learning_curves/task_curves/performance_profile/improvement .png and .svg (gnuplot),\n"
      "plots/*.gp, report.md and report.html. Runs with a\n"
      "diagnostics.csv (train [diagnostics]) add diagnostics_curves.csv and diagnostics.png/.svg (dormant\n"
      "fractions, srank, parameter norm per variant; interventions.csv steps marked). See docs/report.md.\n\n"
      "Examples:\n"
      "  tokenrl report runs/ --out report/\n"
      "  tokenrl report sweep/ --out report/ --group-by network.mixer.type --reps 10000");
  cmd->add_option("dirs", o->dirs, "Directories holding run directories (searched recursively)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out,-o", o->out, "Output directory (created; files in it are overwritten)")->required();
  cmd->add_option("--group-by", o->group_by,
                  "Comma-separated dotted config keys whose values name the variant (e.g. network.mixer.type); "
                  "default: the run's parent directory");
  cmd->add_option("--normalize", o->normalize,
                  "auto (minatar when every task is minatar/*, else none), minatar, atari or none")
      ->check(CLI::IsMember({"auto", "none", "atari", "minatar"}, CLI::ignore_case))
      ->capture_default_str();
  cmd->add_option("--reference", o->reference, "Reference table for --normalize atari/minatar (default: shipped)");
  cmd->add_option("--reps", o->reps, "Bootstrap replicates for the aggregate table (rliable: 50000)")
      ->check(CLI::Range(int64_t{1}, int64_t{10'000'000}))
      ->capture_default_str();
  cmd->add_option("--curve-reps", o->curve_reps, "Bootstrap replicates for the learning-curve bands")
      ->check(CLI::Range(int64_t{1}, int64_t{10'000'000}))
      ->capture_default_str();
  cmd->add_option("--profile-reps", o->profile_reps, "Bootstrap replicates for the performance-profile bands")
      ->check(CLI::Range(int64_t{1}, int64_t{10'000'000}))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Bootstrap seed (0 to 4294967295; same meaning as numpy.random.seed)")
      ->capture_default_str();
  cmd->add_option("--confidence", o->confidence, "Two-sided interval coverage, strictly between 0 and 1")
      ->capture_default_str();
  cmd->add_option("--gamma", o->gamma, "Optimality gap threshold in normalized units")->capture_default_str();
  cmd->add_flag("--no-plots", o->no_plots, "Write the plot data and gnuplot scripts but do not run gnuplot");
  cmd->add_option("--final-fraction", o->final_fraction,
                  "Final score of a run: 0 = its last logged point; f = the mean of its points in the last fraction "
                  "f of its env steps (the paper's aggregates: 0.1)")
      ->capture_default_str();
  cmd->add_option("--pair", o->pairs,
                  "X:Y: report the probability of improvement P(X > Y) of variants X and Y, over the tasks both "
                  "cover (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--improvement-reps", o->improvement_reps,
                  "Bootstrap replicates for the probability of improvement (rliable: 2000)")
      ->check(CLI::Range(int64_t{1}, int64_t{10'000'000}))
      ->capture_default_str();
  cmd->add_flag("--only-done", o->only_done,
               "Leave out run directories without DONE (default: use them with their last logged values)");
  cmd->add_option("--gnuplot", o->gnuplot, "gnuplot executable (default: gnuplot on $PATH)");
  cmd->callback([o, &exit_code] { exit_code = Run(*o); });
}

}  // namespace tokenrl::cli
