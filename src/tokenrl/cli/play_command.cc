// `tokenrl play ENV`: look at a game in the terminal as a coloured grid.
// Interactive by default: type keys and press Enter; every key is one step
// (a/h left, d/l right, w/k up, s/j down, f or space fire, . no-op, q quit;
// an empty line is one no-op step). With --random the game plays itself.

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "tokenrl/cli/commands.h"
#include "tokenrl/cli/config_options.h"
#include "tokenrl/env/minatar/minatar_env.h"
#include "tokenrl/env/registry.h"

namespace tokenrl::cli {
namespace {

struct PlayConfig {
  env::EnvConfig env;
  template <typename V>
  void VisitFields(V& v) {
    v.Field("env", env, "Environment options (env.name is the positional argument)");
  }
};

struct PlayOptions {
  std::string name;
  uint32_t seed = 0;
  bool random = false;
  int64_t steps = 200;
  int delay_ms = 120;
  bool no_color = false;
  ConfigOptions config;
};

// Background colours (ANSI 256) per channel index.
constexpr int kPalette[] = {33, 196, 240, 220, 46, 201, 51, 208, 129, 250};

std::string Render(const env::Environment& env, bool color) {
  const auto [c, h, w] = env.spec().observation_shape;
  std::vector<uint8_t> obs(static_cast<size_t>(env.spec().observation_size()));
  env.WriteObservation(std::span<uint8_t>(obs));
  std::string out;
  for (int row = 0; row < h; ++row) {
    for (int col = 0; col < w; ++col) {
      int channel = -1;
      for (int ch = 0; ch < c && channel < 0; ++ch)
        if (obs[(static_cast<size_t>(ch) * h + row) * w + col]) channel = ch;
      if (channel < 0) {
        out += color ? "\x1b[48;5;16m  \x1b[0m" : " .";
      } else if (color) {
        out += fmt::format("\x1b[48;5;{}m  \x1b[0m", kPalette[channel % 10]);
      } else {
        out += fmt::format(" {}", env.spec().channel_glyphs[static_cast<size_t>(channel)]);
      }
    }
    out += '\n';
  }
  std::string legend;
  for (int ch = 0; ch < c; ++ch) {
    legend += color ? fmt::format("\x1b[48;5;{}m  \x1b[0m {}  ", kPalette[ch % 10], env.spec().channel_names[static_cast<size_t>(ch)])
                    : fmt::format("{}={}  ", env.spec().channel_glyphs[static_cast<size_t>(ch)], env.spec().channel_names[static_cast<size_t>(ch)]);
  }
  return out + legend + "\n";
}

// Maps a key to a full MinAtar action id, or -1 (quit) / -2 (ignore).
int KeyToFullAction(char key) {
  switch (key) {
    case 'a': case 'h': return env::minatar::kLeft;
    case 'd': case 'l': return env::minatar::kRight;
    case 'w': case 'k': return env::minatar::kUp;
    case 's': case 'j': return env::minatar::kDown;
    case 'f': case ' ': return env::minatar::kFire;
    case '.': return env::minatar::kNoop;
    case 'q': return -1;
    default: return -2;
  }
}

// Action index of a full id in this env's action set (no-op if absent).
int ActionIndex(const env::Environment& env, int full) {
  const auto& names = env.spec().action_names;
  for (int i = 0; i < static_cast<int>(names.size()); ++i)
    if (names[static_cast<size_t>(i)] == env::minatar::kFullActionNames[static_cast<size_t>(full)]) return i;
  return 0;
}

Status Play(PlayOptions& options) {
  TOKENRL_ASSIGN_OR_RETURN(PlayConfig config, options.config.Load<PlayConfig>());
  config.env.name = options.name.find('/') == std::string::npos ? "minatar/" + options.name : options.name;
  if (options.config.print_config) {
    std::cout << config::ToToml(config);
    return Status::Ok();
  }
  TOKENRL_ASSIGN_OR_RETURN(auto env, env::MakeEnvironment(config.env));
  const bool color = !options.no_color && ::isatty(STDOUT_FILENO) != 0;
  const std::string clear = color ? "\x1b[H\x1b[2J" : "";
  env->Reset(options.seed);
  std::mt19937_64 rng(options.seed);
  auto show = [&](std::string_view last) {
    std::cout << clear << Render(*env, color)
              << fmt::format("{} step {} return {}{}\n", env->spec().name, env->episode_steps(), env->episode_return(),
                             last)
              << std::flush;
  };
  show("");
  int64_t steps = 0;
  auto step = [&](int action) -> bool {
    auto r = env->Step(action);
    if (!r.ok()) return false;
    ++steps;
    const std::string note = r->terminated ? "  -- episode over (terminated)" : r->truncated ? "  -- episode over (truncated)" : "";
    show(fmt::format("  action {} reward {}{}", env->spec().action_names[static_cast<size_t>(action)], r->reward, note));
    if (r->done()) env->Reset();
    return true;
  };
  if (options.random) {
    while (steps < options.steps) {
      step(static_cast<int>(rng() % static_cast<uint64_t>(env->spec().num_actions())));
      std::this_thread::sleep_for(std::chrono::milliseconds(options.delay_ms));
    }
    return Status::Ok();
  }
  std::cout << "keys: a/h left, d/l right, w/k up, s/j down, f/space fire, . no-op, q quit; Enter to apply\n";
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) line = ".";
    for (char key : line) {
      const int full = KeyToFullAction(key);
      if (full == -1) return Status::Ok();
      if (full == -2) continue;
      step(ActionIndex(*env, full));
    }
  }
  return Status::Ok();
}

}  // namespace

void AddPlayCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<PlayOptions>();
  auto* cmd = app.add_subcommand(
      "play",
      "Show a game in the terminal as a coloured grid and play it with the keyboard (or --random).\n"
      "Example: tokenrl play breakout --random --steps 100");
  cmd->add_option("env", options->name, "Environment name, e.g. minatar/breakout or breakout")->required();
  cmd->add_option("--seed", options->seed, "Environment seed");
  cmd->add_flag("--random", options->random, "Play random actions instead of reading keys");
  cmd->add_option("--steps", options->steps, "Steps to play with --random")->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--delay-ms", options->delay_ms, "Pause between frames with --random")->check(CLI::Range(0, 10000));
  cmd->add_flag("--no-color", options->no_color, "Plain glyphs instead of colours (automatic when not a terminal)");
  options->config.AddTo(cmd);
  cmd->callback([options, &exit_code] {
    const Status st = Play(*options);
    exit_code = st.ok() ? 0 : ReportError("play", st);
  });
}

}  // namespace tokenrl::cli
