#pragma once
// Learner: the one seam between agents and networks. A Learner owns, for E
// independent members, the online network, the target network and the
// optimizer state, and performs action selection and gradient updates on
// batches laid out [E, B, ...]. Agents, replay and training never see a tensor
// or include torch; each backend (the libtorch reference in nn/torch/, and
// the built-in CPU engine in nn/cpu/) implements this interface and
// registers a factory under its name ("torch", "cpu").
//
// Members never mix: member e's outputs, loss and updates depend only on
// member e's parameters and member e's slice of every input.
//
// Losses (per sample i of member e; G_i = returns[e,i], g_i = discounts[e,i],
// which is gamma^m for an m-step return, 0 when the episode terminated):
//  * non-distributional: target y_i = G_i + g_i * Q_target(s'_i, a*), with
//    a* = argmax_a Q_target(s'_i, a), or argmax_a Q_online(s'_i, a) when
//    double_q; loss_i = (y_i - Q(s_i, a_i))^2 (mse, no 1/2, as Dopamine) or
//    Huber(delta) of the difference;
//  * distributional (C51): the target distribution of a* (same rule) is
//    projected onto the support after Tz = G_i + g_i z (clipped to
//    [v_min, v_max]); loss_i = cross-entropy with the online distribution.
// The optimized loss is mean_i(w_i * loss_i) per member (w_i = importance
// weights, 1 when absent), plus auxiliary losses of the network.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/config/config.h"
#include "tokenrl/core/serialization.h"
#include "tokenrl/core/status.h"
#include "tokenrl/nn/network_config.h"

namespace tokenrl::nn {

enum class TdLoss { kMse, kHuber };

}  // namespace tokenrl::nn

template <>
struct tokenrl::config::EnumNames<tokenrl::nn::TdLoss> {
  static constexpr std::array<std::pair<tokenrl::nn::TdLoss, std::string_view>, 2> kValues{
      {{tokenrl::nn::TdLoss::kMse, "mse"}, {tokenrl::nn::TdLoss::kHuber, "huber"}}};
};

namespace tokenrl::nn {

struct LearnerConfig {
  // A registered backend (see LearnerBackends()), or "auto": the built-in
  // "cpu" engine, or "torch" when `device` asks for a GPU.
  std::string backend = "auto";
  std::string device = "cpu";  // torch backend: "cpu", "cuda", "cuda:1", ...
  int64_t num_threads = 1;        // Intra-op threads of the backend.
  TdLoss td_loss = TdLoss::kMse;  // Non-distributional heads only.
  double huber_delta = 1.0;
  bool double_q = false;
  // Adam (Kingma & Ba): Dopamine's DQN/Rainbow values by default.
  double learning_rate = 6.25e-5;
  double adam_epsilon = 1.5e-4;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  // Root seed of the initial weights (member e draws from its own stream) and
  // of noisy-layer noise.
  int64_t seed = 0;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("backend", backend,
            "Learner backend: auto (cpu, or torch when learner.device is a GPU), cpu (built-in engine), torch",
            config::NonEmpty());
    v.Field("device", device, "torch backend device: cpu, cuda, cuda:N", config::NonEmpty());
    v.Field("num_threads", num_threads, "Intra-op threads of the backend", config::InRange<int64_t>(1, 256));
    v.Field("td_loss", td_loss, "TD loss of non-distributional heads (Dopamine DQN: mse)");
    v.Field("huber_delta", huber_delta, "Huber loss threshold", config::AtLeast(0.0));
    v.Field("double_q", double_q, "Double Q-learning: the online network picks the bootstrap action");
    v.Field("learning_rate", learning_rate, "Adam learning rate", config::AtLeast(0.0));
    v.Field("adam_epsilon", adam_epsilon, "Adam epsilon", config::AtLeast(0.0));
    v.Field("adam_beta1", adam_beta1, "Adam beta1", config::InRange(0.0, 1.0));
    v.Field("adam_beta2", adam_beta2, "Adam beta2", config::InRange(0.0, 1.0));
    v.Field("seed", seed, "Root seed of weight initialization and noise", config::AtLeast<int64_t>(0));
  }
};

