#pragma once
// The configuration flags shared by every config-driven command:
//   --config FILE.toml (repeatable, later files win), --set a.b=c (repeatable),
//   --print-config (print the resolved, commented TOML and exit).

#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tokenrl/config/config.h"

namespace tokenrl::cli {

struct ConfigOptions {
  std::vector<std::string> files;
  std::vector<std::string> overrides;
  bool print_config = false;

  void AddTo(CLI::App* command) {
    command->add_option("-c,--config", files, "TOML config file(s); later files override earlier ones")
        ->check(CLI::ExistingFile);
    command->add_option("-s,--set", overrides,
                        "Override one config value: dotted.key=value (TOML value; bare words are strings). "
                        "Repeatable, applied after the files");
    command->add_flag("--print-config", print_config, "Print the resolved config as commented TOML and exit");
  }

  template <typename T>
  StatusOr<T> Load() const {
    return config::Load<T>(files, overrides);
  }
};

}  // namespace tokenrl::cli
