#pragma once
// Registers the Atari families (Dopamine's protocol, atari_env.h):
//  * atari/<game>: the real ALE with ROM <rom_dir>/<game>.bin, where rom_dir is
//    env.atari.rom_dir or else $TOKENRL_ATARI_ROMS. Without ALE, or without the
//    ROM, creating one is an error that says how to get them (docs/atari.md).
//  * atari-fake/<name>: the same protocol on FakeAtariEmulator, the scripted
//    test and benchmark device (fake_emulator.h); any name.
// <game> and <name> are lowercase letters, digits and '_' (ALE's ROM ids,
// e.g. space_invaders).

#include <string>

#include "tokenrl/core/status.h"

namespace tokenrl::env {
class EnvRegistry;
struct AtariConfig;
}  // namespace tokenrl::env

namespace tokenrl::env::atari {

inline constexpr const char* kRomDirVariable = "TOKENRL_ATARI_ROMS";

void RegisterAtariFamilies(EnvRegistry& registry);

// The ROM file of `game`: <rom_dir>/<game>.bin with rom_dir from the config or
// $TOKENRL_ATARI_ROMS. NotFound, saying where ROMs come from, when neither is
// set or the file is missing.
StatusOr<std::string> ResolveRom(const AtariConfig& config, const std::string& game);

}  // namespace tokenrl::env::atari
