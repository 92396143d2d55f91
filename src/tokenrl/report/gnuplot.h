#pragma once
// The figures of `tokenrl report` (report.h): the plot data (plots/*.dat),
// the gnuplot scripts (plots/*.gp, each drawing a PNG and an SVG) and, when
// gnuplot is found, the images: aggregates, learning_curves, task_curves,
// performance_profile, (with pairs) improvement and (with diagnostics)
// diagnostics.

#include <set>
#include <string>

#include "tokenrl/core/status.h"
#include "tokenrl/report/analysis.h"
#include "tokenrl/report/types.h"

namespace tokenrl::report {

// plots/learning_curves.dat: one block per variant with a curve.
Status WriteCurvesData(const ReportOptions& options, ReportResult& result);
// plots/task_curves.dat: one block per task and variant (tasks sorted).
Status WriteTaskCurvesData(const ReportOptions& options, ReportResult& result);
// plots/improvement.dat: one row per pair (only with pairs).
Status WriteImprovementData(const ReportOptions& options, ReportResult& result);
// plots/performance_profile.dat: one block per variant.
Status WriteProfilesData(const ReportOptions& options, ReportResult& result);
// plots/aggregates.dat: one row per variant (index, name, colour, 4 x point/lower/upper).
Status WriteAggregatesData(const ReportOptions& options, ReportResult& result);
// plots/diagnostics.dat (only when result.diagnostics is not empty).
Status WriteDiagnosticsData(const ReportOptions& options, ReportResult& result);

// Writes plots/<figure>.gp for every figure and, when options.plots, runs
// gnuplot on each; returns the figures drawn (both images exist). A missing
// or failing gnuplot is a warning in result.warnings. Sets result.plots_drawn.
StatusOr<std::set<std::string>> WriteAndDrawFigures(const ReportOptions& options, const Analysis& analysis,
                                                     ReportResult& result);

}  // namespace tokenrl::report
