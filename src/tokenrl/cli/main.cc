// tokenrl: the command-line entry point. Each subcommand lives in its own
// *_command.cc file and registers itself through commands.h.

#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "tokenrl/cli/commands.h"

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
  CLI::App app{
      "tokenrl: value-based deep RL research (\"Don't flatten, tokenize!\").\n"
      "Environments (MinAtar, bit-exact), batched stepping, typed configs, statistics.\n"
      "Run `tokenrl <command> --help` for the options of a command."};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");
  int exit_code = 0;
  AddListCommand(app, exit_code);
  AddRolloutCommand(app, exit_code);
  AddBenchCommand(app, exit_code);
  AddPlayCommand(app, exit_code);
  AddStatsCommand(app, exit_code);
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
