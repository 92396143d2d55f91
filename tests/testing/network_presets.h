#pragma once
// The network presets under configs/networks/ and configs/encoders/, for the
// tests that sweep every variant.

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "tokenrl/config/config.h"
#include "tokenrl/nn/network_config.h"

namespace tokenrl::testing {

// A preset file's root table: [network.*].
struct PresetRoot {
  nn::NetworkConfig network;
  template <typename V>
  void VisitFields(V& v) {
    v.Field("network", network, "Network");
  }
};

// Sorted paths (full = true) or stems of configs/<dir>/*.toml.
inline std::vector<std::string> PresetFiles(const std::string& dir, bool full) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(std::string(TOKENRL_SOURCE_DIR) + "/configs/" + dir)) {
    if (e.path().extension() == ".toml") files.push_back(full ? e.path().string() : e.path().stem().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace tokenrl::testing
