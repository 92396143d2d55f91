#include "tokenrl/nn/cpu/cpu_learner.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "tokenrl/core/thread_pool.h"
#include "tokenrl/nn/cpu/blas.h"
#include "tokenrl/nn/cpu/vector_isa.h"
#include "tokenrl/nn/cpu/moe_layer.h"
#include "tokenrl/nn/diagnostics.h"

extern "C" void dgesvd_(const char* jobu, const char* jobvt, const int* m, const int* n, double* a, const int* lda,
                        double* s, double* u, const int* ldu, double* vt, const int* ldvt, double* work,
                        const int* lwork, int* info);

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace tokenrl::nn::cpu {

namespace {

constexpr std::string_view kMagic = "tokenrl.cpu_learner";
constexpr uint32_t kFormatVersion = 1;

std::string Fingerprint(const NetworkConfig& network, const NetworkIo& io, int members, int64_t seed) {
  std::string text = LearnerFingerprint(network, io, members);
  // The shuffled tokenizer's permutation derives from the learner seed.
  if (network.tokenizer.type == TokenizerType::kShuffled) text += fmt::format("permutation seed = {}\n", seed);
  return text;
}

#if defined(__SSE__)
constexpr unsigned int kFlushDenormals = 0x8040;  // MXCSR: FTZ (bit 15) | DAZ (bit 6).
#endif

int ArgMax(const float* row, int n) {
  int best = 0;
  for (int a = 1; a < n; ++a) {
    if (row[a] > row[best]) best = a;  // Strict: ties keep the lowest index.
  }
  return best;
}

// One Adam step of n values (the torch backend's arithmetic, in float).
struct AdamConstants {
  float b1, b2, one_minus_b1, one_minus_b2, eps, step_size, sqrt_bias2;
};
[[gnu::always_inline]] inline void AdamUpdateBody(float* __restrict w, float* __restrict m, float* __restrict v,
                                                  const float* __restrict g, int64_t n, const AdamConstants c) {
  for (int64_t k = 0; k < n; ++k) {
    m[k] = m[k] * c.b1 + c.one_minus_b1 * g[k];
    v[k] = v[k] * c.b2 + c.one_minus_b2 * g[k] * g[k];
    const float denom = std::sqrt(v[k]) / c.sqrt_bias2 + c.eps;
    w[k] = w[k] - c.step_size * m[k] / denom;
  }
}
TOKENRL_VECTOR_KERNEL(AdamUpdate, AdamUpdateBody)

}  // namespace

CpuLearner::CpuLearner(const NetworkConfig& network, const LearnerConfig& config, const NetworkIo& io, int members)
    : network_(network),
      config_(config),
      io_(io),
      members_(members),
      obs_size_(static_cast<size_t>(io.channels) * io.height * io.width) {
  const auto seed = static_cast<uint64_t>(config.seed);
  // The torch backend's seeds: same weights, same noise streams.
  online_ = std::make_unique<Network>(network, io, seed, members, ParameterSeed(seed, -1, "noise.online"));
  target_ = std::make_unique<Network>(network, io, seed, members, ParameterSeed(seed, -1, "noise.target"));
  for (const auto& p : online_->params().params()) {
    adam_m_.emplace_back(p->value.size(), 0.0f);
    adam_v_.emplace_back(p->value.size(), 0.0f);
  }
  d_raw_.resize(static_cast<size_t>(members));
  SetBlasThreads(1);
  pool_ = std::make_unique<ThreadPool>(static_cast<int>(std::min<int64_t>(config.num_threads, members)));
  SyncTarget();
}

CpuLearner::~CpuLearner() = default;

StatusOr<std::unique_ptr<Learner>> CpuLearner::Create(const NetworkConfig& network, const LearnerConfig& config,
                                                      const NetworkIo& io, int members) {
  if (members < 1) return Status::InvalidArgument(fmt::format("members must be >= 1, got {}", members));
  TOKENRL_RETURN_IF_ERROR(network.head.Validate());
  TOKENRL_RETURN_IF_ERROR(ComputeShapes(network, io).status());
  if (config.device != "cpu") {
    return Status::InvalidArgument(fmt::format(
        "learner.device = \"{}\": the cpu backend runs on the CPU only; use learner.backend = torch (or auto) for a "
        "GPU",
        config.device));
  }
  if (config.num_threads < 1) {
    return Status::InvalidArgument(fmt::format("num_threads must be >= 1, got {}", config.num_threads));
  }
  TOKENRL_RETURN_IF_ERROR(RequestedVectorIsa().status());
  return std::unique_ptr<Learner>(new CpuLearner(network, config, io, members));
}

template <typename Fn>
void CpuLearner::RunMembers(Fn& fn) {
  // The engine's work runs with flush-to-zero and denormals-are-zero, and
  // the thread's previous mode is restored after it. Denormals do occur:
  // Adam's first moments of parameters whose gradients are exactly zero decay
  // by beta1 per update through the denormal range (12.5% of all m values in
  // the quick Breakout run); CPUs that handle denormal operands with
  // microcode assists (many Intel cores) slow down on them. Measured on an
  // AMD EPYC: same speed and the same metrics.csv, byte for byte, either way
  // (docs/networks.md).
  auto task = [&fn](int e) {
#if defined(__SSE__)
    const unsigned int mode = _mm_getcsr();
    _mm_setcsr(mode | kFlushDenormals);
    fn(e);
    _mm_setcsr(mode);
#else
    fn(e);
#endif
  };
  // A std::function holding a reference_wrapper never allocates.
  pool_->ParallelFor(members_, std::function<void(int)>(std::ref(task)));
}

// ---------------------------------------------------------------------------
// Acting.

template <typename Fn>
void CpuLearner::Infer(std::span<const uint8_t> observations, int n, bool noise, Fn&& fn) {
  TOKENRL_CHECK(n >= 1 && observations.size() == static_cast<size_t>(members_) * n * obs_size_,
                "observations: expected [{}, {}, {}, {}, {}], got {} values", members_, n, io_.channels, io_.height,
                io_.width, observations.size());
  online_->DrawNoise(kInferenceContext, noise);
  auto task = [&](int e) {
    const Pass pass{e, kInferenceContext, n};
    fn(e, online_->Forward(pass, observations.data() + static_cast<size_t>(e) * n * obs_size_));
  };
  RunMembers(task);
}

void CpuLearner::QValues(std::span<const uint8_t> observations, int n, bool noise, std::span<float> q_values) {
  const int actions = io_.num_actions;
  TOKENRL_CHECK(q_values.size() == static_cast<size_t>(members_) * n * actions, "q_values: wrong size");
  Infer(observations, n, noise, [&](int e, const float* q) {
    std::memcpy(q_values.data() + static_cast<size_t>(e) * n * actions, q,
                static_cast<size_t>(n) * actions * sizeof(float));
  });
}

void CpuLearner::GreedyActions(std::span<const uint8_t> observations, int n, bool noise, std::span<int32_t> actions) {
  const int num_actions = io_.num_actions;
  TOKENRL_CHECK(actions.size() == static_cast<size_t>(members_) * n, "actions: wrong size");
  Infer(observations, n, noise, [&](int e, const float* q) {
    for (int i = 0; i < n; ++i) actions[static_cast<size_t>(e) * n + i] = ArgMax(q + i * num_actions, num_actions);
  });
}

// ---------------------------------------------------------------------------
// Update.

Status CpuLearner::Update(const UpdateBatch& batch, UpdateResult& result) {
  // Validation first: nothing changes on a bad batch.
  TOKENRL_RETURN_IF_ERROR(ValidateUpdateBatch(batch, members_, io_));
  const int b = batch.batch_size;
  const size_t rows = static_cast<size_t>(members_) * b;

  // Noise for every member, serially, in the torch backend's order.
  online_->DrawNoise(kTrainContext, true);
  target_->DrawNoise(kTrainContext, true);
  if (config_.double_q) online_->DrawNoise(kInferenceContext, true);

  ++adam_step_;
  result.per_sample_loss.resize(rows);
  result.loss.resize(static_cast<size_t>(members_));
  result.q_mean.resize(static_cast<size_t>(members_));
  auto task = [&](int e) {
    UpdateMember(e, batch, result.per_sample_loss.data() + static_cast<size_t>(e) * b, &result.loss[e],
                 &result.q_mean[e]);
  };
  RunMembers(task);
  return Status::Ok();
}

void CpuLearner::UpdateMember(int e, const UpdateBatch& batch, float* per_sample, float* loss, float* q_mean) {
  const int b = batch.batch_size, actions = io_.num_actions, atoms = online_->atoms();
  const size_t offset = static_cast<size_t>(e) * b;
  const uint8_t* obs = batch.observations.data() + offset * obs_size_;
  const uint8_t* next_obs = batch.next_observations.data() + offset * obs_size_;
  const Pass train{e, kTrainContext, b};

  // Bootstrap: the target network's Q (and distributions), the online
  // network's Q for double Q (its own context: the training pass's
  // activations must survive for the backward pass).
  const float* target_q = target_->Forward(train, next_obs);
  const float* target_p = target_->probabilities(train);
  const float* select_q = config_.double_q ? online_->Forward({e, kInferenceContext, b}, next_obs) : target_q;
  const float* q = online_->Forward(train, obs);
  const float* logits = online_->raw_output(train);

  std::vector<float>& d_raw = d_raw_[e];
  const size_t raw_size = static_cast<size_t>(b) * actions * atoms;
  if (d_raw.size() < raw_size + 2 * static_cast<size_t>(atoms)) d_raw.resize(raw_size + 2 * atoms);
  std::fill(d_raw.begin(), d_raw.begin() + static_cast<std::ptrdiff_t>(raw_size), 0.0f);
  float* m = d_raw.data() + raw_size;  // Projected target distribution [atoms].
  float* p = m + atoms;                // Online softmax [atoms].
  const std::vector<float>& z = online_->support();
  const float inv_b = 1.0f / static_cast<float>(b);

  float weighted_sum = 0.0f, q_sum = 0.0f;
  for (int i = 0; i < b; ++i) {
    const int a = batch.actions[offset + i];
    const int next_a = ArgMax(select_q + i * actions, actions);
    const float w = batch.weights.empty() ? 1.0f : batch.weights[offset + i];
    const float g = batch.returns[offset + i], discount = batch.discounts[offset + i];
    const float q_sa = q[i * actions + a];
    q_sum += q_sa;
    float l = 0.0f;
    if (atoms == 1) {
      const float d = (g + discount * target_q[i * actions + next_a]) - q_sa;
      float dl_dd;  // d loss / d d
      if (config_.td_loss == TdLoss::kMse) {
        l = d * d;
        dl_dd = 2.0f * d;
      } else {
        const float delta = static_cast<float>(config_.huber_delta);
        const float abs = std::fabs(d), quad = std::min(abs, delta);
        l = 0.5f * quad * quad + delta * (abs - quad);
        dl_dd = abs <= delta ? d : (d > 0.0f ? delta : -delta);
      }
      d_raw[static_cast<size_t>(i) * actions + a] = -dl_dd * w * inv_b;
    } else {
      // Project the target distribution of next_a onto the support (Eq. 7).
      const float* pt = target_p + (static_cast<size_t>(i) * actions + next_a) * atoms;
      const float v_min = z[0], v_max = z[atoms - 1];
      const float dz = (v_max - v_min) / static_cast<float>(atoms - 1);
      std::fill(m, m + atoms, 0.0f);
      for (int j = 0; j < atoms; ++j) {
        const float tz = std::min(std::max(g + discount * z[j], v_min), v_max);
        for (int k = 0; k < atoms; ++k) {
          const float share = std::clamp(1.0f - std::fabs(tz - z[k]) / dz, 0.0f, 1.0f);
          m[k] += share * pt[j];
        }
      }
      // Cross-entropy with log_softmax(logits[i, a]).
      const float* l_row = logits + (static_cast<size_t>(i) * actions + a) * atoms;
      const float max = *std::max_element(l_row, l_row + atoms);
      float sum = 0.0f, mass = 0.0f;
      for (int k = 0; k < atoms; ++k) sum += std::exp(l_row[k] - max);
      const float log_sum = std::log(sum);
      for (int k = 0; k < atoms; ++k) {
        const float log_p = l_row[k] - max - log_sum;
        p[k] = std::exp(log_p);
        l -= m[k] * log_p;
        mass += m[k];
      }
      float* d_row = d_raw.data() + (static_cast<size_t>(i) * actions + a) * atoms;
      for (int k = 0; k < atoms; ++k) d_row[k] = (p[k] * mass - m[k]) * w * inv_b;
    }
    per_sample[i] = l;
    weighted_sum += w * l;
  }
  *loss = weighted_sum * inv_b + online_->aux_loss(train);
  *q_mean = q_sum * inv_b;

  online_->Backward(train, d_raw.data());
  const double t = static_cast<double>(adam_step_);
  const double bias1 = 1.0 - std::pow(config_.adam_beta1, t), bias2 = 1.0 - std::pow(config_.adam_beta2, t);
  AdamMember(e, static_cast<float>(config_.learning_rate / bias1), static_cast<float>(std::sqrt(bias2)));
}

void CpuLearner::AdamMember(int e, float step_size, float sqrt_bias2) {
  const AdamConstants c{static_cast<float>(config_.adam_beta1),       static_cast<float>(config_.adam_beta2),
                        static_cast<float>(1.0 - config_.adam_beta1), static_cast<float>(1.0 - config_.adam_beta2),
                        static_cast<float>(config_.adam_epsilon),     step_size,
                        sqrt_bias2};
  const auto& params = online_->params().params();
  for (size_t i = 0; i < params.size(); ++i) {
    Param& param = *params[i];
    const int64_t n = param.numel;
    AdamUpdate(param.w(e), adam_m_[i].data() + e * n, adam_v_[i].data() + e * n, param.g(e), n, c);
  }
}

void CpuLearner::SyncTarget() {
  const auto& from = online_->params().params();
  const auto& to = target_->params().params();
  for (size_t i = 0; i < from.size(); ++i) to[i]->value = from[i]->value;
}

// ---------------------------------------------------------------------------
// Parameter access.

std::vector<ParameterInfo> CpuLearner::Parameters() const {
  std::vector<ParameterInfo> infos;
  for (const auto& p : online_->params().params()) infos.push_back({p->name, p->shape});
  return infos;
}

Param* CpuLearner::FindParameter(const std::string& name, int member, Status& status) const {
  Param* p = online_->params().Find(name);
  if (p == nullptr) {
    status = Status::NotFound(fmt::format("no parameter named \"{}\"", name));
  } else if (member < 0 || member >= members_) {
    status = Status::InvalidArgument(fmt::format("member {} is outside [0, {})", member, members_));
    p = nullptr;
  }
  return p;
}

Status CpuLearner::GetParameter(const std::string& name, int member, std::span<float> out) const {
  Status status;
  const Param* p = FindParameter(name, member, status);
  if (p == nullptr) return status;
  if (out.size() != static_cast<size_t>(p->numel)) {
    return Status::InvalidArgument(
        fmt::format("parameter \"{}\" has {} values per member, buffer has {}", name, p->numel, out.size()));
  }
  std::memcpy(out.data(), p->w(member), out.size() * sizeof(float));
  return Status::Ok();
}

Status CpuLearner::SetParameter(const std::string& name, int member, std::span<const float> values) {
  Status status;
  Param* p = FindParameter(name, member, status);
  if (p == nullptr) return status;
  if (values.size() != static_cast<size_t>(p->numel)) {
    return Status::InvalidArgument(
        fmt::format("parameter \"{}\" has {} values per member, got {}", name, p->numel, values.size()));
  }
  std::memcpy(p->w(member), values.data(), values.size() * sizeof(float));
  return Status::Ok();
}

Status CpuLearner::ResetOptimizerState(const std::string& name, int member) {
  Status status;
  const Param* p = FindParameter(name, member, status);
  if (p == nullptr) return status;
  return ResetOptimizerStateRange(name, member, 0, p->numel);
}

Status CpuLearner::ResetOptimizerStateRange(const std::string& name, int member, int64_t offset, int64_t count) {
  Status status;
  const Param* p = FindParameter(name, member, status);
  if (p == nullptr) return status;
  if (offset < 0 || count < 0 || offset + count > p->numel) {
    return Status::InvalidArgument(
        fmt::format("range [{}, {}) is outside parameter \"{}\" ({} values)", offset, offset + count, name, p->numel));
  }
  const auto& params = online_->params().params();
  const size_t i = static_cast<size_t>(
      std::find_if(params.begin(), params.end(), [&](const auto& q) { return q.get() == p; }) - params.begin());
  const size_t start = static_cast<size_t>(member * p->numel + offset);
  std::fill_n(adam_m_[i].begin() + static_cast<std::ptrdiff_t>(start), count, 0.0f);
  std::fill_n(adam_v_[i].begin() + static_cast<std::ptrdiff_t>(start), count, 0.0f);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Diagnostics (definitions in learner.h; same computations as the torch
// backend's, in double).

namespace {

std::vector<double> DormantOf(const std::vector<double>& unit_means, const std::vector<double>& taus) {
  std::vector<double> out;
  for (double tau : taus) out.push_back(DormantFraction(unit_means, tau));
  return out;
}

// Singular values of x [rows, cols] (LAPACK dgesvd).
std::vector<double> SingularValues(std::vector<double> x, int rows, int cols) {
  // Row-major [rows, cols] is column-major [cols, rows]: same singular values.
  int m = cols, n = rows, lda = cols, ldu = 1, ldvt = 1, info = 0, lwork = -1;
  std::vector<double> s(static_cast<size_t>(std::min(m, n)));
  double query = 0.0, dummy = 0.0;
  dgesvd_("N", "N", &m, &n, x.data(), &lda, s.data(), &dummy, &ldu, &dummy, &ldvt, &query, &lwork, &info);
  lwork = static_cast<int>(query);
  std::vector<double> work(static_cast<size_t>(std::max(lwork, 1)));
  dgesvd_("N", "N", &m, &n, x.data(), &lda, s.data(), &dummy, &ldu, &dummy, &ldvt, work.data(), &lwork, &info);
  if (info != 0) std::fill(s.begin(), s.end(), std::numeric_limits<double>::quiet_NaN());
  return s;
}

// Mean cosine similarity over pairs of distinct columns of x [rows, k]; NaN
// when k < 2; zero columns have similarity 0 with everything.
double MeanColumnCosine(const std::vector<double>& x, int64_t rows, int64_t k) {
  if (k < 2) return std::numeric_limits<double>::quiet_NaN();
  std::vector<double> norms(static_cast<size_t>(k), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < k; ++c) norms[c] += x[r * k + c] * x[r * k + c];
  }
  for (double& n : norms) n = std::max(std::sqrt(n), 1e-12);
  double off_diagonal = 0.0;
  for (int64_t c1 = 0; c1 < k; ++c1) {
    for (int64_t c2 = 0; c2 < k; ++c2) {
      if (c1 == c2) continue;
      double dot = 0.0;
      for (int64_t r = 0; r < rows; ++r) dot += x[r * k + c1] * x[r * k + c2];
      off_diagonal += dot / (norms[c1] * norms[c2]);
    }
  }
  return off_diagonal / static_cast<double>(k * (k - 1));
}

// Mean entropy (nats) over the rows of w [rows, k] with positive mass, each
// renormalized; 0 when no row has mass.
double MeanRowEntropy(const std::vector<double>& w, int64_t rows, int64_t k) {
  double total = 0.0;
  int64_t live = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double mass = 0.0;
    for (int64_t c = 0; c < k; ++c) mass += w[r * k + c];
    if (!(mass > 0.0)) continue;
    ++live;
    double h = 0.0;
    for (int64_t c = 0; c < k; ++c) {
      const double q = w[r * k + c] / mass;
      h -= q * std::log(std::max(q, 1e-300));
    }
    total += h;
  }
  return live == 0 ? 0.0 : total / static_cast<double>(live);
}

}  // namespace

StatusOr<std::vector<MemberDiagnostics>> CpuLearner::Diagnostics(std::span<const uint8_t> observations, int n,
                                                                 const std::vector<double>& taus) {
  if (n < 1 || observations.size() != static_cast<size_t>(members_) * n * obs_size_) {
    return Status::InvalidArgument(fmt::format("diagnostics: {} observation values for n = {}", observations.size(), n));
  }
  Infer(observations, n, /*noise=*/false, [](int, const float*) {});
  const MoeLayer* moe = online_->moe();
  std::vector<MemberDiagnostics> result(static_cast<size_t>(members_));
  for (int e = 0; e < members_; ++e) {
    const Pass pass{e, kInferenceContext, n};
    MemberDiagnostics& d = result[e];
    d.taus = taus;
    const int features = online_->features_size();
    const float* f = online_->features(pass);
    d.penultimate_dormant =
        DormantOf(UnitMeanAbs(std::span<const float>(f, static_cast<size_t>(n) * features), n, features), taus);
    d.feature_srank = static_cast<double>(
        SRank(SingularValues(std::vector<double>(f, f + static_cast<size_t>(n) * features), n, features), 0.01));
    double sq = 0.0;
    for (const auto& p : online_->params().params()) {
      for (int64_t k = 0; k < p->numel; ++k) sq += static_cast<double>(p->w(e)[k]) * p->w(e)[k];
    }
    d.parameter_norm = std::sqrt(sq);
    if (moe == nullptr) continue;
    const int64_t tokens = moe->tokens(), experts = moe->experts(), slots = moe->slots_per_expert();
    const int64_t hidden = moe->expert_hidden_units(), ns = experts * slots;
    // Expert j's hidden units over its B p slot rows ([B, n, p, H] layout).
    const float* h = moe->expert_hidden(pass);
    for (int64_t j = 0; j < experts; ++j) {
      std::vector<double> means(static_cast<size_t>(hidden), 0.0);
      for (int s = 0; s < n; ++s) {
        for (int64_t k = 0; k < slots; ++k) {
          const float* row = h + ((s * experts + j) * slots + k) * hidden;
          for (int64_t u = 0; u < hidden; ++u) means[u] += std::fabs(static_cast<double>(row[u]));
        }
      }
      for (double& v : means) v /= static_cast<double>(n * slots);
      d.expert_dormant.push_back(DormantOf(means, taus));
    }
    // Routing statistics from combine / dispatch [B, T, n, p].
    const int64_t rows = n * tokens;
    std::vector<double> c(moe->combine(pass), moe->combine(pass) + rows * ns);
    std::vector<double> w(moe->dispatch(pass), moe->dispatch(pass) + rows * ns);
    std::vector<double> per_expert(static_cast<size_t>(experts), 0.0), by_expert(rows * experts, 0.0);
    double total = 0.0;
    int64_t dropped = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double row_mass = 0.0;
      for (int64_t j = 0; j < experts; ++j) {
        for (int64_t k = 0; k < slots; ++k) {
          const double v = c[r * ns + j * slots + k];
          per_expert[j] += v;
          by_expert[r * experts + j] += v;
          row_mass += v;
        }
      }
      total += row_mass;
      dropped += row_mass <= 0.0 ? 1 : 0;
    }
    for (double& v : per_expert) v /= std::max(total, 1e-300);
    d.combine_share = per_expert;
    d.combine_entropy = MeanRowEntropy(c, rows, ns);
    d.tokens_dropped = static_cast<double>(dropped) / static_cast<double>(rows);
    // Dispatch rows: one per (sample, slot), over tokens.
    std::vector<double> slot_rows(static_cast<size_t>(n * ns * tokens));
    for (int s = 0; s < n; ++s) {
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t q = 0; q < ns; ++q) slot_rows[(s * ns + q) * tokens + t] = w[(s * tokens + t) * ns + q];
      }
    }
    d.dispatch_entropy = MeanRowEntropy(slot_rows, n * ns, tokens);
    d.combine_similarity = MeanColumnCosine(by_expert, rows, experts);
    d.slot_similarity = MeanColumnCosine(w, rows, ns);
    if (moe->sparse()) {
      d.expert_load.assign(static_cast<size_t>(experts), 0.0);
      for (int s = 0; s < n; ++s) {
        for (int64_t q = 0; q < ns; ++q) {
          double mass = 0.0;
          for (int64_t t = 0; t < tokens; ++t) mass += w[(s * tokens + t) * ns + q];
          if (mass > 0.0) d.expert_load[q / slots] += 1.0;
        }
      }
      for (double& v : d.expert_load) v /= static_cast<double>(n * slots);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------
// Save / Load. Layout: magic, version, fingerprint, Adam step, tensor count,
// then every tensor (online and target parameters, Adam m and v) as name,
// shape [E, ...] and raw float32 bytes, then the two noise generator states.

namespace {

struct StateTensor {
  std::string name;
  std::vector<int64_t> shape;  // [E, ...]
  std::vector<float>* values;
};

std::vector<StateTensor> StateTensors(Network& online, Network& target, std::vector<std::vector<float>>& m,
                                      std::vector<std::vector<float>>& v, int members) {
  std::vector<StateTensor> out;
  auto shape_of = [&](const Param& p) {
    std::vector<int64_t> shape{members};
    shape.insert(shape.end(), p.shape.begin(), p.shape.end());
    return shape;
  };
  for (auto* net : {&online, &target}) {
    const std::string prefix = net == &online ? "online/" : "target/";
    for (const auto& p : net->params().params()) out.push_back({prefix + p->name, shape_of(*p), &p->value});
  }
  const auto& params = online.params().params();
  for (size_t i = 0; i < params.size(); ++i) out.push_back({"adam_m/" + params[i]->name, shape_of(*params[i]), &m[i]});
  for (size_t i = 0; i < params.size(); ++i) out.push_back({"adam_v/" + params[i]->name, shape_of(*params[i]), &v[i]});
  return out;
}

}  // namespace

void CpuLearner::Save(ByteWriter& writer) const {
  auto* self = const_cast<CpuLearner*>(this);  // StateTensors hands out mutable pointers; nothing changes.
  writer.WriteString(kMagic);
  writer.Write<uint32_t>(kFormatVersion);
  writer.WriteString(Fingerprint(network_, io_, members_, config_.seed));
  writer.Write<int64_t>(adam_step_);
  const std::vector<StateTensor> tensors =
      StateTensors(*self->online_, *self->target_, self->adam_m_, self->adam_v_, members_);
  writer.Write<uint64_t>(tensors.size());
  for (const StateTensor& t : tensors) {
    writer.WriteString(t.name);
    writer.WriteVector(t.shape);
    writer.WriteString(std::string_view(reinterpret_cast<const char*>(t.values->data()),
                                        t.values->size() * sizeof(float)));
  }
  writer.WriteString(online_->noise().State());
  writer.WriteString(target_->noise().State());
}

Status CpuLearner::Load(ByteReader& reader) {
  std::string magic, fingerprint;
  uint32_t version = 0;
  int64_t step = 0;
  uint64_t count = 0;
  if (!reader.ReadString(magic) || magic != kMagic) {
    return Status::Corruption(
        magic == "tokenrl.torch_learner"
            ? "cpu learner state: this checkpoint was written by the torch backend; resume with learner.backend = torch"
            : "cpu learner state: not a cpu learner checkpoint");
  }
  if (!reader.Read(version) || version != kFormatVersion) {
    return Status::Corruption(fmt::format("cpu learner state: unsupported format version {}", version));
  }
  if (!reader.ReadString(fingerprint) || !reader.Read(step) || !reader.Read(count)) {
    return Status::Corruption("cpu learner state: truncated header");
  }
  if (fingerprint != Fingerprint(network_, io_, members_, config_.seed)) {
    return Status::Corruption(fmt::format(
        "cpu learner state: saved for a different network, observation shape or member count:\n{}", fingerprint));
  }
  TOKENRL_RETURN_IF_ERROR(ValidateLearnerState("cpu", step));
  const std::vector<StateTensor> tensors = StateTensors(*online_, *target_, adam_m_, adam_v_, members_);
  if (count != tensors.size()) {
    return Status::Corruption(fmt::format("cpu learner state: {} tensors, this learner has {}", count, tensors.size()));
  }
  // Read and validate everything before changing anything.
  std::vector<std::string> loaded(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    std::string name;
    std::vector<int64_t> shape;
    if (!reader.ReadString(name) || !reader.ReadVector(shape, 64) || !reader.ReadString(loaded[i])) {
      return Status::Corruption("cpu learner state: truncated tensor record");
    }
    if (name != tensors[i].name || shape != tensors[i].shape ||
        loaded[i].size() != tensors[i].values->size() * sizeof(float)) {
      return Status::Corruption(fmt::format(
          "cpu learner state: tensor \"{}\" {} does not match this network's \"{}\" {} (different network config?)",
          name, fmt::join(shape, "x"), tensors[i].name, fmt::join(tensors[i].shape, "x")));
    }
    std::vector<float> values(tensors[i].values->size());
    std::memcpy(values.data(), loaded[i].data(), loaded[i].size());
    TOKENRL_RETURN_IF_ERROR(ValidateLearnerTensor("cpu", name, values));
  }
  std::string online_noise, target_noise;
  if (!reader.ReadString(online_noise) || !reader.ReadString(target_noise)) {
    return Status::Corruption("cpu learner state: truncated noise state");
  }
  NoiseStream probe(0);
  if (!probe.SetState(online_noise) || !probe.SetState(target_noise)) {
    return Status::Corruption("cpu learner state: malformed noise generator state");
  }
  TOKENRL_RETURN_IF_ERROR(reader.Finish("cpu learner state"));
  for (size_t i = 0; i < tensors.size(); ++i) std::memcpy(tensors[i].values->data(), loaded[i].data(), loaded[i].size());
  online_->noise().SetState(online_noise);
  target_->noise().SetState(target_noise);
  adam_step_ = step;
  return Status::Ok();
}

}  // namespace tokenrl::nn::cpu
