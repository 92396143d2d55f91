#include "tokenrl/nn/cpu/moe_layer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "tokenrl/core/status.h"
#include "tokenrl/nn/cpu/blas.h"
#include "tokenrl/nn/cpu/vector_isa.h"

namespace tokenrl::nn::cpu {
namespace {

InitSpec LecunNormal(double fan_in) { return {.scheme = InitScheme::kLecunNormal, .fan_in = fan_in}; }
InitSpec Xavier(double fan_in, double fan_out) {
  return {.scheme = InitScheme::kXavierUniform, .fan_in = fan_in, .fan_out = fan_out};
}
InitSpec Constant(double value) { return {.scheme = InitScheme::kConstant, .value = value}; }

// The eps of Dopamine's v / (||v|| + eps), as torch adds it to a float tensor.
constexpr float kNormEps = 1e-6f;

// Scratch slots (per context and member).
enum Slot : int {
  kOut = 0,       // y [B, T, D]
  kDispatch,      // Dw [B, T, S]
  kCombine,       // Cw [B, T, S] (SoftMoE: first the logits)
  kSlotIn,        // slot inputs, expert-major [n, B p, D]
  kHidden,        // expert hidden (post-ReLU), expert-major [n, B p, H]
  kSlotOut,       // slot outputs, sample-major [B, S, D]
  kRouter,        // SoftMoE normalize: X^ [B T, D] + ||x|| [B T]; sparse: probs [B T, n]
  kPhi,           // SoftMoE: phi^ [D, S] + ||phi_s|| [S] (normalize)
  kNoisyWeights,  // effective noisy first layer: W [n, D, H] + b [n, H]
  kTemp,          // forward temp [B, S, D]
  kGrad,          // backward temps
  kDx,            // d_in [B, T, D]
  kDHidden,       // d hidden [n, B p, H]
  kSmall,         // per-column softmax statistics [2 S] etc.
};


// exp(x) for x <= 0 within about 2 ulp (Cephes' expf: range reduction by ln 2
// and a degree-6 polynomial), branch-free so that loops of it vectorize;
// x < -87.3 gives exp(-87.3) ~ 1e-38 instead of a denormal or 0.
inline float ExpNonPositive(float x) {
  // Clamp to -87.3 on the bit pattern (for x <= 0, unsigned order is the
  // order of magnitudes); a float compare here would stop GCC vectorizing.
  x = std::bit_cast<float>(std::min(std::bit_cast<uint32_t>(x), std::bit_cast<uint32_t>(-87.3f)));
  const float t = x * 1.44269504088896341f;
  // round(t) (|t| < 2^22) with the 1.5 * 2^23 trick.
  const float n = (t + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * (r * r) + r + 1.0f;
  return y * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

// Reductions with 8 partial results, so that they vectorize (and round no
// worse than a sequential loop).
float Sum(const float* a, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}
float Max(const float* a, int64_t n) {
  float acc[8];
  for (int k = 0; k < 8; ++k) acc[k] = a[0];
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] = std::max(acc[k], a[i + k]);
  }
  float m = a[0];
  for (; i < n; ++i) m = std::max(m, a[i]);
  for (int k = 0; k < 8; ++k) m = std::max(m, acc[k]);
  return m;
}

// Softmax of each row of x [rows, cols], in place.
void RowSoftmax(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    const float max = Max(row, cols);
    for (int64_t c = 0; c < cols; ++c) row[c] = ExpNonPositive(row[c] - max);
    const float inv = 1.0f / Sum(row, cols);
    for (int64_t c = 0; c < cols; ++c) row[c] *= inv;
  }
}

// Both softmaxes of one sample's logits l [rows, cols] (given in cw): dw =
// softmax over each column, cw = softmax over each row. One exp(l - g), g the
// overall max, serves both (exp(l - g) = exp(l - max) exp(max - g), equal up
// to rounding) when every row and column sum of it is at least e^-60 (then
// its max is within 60 + ln(count) of g, and the entries that the clamp of
// ExpNonPositive touches are below e^-27 of their sum); otherwise two exps,
// as torch. Reductions are SIMD (OpenMP simd: lane-wise partial sums).
// stats: 2 cols + rows floats.
constexpr float kSharedExpMinSum = 8.7565e-27f;  // e^-60
[[gnu::always_inline]] inline void SoftmaxPairBody(float* __restrict cw, int64_t rows, int64_t cols,
                                                   float* __restrict dw, float* __restrict stats) {
  float* __restrict cmax = stats;
  float* __restrict csum = stats + cols;
  float* __restrict rsum = stats + 2 * cols;
  // The overall max (a flat read-only pass; the column maxima are needed
  // only when the shared exp is not taken).
  const int64_t count = rows * cols;
  float g = cw[0];
#pragma omp simd reduction(max : g)
  for (int64_t i = 0; i < count; ++i) g = g > cw[i] ? g : cw[i];
  // One exp over the whole sample (a flat loop: no per-row scalar tails).
  for (int64_t i = 0; i < count; ++i) dw[i] = ExpNonPositive(cw[i] - g);
  std::fill(csum, csum + cols, 0.0f);
  float low = 1.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* __restrict e = dw + r * cols;
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t c = 0; c < cols; ++c) {
      csum[c] += e[c];
      acc += e[c];
    }
    rsum[r] = acc;
    low = std::min(low, acc);
  }
  for (int64_t c = 0; c < cols; ++c) low = std::min(low, csum[c]);
  if (low >= kSharedExpMinSum) {
    for (int64_t c = 0; c < cols; ++c) csum[c] = 1.0f / csum[c];
    for (int64_t r = 0; r < rows; ++r) {
      float* __restrict row = cw + r * cols;
      float* __restrict out = dw + r * cols;
      const float inv = 1.0f / rsum[r];
      for (int64_t c = 0; c < cols; ++c) {
        row[c] = out[c] * inv;
        out[c] *= csum[c];
      }
    }
    return;
  }
  std::copy(cw, cw + cols, cmax);
  for (int64_t r = 1; r < rows; ++r) {
    const float* __restrict row = cw + r * cols;
    for (int64_t c = 0; c < cols; ++c) cmax[c] = cmax[c] > row[c] ? cmax[c] : row[c];
  }
  std::fill(csum, csum + cols, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const float* __restrict row = cw + r * cols;
    float* __restrict out = dw + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      out[c] = ExpNonPositive(row[c] - cmax[c]);
      csum[c] += out[c];
    }
  }
  for (int64_t c = 0; c < cols; ++c) csum[c] = 1.0f / csum[c];
  for (int64_t r = 0; r < rows; ++r) {
    float* __restrict row = cw + r * cols;
    float* __restrict out = dw + r * cols;
    for (int64_t c = 0; c < cols; ++c) out[c] *= csum[c];
    float m = row[0];
#pragma omp simd reduction(max : m)
    for (int64_t c = 0; c < cols; ++c) m = m > row[c] ? m : row[c];
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t c = 0; c < cols; ++c) {
      row[c] = ExpNonPositive(row[c] - m);
      acc += row[c];
    }
    const float inv = 1.0f / acc;
    for (int64_t c = 0; c < cols; ++c) row[c] *= inv;
  }
}
TOKENRL_VECTOR_KERNEL(SoftmaxPair, SoftmaxPairBody)

