#include "tokenrl/nn/torch/torch_learner.h"

#include <fmt/ranges.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

#include "tokenrl/nn/diagnostics.h"
#include "tokenrl/nn/init.h"
#include "tokenrl/nn/torch/torch_learner_impl.h"

namespace tokenrl::nn {

void RegisterTorchLearnerBackend() { RegisterLearnerBackend("torch", &torch_backend::TorchLearner::Create); }

}  // namespace tokenrl::nn

namespace tokenrl::nn::torch_backend {
namespace {

constexpr std::string_view kMagic = "tokenrl.torch_learner";
constexpr uint32_t kFormatVersion = 1;

// Sets libtorch's intra-op threads and, where libtorch calls an external
// OpenBLAS (Debian's libtorch goes through the generic libblas.so.3), that
// library's own thread pool too: torch::set_num_threads does not reach it, and
// OpenBLAS otherwise runs every GEMM on all cores. Both are process-wide.
void SetIntraOpThreads(int threads) {
  torch::set_num_threads(threads);
#if defined(__unix__) || defined(__APPLE__)
  using SetThreads = void (*)(int);
  if (void* symbol = dlsym(RTLD_DEFAULT, "openblas_set_num_threads")) {
    reinterpret_cast<SetThreads>(symbol)(threads);
  }
#endif
}

// Support z = linspace(v_min, v_max, atoms), as the head computes it (in
// float64, then rounded to the learner's dtype).
torch::Tensor Support(const HeadConfig& head, torch::Device device, torch::Dtype dtype) {
  return torch::linspace(head.v_min, head.v_max, head.num_atoms, torch::TensorOptions(torch::kFloat64))
      .to(torch::kFloat32)
      .to(device, dtype);
}

// x [E, B, ...] gathered along dim 2 at index [E, B] -> [E, B, ...].
torch::Tensor GatherActions(const torch::Tensor& x, const torch::Tensor& actions) {
  std::vector<int64_t> shape = x.sizes().vec();
  shape[2] = 1;
  std::vector<int64_t> view(x.dim(), 1);
  view[0] = actions.size(0);
  view[1] = actions.size(1);
  return x.gather(2, actions.view(view).expand(shape)).squeeze(2);
}

// A named tensor of a checkpoint.
struct StateTensor {
  std::string name;
  torch::Tensor tensor;
};

void WriteTensor(ByteWriter& writer, const StateTensor& s) {
  const torch::Tensor c = s.tensor.detach().to(torch::kCPU).contiguous();
  writer.WriteString(s.name);
  writer.Write<int32_t>(static_cast<int32_t>(c.scalar_type()));
  writer.WriteVector(c.sizes().vec());
  writer.WriteString(std::string_view(static_cast<const char*>(c.data_ptr()), c.nbytes()));
}

// Reads one tensor and checks it against `expected` (name, dtype, shape);
// returns the CPU tensor.
StatusOr<torch::Tensor> ReadTensor(ByteReader& reader, const StateTensor& expected) {
  std::string name, data;
  int32_t dtype = 0;
  std::vector<int64_t> shape;
  if (!reader.ReadString(name) || !reader.Read(dtype) || !reader.ReadVector(shape, 64) || !reader.ReadString(data)) {
    return Status::Corruption("torch learner state: truncated tensor record");
  }
  const std::vector<int64_t> want = expected.tensor.sizes().vec();
  if (name != expected.name || dtype != static_cast<int32_t>(expected.tensor.scalar_type()) || shape != want) {
    return Status::Corruption(fmt::format(
        "torch learner state: tensor \"{}\" {} does not match this network's \"{}\" {} (different network config?)",
        name, fmt::join(shape, "x"), expected.name, fmt::join(want, "x")));
  }
  torch::Tensor t = torch::empty(want, torch::TensorOptions(expected.tensor.scalar_type()));
  if (data.size() != t.nbytes()) return Status::Corruption("torch learner state: tensor byte count mismatch");
  std::memcpy(t.data_ptr(), data.data(), data.size());
  if (t.is_floating_point()) {
    const torch::Tensor f = t.to(torch::kFloat).contiguous();
    TOKENRL_RETURN_IF_ERROR(
        ValidateLearnerTensor("torch", name, std::span<const float>(f.data_ptr<float>(), static_cast<size_t>(f.numel()))));
  }
  return t;
}

}  // namespace

// ---------------------------------------------------------------------------
// Losses.

torch::Tensor TdLossPerSample(const torch::Tensor& q_sa, const torch::Tensor& target, TdLoss loss, double delta) {
  const torch::Tensor d = target - q_sa;
  if (loss == TdLoss::kMse) return d * d;
  // Huber: quadratic part up to delta, linear beyond (smooth at |d| = delta).
  const torch::Tensor abs = d.abs();
  const torch::Tensor quadratic = abs.clamp_max(delta);
  return 0.5 * quadratic * quadratic + delta * (abs - quadratic);
}

torch::Tensor ProjectDistribution(const torch::Tensor& probabilities, const torch::Tensor& support,
                                  const torch::Tensor& returns, const torch::Tensor& discounts) {
  const int64_t atoms = support.size(0);
  const torch::Tensor v_min = support.narrow(0, 0, 1), v_max = support.narrow(0, atoms - 1, 1);
  const torch::Tensor dz = (v_max - v_min) / static_cast<double>(atoms - 1);
  // Tz_j [..., N], clipped to the support.
  torch::Tensor tz = returns.unsqueeze(-1) + discounts.unsqueeze(-1) * support;
  tz = torch::min(torch::max(tz, v_min), v_max);
  // weights[..., i, j] = clamp(1 - |Tz_j - z_i| / dz, 0, 1): the share of atom
  // j's mass that lands on z_i (1 when exactly on it).
  const torch::Tensor weights = (1.0 - (tz.unsqueeze(-2) - support.unsqueeze(-1)).abs() / dz).clamp(0.0, 1.0);
  return (weights * probabilities.unsqueeze(-2)).sum(-1);
}

torch::Tensor CrossEntropyPerSample(const torch::Tensor& logits, const torch::Tensor& target_probabilities) {
  return -(target_probabilities * torch::log_softmax(logits, -1)).sum(-1);
}

// ---------------------------------------------------------------------------
// TorchLearner.

TorchLearner::TorchLearner(const NetworkConfig& network, const LearnerConfig& config, const NetworkIo& io, int members,
                           torch::Device device, torch::Dtype dtype)
    : network_(network), config_(config), io_(io), members_(members), device_(device), dtype_(dtype) {
  const auto seed = static_cast<uint64_t>(config.seed);
  // Noise streams of their own, derived from the root seed (member -1 is no
  // member's parameter stream).
  online_ = QNetwork(network, io, seed, members, ParameterSeed(seed, -1, "noise.online"));
  target_ = QNetwork(network, io, seed, members, ParameterSeed(seed, -1, "noise.target"));
  online_->to(device_);
  target_->to(device_);
  if (dtype_ != torch::kFloat32) {
    // Module::to(dtype) would also convert integer buffers (the Shuffled
    // tokenizer's permutation): floating tensors only.
    for (torch::nn::Module* net : {online_.ptr().get(), target_.ptr().get()}) {
      for (torch::Tensor& p : net->parameters()) p.set_data(p.to(dtype_));
      for (torch::Tensor& b : net->buffers()) {
        if (b.is_floating_point()) b.set_data(b.to(dtype_));
      }
    }
  }
  for (const auto& item : online_->named_parameters()) {
    index_[item.key()] = static_cast<int>(names_.size());
    names_.push_back(item.key());
    params_.push_back(item.value());
    adam_m_.push_back(torch::zeros_like(item.value()));
    adam_v_.push_back(torch::zeros_like(item.value()));
    adam_scratch_.push_back(torch::empty_like(item.value()));
  }
  for (const auto& item : target_->named_parameters()) {
    item.value().set_requires_grad(false);
    target_params_.push_back(item.value());
  }
  TOKENRL_CHECK(target_params_.size() == params_.size(), "online and target networks differ");
  if (network.head.distributional) support_ = Support(network.head, device_, dtype_);
  SyncTarget();
}

StatusOr<std::unique_ptr<Learner>> TorchLearner::Create(const NetworkConfig& network, const LearnerConfig& config,
                                                        const NetworkIo& io, int members) {
  return CreateWithDtype(network, config, io, members, torch::kFloat32);
}

StatusOr<std::unique_ptr<Learner>> TorchLearner::CreateWithDtype(const NetworkConfig& network,
                                                                 const LearnerConfig& config, const NetworkIo& io,
                                                                 int members, torch::Dtype dtype) {
  if (members < 1) return Status::InvalidArgument(fmt::format("members must be >= 1, got {}", members));
  TOKENRL_RETURN_IF_ERROR(network.head.Validate());
  TOKENRL_RETURN_IF_ERROR(ComputeShapes(network, io).status());
  if (config.num_threads < 1) {
    return Status::InvalidArgument(fmt::format("num_threads must be >= 1, got {}", config.num_threads));
  }
  std::optional<torch::Device> device;
  try {
    device.emplace(config.device);
  } catch (const std::exception&) {
    return Status::InvalidArgument(
        fmt::format("unknown torch device \"{}\" (expected cpu, cuda or cuda:N)", config.device));
  }
  if (device->is_cuda()) {
    if (!torch::cuda::is_available()) {
      return Status::InvalidArgument(fmt::format(
          "device \"{}\": CUDA is not available (libtorch built without CUDA, or no GPU visible)", config.device));
    }
    if (device->has_index() && device->index() >= static_cast<int>(torch::cuda::device_count())) {
      return Status::InvalidArgument(
          fmt::format("device \"{}\": only {} CUDA device(s)", config.device, torch::cuda::device_count()));
    }
  } else if (!device->is_cpu()) {
    return Status::InvalidArgument(fmt::format("device \"{}\": only cpu and cuda are supported", config.device));
  }
  // Process-wide: libtorch (and OpenBLAS) have one intra-op thread pool.
  SetIntraOpThreads(static_cast<int>(config.num_threads));
  try {
    return std::unique_ptr<Learner>(new TorchLearner(network, config, io, members, *device, dtype));
  } catch (const std::exception& e) {
    return Status::Internal(fmt::format("building the torch learner failed: {}", e.what()));
  }
}

torch::Tensor TorchLearner::Observations(std::span<const uint8_t> observations, int n) const {
  torch::Tensor t = torch::from_blob(const_cast<uint8_t*>(observations.data()),
                                     {members_, n, io_.channels, io_.height, io_.width}, torch::kUInt8);
  return t.to(device_);  // No copy on the CPU: the network only reads it.
}

NetworkOutput TorchLearner::Forward(std::span<const uint8_t> observations, int n, bool noise) {
  TOKENRL_CHECK(
      n >= 1 && observations.size() == static_cast<size_t>(members_) * n * io_.channels * io_.height * io_.width,
      "observations: expected [{}, {}, {}, {}, {}], got {} values", members_, n, io_.channels, io_.height, io_.width,
      observations.size());
  torch::NoGradGuard no_grad;
  online_->noise().set_enabled(noise);
  return online_->forward(Observations(observations, n));
}

void TorchLearner::QValues(std::span<const uint8_t> observations, int n, bool noise, std::span<float> q_values) {
  TOKENRL_CHECK(q_values.size() == static_cast<size_t>(members_) * n * io_.num_actions, "q_values: wrong size");
  const torch::Tensor q = Forward(observations, n, noise).q.to(torch::kCPU, torch::kFloat32).contiguous();
  std::memcpy(q_values.data(), q.data_ptr<float>(), q_values.size() * sizeof(float));
}

void TorchLearner::GreedyActions(std::span<const uint8_t> observations, int n, bool noise, std::span<int32_t> actions) {
  TOKENRL_CHECK(actions.size() == static_cast<size_t>(members_) * n, "actions: wrong size");
  const torch::Tensor q = Forward(observations, n, noise).q.to(torch::kCPU, torch::kFloat32).contiguous();
  const float* data = q.data_ptr<float>();
  const int num_actions = io_.num_actions;
  for (size_t row = 0; row < actions.size(); ++row) {
    const float* r = data + row * num_actions;
    int best = 0;
    for (int a = 1; a < num_actions; ++a) {
      if (r[a] > r[best]) best = a;  // Strict: ties keep the lowest index.
    }
    actions[row] = best;
  }
}

Status TorchLearner::Update(const UpdateBatch& batch, UpdateResult& result) {
  // Validation first: nothing changes on a bad batch.
  TOKENRL_RETURN_IF_ERROR(ValidateUpdateBatch(batch, members_, io_));
  try {
    Step(batch, result);
  } catch (const std::exception& e) {  // E.g. a CUDA out-of-memory error.
    return Status::Internal(fmt::format("torch learner update failed: {}", e.what()));
  }
  return Status::Ok();
}

void TorchLearner::Step(const UpdateBatch& batch, UpdateResult& result) {
  const int b = batch.batch_size;
  auto floats = [&](std::span<const float> s) {
    return torch::from_blob(const_cast<float*>(s.data()), {members_, b}, torch::kFloat32).to(device_, dtype_);
  };
  const torch::Tensor obs = Observations(batch.observations, b);
  const torch::Tensor next_obs = Observations(batch.next_observations, b);
  const torch::Tensor actions =
      torch::from_blob(const_cast<int32_t*>(batch.actions.data()), {members_, b}, torch::kInt32)
          .to(device_, torch::kInt64);
  const torch::Tensor returns = floats(batch.returns);
  const torch::Tensor discounts = floats(batch.discounts);
  const bool distributional = network_.head.distributional;

  // Training passes draw noise in noisy layers.
  online_->noise().set_enabled(true);
  target_->noise().set_enabled(true);
  NetworkOutput out = online_->forward(obs);
  const torch::Tensor q_sa = GatherActions(out.q, actions);  // [E, B]

  torch::Tensor per_sample;  // [E, B]
  {
    torch::Tensor target_value;  // [E, B] TD target, or [E, B, N] projected distribution.
    {
      torch::NoGradGuard no_grad;
      const NetworkOutput next = target_->forward(next_obs);
      const torch::Tensor next_action =
          config_.double_q ? online_->forward(next_obs).q.argmax(-1) : next.q.argmax(-1);  // First max on ties.
      if (distributional) {
        target_value =
            ProjectDistribution(GatherActions(next.probabilities, next_action), support_, returns, discounts);
      } else {
        target_value = returns + discounts * GatherActions(next.q, next_action);
      }
    }
    per_sample = distributional ? CrossEntropyPerSample(GatherActions(out.logits, actions), target_value)
                                : TdLossPerSample(q_sa, target_value, config_.td_loss, config_.huber_delta);
  }
  torch::Tensor weighted = per_sample;
  if (!batch.weights.empty()) weighted = weighted * floats(batch.weights);
  torch::Tensor member_loss = weighted.mean(1);  // [E]
  if (out.aux_loss.defined()) member_loss = member_loss + out.aux_loss;
  // Members never share parameters: the sum's gradient is each member's own.
  std::vector<torch::Tensor> grads =
      torch::autograd::grad({member_loss.sum()}, params_, /*grad_outputs=*/{}, /*retain_graph=*/false,
                            /*create_graph=*/false, /*allow_unused=*/true);
  AdamStep(grads);
  last_gradients_ = std::move(grads);

  auto to_vector = [](const torch::Tensor& t) {
    const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  };
  result.per_sample_loss = to_vector(per_sample);
  result.loss = to_vector(member_loss);
  result.q_mean = to_vector(q_sa.mean(1));
}

void TorchLearner::AdamStep(const std::vector<torch::Tensor>& grads) {
  torch::NoGradGuard no_grad;
  ++adam_step_;
  const double b1 = config_.adam_beta1, b2 = config_.adam_beta2;
  const double step_t = static_cast<double>(adam_step_);
  const double bias1 = 1.0 - std::pow(b1, step_t), bias2 = 1.0 - std::pow(b2, step_t);
  const double step_size = config_.learning_rate / bias1, sqrt_bias2 = std::sqrt(bias2);
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& m = adam_m_[i];
    torch::Tensor& v = adam_v_[i];
    m.mul_(b1);
    v.mul_(b2);
    if (grads[i].defined()) {  // Undefined: the parameter was unused; g = 0.
      m.add_(grads[i], 1.0 - b1);
      v.addcmul_(grads[i], grads[i], 1.0 - b2);
    }
    // p -= lr/bias1 * m / (sqrt(v)/sqrt(bias2) + eps): eps outside the sqrt.
    // The denominator goes to a persistent scratch tensor: fewer large
    // allocations, which glibc would otherwise map and unmap on every step.
    torch::Tensor& denom = adam_scratch_[i];
    torch::sqrt_out(denom, v);
    denom.div_(sqrt_bias2).add_(config_.adam_epsilon);
    params_[i].addcdiv_(m, denom, -step_size);
  }
}

