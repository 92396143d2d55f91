#pragma once
// The rliable reference vectors (tests/data/reference_scores/rliable_vectors.json),
// parsed once per test binary.

#include <fstream>

#include <nlohmann/json.hpp>

#include "testing/shared_data.h"
#include "tokenrl/core/status.h"

namespace tokenrl::testing {

inline const nlohmann::json& RliableVectors() {
  static const nlohmann::json* vectors = [] {
    std::ifstream in(SharedDir() + "/reference_scores/rliable_vectors.json");
    TOKENRL_CHECK(in.good(), "cannot open rliable_vectors.json under {}", SharedDir());
    return new nlohmann::json(nlohmann::json::parse(in));
  }();
  return *vectors;
}

}  // namespace tokenrl::testing
