// Built when CMake did not find ALE: the Atari protocol and the fake emulator
// work, `atari/<game>` reports how to get ALE.

#include "tokenrl/env/atari/ale/ale_emulator.h"

namespace tokenrl::env::atari {

bool AleAvailable() { return false; }
const char* AleVersion() { return ""; }

StatusOr<std::unique_ptr<AtariEmulator>> MakeAleEmulator(const EmulatorOptions&) {
  return Status::InvalidArgument(
      "this tokenrl was built without ALE (the Arcade Learning Environment). Build ALE from source "
      "(github.com/Farama-Foundation/Arcade-Learning-Environment: cmake -S ALE -B ALE/build -DBUILD_PYTHON_LIB=OFF "
      "-DSDL_SUPPORT=OFF -DCMAKE_INSTALL_PREFIX=PREFIX && cmake --build ALE/build && cmake --install ALE/build), then "
      "reconfigure tokenrl with -DCMAKE_PREFIX_PATH=PREFIX (docs/atari.md). Without ALE, atari-fake/<game> runs the "
      "same protocol on a scripted test emulator");
}

}  // namespace tokenrl::env::atari
