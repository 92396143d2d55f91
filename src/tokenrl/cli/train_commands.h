#pragma once
// `tokenrl train`, `tokenrl eval` and `tokenrl bench train` (train_command.cc).
// Conventions as commands.h: the callback stores the exit code (0 success,
// 1 the command failed, 2 bad input) and errors are one line on stderr.

#include <CLI/CLI.hpp>

namespace tokenrl::cli {

// tokenrl train --config F.toml [--config G.toml] [--set k=v ...] --out DIR [--print-config] [--quiet]
// tokenrl train --resume DIR [--set k=v ...]        (or --out DIR --resume)
void AddTrainCommand(CLI::App& app, int& exit_code);

// tokenrl eval --checkpoint FILE|RUN_DIR [--episodes N] [--seed S]
void AddEvalCommand(CLI::App& app, int& exit_code);

// tokenrl bench train [--variant flatten|softmoe-4] [--members 1 8] [--steps N] [--warmup N] [--set k=v]
// registered on the `bench` subcommand; prints `bench train VARIANT E=<E> ENV_STEPS_PER_S_PER_MEMBER`.
void AddBenchTrainCommand(CLI::App& bench, int& exit_code);

}  // namespace tokenrl::cli
