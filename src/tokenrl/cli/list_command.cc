// `tokenrl list`: the registered environments and their specs.

#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tokenrl/cli/commands.h"
#include "tokenrl/env/registry.h"

namespace tokenrl::cli {

void AddListCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("list", "List the registered environments with their observation and action specs");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "Print the specs as JSON");
  cmd->callback([as_json, &exit_code] {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& name : env::EnvRegistry::Global().Names()) {
      env::EnvConfig config;
      config.name = name;
      auto made = env::MakeEnvironment(config);
      if (!made.ok()) {
        exit_code = ReportError("list", made.status());
        return;
      }
      const env::EnvSpec& spec = (*made)->spec();
      const auto [c, h, w] = spec.observation_shape;
      if (*as_json) {
        all.push_back({{"name", spec.name},
                       {"description", spec.description},
                       {"observation_shape", {c, h, w}},
                       {"layout", "CHW"},
                       {"channels", spec.channel_names},
                       {"actions", spec.action_names},
                       {"step_reward_range", {spec.min_step_reward, spec.max_step_reward}}});
        continue;
      }
      std::string channels, actions;
      for (const auto& ch : spec.channel_names) channels += (channels.empty() ? "" : " ") + ch;
      for (const auto& a : spec.action_names) actions += (actions.empty() ? "" : " ") + a;
      std::cout << fmt::format("{}\n  {}\n  observation [C,H,W] = [{},{},{}] uint8 in [{}, {}]: {}\n"
                               "  actions ({}, default full set): {}\n  reward per step in [{}, {}]\n",
                               spec.name, spec.description, c, h, w, spec.observation_low, spec.observation_high,
                               channels, spec.num_actions(), actions, spec.min_step_reward, spec.max_step_reward);
    }
    // Families (e.g. atari/<game>): open name sets, created on demand (see docs/atari.md).
    if (!*as_json) {
      for (const auto& family : env::EnvRegistry::Global().Families()) {
        std::cout << fmt::format("{}\n  {}\n", family.pattern, family.description);
      }
    }
    if (*as_json) std::cout << all.dump(2) << "\n";
    exit_code = 0;
  });
}

}  // namespace tokenrl::cli
