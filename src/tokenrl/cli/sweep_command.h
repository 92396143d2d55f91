#pragma once
// `tokenrl sweep` (sweep_command.cc): grids of training runs on a local
// process pool or as a Slurm job array (runner/sweep.h, docs/sweeps.md).
//
//   tokenrl sweep FILE.toml --out DIR [--workers N] [--backend local|slurm] [--dry-run]
//                 [--pack E] [--budget N] [--retries R] [--partition P] [--time T] [--cpus C]
//                 [--mem M] [--sbatch-line LINE]... [--no-follow] [-q]
//   tokenrl sweep status DIR [--jobs]
//   tokenrl sweep run-job DIR JOB [--retries R]     (what a Slurm array task runs)

#include <CLI/CLI.hpp>

namespace tokenrl::cli {

void AddSweepCommand(CLI::App& app, int& exit_code);

}  // namespace tokenrl::cli
