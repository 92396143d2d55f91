#pragma once
// The environment registry: every environment is created by name from an
// EnvConfig, and `tokenrl list`, sweeps and tests enumerate it.
//
// Registration is explicit (each family has a Register function called when
// the registry is first used) rather than via static initializers, which a
// static library would silently drop at link time.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/env/env_config.h"
#include "tokenrl/env/environment.h"

namespace tokenrl::env {

using EnvFactory = std::function<std::unique_ptr<Environment>(const EnvConfig&)>;

struct EnvRegistration {
  std::string name;         // e.g. "minatar/breakout"
  std::string description;  // one line
  EnvFactory factory;
};

// A family of environments whose names share a prefix and whose members are
// not known in advance (e.g. "atari/<game>": any game whose ROM the user has).
// Its factory can fail (a missing ROM, a build without the emulator), so it
// returns a Status instead of an environment.
using EnvFamilyFactory = std::function<StatusOr<std::unique_ptr<Environment>>(const EnvConfig&)>;

struct EnvFamilyRegistration {
  std::string prefix;       // e.g. "atari/"; a member's name is prefix + a non-empty id
  std::string pattern;      // for listings, e.g. "atari/<game>"
  std::string description;  // one line
  EnvFamilyFactory factory;
};

class EnvRegistry {
 public:
  // The process-wide registry, with every built-in family registered.
  static EnvRegistry& Global();

  void Register(EnvRegistration registration);
  void RegisterFamily(EnvFamilyRegistration family);
  // Registered names, sorted (exact names only; families are in Families()).
  std::vector<std::string> Names() const;
  const std::vector<EnvFamilyRegistration>& Families() const { return families_; }
  // True for a registered name and for any name a family claims (prefix + a
  // non-empty id); Make can still fail for the latter (e.g. a missing ROM).
  bool Contains(const std::string& name) const;

  // Creates config.name with config's options. NotFound (listing the
  // registered names and families) for an unknown name; a family's own error
  // for a family member it cannot create.
  StatusOr<std::unique_ptr<Environment>> Make(const EnvConfig& config) const;

 private:
  std::vector<EnvRegistration> registrations_;
  std::vector<EnvFamilyRegistration> families_;
};

// Shorthand for EnvRegistry::Global().Make(config).
StatusOr<std::unique_ptr<Environment>> MakeEnvironment(const EnvConfig& config);

}  // namespace tokenrl::env
