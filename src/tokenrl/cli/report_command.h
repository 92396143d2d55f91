#pragma once
// `tokenrl report`: statistics, plots and a report (markdown and HTML) from
// the run directories of `tokenrl train`. See docs/report.md and
// tokenrl/report/report.h.

#include <CLI/CLI.hpp>

namespace tokenrl::cli {

// Registers `tokenrl report DIR... --out OUT [...]` on `app`; its callback
// stores the exit code (0 success, 2 bad input, 1 other failures) in
// `exit_code`.
void AddReportCommand(CLI::App& app, int& exit_code);

}  // namespace tokenrl::cli
