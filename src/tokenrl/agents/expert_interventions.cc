#include "tokenrl/agents/expert_interventions.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <string_view>

namespace tokenrl::agents {
namespace {

constexpr std::string_view kExpertPrefix = "mixer.experts.";

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::optional<nn::ParameterInfo> Find(const std::vector<nn::ParameterInfo>& params, std::string_view name) {
  for (const auto& p : params)
    if (p.name == name) return p;
  return std::nullopt;
}

}  // namespace

int64_t NumExperts(const nn::Learner& learner) {
  for (const auto& p : learner.Parameters()) {
    if (StartsWith(p.name, kExpertPrefix) && !p.shape.empty()) return p.shape[0];
  }
  return 0;
}

std::vector<std::string> ExpertParameterNames(const nn::Learner& learner) {
  std::vector<std::string> names;
  for (const auto& p : learner.Parameters())
    if (StartsWith(p.name, kExpertPrefix)) names.push_back(p.name);
  return names;
}

std::vector<std::string> RouterParameterNames(const nn::Learner& learner) {
  std::vector<std::string> names;
  for (const auto& p : learner.Parameters())
    if (p.name == "mixer.phi" || p.name == "mixer.router.weight") names.push_back(p.name);
  return names;
}

StatusOr<nn::InitSpec> FreshInitSpec(const nn::Learner& learner, const std::string& name) {
  const std::vector<nn::ParameterInfo> params = learner.Parameters();
  const auto p = Find(params, name);
  if (!p) return Status::NotFound(fmt::format("no parameter named \"{}\"", name));
  using nn::InitScheme;
  if (name == "mixer.phi" && p->shape.size() == 3) {  // [D, n, p]: JAX fan_in n D (moe.cc).
    return nn::InitSpec{.scheme = InitScheme::kLecunNormal, .fan_in = static_cast<double>(p->shape[0] * p->shape[1])};
  }
  if (name == "mixer.router.weight" && p->shape.size() == 2) {  // [D, n]
    return nn::InitSpec{.scheme = InitScheme::kLecunNormal, .fan_in = static_cast<double>(p->shape[0])};
  }
  if (StartsWith(name, kExpertPrefix) && p->shape.size() == 3) {
    // Layer prefix "mixer.experts.<layer>." and its weight's fan-in ([n, in, out]).
    const std::string layer = name.substr(0, name.rfind('.') + 1);
    if (EndsWith(name, ".weight")) {
      return nn::InitSpec{.scheme = InitScheme::kXavierUniform,
                          .fan_in = static_cast<double>(p->shape[1]),
                          .fan_out = static_cast<double>(p->shape[2])};
    }
    if (EndsWith(name, ".bias")) return nn::InitSpec{.scheme = InitScheme::kConstant, .value = 0.0};
    const auto mu = Find(params, layer + "mu_weight");
    if (mu && mu->shape.size() == 3) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(mu->shape[1]));
      if (EndsWith(name, ".mu_weight") || EndsWith(name, ".mu_bias")) {
        return nn::InitSpec{.scheme = InitScheme::kUniform, .value = bound};
      }
      if (EndsWith(name, ".sigma_weight") || EndsWith(name, ".sigma_bias")) {
        return nn::InitSpec{.scheme = InitScheme::kConstant,
                            .value = learner.network_config().head.noisy_sigma_scale * bound};
      }
    }
  }
  return Status::NotFound(fmt::format("no fresh initializer known for parameter \"{}\"", name));
}

Status MixExperts(nn::Learner& learner, int member, const InterventionTarget& target, double alpha, double beta,
                  uint64_t seed) {
  if (member < 0 || member >= learner.members()) {
    return Status::InvalidArgument(fmt::format("member {} is outside [0, {})", member, learner.members()));
  }
  const int64_t n = NumExperts(learner);
  if (n == 0 && (!target.experts.empty() || target.include_router)) {
    return Status::InvalidArgument("expert intervention: the network has no experts");
  }
  for (int j : target.experts) {
    if (j < 0 || j >= n) return Status::InvalidArgument(fmt::format("expert {} is outside [0, {})", j, n));
  }
  // Validate every initializer first: nothing changes on an error.
  std::vector<std::pair<nn::ParameterInfo, nn::InitSpec>> work;
  std::vector<nn::ParameterInfo> params = learner.Parameters();
  for (const auto& p : params) {
    const bool expert = StartsWith(p.name, kExpertPrefix);
    const bool router = target.include_router && (p.name == "mixer.phi" || p.name == "mixer.router.weight");
    if (!(expert && !target.experts.empty()) && !router) continue;
    TOKENRL_ASSIGN_OR_RETURN(nn::InitSpec spec, FreshInitSpec(learner, p.name));
    work.emplace_back(p, spec);
  }
  for (const auto& [p, spec] : work) {
    const int64_t numel = p.numel();
    std::vector<float> values(static_cast<size_t>(numel)), fresh(static_cast<size_t>(numel), 0.0f);
    TOKENRL_RETURN_IF_ERROR(learner.GetParameter(p.name, member, values));
    if (beta != 0.0) nn::FillInit(fresh, spec, nn::ParameterSeed(seed, member, p.name));
    auto mix = [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        values[i] = static_cast<float>(alpha * static_cast<double>(values[i]) + beta * static_cast<double>(fresh[i]));
      }
    };
    std::vector<std::pair<int64_t, int64_t>> ranges;  // [offset, count)
    if (StartsWith(p.name, kExpertPrefix)) {
      const int64_t block = numel / n;
      for (int j : target.experts) ranges.emplace_back(j * block, block);
    } else {
      ranges.emplace_back(0, numel);
    }
    for (const auto& [offset, count] : ranges) mix(offset, offset + count);
    TOKENRL_RETURN_IF_ERROR(learner.SetParameter(p.name, member, values));
    if (target.reset_optimizer) {
      for (const auto& [offset, count] : ranges) {
        TOKENRL_RETURN_IF_ERROR(learner.ResetOptimizerStateRange(p.name, member, offset, count));
      }
    }
  }
  return Status::Ok();
}

std::vector<int> TopExperts(const std::vector<double>& scores, int64_t k, const std::vector<int>& exclude) {
  std::vector<int> order;
  for (int j = 0; j < static_cast<int>(scores.size()); ++j) {
    if (std::find(exclude.begin(), exclude.end(), j) == exclude.end()) order.push_back(j);
  }
  if (k > 0 && k < static_cast<int64_t>(order.size())) {
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
    order.resize(static_cast<size_t>(k));
  }
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace tokenrl::agents
