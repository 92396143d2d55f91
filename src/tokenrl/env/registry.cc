#include "tokenrl/env/registry.h"

#include <algorithm>

#include "tokenrl/env/minatar/minatar_env.h"

namespace tokenrl::env {

EnvRegistry& EnvRegistry::Global() {
  // Function-local static: built on first use, no init-order problems.
  static EnvRegistry* registry = [] {
    auto* r = new EnvRegistry();
    minatar::RegisterMinatarGames(*r);
    return r;
  }();
  return *registry;
}

void EnvRegistry::Register(EnvRegistration registration) {
  TOKENRL_CHECK(!Contains(registration.name), "environment {} registered twice", registration.name);
  registrations_.push_back(std::move(registration));
}

std::vector<std::string> EnvRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& r : registrations_) names.push_back(r.name);
  std::sort(names.begin(), names.end());
  return names;
}

bool EnvRegistry::Contains(const std::string& name) const {
  return std::any_of(registrations_.begin(), registrations_.end(), [&](const auto& r) { return r.name == name; });
}

StatusOr<std::unique_ptr<Environment>> EnvRegistry::Make(const EnvConfig& config) const {
  for (const auto& r : registrations_) {
    if (r.name == config.name) return r.factory(config);
  }
  std::string known;
  for (const auto& n : Names()) known += (known.empty() ? "" : ", ") + n;
  return Status::NotFound(fmt::format("unknown environment \"{}\"; registered environments: {}", config.name, known));
}

StatusOr<std::unique_ptr<Environment>> MakeEnvironment(const EnvConfig& config) {
  return EnvRegistry::Global().Make(config);
}

}  // namespace tokenrl::env
