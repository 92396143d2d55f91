#pragma once
// Locations of the shared fixtures (../shared/ next to the repository), with
// environment-variable overrides so the same tests run on other copies.

#include <cstdlib>
#include <string>

namespace tokenrl::testing {

// $TOKENRL_MINATAR_REFERENCE, else <repo>/../shared/minatar_reference.
inline std::string MinatarReferenceDir() {
  if (const char* dir = std::getenv("TOKENRL_MINATAR_REFERENCE"); dir != nullptr && *dir != '\0') return dir;
  return std::string(TOKENRL_SHARED_DIR) + "/minatar_reference";
}

// $TOKENRL_SHARED_DIR, else <repo>/../shared.
inline std::string SharedDir() {
  if (const char* dir = std::getenv("TOKENRL_SHARED_DIR"); dir != nullptr && *dir != '\0') return dir;
  return TOKENRL_SHARED_DIR;
}

}  // namespace tokenrl::testing
