#pragma once
// The data model of `tokenrl report` (see report.h): options, the runs found,
// the per-variant statistics and the diagnostics, as RunReport returns them.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/stats/bootstrap.h"
#include "tokenrl/stats/normalization.h"
#include "tokenrl/stats/score_matrix.h"

namespace tokenrl::report {

struct ReportOptions {
  std::vector<std::string> roots;     // Directories to search for run directories.
  std::string out_dir;                // Created if needed; files in it are overwritten.
  std::vector<std::string> group_by;  // Dotted config keys naming the variant; empty = by directory.
  // "auto" (minatar when every task is a minatar/* env, otherwise none),
  // "minatar", "atari" or "none".
  std::string normalize = "auto";
  std::string reference;              // Explicit reference CSV for atari/minatar ("" = the shipped one).
  int64_t reps = 50000;               // Bootstrap replicates of the aggregate table.
  int64_t curve_reps = 2000;          // ... of the learning-curve bands.
  int64_t profile_reps = 2000;        // ... of the performance-profile bands (rliable: 2000).
  uint32_t seed = 0;                  // Bootstrap seed (numpy.random.seed semantics).
  double confidence = 0.95;
  double gamma = 1.0;                 // Optimality gap threshold (score units after normalization).
  // Final score of a run: 0 = its last logged point; f in (0, 1) = the mean of
  // its points in the last fraction f of its env steps (points with step >
  // (1 - f) x its last step), as the paper's final aggregates (0.1).
  double final_fraction = 0.0;
  int tau_points = 101;               // Size of the performance-profile tau grid.
  // Pairs (X, Y) of variant names: report P(X > Y), the probability of
  // improvement, with a CI from improvement_reps two-sample bootstrap
  // replicates (rliable: 2000).
  std::vector<std::pair<std::string, std::string>> pairs;
  int64_t improvement_reps = 2000;
  // Leave out run directories without DONE (still running, or stopped), with
  // a warning that counts them; by default they count with their last values.
  bool only_done = false;
  bool plots = true;                  // Run gnuplot (scripts and data are written either way).
  std::string gnuplot;                // gnuplot executable; "" = search $PATH.
};

// One variant's learning curve on one task, in raw returns: at each env step
// that all of its runs on that task logged, the mean, min and max over them.
struct TaskCurve {
  std::string task;
  std::vector<int64_t> steps;
  std::vector<double> mean, min, max;
};

// P(X > Y) of two variants' normalized final scores (ReportOptions::pairs),
// over the tasks both have run (rliable's estimate needs the same tasks).
struct ReportImprovement {
  std::string x, y;
  std::vector<std::string> tasks;  // The tasks both cover, in matrix (sorted) order.
  bool all_tasks = true;           // false: X or Y also covers a task the other lacks.
  stats::IntervalEstimate estimate;
};

// One run: a member of a run directory.
struct ReportRun {
  std::string run_dir;      // As found (root joined with the relative path).
  std::string label;        // "<run dir relative to its root>#<member>" (unique).
  int member = 0;
  std::string env_name;     // env.name as in the config.
  std::string task;         // Short game name (see above).
  std::string variant;
  double final_score = 0.0;     // Raw return.
  bool final_from_eval = true;  // false: the return_mean_recent fallback.
  std::vector<int64_t> curve_steps;  // Env steps (per member) of the curve points, increasing.
  std::vector<double> curve_scores;  // Raw returns at those points.
};

struct ReportVariant {
  std::string name;
  std::vector<std::string> tasks;          // Sorted; the matrix columns.
  std::vector<std::vector<int>> runs;      // runs[task][k]: indices into ReportResult::runs used in the matrix.
  int dropped_runs = 0;                    // Runs left out to keep the matrix rectangular.
  std::optional<stats::ScoreMatrix> raw;          // runs x tasks raw final scores (run labels "0", "1", ...).
  std::optional<stats::ScoreMatrix> normalized;   // The same, normalized.
  stats::AggregateEstimates aggregates;
  std::vector<int64_t> curve_steps;        // Evaluation points shared by all its runs.
  std::vector<stats::IntervalEstimate> curve_iqm; // IQM of normalized scores at each point.
  std::vector<stats::IntervalEstimate> profile;   // At ReportResult::taus.
  std::vector<TaskCurve> task_curves;      // Per task, in the order of `tasks` (tasks without shared points omitted).
  std::vector<std::string> run_dirs;       // Distinct run directories, sorted.
  // Resolved config values that tell variants apart: key -> value (keys whose
  // value sets differ between variants); a key whose value differs between
  // this variant's runs reads "varies (v1, v2, ...)".
  std::map<std::string, std::string> distinct_config;
};

// One diagnostics series of one variant, over the env steps at which any of
// its members logged it (increasing).
struct DiagnosticCurve {
  std::string series;  // "penultimate_dormant_0.025", "expert_dormant_mean_0", "feature_srank", "parameter_norm".
  std::string label;   // Human-readable ("Penultimate dormant fraction (tau = 0.025)").
  std::string variant;
  std::vector<int64_t> steps;
  std::vector<int> runs;  // Members with a value at each step.
  std::vector<double> mean, min, max;
};

// One row of a run's interventions.csv.
struct ReportIntervention {
  std::string variant;
  std::string run_dir;
  int member = 0;
  int64_t env_steps = 0;
  std::string type;     // "reset", "shrink_perturb", "prune", ...
  std::string experts;  // Space-separated expert indices ("" = all).
};

struct ReportResult {
  std::vector<ReportRun> runs;
  std::vector<DiagnosticCurve> diagnostics;     // Series order, then variant; empty without diagnostics.csv.
  std::vector<ReportIntervention> interventions;  // Sorted by variant, env_steps, run_dir, member.
  std::vector<ReportVariant> variants;     // Sorted by name.
  std::vector<ReportImprovement> improvements;  // One per ReportOptions::pairs entry, in that order.
  std::string normalization;               // "minatar", "atari" or "none".
  std::string normalization_source;        // Reference CSV path ("" for none).
  std::vector<double> taus;                // Performance-profile grid.
  // Config keys whose value differs between runs of the same variant (seeds,
  // env.name, ...), and those with one value in every run (key -> value).
  std::vector<std::string> varying_keys;
  std::map<std::string, std::string> common_config;
  std::vector<std::string> warnings;       // Human-readable; never printed by the library.
  std::vector<std::string> files;          // Every file written, relative to out_dir.
  bool plots_drawn = false;                // gnuplot ran and produced every image.
};

// A run directory found under a root (run_data.h).
struct FoundRunDir {
  std::string root;
  std::string dir;       // Full path.
  std::string relative;  // Relative to root ("." for the root itself).
};

// The score columns of one member in a metrics.csv (run_data.h).
struct MemberMetrics {
  int member = 0;
  std::vector<std::pair<int64_t, double>> eval;
  std::vector<std::pair<int64_t, double>> train;
};

}  // namespace tokenrl::report