void TorchLearner::SyncTarget() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) target_params_[i].copy_(params_[i]);
  // Buffers (e.g. a tokenizer's fixed permutation) are equal by construction,
  // but copy them too so that a loaded checkpoint's target matches exactly.
  auto online_buffers = online_->named_buffers();
  auto target_buffers = target_->named_buffers();
  for (const auto& item : online_buffers) target_buffers[item.key()].copy_(item.value());
}

// ---------------------------------------------------------------------------
// Parameter access.

std::vector<ParameterInfo> TorchLearner::Parameters() const {
  std::vector<ParameterInfo> infos;
  for (size_t i = 0; i < params_.size(); ++i) {
    std::vector<int64_t> shape = params_[i].sizes().vec();
    shape.erase(shape.begin());  // The member dimension.
    infos.push_back({names_[i], std::move(shape)});
  }
  return infos;
}

int TorchLearner::FindParameter(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? -1 : it->second;
}

Status TorchLearner::CheckMember(int member) const {
  if (member >= 0 && member < members_) return Status::Ok();
  return Status::InvalidArgument(fmt::format("member {} is outside [0, {})", member, members_));
}

Status TorchLearner::GetParameter(const std::string& name, int member, std::span<float> out) const {
  const int i = FindParameter(name);
  if (i < 0) return Status::NotFound(fmt::format("no parameter named \"{}\"", name));
  TOKENRL_RETURN_IF_ERROR(CheckMember(member));
  const torch::Tensor p = params_[i][member].detach().to(torch::kCPU, torch::kFloat32).contiguous();
  if (out.size() != static_cast<size_t>(p.numel())) {
    return Status::InvalidArgument(
        fmt::format("parameter \"{}\" has {} values per member, buffer has {}", name, p.numel(), out.size()));
  }
  std::memcpy(out.data(), p.data_ptr<float>(), out.size() * sizeof(float));
  return Status::Ok();
}