// Backward of SoftmaxPair for one sample: from dDw = gd and dCw = gc, writes
// d logits = Cw (dCw - <dCw, Cw>_row) + Dw (dDw - <dDw, Dw>_column) into gc.
// stats: cols floats.
[[gnu::always_inline]] inline void SoftmaxPairBackwardBody(const float* __restrict dw, const float* __restrict cw,
                                                           const float* __restrict gd, float* __restrict gc,
                                                           int64_t rows, int64_t cols, float* __restrict stats) {
  std::fill(stats, stats + cols, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) stats[c] += gd[r * cols + c] * dw[r * cols + c];
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float* __restrict w = dw + r * cols;
    const float* __restrict cr = cw + r * cols;
    const float* __restrict d = gd + r * cols;
    float* __restrict g = gc + r * cols;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < cols; ++c) dot += g[c] * cr[c];
    for (int64_t c = 0; c < cols; ++c) g[c] = cr[c] * (g[c] - dot) + w[c] * (d[c] - stats[c]);
  }
}
TOKENRL_VECTOR_KERNEL(SoftmaxPairBackward, SoftmaxPairBackwardBody)

// rows of x [rows, cols] = max(x + bias, 0).
[[gnu::always_inline]] inline void BiasReluBody(float* __restrict x, const float* __restrict bias, int64_t rows,
                                                int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* __restrict row = x + r * cols;
    for (int64_t o = 0; o < cols; ++o) row[o] = std::max(row[o] + bias[o], 0.0f);
  }
}
TOKENRL_VECTOR_KERNEL(BiasRelu, BiasReluBody)

// g = h > 0 ? g : 0, and column sums of the result into sums [cols].
[[gnu::always_inline]] inline void ReluMaskColumnSumsBody(float* __restrict g, const float* __restrict h, int64_t rows,
                                                          int64_t cols, float* __restrict sums) {
  const int64_t count = rows * cols;
  for (int64_t i = 0; i < count; ++i) g[i] = h[i] > 0.0f ? g[i] : 0.0f;
  ColumnSumsBody(g, rows, cols, sums);
}
TOKENRL_VECTOR_KERNEL(ReluMaskColumnSums, ReluMaskColumnSumsBody)

// y += a x (length n).
[[gnu::always_inline]] inline void AddScaledBody(float a, const float* __restrict x, int64_t n, float* __restrict y) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
TOKENRL_VECTOR_KERNEL(AddScaled, AddScaledBody)

