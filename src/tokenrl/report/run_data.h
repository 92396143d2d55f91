#pragma once
// Reading the runs of `tokenrl report` (report.h): finding run directories,
// metrics.csv, config.resolved.toml, diagnostics.csv and interventions.csv.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/report/types.h"

namespace tokenrl::report {

inline constexpr std::string_view kConfigFile = "config.resolved.toml";
inline constexpr std::string_view kMetricsFile = "metrics.csv";

// Finds the run directories under `roots` (sorted, each with the root it was
// found under). Errors (NotFound): a root that does not exist; no run
// directory anywhere (the message says what a run directory is).
StatusOr<std::vector<FoundRunDir>> FindRunDirectories(const std::vector<std::string>& roots);

// Reads the score columns of one metrics.csv: per member, the (env_steps,
// eval_return_mean) points with an evaluation and the (env_steps,
// return_mean_recent) points with a training return. Errors
// (InvalidArgument / Corruption, naming the file and line): missing columns,
// non-numeric values, no rows.
StatusOr<std::vector<MemberMetrics>> ParseMetricsCsv(std::string_view text, std::string_view source);

// Reads config.resolved.toml as "dotted.key" -> value (TOML text of the value;
// strings keep their quotes). Errors: unreadable file, TOML syntax error.
StatusOr<std::map<std::string, std::string>> LoadFlatConfig(const std::string& path);

// One run directory, read: its flat config, task, variant and members' scores.
struct LoadedDir {
  FoundRunDir found;
  std::map<std::string, std::string> config;
  std::string env_name;
  std::string variant;
  std::vector<MemberMetrics> members;
  bool done = false;
};
// The variant is the parent directory (relative to the root) or, with
// group_by, the values of those config keys.
StatusOr<LoadedDir> LoadRunDir(const FoundRunDir& d, const std::vector<std::string>& group_by);

// Reads every run directory's diagnostics.csv and interventions.csv into
// result.diagnostics / result.interventions; problems become warnings.
void LoadDiagnostics(const std::vector<LoadedDir>& dirs, ReportResult& result);

}  // namespace tokenrl::report
