#pragma once
// VectorEnv: M members x N environments each, stepped together into one
// contiguous, caller-visible buffer (EnvPool's preallocated batch).
//
// Layout: environment (member m, env n) has flat index i = m * N + n.
//  * observations: [M, N, C, H, W], uint8 or float32 (VectorEnvConfig.obs_dtype)
//  * rewards (float32), terminated / truncated (uint8): [M, N]
//  * after an env's episode ends within Step, it is reset automatically: the
//    observation buffer then holds the first observation of the next episode,
//    `final_observations` holds the last observation of the finished one, and
//    `episode_returns` / `episode_lengths` hold its statistics (valid where
//    terminated or truncated is set on this step).
//
// Seeding: env (m, n) is seeded with DeriveSeed32(root_seed, {m, n}) on
// Reset(), then continues its own random stream across episodes. Members
// therefore never share randomness, and the same root seed always gives the
// same run, whatever the thread count.
//
// Nothing is allocated per step: buffers are sized at construction.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tokenrl/config/config.h"
#include "tokenrl/core/status.h"
#include "tokenrl/core/thread_pool.h"
#include "tokenrl/env/env_config.h"
#include "tokenrl/env/environment.h"

namespace tokenrl::env {

enum class ObsDtype { kUint8, kFloat32 };

}  // namespace tokenrl::env

template <>
struct tokenrl::config::EnumNames<tokenrl::env::ObsDtype> {
  static constexpr std::array<std::pair<tokenrl::env::ObsDtype, std::string_view>, 2> kValues{
      {{tokenrl::env::ObsDtype::kUint8, "uint8"}, {tokenrl::env::ObsDtype::kFloat32, "float32"}}};
};

namespace tokenrl::env {

struct VectorEnvConfig {
  int64_t members = 1;          // M: independent runs (seeds) stepped together.
  int64_t envs_per_member = 1;  // N: environments per member.
  int64_t seed = 0;             // Root seed; env (m, n) gets DeriveSeed32(seed, {m, n}).
  int64_t num_threads = 1;      // Worker threads (including the caller).
  ObsDtype obs_dtype = ObsDtype::kUint8;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("members", members, "Members M (independent runs stepped together)", config::InRange<int64_t>(1, 4096));
    v.Field("envs_per_member", envs_per_member, "Environments N per member", config::InRange<int64_t>(1, 65536));
    v.Field("seed", seed, "Root seed; every environment's seed is derived from it and its (member, env) index",
            config::InRange<int64_t>(0, INT64_MAX));
    v.Field("num_threads", num_threads, "Threads stepping environments (1 = the calling thread only)",
            config::InRange<int64_t>(1, 256));
    v.Field("obs_dtype", obs_dtype, "Element type of the observation buffer");
  }
  Status Validate() const {
    if (members * envs_per_member > (1 << 20)) {
      return Status::InvalidArgument(
          fmt::format("members * envs_per_member = {} exceeds 2^20 environments", members * envs_per_member));
    }
    return Status::Ok();
  }
};

class VectorEnv {
 public:
  // Creates M x N environments from the registry.
  static StatusOr<std::unique_ptr<VectorEnv>> Create(const EnvConfig& env_config, const VectorEnvConfig& config);

  const EnvSpec& spec() const { return envs_.front()->spec(); }
  int members() const { return members_; }
  int envs_per_member() const { return envs_per_member_; }
  int num_envs() const { return static_cast<int>(envs_.size()); }
  ObsDtype obs_dtype() const { return config_.obs_dtype; }

  // Seeds every environment from the root seed and starts new episodes;
  // writes the first observations.
  void Reset();

  // Steps every environment with actions[i] (flat index i = m * N + n).
  // InvalidArgument, with nothing stepped, if actions has the wrong size or an
  // action is out of range. REQUIRES: Reset() was called.
  Status Step(std::span<const int32_t> actions);

  // Current observations; the span matching obs_dtype() is non-empty.
  std::span<const uint8_t> observations_u8() const { return obs_u8_; }
  std::span<const float> observations_f32() const { return obs_f32_; }
  // Last observation of the episodes that ended on the last Step (per env;
  // stale where the env did not end).
  std::span<const uint8_t> final_observations_u8() const { return final_u8_; }
  std::span<const float> final_observations_f32() const { return final_f32_; }

  std::span<const float> rewards() const { return rewards_; }
  std::span<const uint8_t> terminated() const { return terminated_; }
  std::span<const uint8_t> truncated() const { return truncated_; }
  std::span<const double> episode_returns() const { return episode_returns_; }
  std::span<const int64_t> episode_lengths() const { return episode_lengths_; }

  // Total steps taken over all environments since Reset().
  int64_t total_env_steps() const { return total_env_steps_; }

  // Direct access, e.g. for checkpoints (SaveState/LoadState) and rendering.
  Environment& env(int member, int index) { return *envs_[static_cast<size_t>(member * envs_per_member_ + index)]; }

 private:
  VectorEnv(const VectorEnvConfig& config, std::vector<std::unique_ptr<Environment>> envs);
  void WriteObservation(int i, bool final);
  void StepRange(int begin, int end, std::span<const int32_t> actions);

  VectorEnvConfig config_;
  int members_;
  int envs_per_member_;
  int obs_size_;
  std::vector<std::unique_ptr<Environment>> envs_;
  std::vector<uint8_t> obs_u8_, final_u8_;
  std::vector<float> obs_f32_, final_f32_;
  std::vector<float> rewards_;
  std::vector<uint8_t> terminated_, truncated_;
  std::vector<double> episode_returns_;
  std::vector<int64_t> episode_lengths_;
  int64_t total_env_steps_ = 0;
  bool was_reset_ = false;
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace tokenrl::env
