#include "tokenrl/env/atari/registration.h"

#include <cstdlib>
#include <filesystem>

#include "tokenrl/env/atari/ale/ale_emulator.h"
#include "tokenrl/env/atari/atari_env.h"
#include "tokenrl/env/atari/fake_emulator.h"
#include "tokenrl/env/registry.h"

namespace tokenrl::env::atari {
namespace {

constexpr const char* kRomHelp =
    "ROMs are not part of tokenrl or ALE (ALE's repository ships only the free tests/resources/tetris.bin): "
    "install ale-py (`pip install ale-py`; its ROMs are in <site-packages>/ale_py/roms/<game>.bin) or use your own "
    "dumps, named <game>.bin (docs/atari.md)";

Status CheckId(const std::string& name, const std::string& id) {
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return Status::InvalidArgument(
          fmt::format("\"{}\": the game id may contain only lowercase letters, digits and '_' (e.g. atari/pong, "
                      "atari/space_invaders)",
                      name));
    }
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<Environment>> MakeFake(const EnvConfig& config) {
  const std::string id = config.name.substr(std::string("atari-fake/").size());
  TOKENRL_RETURN_IF_ERROR(CheckId(config.name, id));
  auto emulator = std::make_unique<FakeAtariEmulator>(
      EmulatorOptions{.repeat_action_probability = config.atari.repeat_action_probability});
  TOKENRL_RETURN_IF_ERROR(emulator->LoadRom(id));
  const GameInfo game{.description = "Fake Atari emulator (scripted test/bench device, not a game) under "
                                     "Dopamine's protocol",
                      .min_frame_reward = FakeAtariEmulator::kMinReward,
                      .max_frame_reward = FakeAtariEmulator::kMaxReward};
  return MakeAtariEnvironment(config, game, std::move(emulator));
}

StatusOr<std::unique_ptr<Environment>> MakeAle(const EnvConfig& config) {
  const std::string id = config.name.substr(std::string("atari/").size());
  TOKENRL_RETURN_IF_ERROR(CheckId(config.name, id));
  auto made = MakeAleEmulator(EmulatorOptions{.repeat_action_probability = config.atari.repeat_action_probability});
  if (!made.ok()) return made.status().WithContext(config.name);
  TOKENRL_ASSIGN_OR_RETURN(const std::string rom, ResolveRom(config.atari, id));
  std::unique_ptr<AtariEmulator> emulator = std::move(made).value();
  TOKENRL_RETURN_IF_ERROR(emulator->LoadRom(rom));
  // ALE clamps nothing by default; rewards are the game's score changes.
  const GameInfo game{.description = fmt::format("Atari 2600 {} (ALE {}) under Dopamine's protocol", id, AleVersion()),
                      .min_frame_reward = -1e6f,
                      .max_frame_reward = 1e6f};
  return MakeAtariEnvironment(config, game, std::move(emulator));
}

}  // namespace

StatusOr<std::string> ResolveRom(const AtariConfig& config, const std::string& game) {
  std::string dir = config.rom_dir;
  std::string source = "env.atari.rom_dir";
  if (dir.empty()) {
    const char* from_env = std::getenv(kRomDirVariable);
    if (from_env == nullptr || *from_env == '\0') {
      return Status::NotFound(fmt::format("atari/{}: no ROM directory: set env.atari.rom_dir or ${} to a directory "
                                          "with {}.bin. {}",
                                          game, kRomDirVariable, game, kRomHelp));
    }
    dir = from_env;
    source = std::string("$") + kRomDirVariable;
  }
  const std::filesystem::path path = std::filesystem::path(dir) / (game + ".bin");
  if (!std::filesystem::is_regular_file(path)) {
    return Status::NotFound(
        fmt::format("atari/{}: ROM {} not found ({} = {}). {}", game, path.string(), source, dir, kRomHelp));
  }
  return path.string();
}

void RegisterAtariFamilies(EnvRegistry& registry) {
  registry.RegisterFamily({.prefix = "atari/",
                           .pattern = "atari/<game>",
                           .description = "Atari 2600 games on ALE with Dopamine's protocol (ROM <rom_dir>/<game>.bin; "
                                          "docs/atari.md)",
                           .factory = MakeAle});
  registry.RegisterFamily({.prefix = "atari-fake/",
                           .pattern = "atari-fake/<name>",
                           .description = "Dopamine's Atari protocol on a scripted fake emulator (test/bench device)",
                           .factory = MakeFake});
}

}  // namespace tokenrl::env::atari