// [B, n, p, R] (sample-major) <-> [n, B, p, R] (expert-major).
void SampleToExpert(const float* in, int64_t batch, int64_t experts, int64_t block, float* out) {
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = 0; j < experts; ++j) {
      std::memcpy(out + (j * batch + b) * block, in + (b * experts + j) * block, static_cast<size_t>(block) * 4);
    }
  }
}
void ExpertToSample(const float* in, int64_t batch, int64_t experts, int64_t block, float* out) {
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = 0; j < experts; ++j) {
      std::memcpy(out + (b * experts + j) * block, in + (j * batch + b) * block, static_cast<size_t>(block) * 4);
    }
  }
}

}  // namespace

MoeLayer::MoeLayer(const NetworkConfig& config, const NetworkShapes& shapes, const Scope& scope)
    : Layer(scope.members()),
      type_(config.mixer.type),
      normalize_(config.mixer.normalize),
      noisy_(config.head.noisy),
      balance_weight_(config.mixer.load_balancing_loss_weight),
      tokens_(shapes.num_tokens),
      dim_(shapes.token_dim),
      experts_(config.mixer.num_experts),
      slots_(shapes.slots_per_expert),
      hidden_(config.mixer.expert_hidden_units) {
  TOKENRL_CHECK(type_ == MixerType::kSoftMoe || type_ == MixerType::kTokenChoice || type_ == MixerType::kExpertChoice,
                "MoeLayer: not a MoE mixer type");
  TOKENRL_CHECK(slots_ > 0 && tokens_ > 0 && dim_ > 0, "MoeLayer: bad shapes (tokens {}, dim {}, slots {})", tokens_,
                dim_, slots_);
  const int64_t n = experts_, d = dim_, h = hidden_;
  if (type_ == MixerType::kSoftMoe) {
    // lecun_normal on (D, n, p): JAX's fan_in is n D (as moe.cc).
    phi_ = scope.Make("phi", {d, n, slots_}, LecunNormal(static_cast<double>(n * d)));
    if (normalize_) scale_ = scope.Make("scale", {1}, Constant(1.0));
  } else {
    router_ = scope.Make("router.weight", {d, n}, LecunNormal(static_cast<double>(d)));
  }
  const Scope hidden_scope = scope.Child("experts").Child("hidden");
  if (!noisy_) {
    w1_ = hidden_scope.Make("weight", {n, d, h}, Xavier(static_cast<double>(d), static_cast<double>(h)));
    b1_ = hidden_scope.Make("bias", {n, 1, h}, Constant(0.0));
  } else {
    const double bound = 1.0 / std::sqrt(static_cast<double>(d));
    const InitSpec mu{.scheme = InitScheme::kUniform, .value = bound};
    const InitSpec sigma = Constant(config.head.noisy_sigma_scale * bound);
    mu_w1_ = hidden_scope.Make("mu_weight", {n, d, h}, mu);
    sigma_w1_ = hidden_scope.Make("sigma_weight", {n, d, h}, sigma);
    mu_b1_ = hidden_scope.Make("mu_bias", {n, 1, h}, mu);
    sigma_b1_ = hidden_scope.Make("sigma_bias", {n, 1, h}, sigma);
    for (int c = 0; c < kContexts; ++c) {
      eps_in_[c].assign(static_cast<size_t>(members() * n * d), 0.0f);
      eps_out_[c].assign(static_cast<size_t>(members() * n * h), 0.0f);
    }
  }
  const Scope output_scope = scope.Child("experts").Child("output");
  w2_ = output_scope.Make("weight", {n, h, d}, Xavier(static_cast<double>(h), static_cast<double>(d)));
  b2_ = output_scope.Make("bias", {n, 1, d}, Constant(0.0));
  states_.resize(static_cast<size_t>(kContexts * members()));
  for (State& s : states_) {
    s.index.resize(static_cast<size_t>(std::max(tokens_, experts_)));
    s.keys.resize(static_cast<size_t>(tokens_));
  }
}

void MoeLayer::DrawNoise(NoiseStream& noise, int context, bool enabled) {
  if (!noisy_) return;
  noise_enabled_[context] = enabled;
  if (!enabled) return;
  // torch: Normal({E, n, D, 1}) then Normal({E, n, 1, H}).
  noise.FactorizedNoise(eps_in_[context].data(), members() * experts_ * dim_);
  noise.FactorizedNoise(eps_out_[context].data(), members() * experts_ * hidden_);
}

float MoeLayer::aux_loss(const Pass& pass) const { return state(pass).aux; }
const float* MoeLayer::dispatch(const Pass& pass) const { return state(pass).dispatch; }
const float* MoeLayer::combine(const Pass& pass) const { return state(pass).combine; }

const float* MoeLayer::expert_hidden(const Pass& pass) const {
  State& s = states_[static_cast<size_t>(pass.context) * members() + pass.member];
  if (s.hidden == nullptr) return nullptr;
  if (experts_ == 1) return s.hidden;  // Both layouts coincide.
  if (!s.hidden_view_valid) {
    const size_t count = static_cast<size_t>(s.batch * experts_ * slots_ * hidden_);
    if (s.hidden_view.size() < count) s.hidden_view.resize(count);
    ExpertToSample(s.hidden, s.batch, experts_, slots_ * hidden_, s.hidden_view.data());
    s.hidden_view_valid = true;
  }
  return s.hidden_view.data();
}

