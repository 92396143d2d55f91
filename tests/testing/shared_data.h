#pragma once
// Locations of the recorded fixtures: tests/data/ in the repository (see its
// README), with environment-variable overrides so the same tests can run
// against another copy (e.g. the shared reference folder).

#include <cstdlib>
#include <string>

namespace tokenrl::testing {

// $TOKENRL_SHARED_DIR, else <repo>/tests/data: holds minatar_reference/ and
// reference_scores/.
inline std::string SharedDir() {
  if (const char* dir = std::getenv("TOKENRL_SHARED_DIR"); dir != nullptr && *dir != '\0') return dir;
  return TOKENRL_TEST_DATA_DIR;
}

// $TOKENRL_MINATAR_REFERENCE, else SharedDir()/minatar_reference.
inline std::string MinatarReferenceDir() {
  if (const char* dir = std::getenv("TOKENRL_MINATAR_REFERENCE"); dir != nullptr && *dir != '\0') return dir;
  return SharedDir() + "/minatar_reference";
}

}  // namespace tokenrl::testing
