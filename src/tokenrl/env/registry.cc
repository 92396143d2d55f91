#include "tokenrl/env/registry.h"

#include <algorithm>

#include "tokenrl/env/atari/registration.h"
#include "tokenrl/env/minatar/minatar_env.h"

namespace tokenrl::env {

EnvRegistry& EnvRegistry::Global() {
  // Function-local static: built on first use, no init-order problems.
  static EnvRegistry* registry = [] {
    auto* r = new EnvRegistry();
    minatar::RegisterMinatarGames(*r);
    atari::RegisterAtariFamilies(*r);
    return r;
  }();
  return *registry;
}

void EnvRegistry::Register(EnvRegistration registration) {
  TOKENRL_CHECK(!Contains(registration.name), "environment {} registered twice", registration.name);
  registrations_.push_back(std::move(registration));
}

void EnvRegistry::RegisterFamily(EnvFamilyRegistration family) {
  TOKENRL_CHECK(!family.prefix.empty() && family.prefix.back() == '/', "family prefix \"{}\" must end with '/'",
                family.prefix);
  for (const auto& f : families_) TOKENRL_CHECK(f.prefix != family.prefix, "family {} registered twice", f.prefix);
  families_.push_back(std::move(family));
}

namespace {

const EnvFamilyRegistration* FindFamily(const std::vector<EnvFamilyRegistration>& families, const std::string& name) {
  for (const auto& f : families) {
    if (name.size() > f.prefix.size() && name.compare(0, f.prefix.size(), f.prefix) == 0) return &f;
  }
  return nullptr;
}

}  // namespace

std::vector<std::string> EnvRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& r : registrations_) names.push_back(r.name);
  std::sort(names.begin(), names.end());
  return names;
}

bool EnvRegistry::Contains(const std::string& name) const {
  return std::any_of(registrations_.begin(), registrations_.end(), [&](const auto& r) { return r.name == name; }) ||
         FindFamily(families_, name) != nullptr;
}

StatusOr<std::unique_ptr<Environment>> EnvRegistry::Make(const EnvConfig& config) const {
  for (const auto& r : registrations_) {
    if (r.name == config.name) return r.factory(config);
  }
  if (const EnvFamilyRegistration* family = FindFamily(families_, config.name)) return family->factory(config);
  std::string known;
  for (const auto& n : Names()) known += (known.empty() ? "" : ", ") + n;
  for (const auto& f : families_) known += (known.empty() ? "" : ", ") + f.pattern;
  return Status::NotFound(fmt::format("unknown environment \"{}\"; registered environments: {}", config.name, known));
}

StatusOr<std::unique_ptr<Environment>> MakeEnvironment(const EnvConfig& config) {
  return EnvRegistry::Global().Make(config);
}

}  // namespace tokenrl::env