// ---------------------------------------------------------------------------
// Routers.

void MoeLayer::SoftRoute(const Pass& pass, const float* x, float* dw, float* cw) {
  const int64_t batch = pass.batch, t = tokens_, d = dim_, slots = experts_ * slots_, rows = batch * t;
  const float* xn = x;
  const float* phin = phi_->w(pass.member);
  if (normalize_) {
    float* xs = Scratch(pass, kRouter, static_cast<size_t>(rows * (d + 1)));
    float* norms = xs + rows * d;
    for (int64_t r = 0; r < rows; ++r) {
      const float* v = x + r * d;
      float sq = 0.0f;
      for (int64_t k = 0; k < d; ++k) sq += v[k] * v[k];
      norms[r] = std::sqrt(sq);
      const float denom = norms[r] + kNormEps;
      for (int64_t k = 0; k < d; ++k) xs[r * d + k] = v[k] / denom;
    }
    float* ps = Scratch(pass, kPhi, static_cast<size_t>(d * slots + slots));
    float* pnorms = ps + d * slots;
    const float* phi = phi_->w(pass.member);
    const float scale = scale_->w(pass.member)[0];
    std::fill(pnorms, pnorms + slots, 0.0f);
    for (int64_t k = 0; k < d; ++k) {
      for (int64_t s = 0; s < slots; ++s) pnorms[s] += phi[k * slots + s] * phi[k * slots + s];
    }
    for (int64_t s = 0; s < slots; ++s) pnorms[s] = std::sqrt(pnorms[s]);
    for (int64_t k = 0; k < d; ++k) {
      for (int64_t s = 0; s < slots; ++s) ps[k * slots + s] = scale * phi[k * slots + s] / (pnorms[s] + kNormEps);
    }
    xn = xs;
    phin = ps;
  }
  // Logits [B T, S] into cw, then dispatch = softmax over tokens (per sample),
  // combine = softmax over slots (in place).
  Gemm(false, false, rows, slots, d, 1.0f, xn, d, phin, slots, 0.0f, cw, slots);
  float* stats = Scratch(pass, kSmall, static_cast<size_t>(2 * slots + t));
  for (int64_t b = 0; b < batch; ++b) SoftmaxPair(cw + b * t * slots, t, slots, dw + b * t * slots, stats);
}

void MoeLayer::SparseRoute(const Pass& pass, const float* x, float* dw, float* cw) {
  const int64_t batch = pass.batch, t = tokens_, d = dim_, n = experts_, p = slots_, slots = n * p, rows = batch * t;
  State& st = state(pass);
  float* probs = Scratch(pass, kRouter, static_cast<size_t>(rows * n));
  Gemm(false, false, rows, n, d, 1.0f, x, d, router_->w(pass.member), n, 0.0f, probs, n);
  RowSoftmax(probs, rows, n);
  std::fill(dw, dw + rows * slots, 0.0f);
  std::fill(cw, cw + rows * slots, 0.0f);
  if (st.slot_token.size() < static_cast<size_t>(batch * slots)) st.slot_token.resize(static_cast<size_t>(batch * slots));
  int32_t* slot_token = st.slot_token.data();
  int32_t* index = st.index.data();
  if (type_ == MixerType::kTokenChoice) {
    std::fill(slot_token, slot_token + batch * slots, -1);
    for (int64_t b = 0; b < batch; ++b) {
      std::fill(index, index + n, 0);  // Tokens that chose each expert so far.
      for (int64_t i = 0; i < t; ++i) {
        const int64_t r = b * t + i;
        const float* pr = probs + r * n;
        int64_t choice = 0;
        for (int64_t j = 1; j < n; ++j) {
          if (pr[j] > pr[choice]) choice = j;
        }
        const int64_t position = index[choice]++;
        if (position < p) {
          dw[r * slots + choice * p + position] = 1.0f;
          cw[r * slots + choice * p + position] = pr[choice];
          slot_token[b * slots + choice * p + position] = static_cast<int32_t>(i);
        }
      }
    }
    st.aux = 0.0f;
    if (balance_weight_ > 0.0) {
      // Importance loss: per sample CV^2 of the probabilities summed over
      // tokens (population variance / mean^2), averaged over the batch.
      float* importance = Scratch(pass, kSmall, static_cast<size_t>(n));
      float total = 0.0f;
      for (int64_t b = 0; b < batch; ++b) {
        ColumnSums(probs + b * t * n, t, n, importance);
        float mean = 0.0f;
        for (int64_t j = 0; j < n; ++j) mean += importance[j];
        mean /= static_cast<float>(n);
        float var = 0.0f;
        for (int64_t j = 0; j < n; ++j) var += (importance[j] - mean) * (importance[j] - mean);
        var /= static_cast<float>(n);
        total += var / (mean * mean);
      }
      st.aux = static_cast<float>(balance_weight_) * (total / static_cast<float>(batch));
    }
    return;
  }
  // Expert choice: expert j takes its p most probable tokens (stable
  // descending order: ties to the lower token index).
  // Sort keys: probabilities are >= 0, so their bit patterns order as they
  // do; key = (~bits) << 32 | token sorts ascending as (probability
  // descending, token ascending).
  uint64_t* keys = st.keys.data();
  for (int64_t b = 0; b < batch; ++b) {
    const float* pb = probs + b * t * n;
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t i = 0; i < t; ++i) {
        const uint32_t bits = ~std::bit_cast<uint32_t>(pb[i * n + j]);
        keys[i] = (static_cast<uint64_t>(bits) << 32) | static_cast<uint64_t>(i);
      }
      if (p < t) {
        std::partial_sort(keys, keys + p, keys + t);
      } else {
        std::sort(keys, keys + t);
      }
      for (int64_t k = 0; k < p; ++k) {
        const int32_t token = static_cast<int32_t>(keys[k] & 0xffffffffu);
        const int64_t r = b * t + token;
        dw[r * slots + j * p + k] = 1.0f;
        cw[r * slots + j * p + k] = pb[token * n + j];
        slot_token[b * slots + j * p + k] = token;
      }
    }
  }
  st.aux = 0.0f;
}

