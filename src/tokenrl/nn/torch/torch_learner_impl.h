#pragma once
// TorchLearner: the libtorch implementation of nn::Learner (see learner.h for
// the contract, the loss definitions and the [E, B, ...] layouts), and the loss
// functions it is made of, exposed for tests. Internal to the torch backend:
// include torch_learner.h elsewhere.
//
// Design:
//  * online and target are two QNetworks built from the same config and seed
//    (so identical at construction); SyncTarget copies the online tensors.
//    Each network owns a NoiseSource seeded from the learner seed.
//  * Adam is implemented here over the online parameters (moments shaped like
//    the parameters, [E, ...]) so that ResetOptimizerState can zero one
//    member's moments of one parameter. All members step together, so one step
//    count serves all. Bias correction and eps placement as PyTorch and Optax:
//      m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//      p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
//    A parameter that receives no gradient (unused on this batch) is updated
//    with g = 0, as in Optax.
//  * Members never mix, so the members' losses are summed and one backward
//    pass yields every member's gradient.
//  * Update draws noise in noisy layers (online and target passes); QValues
//    and GreedyActions draw it only when asked.

#include <torch/torch.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenrl/nn/learner.h"
#include "tokenrl/nn/torch/q_network.h"

namespace tokenrl::nn::torch_backend {

// Per-sample TD loss [E, B] of prediction q_sa against (constant) target y:
// (y - q)^2 (mse, no 1/2), or Huber with threshold delta
// (0.5 d^2 for |d| <= delta, delta (|d| - delta / 2) beyond).
torch::Tensor TdLossPerSample(const torch::Tensor& q_sa, const torch::Tensor& target, TdLoss loss, double delta);

// C51 target projection (Bellemare et al. 2017, Eq. 7). For each sample, the
// next-state distribution `probabilities` [..., N] on `support` [N] (evenly
// spaced) is moved to Tz_j = returns + discounts * z_j, clipped to
// [z_0, z_{N-1}], and projected onto the support:
//   m_i = sum_j clamp(1 - |Tz_j - z_i| / dz, 0, 1) p_j.
// An atom landing exactly on z_i puts all of its mass on z_i.
// returns and discounts are [...] (the leading dims of probabilities).
torch::Tensor ProjectDistribution(const torch::Tensor& probabilities, const torch::Tensor& support,
                                  const torch::Tensor& returns, const torch::Tensor& discounts);

// Cross-entropy -sum_z target(z) log softmax(logits)(z) over the last dim: [...].
torch::Tensor CrossEntropyPerSample(const torch::Tensor& logits, const torch::Tensor& target_probabilities);

class TorchLearner : public Learner {
 public:
  // REQUIRES: the arguments passed MakeLearner's checks; use Create().
  TorchLearner(const NetworkConfig& network, const LearnerConfig& config, const NetworkIo& io, int members,
               torch::Device device, torch::Dtype dtype);
  // Validates the device and builds the learner.
  static StatusOr<std::unique_ptr<Learner>> Create(const NetworkConfig& network, const LearnerConfig& config,
                                                   const NetworkIo& io, int members);
  // As Create, with parameters, optimizer state and all arithmetic in `dtype`.
  // torch::kFloat64 gives the float64 oracle that the float32 backends are
  // measured against (tests/nn/torch/cpu_learner_vs_torch_test.cc): its
  // initial parameters are the float32 ones, converted exactly; inputs
  // (observations, returns, discounts, weights, noise samples) are the same
  // float32 values, converted.
  static StatusOr<std::unique_ptr<Learner>> CreateWithDtype(const NetworkConfig& network, const LearnerConfig& config,
                                                            const NetworkIo& io, int members, torch::Dtype dtype);

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
  // From one noise-free forward pass (NetworkOutput's diagnostics). The
  // penultimate layer is `hidden` where the mixer has one (dense mixers,
  // post_moe_dense), else the features the head reads.
  StatusOr<std::vector<MemberDiagnostics>> Diagnostics(std::span<const uint8_t> observations, int n,
                                                       const std::vector<double>& taus) override;

  void Save(ByteWriter& writer) const override;
  Status Load(ByteReader& reader) override;

  // Direct access for tests and diagnostics.
  QNetwork& online() { return online_; }
  QNetwork& target() { return target_; }
  int64_t adam_step() const { return adam_step_; }
  // Gradients of the last Update, in Parameters() order (undefined for a
  // parameter that received none): the CPU engine's parity tests read them.
  const std::vector<torch::Tensor>& last_gradients() const { return last_gradients_; }
  // Adam's first and second moments of parameter `name` ([E, ...]); undefined
  // tensors for an unknown name.
  std::pair<torch::Tensor, torch::Tensor> AdamMoments(const std::string& name) const;
  // Online forward pass on uint8 observations [E, n, C, H, W] with the noise
  // flag set as given (no gradient).
  NetworkOutput Forward(std::span<const uint8_t> observations, int n, bool noise);

 private:
  // uint8 observations [E, n, C, H, W] as a tensor on the device.
  torch::Tensor Observations(std::span<const uint8_t> observations, int n) const;
  // Index of `name` in params_, or -1.
  int FindParameter(const std::string& name) const;
  Status CheckMember(int member) const;
  // Update's computation on a validated batch (may throw c10::Error).
  void Step(const UpdateBatch& batch, UpdateResult& result);
  void AdamStep(const std::vector<torch::Tensor>& grads);

  NetworkConfig network_;
  LearnerConfig config_;
  NetworkIo io_;
  int members_;
  torch::Device device_;
  torch::Dtype dtype_;
  QNetwork online_{nullptr}, target_{nullptr};
  // Online parameters in named_parameters() order, with their Adam moments.
  std::vector<std::string> names_;
  std::vector<torch::Tensor> params_, target_params_, adam_m_, adam_v_;
  std::vector<torch::Tensor> adam_scratch_;  // Adam's denominator, per parameter.
  std::vector<torch::Tensor> last_gradients_;
  std::unordered_map<std::string, int> index_;
  torch::Tensor support_;  // C51 support on the device (distributional heads).
  int64_t adam_step_ = 0;
};

}  // namespace tokenrl::nn::torch_backend
