#pragma once
// `tokenrl report`: turns run directories written by `tokenrl train` (or a
// sweep of them) into the paper's statistics, plots and a report. Torch-free;
// all statistics come from tokenrl::stats (aggregates.h, bootstrap.h,
// normalization.h), which knows nothing of run directories or output
// formats. See docs/report.md.
//
// The component, by output:
//   run_data.h  finding run directories, reading metrics.csv,
//               config.resolved.toml, diagnostics.csv and interventions.csv;
//   analysis.h  the per-variant statistics (score matrices, aggregates,
//               learning curves, profiles, configuration differences);
//   tables.h    table.md / table.csv, scores, curves, profiles (CSV);
//   gnuplot.h   the plot data, gnuplot scripts and images;
//   document.h  report.md and report.html;
//   report.h    (this file) the data model and RunReport, which runs them.
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
//             return_mean_recent (training return), with a warning. With
//             final_fraction f > 0: the mean of those values over the points
//             in the last fraction f of its env steps instead of the last one.
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
//    scores > tau) on a tau grid shared by all variants, with pointwise CIs;
//  - per task, the mean, min and max raw return over its runs at each point
//    they all logged (per-game curves).
// For each requested pair (X, Y): the probability of improvement P(X > Y) of
// normalized final scores with an independent two-sample stratified bootstrap
// CI (ProbabilityOfImprovementEstimate). With only_done, run directories
// without DONE are left out.
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
// scores/<variant>.csv, curves.csv, task_curves.csv, profiles.csv, (with
// pairs) improvement.csv and improvement.{png,svg}, aggregates.{png,svg},
// learning_curves.{png,svg}, task_curves.{png,svg},
// performance_profile.{png,svg}, (with
// diagnostics) diagnostics_curves.csv and diagnostics.{png,svg}, report.md,
// report.html, and plots/ (the gnuplot scripts and their data). Plots are
// drawn by running gnuplot; without gnuplot the scripts and data are still
// written, the images are not, and a warning says how to draw them.

#include <string>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/report/run_data.h"
#include "tokenrl/report/types.h"

namespace tokenrl::report {

// The whole report: reads, computes and writes everything described above.
// Errors (the message says what to do): no run directories; an unparsable
// metrics.csv or config (naming the file); a --group-by key missing from a
// config; tasks without normalization references (pass --normalize none); a
// bad option. gnuplot missing or failing is a warning, not an error.
StatusOr<ReportResult> RunReport(const ReportOptions& options);

// Looks `name` up in $PATH; "" when not found (or when `name` contains a '/',
// the name itself if it is executable). (gnuplot.cc)
std::string FindExecutable(const std::string& name);

}  // namespace tokenrl::report
