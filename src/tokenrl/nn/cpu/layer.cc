#include "tokenrl/nn/cpu/layer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tokenrl/core/status.h"
#include "tokenrl/nn/cpu/blas.h"

namespace tokenrl::nn::cpu {

Param* ParamStore::Make(const std::string& name, std::vector<int64_t> shape, const InitSpec& init) {
  TOKENRL_CHECK(Find(name) == nullptr, "cpu engine: parameter \"{}\" created twice", name);
  auto p = std::make_unique<Param>();
  p->name = name;
  p->numel = 1;
  for (int64_t d : shape) p->numel *= d;
  p->shape = std::move(shape);
  p->init = init;
  p->value.resize(static_cast<size_t>(p->numel * members_));
  p->grad.assign(p->value.size(), 0.0f);
  for (int e = 0; e < members_; ++e) {
    FillInit(std::span<float>(p->w(e), static_cast<size_t>(p->numel)), init, ParameterSeed(root_seed_, e, name));
  }
  params_.push_back(std::move(p));
  return params_.back().get();
}

Param* ParamStore::Find(std::string_view name) const {
  for (const auto& p : params_) {
    if (p->name == name) return p.get();
  }
  return nullptr;
}

void NoiseStream::FactorizedNoise(float* out, int64_t count) {
  StandardNormals(rng_, std::span<float>(out, static_cast<size_t>(count)));
  for (int64_t i = 0; i < count; ++i) {
    const float z = out[i];
    const float sign = z > 0.0f ? 1.0f : (z < 0.0f ? -1.0f : 0.0f);
    out[i] = sign * std::sqrt(std::fabs(z));
  }
}

std::string NoiseStream::State() const { return RngState(rng_); }

bool NoiseStream::SetState(const std::string& state) { return SetRngState(rng_, state); }

float* Layer::Scratch(const Pass& pass, int slot, size_t count) {
  std::vector<float>& buffer = scratch_[(static_cast<size_t>(pass.context) * members_ + pass.member) * kSlots + slot];
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

// ---------------------------------------------------------------------------

const float* Sequential::Forward(const Pass& pass, const float* in) {
  std::vector<const float*>& inputs = inputs_[static_cast<size_t>(pass.context) * members() + pass.member];
  inputs.resize(layers_.size());
  const float* x = in;
  for (size_t i = 0; i < layers_.size(); ++i) {
    inputs[i] = x;
    x = layers_[i]->Forward(pass, x);
  }
  return x;
}

float* Sequential::Backward(const Pass& pass, const float*, float* d_out, bool need_d_in) {
  const std::vector<const float*>& inputs = inputs_[static_cast<size_t>(pass.context) * members() + pass.member];
  float* d = d_out;
  for (size_t i = layers_.size(); i-- > 0;) {
    d = layers_[i]->Backward(pass, inputs[i], d, i > 0 || need_d_in);
  }
  return d;
}

void Sequential::DrawNoise(NoiseStream& noise, int context, bool enabled) {
  for (auto& layer : layers_) layer->DrawNoise(noise, context, enabled);
}

// ---------------------------------------------------------------------------

namespace {

InitSpec Xavier(int64_t in, int64_t out) {
  return {.scheme = InitScheme::kXavierUniform, .fan_in = static_cast<double>(in), .fan_out = static_cast<double>(out)};
}
InitSpec Constant(double value) { return {.scheme = InitScheme::kConstant, .value = value}; }

// d_out *= (y > 0), the ReLU backward.
void MaskRelu(const float* y, float* d, int64_t count) {
  for (int64_t i = 0; i < count; ++i) d[i] = y[i] > 0.0f ? d[i] : 0.0f;
}

// y[rows, out] = x W + bias (broadcast), then ReLU when asked: the bias and
// the ReLU in one pass over y after the GEMM.
void DenseForward(const float* x, const float* w, const float* b, int64_t rows, int64_t in, int64_t out, bool relu,
                  float* y) {
  Gemm(false, false, rows, out, in, 1.0f, x, in, w, out, 0.0f, y, out);
  if (b == nullptr && !relu) return;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y + r * out;
    if (b != nullptr) {
      for (int64_t o = 0; o < out; ++o) row[o] += b[o];
    }
    if (relu) {
      for (int64_t o = 0; o < out; ++o) row[o] = std::max(row[o], 0.0f);
    }
  }
}

// Rows of y [rows, out] = x mu + ((x * eps_in) sigma) * eps_out + b: the noisy
// layer's output without building W = mu + sigma * (eps_in eps_out^T). One
// pass over mu and sigma serves every row; t [rows, out] is scratch.
[[gnu::always_inline]] inline void NoisyRowsBody(const float* __restrict x, const float* __restrict eps_in,
                                                 const float* __restrict eps_out, const float* __restrict mu,
                                                 const float* __restrict sigma, const float* __restrict b, int64_t rows,
                                                 int64_t in, int64_t out, float* __restrict y, float* __restrict t) {
  std::fill(y, y + rows * out, 0.0f);
  std::fill(t, t + rows * out, 0.0f);
  for (int64_t i = 0; i < in; ++i) {
    const float* __restrict mu_row = mu + i * out;
    const float* __restrict sigma_row = sigma + i * out;
    for (int64_t s = 0; s < rows; ++s) {
      const float xi = x[s * in + i], xi_noise = xi * eps_in[i];
      float* __restrict ys = y + s * out;
      float* __restrict ts = t + s * out;
      for (int64_t o = 0; o < out; ++o) {
        ys[o] += xi * mu_row[o];
        ts[o] += xi_noise * sigma_row[o];
      }
    }
  }
  for (int64_t s = 0; s < rows; ++s) {
    for (int64_t o = 0; o < out; ++o) y[s * out + o] += t[s * out + o] * eps_out[o] + b[o];
  }
}
TOKENRL_VECTOR_KERNEL(NoisyRows, NoisyRowsBody)

}  // namespace

Linear::Linear(const Scope& scope, int64_t in, int64_t out, bool relu, int64_t rows_per_sample, bool bias)
    : Linear(scope, in, out, relu, rows_per_sample, bias, Xavier(in, out)) {}

Linear::Linear(const Scope& scope, int64_t in, int64_t out, bool relu, int64_t rows_per_sample, bool bias,
               const InitSpec& weight_init)
    : Layer(scope.members()), in_(in), out_(out), rows_per_sample_(rows_per_sample), relu_(relu) {
  weight_ = scope.Make("weight", {in, out}, weight_init);
  if (bias) bias_ = scope.Make("bias", {1, out}, Constant(0.0));
}

const float* Linear::Forward(const Pass& pass, const float* in) {
  const int64_t rows = pass.batch * rows_per_sample_;
  float* y = Scratch(pass, 0, static_cast<size_t>(rows * out_));
  DenseForward(in, weight_->w(pass.member), bias_ ? bias_->w(pass.member) : nullptr, rows, in_, out_, relu_, y);
  return y;
}

float* Linear::Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) {
  const int64_t rows = pass.batch * rows_per_sample_;
  if (relu_) MaskRelu(Scratch(pass, 0, 0), d_out, rows * out_);
  Gemm(true, false, in_, out_, rows, 1.0f, in, in_, d_out, out_, 0.0f, weight_->g(pass.member), out_);
  if (bias_) ColumnSums(d_out, rows, out_, bias_->g(pass.member));
  if (!need_d_in) return nullptr;
  float* dx = Scratch(pass, 1, static_cast<size_t>(rows * in_));
  Gemm(false, true, rows, in_, out_, 1.0f, d_out, out_, weight_->w(pass.member), out_, 0.0f, dx, in_);
  return dx;
}