void MoeLayer::SoftRouteBackward(const Pass& pass, const float* x, float* d_dw, float* d_cw, float* dx) {
  const int64_t batch = pass.batch, t = tokens_, d = dim_, slots = experts_ * slots_, rows = batch * t;
  const State& st = state(pass);
  const float* dw = st.dispatch;
  const float* cw = st.combine;
  // d logits = Cw (dCw - <dCw, Cw>_row) + Dw (dDw - <dDw, Dw>_column), into d_cw.
  float* dots = Scratch(pass, kSmall, static_cast<size_t>(slots));
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t o = b * t * slots;
    SoftmaxPairBackward(dw + o, cw + o, d_dw + o, d_cw + o, t, slots, dots);
  }
  const float* dl = d_cw;
  const int e = pass.member;
  if (!normalize_) {
    // logits = X phi: d phi = X^T dL, dX += dL phi^T.
    Gemm(true, false, d, slots, rows, 1.0f, x, d, dl, slots, 0.0f, phi_->g(e), slots);
    if (dx != nullptr) Gemm(false, true, rows, d, slots, 1.0f, dl, slots, phi_->w(e), slots, 1.0f, dx, d);
    return;
  }
  const float* xs = Scratch(pass, kRouter, 0);
  const float* norms = xs + rows * d;
  const float* ps = Scratch(pass, kPhi, 0);
  const float* pnorms = ps + d * slots;
  // d phi^ [D, S] into the phi gradient's place first (then transformed).
  float* dphin = Scratch(pass, kSmall, static_cast<size_t>(d * slots + slots));
  Gemm(true, false, d, slots, rows, 1.0f, xs, d, dl, slots, 0.0f, dphin, slots);
  // phi^ = scale phi / (||phi_s|| + eps).
  const float* phi = phi_->w(e);
  const float scale = scale_->w(e)[0];
  float* gphi = phi_->g(e);
  float* colsum = dphin + d * slots;
  std::fill(colsum, colsum + slots, 0.0f);
  float dscale = 0.0f;
  for (int64_t k = 0; k < d; ++k) {
    for (int64_t s = 0; s < slots; ++s) {
      const float gp = dphin[k * slots + s] * phi[k * slots + s];
      colsum[s] += gp;
      dscale += gp / (pnorms[s] + kNormEps);
    }
  }
  for (int64_t k = 0; k < d; ++k) {
    for (int64_t s = 0; s < slots; ++s) {
      const float denom = pnorms[s] + kNormEps;
      float g = scale * dphin[k * slots + s] / denom;
      if (pnorms[s] > 0.0f) g -= scale * colsum[s] / (denom * denom) * phi[k * slots + s] / pnorms[s];
      gphi[k * slots + s] = g;
    }
  }
  scale_->g(e)[0] = dscale;
  if (dx == nullptr) return;
  // d X^ = dL phi^T, then x^ = x / (||x|| + eps).
  float* dxn = d_dw;  // No longer needed: reuse as [B T, D].
  Gemm(false, true, rows, d, slots, 1.0f, dl, slots, ps, slots, 0.0f, dxn, d);
  for (int64_t r = 0; r < rows; ++r) {
    const float* v = x + r * d;
    const float* g = dxn + r * d;
    float* out = dx + r * d;
    const float denom = norms[r] + kNormEps;
    float dot = 0.0f;
    for (int64_t k = 0; k < d; ++k) dot += g[k] * v[k];
    const float radial = norms[r] > 0.0f ? dot / (denom * denom) / norms[r] : 0.0f;
    for (int64_t k = 0; k < d; ++k) out[k] += g[k] / denom - radial * v[k];
  }
}