Status TorchLearner::SetParameter(const std::string& name, int member, std::span<const float> values) {
  const int i = FindParameter(name);
  if (i < 0) return Status::NotFound(fmt::format("no parameter named \"{}\"", name));
  TOKENRL_RETURN_IF_ERROR(CheckMember(member));
  torch::Tensor slot = params_[i][member];
  if (values.size() != static_cast<size_t>(slot.numel())) {
    return Status::InvalidArgument(
        fmt::format("parameter \"{}\" has {} values per member, got {}", name, slot.numel(), values.size()));
  }
  torch::NoGradGuard no_grad;
  slot.copy_(torch::from_blob(const_cast<float*>(values.data()), slot.sizes(), torch::kFloat32));
  return Status::Ok();
}

std::pair<torch::Tensor, torch::Tensor> TorchLearner::AdamMoments(const std::string& name) const {
  const int i = FindParameter(name);
  if (i < 0) return {};
  return {adam_m_[i], adam_v_[i]};
}

Status TorchLearner::ResetOptimizerState(const std::string& name, int member) {
  const int i = FindParameter(name);
  if (i < 0) return Status::NotFound(fmt::format("no parameter named \"{}\"", name));
  TOKENRL_RETURN_IF_ERROR(CheckMember(member));
  torch::NoGradGuard no_grad;
  adam_m_[i][member].zero_();
  adam_v_[i][member].zero_();
  return Status::Ok();
}