// ---------------------------------------------------------------------------

NoisyLinear::NoisyLinear(const Scope& scope, int64_t in, int64_t out, double sigma_scale)
    : Layer(scope.members()), in_(in), out_(out) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  const InitSpec mu{.scheme = InitScheme::kUniform, .value = bound};
  const InitSpec sigma = Constant(sigma_scale * bound);
  mu_weight_ = scope.Make("mu_weight", {in, out}, mu);
  sigma_weight_ = scope.Make("sigma_weight", {in, out}, sigma);
  mu_bias_ = scope.Make("mu_bias", {1, out}, mu);
  sigma_bias_ = scope.Make("sigma_bias", {1, out}, sigma);
  for (int c = 0; c < kContexts; ++c) {
    eps_in_[c].resize(static_cast<size_t>(members() * in));
    eps_out_[c].resize(static_cast<size_t>(members() * out));
  }
}

void NoisyLinear::DrawNoise(NoiseStream& noise, int context, bool enabled) {
  enabled_[context] = enabled;
  if (!enabled) return;
  noise.FactorizedNoise(eps_in_[context].data(), members() * in_);
  noise.FactorizedNoise(eps_out_[context].data(), members() * out_);
}

const float* NoisyLinear::Forward(const Pass& pass, const float* in) {
  const int e = pass.member;
  float* y = Scratch(pass, 0, static_cast<size_t>(pass.batch * out_));
  if (!enabled_[pass.context]) {
    DenseForward(in, mu_weight_->w(e), mu_bias_->w(e), pass.batch, in_, out_, false, y);
    return y;
  }
  // b = mu_b + sigma_b * eps_out.
  const float* eo = eps_out_[pass.context].data() + e * out_;
  float* b = Scratch(pass, 2, static_cast<size_t>(out_));
  for (int64_t o = 0; o < out_; ++o) b[o] = mu_bias_->w(e)[o] + sigma_bias_->w(e)[o] * eo[o];
  if (pass.batch <= kFactorizedMaxBatch) {
    float* t = Scratch(pass, 3, static_cast<size_t>(pass.batch * out_));
    NoisyRows(in, eps_in_[pass.context].data() + e * in_, eo, mu_weight_->w(e), sigma_weight_->w(e),
              static_cast<const float*>(b), static_cast<int64_t>(pass.batch), in_, out_, y, t);
    return y;
  }
  DenseForward(in, BuildWeight(pass), b, pass.batch, in_, out_, false, y);
  return y;
}

