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

class EnvRegistry {
 public:
  // The process-wide registry, with every built-in family registered.
  static EnvRegistry& Global();

  void Register(EnvRegistration registration);
  // Registered names, sorted.
  std::vector<std::string> Names() const;
  bool Contains(const std::string& name) const;

  // Creates config.name with config's options. NotFound (listing the
  // registered names) for an unknown name.
  StatusOr<std::unique_ptr<Environment>> Make(const EnvConfig& config) const;

 private:
  std::vector<EnvRegistration> registrations_;
};

// Shorthand for EnvRegistry::Global().Make(config).
StatusOr<std::unique_ptr<Environment>> MakeEnvironment(const EnvConfig& config);

}  // namespace tokenrl::env
