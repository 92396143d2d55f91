#include "tokenrl/nn/learner.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "tokenrl/nn/cpu/cpu_learner.h"

namespace tokenrl::nn {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, LearnerFactory> factories;
};

Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry();
    r->factories["cpu"] = &cpu::CpuLearner::Create;  // Built in: always available.
    return r;
  }();
  return *registry;
}

}  // namespace

void RegisterLearnerBackend(const std::string& name, LearnerFactory factory) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.factories[name] = std::move(factory);
}

std::vector<std::string> LearnerBackends() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, f] : r.factories) names.push_back(name);
  return names;
}

std::string ResolvedBackend(const LearnerConfig& config) {
  if (config.backend != "auto") return config.backend;
  return config.device == "cpu" ? "cpu" : "torch";
}

StatusOr<std::unique_ptr<Learner>> MakeLearner(const NetworkConfig& network, const LearnerConfig& learner,
                                               const NetworkIo& io, int members) {
  const std::string backend = ResolvedBackend(learner);
  if (members < 1) return Status::InvalidArgument(fmt::format("members must be >= 1, got {}", members));
  TOKENRL_RETURN_IF_ERROR(ComputeShapes(network, io).status());
  LearnerFactory factory;
  {
    Registry& r = GetRegistry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(backend);
    if (it == r.factories.end()) {
      std::string known;
      for (const auto& [name, f] : r.factories) known += (known.empty() ? "" : ", ") + name;
      return Status::NotFound(fmt::format("learner backend \"{}\" is not available; built backends: {}", backend,
                                          known.empty() ? "none" : known));
    }
    factory = it->second;
  }
  return factory(network, learner, io, members);
}

}  // namespace tokenrl::nn

namespace tokenrl::nn {

Status Learner::ResetOptimizerStateRange(const std::string& name, int member, int64_t offset, int64_t count) {
  for (const ParameterInfo& p : Parameters()) {
    if (p.name != name) continue;
    if (offset == 0 && count == p.numel()) return ResetOptimizerState(name, member);
    return Status::InvalidArgument(
        fmt::format("ResetOptimizerStateRange: this backend resets only whole parameters (\"{}\")", name));
  }
  return Status::NotFound(fmt::format("no parameter named \"{}\"", name));
}

StatusOr<std::vector<MemberDiagnostics>> Learner::Diagnostics(std::span<const uint8_t>, int,
                                                              const std::vector<double>&) {
  return Status::InvalidArgument("this learner backend does not implement Diagnostics");
}

}  // namespace tokenrl::nn
