#pragma once
// AleEmulator: the real Arcade Learning Environment (ALE, Bellemare et al.
// 2013; github.com/Farama-Foundation/Arcade-Learning-Environment) behind the
// AtariEmulator seam. Compiled only when CMake finds ALE (find_package(ale
// CONFIG), e.g. -DCMAKE_PREFIX_PATH=<ALE install prefix>; docs/atari.md);
// otherwise ale_emulator_stub.cc provides these functions and AleAvailable()
// is false.
//
// Settings: ALE's frame_skip stays 1 (the protocol skips frames) and its own
// repeat_action_probability is 0: the sticky rule runs here instead, per
// frame with ALE's rule (StickyActions, atari_emulator.h). The reason: ALE's
// saved states (cloneState(true)) hold the console and ALE's random stream
// but not the sticky "previous action", so a clone or a restored state would
// forget it and diverge from the original on its next sticky frame. The
// sticky draws therefore come from tokenrl's stream, not ALE's: trajectories
// are distributed as ALE's, but a seed does not reproduce ale-py's frames.
// Seed(s) sets ALE's random_seed to s and reloads the ROM (ALE reads its
// settings in loadROM).

#include <memory>

#include "tokenrl/core/status.h"
#include "tokenrl/env/atari/atari_emulator.h"

namespace tokenrl::env::atari {

// True when tokenrl was built with ALE.
bool AleAvailable();
// The version of the ALE tokenrl was built with ("" without ALE).
const char* AleVersion();

// A new ALE instance with no ROM loaded. FailedPrecondition-like error
// (InvalidArgument) without ALE, naming how to build it.
StatusOr<std::unique_ptr<AtariEmulator>> MakeAleEmulator(const EmulatorOptions& options);

}  // namespace tokenrl::env::atari
