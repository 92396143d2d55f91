#include "tokenrl/env/vector_env.h"

#include <algorithm>

#include "tokenrl/core/seed.h"
#include "tokenrl/env/registry.h"

namespace tokenrl::env {

StatusOr<std::unique_ptr<VectorEnv>> VectorEnv::Create(const EnvConfig& env_config, const VectorEnvConfig& config) {
  TOKENRL_RETURN_IF_ERROR(config.Validate());
  std::vector<std::unique_ptr<Environment>> envs;
  const int64_t total = config.members * config.envs_per_member;
  envs.reserve(static_cast<size_t>(total));
  for (int64_t i = 0; i < total; ++i) {
    TOKENRL_ASSIGN_OR_RETURN(auto env, MakeEnvironment(env_config));
    envs.push_back(std::move(env));
  }
  return std::unique_ptr<VectorEnv>(new VectorEnv(config, std::move(envs)));
}

VectorEnv::VectorEnv(const VectorEnvConfig& config, std::vector<std::unique_ptr<Environment>> envs)
    : config_(config),
      members_(static_cast<int>(config.members)),
      envs_per_member_(static_cast<int>(config.envs_per_member)),
      obs_size_(envs.front()->spec().observation_size()),
      envs_(std::move(envs)) {
  const size_t n = envs_.size();
  const size_t obs_total = n * static_cast<size_t>(obs_size_);
  if (config_.obs_dtype == ObsDtype::kUint8) {
    obs_u8_.assign(obs_total, 0);
    final_u8_.assign(obs_total, 0);
  } else {
    obs_f32_.assign(obs_total, 0.0f);
    final_f32_.assign(obs_total, 0.0f);
  }
  rewards_.assign(n, 0.0f);
  terminated_.assign(n, 0);
  truncated_.assign(n, 0);
  episode_returns_.assign(n, 0.0);
  episode_lengths_.assign(n, 0);
  pool_ = std::make_unique<ThreadPool>(static_cast<int>(std::min<int64_t>(config_.num_threads, static_cast<int64_t>(n))));
}

void VectorEnv::WriteObservation(int i, bool final) {
  const size_t offset = static_cast<size_t>(i) * static_cast<size_t>(obs_size_);
  const size_t size = static_cast<size_t>(obs_size_);
  if (config_.obs_dtype == ObsDtype::kUint8) {
    envs_[static_cast<size_t>(i)]->WriteObservation(std::span<uint8_t>((final ? final_u8_ : obs_u8_).data() + offset, size));
  } else {
    envs_[static_cast<size_t>(i)]->WriteObservation(std::span<float>((final ? final_f32_ : obs_f32_).data() + offset, size));
  }
}

void VectorEnv::Reset() {
  for (int m = 0; m < members_; ++m) {
    for (int e = 0; e < envs_per_member_; ++e) {
      const int i = m * envs_per_member_ + e;
      envs_[static_cast<size_t>(i)]->Reset(
          DeriveSeed32(static_cast<uint64_t>(config_.seed), {static_cast<uint64_t>(m), static_cast<uint64_t>(e)}));
      WriteObservation(i, /*final=*/false);
    }
  }
  std::fill(rewards_.begin(), rewards_.end(), 0.0f);
  std::fill(terminated_.begin(), terminated_.end(), 0);
  std::fill(truncated_.begin(), truncated_.end(), 0);
  total_env_steps_ = 0;
  was_reset_ = true;
}

void VectorEnv::StepRange(int begin, int end, std::span<const int32_t> actions) {
  for (int i = begin; i < end; ++i) {
    Environment& env = *envs_[static_cast<size_t>(i)];
    // Actions were validated up front, so Step cannot fail here.
    const StepResult r = *env.Step(actions[static_cast<size_t>(i)]);
    rewards_[static_cast<size_t>(i)] = r.reward;
    terminated_[static_cast<size_t>(i)] = r.terminated;
    truncated_[static_cast<size_t>(i)] = r.truncated;
    if (r.done()) {
      episode_returns_[static_cast<size_t>(i)] = env.episode_return();
      episode_lengths_[static_cast<size_t>(i)] = env.episode_steps();
      WriteObservation(i, /*final=*/true);
      env.Reset();
    }
    WriteObservation(i, /*final=*/false);
  }
}

Status VectorEnv::Step(std::span<const int32_t> actions) {
  if (!was_reset_) return Status::InvalidArgument("VectorEnv::Step before Reset()");
  if (actions.size() != envs_.size()) {
    return Status::InvalidArgument(
        fmt::format("expected {} actions (members {} x envs {}), got {}", envs_.size(), members_, envs_per_member_,
                    actions.size()));
  }
  const int num_actions = spec().num_actions();
  for (size_t i = 0; i < actions.size(); ++i) {
    if (actions[i] < 0 || actions[i] >= num_actions) {
      return Status::InvalidArgument(fmt::format("{}: action {} for env {} (member {}, env {}) is out of range 0..{}",
                                                 spec().name, actions[i], i, i / static_cast<size_t>(envs_per_member_),
                                                 i % static_cast<size_t>(envs_per_member_), num_actions - 1));
    }
  }
  const int n = num_envs();
  const int threads = pool_->num_threads();
  if (threads == 1) {
    StepRange(0, n, actions);
  } else {
    // Contiguous chunks, one per thread: each env is always stepped by the
    // same code path, so results do not depend on the thread count.
    pool_->ParallelFor(threads, [&](int chunk) {
      const int begin = static_cast<int>(static_cast<int64_t>(n) * chunk / threads);
      const int end = static_cast<int>(static_cast<int64_t>(n) * (chunk + 1) / threads);
      StepRange(begin, end, actions);
    });
  }
  total_env_steps_ += n;
  return Status::Ok();
}

}  // namespace tokenrl::env
