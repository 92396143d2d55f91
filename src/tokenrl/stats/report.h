#pragma once
// `tokenrl report`: turns run directories written by `tokenrl train` (or a
// sweep of them) into the paper's statistics, plots and a report. Torch-free;
// all statistics come from the rest of tokenrl::stats (aggregates.h,
// bootstrap.h, normalization.h). See docs/report.md.
//
// Input. Every directory under the given roots (searched recursively, the
// roots included) that holds both config.resolved.toml and metrics.csv is a
// run directory; the search does not descend into run directories.
//  - task:    env.name of the run's config, shortened to the game name after
//             the last '/' ("minatar/breakout" -> "breakout"; the full names are
//             kept when two different envs share a short name).
//  - variant: by default the path of the run directory's parent relative to
//             its root ("sweep/flatten/seed0" under root "sweep" -> "flatten";
//             a run directly under the root, or the root itself, takes the
//             root's base name). With group_by, the values of those dotted
//             config keys instead ("network.mixer.type" -> "softmoe"; several
//             keys -> "type=softmoe, hidden_units=128").
//  - runs:    every member of a run directory is one run (seed) of its
//             variant on its task.
//  - final score of a run: the member's last eval_return_mean in metrics.csv;
//             when the member has no evaluation at all, its last
//             return_mean_recent (training return), with a warning.
//  - learning curve of a run: its score at every evaluation point (or every
//             logged point in the return_mean_recent fallback).
//
// Statistics, per variant (a runs x tasks matrix, tasks sorted by name; when
// tasks have different run counts, the first n runs of each are used, n the
// smallest count, with a warning):
//  - IQM, median, mean and optimality gap of normalized final scores with
//    stratified bootstrap CIs (AggregateIntervalEstimates; every variant uses
//    the same seed, so `tokenrl stats --scores OUT/scores/<variant>.csv` with
//    the same --normalize, --reps and --seed reproduces its row exactly);
//  - the IQM learning curve over the evaluation points all its runs share,
//    with pointwise CIs from a stratified bootstrap of the runs x tasks x
//    points array (run indices drawn per (task, point) cell, as rliable);
//  - the performance profile (score distribution: fraction of runs x tasks
//    scores > tau) on a tau grid shared by all variants, with pointwise CIs.
//
// Expert-utilization diagnostics (optional): a run directory may also hold
// diagnostics.csv (written by `tokenrl train` with [diagnostics]; one row per
// member and logging point) and interventions.csv (one row per member and
// intervention firing). When any run has diagnostics.csv, a small fixed set
// of series is read from it: penultimate_dormant_<tau> (each logged tau),
// expert_dormant_mean_<tau> (mean over the expert<j>_dormant_<tau> columns of
// a row), feature_srank and parameter_norm (series whose columns a run lacks
// are skipped for it). Per series, variant and env step: the mean, min and
// max over the variant's members (runs) logged at that step. Written as
// diagnostics_curves.csv and diagnostics.{png,svg} (one panel per series;
// dashed vertical lines at intervention steps) and a "Diagnostics" section of
// the report. A diagnostics/interventions file that does not parse is a
// warning (that file is skipped); no diagnostics anywhere adds nothing.
//
// Output files (in options.out_dir): table.md, table.csv, scores.csv,
// scores/<variant>.csv, curves.csv, profiles.csv, aggregates.{png,svg},
// learning_curves.{png,svg}, performance_profile.{png,svg}, (with
// diagnostics) diagnostics_curves.csv and diagnostics.{png,svg}, report.md,
// report.html, and plots/ (the gnuplot scripts and their data). Plots are
// drawn by running gnuplot; without gnuplot the scripts and data are still
// written, the images are not, and a warning says how to draw them.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/stats/bootstrap.h"
#include "tokenrl/stats/normalization.h"
#include "tokenrl/stats/score_matrix.h"

namespace tokenrl::stats {

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
  int tau_points = 101;               // Size of the performance-profile tau grid.
  bool plots = true;                  // Run gnuplot (scripts and data are written either way).
  std::string gnuplot;                // gnuplot executable; "" = search $PATH.
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
  std::optional<ScoreMatrix> raw;          // runs x tasks raw final scores (run labels "0", "1", ...).
  std::optional<ScoreMatrix> normalized;   // The same, normalized.
  AggregateEstimates aggregates;
  std::vector<int64_t> curve_steps;        // Evaluation points shared by all its runs.
  std::vector<IntervalEstimate> curve_iqm; // IQM of normalized scores at each point.
  std::vector<IntervalEstimate> profile;   // At ReportResult::taus.
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

// Finds the run directories under `roots` (sorted, each with the root it was
// found under). Errors (NotFound): a root that does not exist; no run
// directory anywhere (the message says what a run directory is).
struct FoundRunDir {
  std::string root;
  std::string dir;       // Full path.
  std::string relative;  // Relative to root ("." for the root itself).
};
StatusOr<std::vector<FoundRunDir>> FindRunDirectories(const std::vector<std::string>& roots);

// Reads the score columns of one metrics.csv: per member, the (env_steps,
// eval_return_mean) points with an evaluation and the (env_steps,
// return_mean_recent) points with a training return. Errors
// (InvalidArgument / Corruption, naming the file and line): missing columns,
// non-numeric values, no rows.
struct MemberMetrics {
  int member = 0;
  std::vector<std::pair<int64_t, double>> eval;
  std::vector<std::pair<int64_t, double>> train;
};
StatusOr<std::vector<MemberMetrics>> ParseMetricsCsv(std::string_view text, std::string_view source);

// Reads config.resolved.toml as "dotted.key" -> value (TOML text of the value;
// strings keep their quotes). Errors: unreadable file, TOML syntax error.
StatusOr<std::map<std::string, std::string>> LoadFlatConfig(const std::string& path);

// The whole report: reads, computes and writes everything described above.
// Errors (the message says what to do): no run directories; an unparsable
// metrics.csv or config (naming the file); a --group-by key missing from a
// config; tasks without normalization references (pass --normalize none); a
// bad option. gnuplot missing or failing is a warning, not an error.
StatusOr<ReportResult> RunReport(const ReportOptions& options);

// Looks `name` up in $PATH; "" when not found (or when `name` contains a '/',
// the name itself if it is executable).
std::string FindExecutable(const std::string& name);

}  // namespace tokenrl::stats