void MoeLayer::SparseRouteBackward(const Pass& pass, const float* x, float* dprobs, float* dx) {
  const int64_t batch = pass.batch, t = tokens_, d = dim_, n = experts_, rows = batch * t;
  const float* probs = Scratch(pass, kRouter, 0);
  if (type_ == MixerType::kTokenChoice && balance_weight_ > 0.0) {
    // aux = w / B sum_b V_b / m_b^2 with I = sum_i probs, m = mean(I),
    // V = mean((I - m)^2): dI_j = c (2 (I_j - m) / (n m^2)) + (1 / n) dm,
    // dm = c (-2 sum_j (I_j - m) / (n m^2) - 2 V / m^3), c = w / B.
    float* importance = Scratch(pass, kSmall, static_cast<size_t>(2 * n));
    float* di = importance + n;
    const float c = static_cast<float>(balance_weight_) / static_cast<float>(batch);
    for (int64_t b = 0; b < batch; ++b) {
      ColumnSums(probs + b * t * n, t, n, importance);
      float mean = 0.0f;
      for (int64_t j = 0; j < n; ++j) mean += importance[j];
      mean /= static_cast<float>(n);
      float var = 0.0f, dev = 0.0f;
      for (int64_t j = 0; j < n; ++j) {
        var += (importance[j] - mean) * (importance[j] - mean);
        dev += importance[j] - mean;
      }
      var /= static_cast<float>(n);
      const float m2 = mean * mean;
      const float dmean = c * (-2.0f * dev / (static_cast<float>(n) * m2) - 2.0f * var / (m2 * mean));
      for (int64_t j = 0; j < n; ++j) {
        di[j] = c * 2.0f * (importance[j] - mean) / (static_cast<float>(n) * m2) + dmean / static_cast<float>(n);
      }
      for (int64_t i = 0; i < t; ++i) {
        float* g = dprobs + (b * t + i) * n;
        for (int64_t j = 0; j < n; ++j) g[j] += di[j];
      }
    }
  }
  // Softmax over experts: d logits = probs (dprobs - <dprobs, probs>), in place.
  for (int64_t r = 0; r < rows; ++r) {
    float* g = dprobs + r * n;
    const float* pr = probs + r * n;
    float dot = 0.0f;
    for (int64_t j = 0; j < n; ++j) dot += g[j] * pr[j];
    for (int64_t j = 0; j < n; ++j) g[j] = pr[j] * (g[j] - dot);
  }
  const int e = pass.member;
  Gemm(true, false, d, n, rows, 1.0f, x, d, dprobs, n, 0.0f, router_->g(e), n);
  if (dx != nullptr) Gemm(false, true, rows, d, n, 1.0f, dprobs, n, router_->w(e), n, 1.0f, dx, d);
}

// ---------------------------------------------------------------------------

