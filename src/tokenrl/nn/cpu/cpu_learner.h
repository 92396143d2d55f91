#pragma once
// CpuLearner: the built-in CPU engine's nn::Learner (backend "cpu"; the
// contract, losses and layouts are in learner.h). It computes exactly what the
// torch backend computes (same parameter names, initial values, noise draws,
// losses and Adam), with hand-written backward passes over oneDNN GEMMs and
// no allocation per update after warm-up.
//
// Design:
//  * Everything is per member: an update runs member e's online pass,
//    bootstrap passes, loss, backward and Adam step as one task, and members
//    are spread over `num_threads` worker threads (member e on thread
//    e mod threads). Results do not depend on the thread count.
//  * Noise is drawn serially, for all members, before the member tasks run,
//    in the torch backend's order: online (training pass), target, online
//    (double-Q bootstrap pass).
//  * Adam as the torch backend (see torch_learner_impl.h), fused in one loop
//    over each member's parameters.

#include <memory>
#include <string>
#include <vector>

#include "tokenrl/nn/cpu/network.h"
#include "tokenrl/nn/learner.h"

namespace tokenrl {
class ThreadPool;
}

namespace tokenrl::nn::cpu {


class CpuLearner : public Learner {
 public:
  CpuLearner(const NetworkConfig& network, const LearnerConfig& config, const NetworkIo& io, int members);
  ~CpuLearner() override;
  // Validates the configuration and builds the learner.
  static StatusOr<std::unique_ptr<Learner>> Create(const NetworkConfig& network, const LearnerConfig& config,
                                                   const NetworkIo& io, int members);

  int members() const override { return members_; }
  const NetworkConfig& network_config() const override { return network_; }
  const NetworkIo& io() const override { return io_; }

  void QValues(std::span<const uint8_t> observations, int n, bool noise, std::span<float> q_values) override;
  void GreedyActions(std::span<const uint8_t> observations, int n, bool noise, std::span<int32_t> actions) override;
  Status Update(const UpdateBatch& batch, UpdateResult& result) override;
  void SyncTarget() override;

  std::vector<ParameterInfo> Parameters() const override;
  Status GetParameter(const std::string& name, int member, std::span<float> out) const override;
  Status SetParameter(const std::string& name, int member, std::span<const float> values) override;
  Status ResetOptimizerState(const std::string& name, int member) override;
  Status ResetOptimizerStateRange(const std::string& name, int member, int64_t offset, int64_t count) override;
  StatusOr<std::vector<MemberDiagnostics>> Diagnostics(std::span<const uint8_t> observations, int n,
                                                       const std::vector<double>& taus) override;

  void Save(ByteWriter& writer) const override;
  Status Load(ByteReader& reader) override;

  // For tests: the networks, the gradients of the last update (Param::grad
  // of online()), Adam's moments [E, numel] of parameter i and the step count.
  Network& online() { return *online_; }
  Network& target() { return *target_; }
  const std::vector<float>& adam_m(size_t i) const { return adam_m_[i]; }
  const std::vector<float>& adam_v(size_t i) const { return adam_v_[i]; }
  int64_t adam_step() const { return adam_step_; }

 private:
  // Member e's whole update (passes, loss, backward, Adam).
  void UpdateMember(int e, const UpdateBatch& batch, float* per_sample, float* loss, float* q_mean);
  void AdamMember(int e, float step_size, float sqrt_bias2);
  // Inference passes of every member in context 1; fn(e, q) sees member e's Q [n, A].
  template <typename Fn>
  void RunMembers(Fn& fn);  // fn(e) for every member, on the pool.
  template <typename Fn>
  void Infer(std::span<const uint8_t> observations, int n, bool noise, Fn&& fn);
  Param* FindParameter(const std::string& name, int member, Status& status) const;

  NetworkConfig network_;
  LearnerConfig config_;
  NetworkIo io_;
  int members_;
  size_t obs_size_;  // uint8 values per observation
  std::unique_ptr<Network> online_, target_;
  std::vector<std::vector<float>> adam_m_, adam_v_;  // per parameter [E, numel]
  int64_t adam_step_ = 0;
  std::unique_ptr<ThreadPool> pool_;  // Member e runs on thread e mod threads.
  // Per-member loss scratch: [B, raw size] head-output gradient.
  std::vector<std::vector<float>> d_raw_;
};

}  // namespace tokenrl::nn::cpu
