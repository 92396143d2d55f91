// RunReport: the analysis (analysis.h), then every output in a fixed order
// (tables.h, gnuplot.h, document.h), so that result.files lists them in the
// order they were written.

#include "tokenrl/report/report.h"

#include <filesystem>

#include <fmt/format.h>

#include "tokenrl/report/analysis.h"
#include "tokenrl/report/document.h"
#include "tokenrl/report/gnuplot.h"
#include "tokenrl/report/tables.h"

namespace tokenrl::report {

StatusOr<ReportResult> RunReport(const ReportOptions& options) {
  if (options.out_dir.empty()) return Status::InvalidArgument("no output directory: pass --out DIR");
  ReportResult result;
  TOKENRL_ASSIGN_OR_RETURN(const Analysis analysis, Analyze(options, result));

  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) return Status::IoError(fmt::format("cannot create {}: {}", options.out_dir, ec.message()));
  const AggregateTable table = MakeAggregateTable(result, options, analysis);
  TOKENRL_RETURN_IF_ERROR(WriteAggregateTables(table, options, result));
  TOKENRL_ASSIGN_OR_RETURN(const std::vector<std::string> slugs, WriteScores(options, result));
  TOKENRL_RETURN_IF_ERROR(WriteCurvesCsv(options, result));
  TOKENRL_RETURN_IF_ERROR(WriteCurvesData(options, result));
  TOKENRL_RETURN_IF_ERROR(WriteTaskCurvesCsv(options, result));
  TOKENRL_RETURN_IF_ERROR(WriteTaskCurvesData(options, result));
  TOKENRL_RETURN_IF_ERROR(WriteProfilesCsv(options, result));
  TOKENRL_RETURN_IF_ERROR(WriteProfilesData(options, result));
  TOKENRL_RETURN_IF_ERROR(WriteImprovementCsv(options, result));
  TOKENRL_RETURN_IF_ERROR(WriteImprovementData(options, result));
  TOKENRL_RETURN_IF_ERROR(WriteAggregatesData(options, result));
  TOKENRL_RETURN_IF_ERROR(WriteDiagnosticsCsv(options, result));
  TOKENRL_RETURN_IF_ERROR(WriteDiagnosticsData(options, result));
  TOKENRL_ASSIGN_OR_RETURN(const std::set<std::string> drawn, WriteAndDrawFigures(options, analysis, result));
  TOKENRL_RETURN_IF_ERROR(WriteDocuments(options, analysis, table, slugs, drawn, result));
  return result;
}

}  // namespace tokenrl::report
