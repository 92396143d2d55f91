#pragma once
// The tables and CSV files of `tokenrl report` (report.h): table.md,
// table.csv, scores.csv, scores/<variant>.csv, curves.csv, task_curves.csv,
// profiles.csv, improvement.csv and diagnostics_curves.csv. Each writer appends the files it writes to
// result.files.

#include <string>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/report/analysis.h"
#include "tokenrl/report/types.h"

namespace tokenrl::report {

// The aggregate table (one row per variant: runs, tasks, then IQM, median,
// mean and optimality gap with their CIs) and the note on how it was computed;
// in table.md and in report.md.
struct AggregateTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string method_note;
};
AggregateTable MakeAggregateTable(const ReportResult& result, const ReportOptions& options, const Analysis& analysis);

// table.csv (full precision) and table.md.
Status WriteAggregateTables(const AggregateTable& table, const ReportOptions& options, ReportResult& result);

// scores.csv and scores/<slug>.csv; returns each variant's file-name slug
// (unique: "a_b", "a_b_2", ...).
StatusOr<std::vector<std::string>> WriteScores(const ReportOptions& options, ReportResult& result);

// curves.csv: variant,env_steps,iqm,iqm_lower,iqm_upper.
Status WriteCurvesCsv(const ReportOptions& options, ReportResult& result);
// profiles.csv: variant,tau,fraction,fraction_lower,fraction_upper.
Status WriteProfilesCsv(const ReportOptions& options, ReportResult& result);
// task_curves.csv: variant,task,env_steps,mean,min,max (raw returns).
Status WriteTaskCurvesCsv(const ReportOptions& options, ReportResult& result);
// improvement.csv: x,y,probability,lower,upper,tasks (only with pairs; tasks:
// the ';'-joined tasks both variants cover, over which P(X > Y) is estimated).
Status WriteImprovementCsv(const ReportOptions& options, ReportResult& result);
// diagnostics_curves.csv (only when result.diagnostics is not empty).
Status WriteDiagnosticsCsv(const ReportOptions& options, ReportResult& result);

}  // namespace tokenrl::report
