// tokenrl: the command-line entry point. Each subcommand lives in its own
// *_command.cc file and registers itself through commands.h.

#include <cstdio>
#include <exception>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <CLI/CLI.hpp>

#include "tokenrl/cli/commands.h"
#include "tokenrl/cli/report_command.h"
#include "tokenrl/cli/sweep_command.h"
#include "tokenrl/cli/train_commands.h"
#ifdef TOKENRL_HAVE_TORCH
#include "tokenrl/nn/torch/torch_learner.h"
#endif

namespace tokenrl::cli {

int ReportError(std::string_view command, const Status& status) {
  std::fprintf(stderr, "tokenrl %.*s: error: %s\n", static_cast<int>(command.size()), command.data(),
               status.message().c_str());
  switch (status.code()) {
    case Status::Code::kInvalidArgument:
    case Status::Code::kNotFound:
    case Status::Code::kOutOfRange:
      return 2;
    default:
      return 1;
  }
}

}  // namespace tokenrl::cli

int main(int argc, char** argv) {
  using namespace tokenrl::cli;
#ifdef __GLIBC__
  // Learner updates free and re-allocate the same large tensors every step;
  // glibc's default mmap/trim thresholds then map and unmap them each time,
  // which made updates 2-3x slower and order-dependent (measured with
  // `tokenrl bench net`). Keep freed memory in the heap instead.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
#ifdef TOKENRL_HAVE_TORCH
  tokenrl::nn::RegisterTorchLearnerBackend();
#endif
  CLI::App app{
      "tokenrl: value-based deep RL research (\"Don't flatten, tokenize!\").\n"
      "MinAtar (bit-exact), batched stepping, networks with tokenizers and MoE heads, DQN/Rainbow/DER\n"
      "agents with exact resume, rliable-exact statistics.\n"
      "Run `tokenrl <command> --help` for the options of a command."};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");
  int exit_code = 0;
  AddListCommand(app, exit_code);
  AddTrainCommand(app, exit_code);
  AddEvalCommand(app, exit_code);
  AddRolloutCommand(app, exit_code);
  AddBenchCommand(app, exit_code);
  AddPlayCommand(app, exit_code);
  AddStatsCommand(app, exit_code);
  AddReportCommand(app, exit_code);
  AddSweepCommand(app, exit_code);
  AddVersionCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenrl: error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
