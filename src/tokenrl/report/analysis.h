#pragma once
// The statistics of `tokenrl report` (report.h), computed with tokenrl::stats:
// per variant, the runs x tasks matrix of final scores (raw and normalized),
// IQM / median / mean / optimality gap with stratified bootstrap CIs, the IQM
// learning curve with pointwise bands, the performance profile on a shared tau
// grid, and the resolved settings that tell the variants apart.

#include <set>
#include <string>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/report/run_data.h"
#include "tokenrl/report/types.h"
#include "tokenrl/stats/bootstrap.h"

namespace tokenrl::report {

// What the writers need beside the ReportResult.
struct Analysis {
  std::vector<LoadedDir> dirs;        // The run directories, read.
  std::set<std::string> all_tasks;    // Every task of every run.
  std::string normalize;              // "minatar", "atari" or "none" ("auto" resolved).
  stats::BootstrapOptions aggregate_options;  // The table's (options.reps).
  stats::BootstrapOptions curve_options;      // The learning curves' (options.curve_reps).
  stats::BootstrapOptions profile_options;    // The profiles' (options.profile_reps).
  stats::BootstrapOptions improvement_options;  // P(X > Y)'s (options.improvement_reps).
};

// Validates the options (except out_dir), reads the run directories under
// options.roots and fills result.runs, variants (matrices, aggregates,
// curves, per-task curves, profiles, distinct settings), improvements,
// normalization, taus, varying_keys, common_config, diagnostics,
// interventions and warnings. A pair naming an unknown variant, or two
// variants with different task sets, is InvalidArgument.
StatusOr<Analysis> Analyze(const ReportOptions& options, ReportResult& result);

}  // namespace tokenrl::report