const float* MoeLayer::Forward(const Pass& pass, const float* x) {
  const int64_t batch = pass.batch, t = tokens_, d = dim_, n = experts_, p = slots_, h = hidden_;
  const int64_t slots = n * p, rows = batch * p;  // rows: per expert
  const int e = pass.member;
  State& st = state(pass);
  float* dw = Scratch(pass, kDispatch, static_cast<size_t>(batch * t * slots));
  float* cw = Scratch(pass, kCombine, static_cast<size_t>(batch * t * slots));
  if (type_ == MixerType::kSoftMoe) {
    SoftRoute(pass, x, dw, cw);
    st.aux = 0.0f;
  } else {
    SparseRoute(pass, x, dw, cw);
  }
  // Slot inputs: per sample Dw^T X [S, D], then expert-major [n, B p, D]
  // (one expert: the same layout).
  float* slot_in = Scratch(pass, kSlotIn, static_cast<size_t>(n * rows * d));
  float* temp = n == 1 ? slot_in : Scratch(pass, kTemp, static_cast<size_t>(batch * slots * d));
  const bool soft = type_ == MixerType::kSoftMoe;
  if (soft) {
    for (int64_t b = 0; b < batch; ++b) {
      Gemm(true, false, slots, d, t, 1.0f, dw + b * t * slots, slots, x + b * t * d, d, 0.0f, temp + b * slots * d,
           d);
    }
  } else {
    // 0/1 dispatch: gather each slot's token (zeros for an empty slot).
    const int32_t* slot_token = st.slot_token.data();
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t s = 0; s < slots; ++s) {
        float* out = temp + (b * slots + s) * d;
        const int32_t tk = slot_token[b * slots + s];
        if (tk < 0) {
          std::fill(out, out + d, 0.0f);
        } else {
          std::copy(x + (b * t + tk) * d, x + (b * t + tk + 1) * d, out);
        }
      }
    }
  }
  if (n > 1) SampleToExpert(temp, batch, n, p * d, slot_in);
  // First layer weights (noisy: mu + sigma eps_in eps_out^T).
  const float* w1;
  const float* b1;
  if (!noisy_) {
    w1 = w1_->w(e);
    b1 = b1_->w(e);
  } else if (!noise_enabled_[pass.context]) {
    w1 = mu_w1_->w(e);
    b1 = mu_b1_->w(e);
  } else {
    float* w = Scratch(pass, kNoisyWeights, static_cast<size_t>(n * d * h + n * h));
    float* bias = w + n * d * h;
    const float* ei = eps_in_[pass.context].data() + e * n * d;
    const float* eo = eps_out_[pass.context].data() + e * n * h;
    const float *mu = mu_w1_->w(e), *sigma = sigma_w1_->w(e);
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t k = 0; k < d; ++k) {
        const int64_t base = (j * d + k) * h;
        const float a = ei[j * d + k];
        for (int64_t o = 0; o < h; ++o) w[base + o] = mu[base + o] + sigma[base + o] * (a * eo[j * h + o]);
      }
    }
    const float *mub = mu_b1_->w(e), *sigmab = sigma_b1_->w(e);
    for (int64_t o = 0; o < n * h; ++o) bias[o] = mub[o] + sigmab[o] * eo[o];
    w1 = w;
    b1 = bias;
  }
  // Experts: hidden = relu(slots W1 + b1), out = hidden W2 + b2.
  float* hidden = Scratch(pass, kHidden, static_cast<size_t>(n * rows * h));
  float* slot_out = Scratch(pass, kSlotOut, static_cast<size_t>(batch * slots * d));
  float* slot_out_e = n == 1 ? slot_out : temp;  // [n, B p, D]
  const float* w2 = w2_->w(e);
  const float* b2 = b2_->w(e);
  for (int64_t j = 0; j < n; ++j) {
    float* hj = hidden + j * rows * h;
    Gemm(false, false, rows, h, d, 1.0f, slot_in + j * rows * d, d, w1 + j * d * h, h, 0.0f, hj, h);
    BiasRelu(hj, b1 + j * h, rows, h);
    float* oj = slot_out_e + j * rows * d;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t o = 0; o < d; ++o) oj[r * d + o] = b2[j * d + o];
    }
    Gemm(false, false, rows, d, h, 1.0f, hj, h, w2 + j * h * d, d, 1.0f, oj, d);
  }
  if (n > 1) ExpertToSample(slot_out_e, batch, n, p * d, slot_out);
  // Token outputs: per sample Cw [T, S] times the slot outputs [S, D].
  float* y = Scratch(pass, kOut, static_cast<size_t>(batch * t * d));
  if (soft) {
    for (int64_t b = 0; b < batch; ++b) {
      Gemm(false, false, t, d, slots, 1.0f, cw + b * t * slots, slots, slot_out + b * slots * d, d, 0.0f,
           y + b * t * d, d);
    }
  } else {
    // Sparse combine: each filled slot adds gate * its output to its token.
    const int32_t* slot_token = st.slot_token.data();
    std::fill(y, y + batch * t * d, 0.0f);
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t s = 0; s < slots; ++s) {
        const int32_t tk = slot_token[b * slots + s];
        if (tk < 0) continue;
        const int64_t r = b * t + tk;
        AddScaled(cw[r * slots + s], slot_out + (b * slots + s) * d, d, y + r * d);
      }
    }
  }
  st.batch = pass.batch;
  st.dispatch = dw;
  st.combine = cw;
  st.hidden = hidden;
  st.hidden_view_valid = false;
  return y;
}