const float* NoisyLinear::BuildWeight(const Pass& pass) {
  // W = mu + sigma * (eps_in eps_out^T).
  const int e = pass.member;
  float* w = Scratch(pass, 1, static_cast<size_t>(in_ * out_));
  const float* ei = eps_in_[pass.context].data() + e * in_;
  const float* eo = eps_out_[pass.context].data() + e * out_;
  const float *mu = mu_weight_->w(e), *sigma = sigma_weight_->w(e);
  for (int64_t i = 0; i < in_; ++i) {
    for (int64_t o = 0; o < out_; ++o) w[i * out_ + o] = mu[i * out_ + o] + sigma[i * out_ + o] * (ei[i] * eo[o]);
  }
  return w;
}

float* NoisyLinear::Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) {
  const int e = pass.member;
  const bool enabled = enabled_[pass.context];
  float* dw = mu_weight_->g(e);
  float* db = mu_bias_->g(e);
  Gemm(true, false, in_, out_, pass.batch, 1.0f, in, in_, d_out, out_, 0.0f, dw, out_);
  ColumnSums(d_out, pass.batch, out_, db);
  float* dsw = sigma_weight_->g(e);
  float* dsb = sigma_bias_->g(e);
  if (enabled) {
    const float* ei = eps_in_[pass.context].data() + e * in_;
    const float* eo = eps_out_[pass.context].data() + e * out_;
    for (int64_t i = 0; i < in_; ++i) {
      for (int64_t o = 0; o < out_; ++o) dsw[i * out_ + o] = dw[i * out_ + o] * (ei[i] * eo[o]);
    }
    for (int64_t o = 0; o < out_; ++o) dsb[o] = db[o] * eo[o];
  } else {
    std::fill(dsw, dsw + in_ * out_, 0.0f);
    std::fill(dsb, dsb + out_, 0.0f);
  }
  if (!need_d_in) return nullptr;
  // A small batch's Forward left no W behind.
  const float* w = !enabled                               ? mu_weight_->w(e)
                   : pass.batch <= kFactorizedMaxBatch ? BuildWeight(pass)
                                                        : Scratch(pass, 1, 0);
  float* dx = Scratch(pass, 4, static_cast<size_t>(pass.batch * in_));
  Gemm(false, true, pass.batch, in_, out_, 1.0f, d_out, out_, w, out_, 0.0f, dx, in_);
  return dx;
}

