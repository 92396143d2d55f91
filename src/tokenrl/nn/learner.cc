#include "tokenrl/nn/learner.h"

#include <algorithm>
#include <cmath>
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

Status ValidateUpdateBatch(const UpdateBatch& batch, int members, const NetworkIo& io) {
  const int b = batch.batch_size;
  if (b < 1) return Status::InvalidArgument(fmt::format("batch_size must be >= 1, got {}", b));
  const size_t rows = static_cast<size_t>(members) * b;
  const size_t obs_size = rows * io.channels * io.height * io.width;
  auto check = [](std::string_view what, size_t got, size_t want) {
    return got == want
               ? Status::Ok()
               : Status::InvalidArgument(fmt::format("update batch: {} has {} values, expected {}", what, got, want));
  };
  TOKENRL_RETURN_IF_ERROR(check("observations", batch.observations.size(), obs_size));
  TOKENRL_RETURN_IF_ERROR(check("next_observations", batch.next_observations.size(), obs_size));
  TOKENRL_RETURN_IF_ERROR(check("actions", batch.actions.size(), rows));
  TOKENRL_RETURN_IF_ERROR(check("returns", batch.returns.size(), rows));
  TOKENRL_RETURN_IF_ERROR(check("discounts", batch.discounts.size(), rows));
  if (!batch.weights.empty()) TOKENRL_RETURN_IF_ERROR(check("weights", batch.weights.size(), rows));
  for (size_t i = 0; i < rows; ++i) {
    if (batch.actions[i] < 0 || batch.actions[i] >= io.num_actions) {
      return Status::InvalidArgument(
          fmt::format("update batch: action {} at index {} is outside [0, {})", batch.actions[i], i, io.num_actions));
    }
  }
  return Status::Ok();
}

Status ValidateLearnerState(std::string_view backend, int64_t adam_step) {
  if (adam_step >= 0) return Status::Ok();
  return Status::Corruption(fmt::format("{} learner state: negative optimizer step count {}", backend, adam_step));
}

Status ValidateLearnerTensor(std::string_view backend, std::string_view name, std::span<const float> values) {
  const bool second_moment = name.starts_with("adam_v/");
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]) || (second_moment && values[i] < 0.0f)) {
      return Status::Corruption(fmt::format("{} learner state: tensor \"{}\" holds {} at index {} (a damaged file?)",
                                            backend, name, values[i], i));
    }
  }
  return Status::Ok();
}

std::string LearnerFingerprint(const NetworkConfig& network, const NetworkIo& io, int members) {
  NetworkConfig copy = network;  // ToToml takes a mutable reference.
  return fmt::format("{}\nio = [{}, {}, {}], actions = {}, input_scale = {}\nmembers = {}\n", config::ToToml(copy),
                     io.channels, io.height, io.width, io.num_actions, io.input_scale, members);
}

StatusOr<std::vector<MemberDiagnostics>> Learner::Diagnostics(std::span<const uint8_t>, int,
                                                              const std::vector<double>&) {
  return Status::InvalidArgument("this learner backend does not implement Diagnostics");
}

}  // namespace tokenrl::nn