float* MoeLayer::Backward(const Pass& pass, const float* x, float* dy, bool need_d_in) {
  const int64_t batch = pass.batch, t = tokens_, d = dim_, n = experts_, p = slots_, h = hidden_;
  const int64_t slots = n * p, rows = batch * p;
  const int e = pass.member;
  const State& st = state(pass);
  const float* dw = st.dispatch;
  const float* cw = st.combine;
  const float* hidden = st.hidden;
  const float* slot_in = Scratch(pass, kSlotIn, 0);
  const float* slot_out = Scratch(pass, kSlotOut, 0);
  const bool soft = type_ == MixerType::kSoftMoe;
  // Temps: dCw [B T, S] (+ [B T, n] for the sparse routers' d probs),
  // dDw [B T, S] (SoftMoE), d slots sample-major [B, S, D] and expert-major.
  const int64_t weights = batch * t * slots;
  const int64_t slot_count = batch * slots * d;
  float* grad = Scratch(pass, kGrad,
                        static_cast<size_t>(weights + std::max(weights, batch * t * std::max(n, d)) + 2 * slot_count));
  float* d_cw = grad;
  float* d_dw = grad + weights;  // SoftMoE dDw, or the sparse routers' d probs.
  float* d_slots = d_dw + std::max(weights, batch * t * std::max(n, d));
  float* d_slots_e = n == 1 ? d_slots : d_slots + slot_count;  // One expert: the same layout.
  // Combine: y_b = Cw_b slot_out_b.
  const int32_t* slot_token = st.slot_token.data();
  if (soft) {
    for (int64_t b = 0; b < batch; ++b) {
      const float* gy = dy + b * t * d;
      Gemm(false, true, t, slots, d, 1.0f, gy, d, slot_out + b * slots * d, d, 0.0f, d_cw + b * t * slots, slots);
      Gemm(true, false, slots, d, t, 1.0f, cw + b * t * slots, slots, gy, d, 0.0f, d_slots + b * slots * d, d);
    }
  } else {
    // Sparse: Cw = Dw * prob, Dw 0/1 with one token per filled slot, so
    // d slot = gate * dy[token] and d prob[token, j] = sum over the slots of
    // expert j holding token of <dy[token], slot out> (into d_dw [B T, n]).
    float* dprobs = d_dw;
    std::fill(dprobs, dprobs + batch * t * n, 0.0f);
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t s = 0; s < slots; ++s) {
        float* gs = d_slots + (b * slots + s) * d;
        const int32_t tk = slot_token[b * slots + s];
        if (tk < 0) {
          std::fill(gs, gs + d, 0.0f);
          continue;
        }
        const int64_t r = b * t + tk;
        const float* gy = dy + r * d;
        const float* so = slot_out + (b * slots + s) * d;
        const float gate = cw[r * slots + s];
        float dot = 0.0f;
        for (int64_t k = 0; k < d; ++k) {
          dot += gy[k] * so[k];
          gs[k] = gate * gy[k];
        }
        dprobs[r * n + s / p] += dot;
      }
    }
  }
  if (n > 1) SampleToExpert(d_slots, batch, n, p * d, d_slots_e);
  // Experts, one at a time; d slot inputs overwrite d slot outputs in place.
  const bool noise_on = noisy_ && noise_enabled_[pass.context];
  const float* w1 = !noisy_ ? w1_->w(e) : noise_on ? Scratch(pass, kNoisyWeights, 0) : mu_w1_->w(e);
  float* gw1 = noisy_ ? mu_w1_->g(e) : w1_->g(e);
  float* gb1 = noisy_ ? mu_b1_->g(e) : b1_->g(e);
  const float* w2 = w2_->w(e);
  float* gw2 = w2_->g(e);
  float* gb2 = b2_->g(e);
  float* d_hidden = Scratch(pass, kDHidden, static_cast<size_t>(rows * h));
  for (int64_t j = 0; j < n; ++j) {
    const float* hj = hidden + j * rows * h;
    float* gj = d_slots_e + j * rows * d;
    Gemm(true, false, h, d, rows, 1.0f, hj, h, gj, d, 0.0f, gw2 + j * h * d, d);
    ColumnSums(gj, rows, d, gb2 + j * d);
    Gemm(false, true, rows, h, d, 1.0f, gj, d, w2 + j * h * d, d, 0.0f, d_hidden, h);
    ReluMaskColumnSums(d_hidden, hj, rows, h, gb1 + j * h);
    Gemm(true, false, d, h, rows, 1.0f, slot_in + j * rows * d, d, d_hidden, h, 0.0f, gw1 + j * d * h, h);
    Gemm(false, true, rows, d, h, 1.0f, d_hidden, h, w1 + j * d * h, h, 0.0f, gj, d);
  }
  if (noisy_) {
    float* gsw = sigma_w1_->g(e);
    float* gsb = sigma_b1_->g(e);
    if (noise_on) {
      const float* ei = eps_in_[pass.context].data() + e * n * d;
      const float* eo = eps_out_[pass.context].data() + e * n * h;
      for (int64_t j = 0; j < n; ++j) {
        for (int64_t k = 0; k < d; ++k) {
          const int64_t base = (j * d + k) * h;
          const float a = ei[j * d + k];
          for (int64_t o = 0; o < h; ++o) gsw[base + o] = gw1[base + o] * (a * eo[j * h + o]);
        }
      }
      for (int64_t o = 0; o < n * h; ++o) gsb[o] = gb1[o] * eo[o];
    } else {
      std::fill(gsw, gsw + n * d * h, 0.0f);
      std::fill(gsb, gsb + n * h, 0.0f);
    }
  }
  if (n > 1) ExpertToSample(d_slots_e, batch, n, p * d, d_slots);
  // Dispatch: slot_in_b = Dw_b^T x_b: dx_b = Dw_b d_slots_b, dDw_b = x_b d_slots_b^T.
  float* dx = need_d_in ? Scratch(pass, kDx, static_cast<size_t>(batch * t * d)) : nullptr;
  if (soft) {
    for (int64_t b = 0; b < batch; ++b) {
      const float* gs = d_slots + b * slots * d;
      if (dx != nullptr) {
        Gemm(false, false, t, d, slots, 1.0f, dw + b * t * slots, slots, gs, d, 0.0f, dx + b * t * d, d);
      }
      Gemm(false, true, t, slots, d, 1.0f, x + b * t * d, d, gs, d, 0.0f, d_dw + b * t * slots, slots);
    }
    SoftRouteBackward(pass, x, d_dw, d_cw, dx);
  } else {
    if (dx != nullptr) {
      // 0/1 dispatch: scatter-add each filled slot's gradient to its token.
      std::fill(dx, dx + batch * t * d, 0.0f);
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t s = 0; s < slots; ++s) {
          const int32_t tk = slot_token[b * slots + s];
          if (tk >= 0) AddScaled(1.0f, d_slots + (b * slots + s) * d, d, dx + (b * t + tk) * d);
        }
      }
    }
    SparseRouteBackward(pass, x, d_dw, dx);
  }
  return dx;
}

}  // namespace tokenrl::nn::cpu
