#pragma once
// `tokenrl bench net`: learner and action-selection throughput of the paper's
// main network variants on the MinAtar encoder (see bench_net_command.cc).

#include <CLI/CLI.hpp>

namespace tokenrl::cli {

// Registers `net` as a subcommand of `bench`; its callback stores the exit
// code in `exit_code` (0 success, 1 failure, 2 bad input).
void AddBenchNetCommand(CLI::App& bench, int& exit_code);

}  // namespace tokenrl::cli