Status TorchLearner::ResetOptimizerStateRange(const std::string& name, int member, int64_t offset, int64_t count) {
  const int i = FindParameter(name);
  if (i < 0) return Status::NotFound(fmt::format("no parameter named \"{}\"", name));
  TOKENRL_RETURN_IF_ERROR(CheckMember(member));
  const int64_t numel = adam_m_[i][member].numel();
  if (offset < 0 || count < 0 || offset + count > numel) {
    return Status::InvalidArgument(
        fmt::format("range [{}, {}) is outside parameter \"{}\" ({} values)", offset, offset + count, name, numel));
  }
  torch::NoGradGuard no_grad;
  adam_m_[i][member].view({-1}).narrow(0, offset, count).zero_();
  adam_v_[i][member].view({-1}).narrow(0, offset, count).zero_();
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Diagnostics (definitions in learner.h).

namespace {

std::vector<double> ToDoubles(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().view({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

std::vector<double> Dormant(const torch::Tensor& rows_by_units, const std::vector<double>& taus) {
  const std::vector<double> means = ToDoubles(rows_by_units.abs().mean(0));
  std::vector<double> out;
  for (double tau : taus) out.push_back(DormantFraction(means, tau));
  return out;
}

// Mean cosine similarity over pairs of distinct columns of x [rows, k]; NaN
// when k < 2. Zero columns have similarity 0 with everything.
double MeanColumnCosine(const torch::Tensor& x) {
  const int64_t k = x.size(1);
  if (k < 2) return std::numeric_limits<double>::quiet_NaN();
  const torch::Tensor norms = x.norm(2, {0}, /*keepdim=*/true).clamp_min(1e-12);
  const torch::Tensor u = x / norms;
  const torch::Tensor gram = u.t().matmul(u);  // [k, k]
  const double off_diagonal = (gram.sum() - gram.diagonal().sum()).item<double>();
  return off_diagonal / static_cast<double>(k * (k - 1));
}

// Mean entropy (nats) over the rows of w [rows, k] with positive mass, each
// renormalized; 0 when no row has mass.
double MeanRowEntropy(const torch::Tensor& w) {
  const torch::Tensor mass = w.sum(1, /*keepdim=*/true);
  const torch::Tensor live = mass.squeeze(1) > 0;
  const int64_t rows = live.sum().item<int64_t>();
  if (rows == 0) return 0.0;
  const torch::Tensor q = w / mass.clamp_min(1e-300);
  const torch::Tensor h = -(q * torch::log(q.clamp_min(1e-300))).sum(1);
  return (h * live).sum().item<double>() / static_cast<double>(rows);
}

}  // namespace

StatusOr<std::vector<MemberDiagnostics>> TorchLearner::Diagnostics(std::span<const uint8_t> observations, int n,
                                                                   const std::vector<double>& taus) {
  if (n < 1 ||
      observations.size() != static_cast<size_t>(members_) * n * io_.channels * io_.height * io_.width) {
    return Status::InvalidArgument(fmt::format("diagnostics: {} observation values for n = {}", observations.size(), n));
  }
  try {
    const NetworkOutput out = Forward(observations, n, /*noise=*/false);
    torch::NoGradGuard no_grad;
    const bool sparse = network_.mixer.type == MixerType::kTokenChoice ||
                        network_.mixer.type == MixerType::kExpertChoice;
    std::vector<MemberDiagnostics> result(static_cast<size_t>(members_));
    for (int e = 0; e < members_; ++e) {
      MemberDiagnostics& d = result[e];
      d.taus = taus;
      const torch::Tensor penultimate =
          (out.hidden.defined() ? out.hidden[e] : out.features[e]).to(torch::kCPU, torch::kFloat64);  // [B, F]
      d.penultimate_dormant = Dormant(penultimate, taus);
      const std::vector<double> singular = ToDoubles(torch::linalg_svdvals(penultimate));
      d.feature_srank = static_cast<double>(SRank(singular, 0.01));
      double sq = 0.0;
      for (const torch::Tensor& p : params_) sq += p[e].to(torch::kFloat64).pow(2).sum().item<double>();
      d.parameter_norm = std::sqrt(sq);
      if (out.expert_hidden.defined()) {
        const torch::Tensor h = out.expert_hidden[e].to(torch::kCPU, torch::kFloat64);  // [B, n, p, H]
        for (int64_t j = 0; j < h.size(1); ++j) {
          d.expert_dormant.push_back(Dormant(h.select(1, j).reshape({-1, h.size(3)}), taus));
        }
      }
      if (out.combine.defined() && out.dispatch.defined()) {
        const torch::Tensor c = out.combine[e].to(torch::kCPU, torch::kFloat64);   // [B, T, n, p]
        const torch::Tensor w = out.dispatch[e].to(torch::kCPU, torch::kFloat64);  // [B, T, n, p]
        const int64_t batch = c.size(0), tokens = c.size(1), experts = c.size(2), slots = c.size(3);
        const torch::Tensor per_expert = c.sum(std::vector<int64_t>{0, 1, 3});
        d.combine_share = ToDoubles(per_expert / per_expert.sum().clamp_min(1e-300));
        const torch::Tensor token_rows = c.reshape({batch * tokens, experts * slots});
        d.combine_entropy = MeanRowEntropy(token_rows);
        d.tokens_dropped = (token_rows.sum(1) <= 0).to(torch::kFloat64).mean().item<double>();
        d.dispatch_entropy = MeanRowEntropy(w.permute({0, 2, 3, 1}).reshape({batch * experts * slots, tokens}));
        d.combine_similarity = MeanColumnCosine(c.sum(3).reshape({batch * tokens, experts}));
        d.slot_similarity = MeanColumnCosine(w.reshape({batch * tokens, experts * slots}));
        if (sparse) {
          // Filled slots of expert j over its B p slots.
          const torch::Tensor filled = (w.sum(1) > 0).to(torch::kFloat64);  // [B, n, p]
          d.expert_load = ToDoubles(filled.mean(std::vector<int64_t>{0, 2}));
        }
      }
    }
    return result;
  } catch (const std::exception& e) {
    return Status::Internal(fmt::format("torch learner diagnostics failed: {}", e.what()));
  }
}

// ---------------------------------------------------------------------------
// Save / Load. Layout: magic, version, fingerprint (network config, io,
// members), Adam step, then every state tensor (online parameters and
// buffers, target parameters and buffers, Adam m and v) as name, dtype, shape
// and raw bytes, then the two noise generator states.

namespace {

std::vector<StateTensor> StateTensors(QNetwork& online, QNetwork& target, const std::vector<std::string>& names,
                                      const std::vector<torch::Tensor>& m, const std::vector<torch::Tensor>& v) {
  std::vector<StateTensor> out;
  for (auto* net : {&online, &target}) {
    const std::string prefix = net == &online ? "online/" : "target/";
    for (const auto& item : (*net)->named_parameters()) out.push_back({prefix + item.key(), item.value()});
    for (const auto& item : (*net)->named_buffers()) out.push_back({prefix + item.key(), item.value()});
  }
  for (size_t i = 0; i < names.size(); ++i) out.push_back({"adam_m/" + names[i], m[i]});
  for (size_t i = 0; i < names.size(); ++i) out.push_back({"adam_v/" + names[i], v[i]});
  return out;
}

}  // namespace

void TorchLearner::Save(ByteWriter& writer) const {
  auto* self = const_cast<TorchLearner*>(this);  // named_parameters() is not const on the holder.
  writer.WriteString(kMagic);
  writer.Write<uint32_t>(kFormatVersion);
  writer.WriteString(LearnerFingerprint(network_, io_, members_));
  writer.Write<int64_t>(adam_step_);
  const std::vector<StateTensor> tensors = StateTensors(self->online_, self->target_, names_, adam_m_, adam_v_);
  writer.Write<uint64_t>(tensors.size());
  for (const StateTensor& t : tensors) WriteTensor(writer, t);
  writer.WriteString(online_->noise().State());
  writer.WriteString(target_->noise().State());
}

Status TorchLearner::Load(ByteReader& reader) {
  std::string magic, fingerprint;
  uint32_t version = 0;
  int64_t step = 0;
  uint64_t count = 0;
  if (!reader.ReadString(magic) || magic != kMagic) {
    return Status::Corruption("torch learner state: not a torch learner checkpoint");
  }
  if (!reader.Read(version) || version != kFormatVersion) {
    return Status::Corruption(fmt::format("torch learner state: unsupported format version {}", version));
  }
  if (!reader.ReadString(fingerprint) || !reader.Read(step) || !reader.Read(count)) {
    return Status::Corruption("torch learner state: truncated header");
  }
  if (fingerprint != LearnerFingerprint(network_, io_, members_)) {
    return Status::Corruption(fmt::format(
        "torch learner state: saved for a different network, observation shape or member count:\n{}", fingerprint));
  }
  TOKENRL_RETURN_IF_ERROR(ValidateLearnerState("torch", step));
  const std::vector<StateTensor> tensors = StateTensors(online_, target_, names_, adam_m_, adam_v_);
  if (count != tensors.size()) {
    return Status::Corruption(
        fmt::format("torch learner state: {} tensors, this learner has {}", count, tensors.size()));
  }
  // Read and validate everything before changing anything.
  std::vector<torch::Tensor> loaded;
  for (const StateTensor& t : tensors) {
    TOKENRL_ASSIGN_OR_RETURN(torch::Tensor value, ReadTensor(reader, t));
    loaded.push_back(std::move(value));
  }
  std::string online_noise, target_noise;
  if (!reader.ReadString(online_noise) || !reader.ReadString(target_noise)) {
    return Status::Corruption("torch learner state: truncated noise state");
  }
  NoiseSource probe(0);
  if (!probe.SetState(online_noise) || !probe.SetState(target_noise)) {
    return Status::Corruption("torch learner state: malformed noise generator state");
  }
  TOKENRL_RETURN_IF_ERROR(reader.Finish("torch learner state"));

  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < tensors.size(); ++i) {
    torch::Tensor dst = tensors[i].tensor;  // Shares storage with the live tensor.
    dst.copy_(loaded[i]);
  }
  online_->noise().SetState(online_noise);
  target_->noise().SetState(target_noise);
  adam_step_ = step;
  return Status::Ok();
}

}  // namespace tokenrl::nn::torch_backend
