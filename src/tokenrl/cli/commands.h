#pragma once
// The `tokenrl` subcommands. Each Add*Command registers one subcommand on the
// root app; its callback runs the command and stores the process exit code in
// `exit_code` (0 success, 1 the command failed, 2 bad input).
// Commands report errors as one line "tokenrl <cmd>: error: <message>" on
// stderr, never as a crash or stack trace.

#include <string_view>

#include <CLI/CLI.hpp>

#include "tokenrl/core/status.h"

namespace tokenrl::cli {

void AddListCommand(CLI::App& app, int& exit_code);
void AddBenchCommand(CLI::App& app, int& exit_code);
void AddRolloutCommand(CLI::App& app, int& exit_code);
void AddPlayCommand(CLI::App& app, int& exit_code);
void AddVersionCommand(CLI::App& app, int& exit_code);
void AddStatsCommand(CLI::App& app, int& exit_code);

// Prints "tokenrl <command>: error: <status message>" and returns the exit
// code for it (2 for invalid input / not found, 1 otherwise).
int ReportError(std::string_view command, const Status& status);

}  // namespace tokenrl::cli