// A batch of transitions for all members. Every span is row-major with the
// member index first; B = batch_size. Observations are the environment's
// uint8 [C, H, W] arrays; the network scales them by NetworkIo::input_scale.
struct UpdateBatch {
  int batch_size = 0;
  std::span<const uint8_t> observations;       // [E, B, C, H, W]
  std::span<const int32_t> actions;            // [E, B]
  std::span<const float> returns;              // [E, B] discounted n-step reward sums
  std::span<const float> discounts;            // [E, B] gamma^m, or 0 if the episode terminated
  std::span<const uint8_t> next_observations;  // [E, B, C, H, W]
  std::span<const float> weights;              // [E, B] importance weights; empty = all 1
};

// Results of one update. Per-sample losses feed prioritized replay.
struct UpdateResult {
  std::vector<float> per_sample_loss;  // [E, B] unweighted loss_i
  std::vector<float> loss;             // [E] mean_i(w_i * loss_i) (+ auxiliary)
  std::vector<float> q_mean;           // [E] mean of Q(s_i, a_i)
};

// Diagnostics of the online network on a batch (no noise, no gradient, no
// state change), per member. Definitions (softmoe_reference.md sections 7, 12):
//  * dormant fraction at tau (Sokar et al. 2023): unit u of a layer has score
//    s_u = mean |a_u| over the batch (and slots) / mean_u' of the same means;
//    the fraction of units with s_u <= tau (see DormantFraction in
//    nn/diagnostics.h). A layer whose mean is 0 counts every unit dormant;
//  * srank_delta (Kumar et al. 2021): the smallest k with
//    sum_{i<=k} sigma_i >= (1 - delta) sum_i sigma_i over the singular values
//    of the penultimate features [B, F];
//  * routing (MoE mixers): combine_share[j] = sum over the batch, tokens and
//    expert j's slots of the combine weights / total combine weight;
//    dispatch_entropy = mean over (sample, slot) of the entropy (nats) of the
//    slot's dispatch distribution over tokens; combine_entropy = mean over
//    (sample, token) of the entropy of the token's combine weights
//    renormalized over slots; expert_load[j] = fraction of expert j's B p
//    slots that received a token (sparse routers only);
//    tokens_dropped = fraction of (sample, token) pairs with zero combine
//    weight; combine_similarity = mean over expert pairs j != j' of the
//    cosine similarity of their combine patterns (the combine weights of the
//    expert's slots summed, as a vector over (sample, token)); slot_
//    similarity = mean over slot pairs of the cosine similarity of their
//    dispatch patterns (vectors over (sample, token)).
struct MemberDiagnostics {
  std::vector<double> taus;                          // The thresholds, as asked.
  std::vector<double> penultimate_dormant;           // [taus] (empty: no penultimate layer exposed)
  std::vector<std::vector<double>> expert_dormant;   // [experts][taus] (empty: no experts)
  std::vector<double> combine_share;                 // [experts]
  std::vector<double> expert_load;                   // [experts] (sparse routers; else empty)
  double dispatch_entropy = 0.0, combine_entropy = 0.0, tokens_dropped = 0.0;
  double combine_similarity = 0.0, slot_similarity = 0.0;
  double feature_srank = 0.0;    // Of the penultimate features, delta = 0.01.
  double parameter_norm = 0.0;   // L2 norm of all online parameters of the member.
};

// One named parameter tensor; every member holds its own copy of `shape`.
struct ParameterInfo {
  std::string name;            // e.g. "mixer.experts.w1"
  std::vector<int64_t> shape;  // per member
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

class Learner {
 public:
  virtual ~Learner() = default;

  virtual int members() const = 0;
  virtual const NetworkConfig& network_config() const = 0;
  virtual const NetworkIo& io() const = 0;

  // Q-values of the online network for `n` observations per member:
  // observations [E, n, C, H, W] -> q_values [E, n, A]. With noise = false,
  // noisy layers use their mean weights (evaluation); with noise = true, fresh
  // noise is drawn from the learner's seeded stream.
  virtual void QValues(std::span<const uint8_t> observations, int n, bool noise, std::span<float> q_values) = 0;

