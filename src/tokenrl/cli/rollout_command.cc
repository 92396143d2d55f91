// `tokenrl rollout`: batched random-policy rollouts (the README's main job
// until training lands): per-game throughput and episode returns.

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "tokenrl/cli/commands.h"
#include "tokenrl/cli/config_options.h"
#include "tokenrl/core/file_util.h"
#include "tokenrl/runner/rollout.h"

namespace tokenrl::cli {
namespace {

Status Rollout(const ConfigOptions& options, const std::string& out_dir) {
  TOKENRL_ASSIGN_OR_RETURN(runner::RolloutConfig config, options.Load<runner::RolloutConfig>());
  const std::string resolved = config::ToToml(config);
  if (options.print_config) {
    std::cout << resolved;
    return Status::Ok();
  }
  if (!out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) return Status::IoError(fmt::format("cannot create {}: {}", out_dir, ec.message()));
    // The resolved config goes first, so even an interrupted run says what it was.
    TOKENRL_RETURN_IF_ERROR(WriteFileAtomic(out_dir + "/config.resolved.toml", resolved));
  }
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  std::cout << fmt::format("rollout: uniform random policy, {} members x {} envs, {} env steps per game, {} thread(s)\n",
                           config.vector_env.members, config.vector_env.envs_per_member, config.env_steps_per_game,
                           config.vector_env.num_threads)
            << std::flush;
  auto progress = [tty](const std::string& game, int64_t done, int64_t total) {
    if (tty) std::cerr << fmt::format("\r  {} {:5.1f}%", game, 100.0 * static_cast<double>(done) / static_cast<double>(total)) << std::flush;
  };
  TOKENRL_ASSIGN_OR_RETURN(auto results, runner::RunRollout(config, progress));
  if (tty) std::cerr << "\r" << std::string(40, ' ') << "\r";
  std::cout << fmt::format("{:<24} {:>12} {:>14} {:>9} {:>16} {:>11}  {}\n", "game", "env steps", "steps/s",
                           "episodes", "return (± s.e.)", "mean length", "per-member mean return");
  for (const auto& r : results) {
    std::string members;
    for (double m : r.member_return_mean) members += (members.empty() ? "" : " ") + (std::isnan(m) ? std::string("-") : fmt::format("{:.2f}", m));
    std::cout << fmt::format("{:<24} {:>12} {:>14.0f} {:>9} {:>9.3f} ± {:<5.3f} {:>11.1f}  [{}]\n", r.game,
                             r.env_steps, r.steps_per_second(), r.episodes, r.return_mean, r.return_stderr,
                             r.mean_episode_length, members);
  }
  if (!out_dir.empty()) {
    TOKENRL_RETURN_IF_ERROR(WriteFileAtomic(out_dir + "/rollout.json", runner::RolloutResultsToJson(results)));
    std::cout << "wrote " << out_dir << "/config.resolved.toml and " << out_dir << "/rollout.json\n";
  }
  return Status::Ok();
}

}  // namespace

void AddRolloutCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "rollout",
      "Roll out a uniform random policy on M members x N environments per game; print throughput and episode "
      "returns.\nExample: tokenrl rollout --set env_steps_per_game=100000 --set vector_env.members=4 --out out/rollout");
  auto options = std::make_shared<ConfigOptions>();
  auto out_dir = std::make_shared<std::string>();
  options->AddTo(cmd);
  cmd->add_option("-o,--out", *out_dir, "Directory for config.resolved.toml and rollout.json");
  cmd->callback([options, out_dir, &exit_code] {
    const Status st = Rollout(*options, *out_dir);
    exit_code = st.ok() ? 0 : ReportError("rollout", st);
  });
}

}  // namespace tokenrl::cli