// ---------------------------------------------------------------------------

GatherSum::GatherSum(int members, int64_t in_size, const std::vector<std::vector<int32_t>>& sources, float scale)
    : Layer(members), in_size_(in_size), scale_(scale) {
  offsets_.push_back(0);
  for (const auto& list : sources) {
    for (int32_t i : list) {
      TOKENRL_CHECK(i >= 0 && i < in_size, "GatherSum: source {} outside [0, {})", i, in_size);
      index_.push_back(i);
    }
    offsets_.push_back(static_cast<int32_t>(index_.size()));
  }
}

const float* GatherSum::Forward(const Pass& pass, const float* in) {
  const int64_t out_n = out_size();
  float* y = Scratch(pass, 0, static_cast<size_t>(pass.batch * out_n));
  for (int s = 0; s < pass.batch; ++s) {
    const float* x = in + s * in_size_;
    float* ys = y + s * out_n;
    for (int64_t o = 0; o < out_n; ++o) {
      float sum = 0.0f;
      for (int32_t k = offsets_[o]; k < offsets_[o + 1]; ++k) sum += x[index_[k]];
      ys[o] = sum * scale_;
    }
  }
  return y;
}

float* GatherSum::Backward(const Pass& pass, const float*, float* d_out, bool need_d_in) {
  if (!need_d_in) return nullptr;
  const int64_t out_n = out_size();
  float* dx = Scratch(pass, 1, static_cast<size_t>(pass.batch * in_size_));
  std::fill(dx, dx + pass.batch * in_size_, 0.0f);
  for (int s = 0; s < pass.batch; ++s) {
    float* dxs = dx + s * in_size_;
    const float* ds = d_out + s * out_n;
    for (int64_t o = 0; o < out_n; ++o) {
      const float g = ds[o] * scale_;
      for (int32_t k = offsets_[o]; k < offsets_[o + 1]; ++k) dxs[index_[k]] += g;
    }
  }
  return dx;
}

// ---------------------------------------------------------------------------

const float* RowSum::Forward(const Pass& pass, const float* in) {
  float* y = Scratch(pass, 0, static_cast<size_t>(pass.batch * width_));
  for (int s = 0; s < pass.batch; ++s) {
    float* ys = y + s * width_;
    ColumnSums(in + s * rows_ * width_, rows_, width_, ys);
    if (scale_ != 1.0f) {
      for (int64_t w = 0; w < width_; ++w) ys[w] *= scale_;
    }
  }
  return y;
}

float* RowSum::Backward(const Pass& pass, const float*, float* d_out, bool need_d_in) {
  if (!need_d_in) return nullptr;
  float* dx = Scratch(pass, 1, static_cast<size_t>(pass.batch * rows_ * width_));
  for (int s = 0; s < pass.batch; ++s) {
    float* ds = d_out + s * width_;
    if (scale_ != 1.0f) {
      for (int64_t w = 0; w < width_; ++w) ds[w] *= scale_;
    }
    for (int64_t r = 0; r < rows_; ++r) std::copy(ds, ds + width_, dx + (s * rows_ + r) * width_);
  }
  return dx;
}

}  // namespace tokenrl::nn::cpu