  // Greedy actions [E, n] (argmax of QValues, ties to the lowest index).
  virtual void GreedyActions(std::span<const uint8_t> observations, int n, bool noise,
                             std::span<int32_t> actions) = 0;

  // One gradient step per member on `batch`. InvalidArgument on inconsistent
  // span sizes or out-of-range actions (nothing updated).
  virtual Status Update(const UpdateBatch& batch, UpdateResult& result) = 0;

  // Copies online weights into the target network (all members).
  virtual void SyncTarget() = 0;

  // Parameter access by name, for resets, Shrink & Perturb, pruning, logging.
  virtual std::vector<ParameterInfo> Parameters() const = 0;
  // Copies member `member`'s values of `name` (online network) into `out`.
  virtual Status GetParameter(const std::string& name, int member, std::span<float> out) const = 0;
  virtual Status SetParameter(const std::string& name, int member, std::span<const float> values) = 0;
  // Zeroes the optimizer state (Adam moments) of one parameter of one member.
  virtual Status ResetOptimizerState(const std::string& name, int member) = 0;
  // Zeroes the optimizer state of the values [offset, offset + count) of one
  // parameter of one member (row-major per-member layout), e.g. one expert's
  // slice of an [n, ...] parameter. The default handles only the whole
  // parameter; backends override it.
  virtual Status ResetOptimizerStateRange(const std::string& name, int member, int64_t offset, int64_t count);

  // Diagnostics (see MemberDiagnostics) of the online network on
  // `observations` [E, n, C, H, W], one entry per member. Default:
  // Unimplemented.
  virtual StatusOr<std::vector<MemberDiagnostics>> Diagnostics(std::span<const uint8_t> observations, int n,
                                                               const std::vector<double>& taus);

  // Full state (online, target, optimizer, noise stream) to bytes and back.
  virtual void Save(ByteWriter& writer) const = 0;
  virtual Status Load(ByteReader& reader) = 0;
};

// Helpers shared by the backends.
// InvalidArgument unless every span of `batch` has the size E = members
// rows of B = batch.batch_size (observations [E, B, C, H, W]) and every action
// is in [0, io.num_actions).
Status ValidateUpdateBatch(const UpdateBatch& batch, int members, const NetworkIo& io);
// What a checkpoint must agree on to be loadable: the network config, the
// observation/action shapes and the member count, as text.
std::string LearnerFingerprint(const NetworkConfig& network, const NetworkIo& io, int members);
// What a loaded learner state must hold, whatever the backend: a step count
// >= 0, finite values in every tensor and second moments >= 0 (names starting
// "adam_v/"). Training never saves anything else (a non-finite loss stops it
// first), so anything else is a damaged file. Corruption names the tensor.
Status ValidateLearnerState(std::string_view backend, int64_t adam_step);
Status ValidateLearnerTensor(std::string_view backend, std::string_view name, std::span<const float> values);

using LearnerFactory = std::function<StatusOr<std::unique_ptr<Learner>>(
    const NetworkConfig&, const LearnerConfig&, const NetworkIo&, int members)>;

// Backends register themselves by name: "cpu" is always registered; the torch
// backend registers from RegisterTorchLearnerBackend() (nn/torch/torch_learner.h).
void RegisterLearnerBackend(const std::string& name, LearnerFactory factory);
std::vector<std::string> LearnerBackends();

// The backend `config.backend` names, with "auto" resolved ("torch" for a
// device other than "cpu", else "cpu").
std::string ResolvedBackend(const LearnerConfig& config);

// Builds a learner for `members` members with ResolvedBackend(learner).
// NotFound for an unregistered backend (listing the registered ones); InvalidArgument for a network that
// cannot be built for `io` (see ComputeShapes).
StatusOr<std::unique_ptr<Learner>> MakeLearner(const NetworkConfig& network, const LearnerConfig& learner,
                                               const NetworkIo& io, int members);

}  // namespace tokenrl::nn
