#include "tokenrl/nn/cpu/conv_layers.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "tokenrl/core/status.h"
#include "tokenrl/nn/cpu/blas.h"

namespace tokenrl::nn::cpu {
namespace {

// Largest column matrix of one chunk, in floats (2 MiB: it stays in L2
// between im2col and the GEMM that reads it).
constexpr int64_t kChunkFloats = int64_t{1} << 19;

InitSpec Xavier(double fan_in, double fan_out) {
  return {.scheme = InitScheme::kXavierUniform, .fan_in = fan_in, .fan_out = fan_out};
}
InitSpec LecunConv(int64_t kernel, int64_t in) {
  return {.scheme = InitScheme::kLecunNormal, .fan_in = static_cast<double>(kernel * kernel * in)};
}
InitSpec Zeros() { return {.scheme = InitScheme::kConstant, .value = 0.0}; }

// dst[0, n) = src[0, n); n is small (k * channels), so an inline loop beats memcpy.
inline void CopyRun(const float* __restrict src, float* __restrict dst, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] = src[j];
}
inline void AddRun(const float* __restrict src, float* __restrict dst, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] += src[j];
}

// y[r, o] = act(y[r, o] + b[o]) over rows x cols.
template <bool kRelu>
void AddBias(float* __restrict y, const float* __restrict b, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y + r * cols;
    for (int64_t o = 0; o < cols; ++o) {
      const float v = row[o] + b[o];
      row[o] = kRelu ? std::max(v, 0.0f) : v;
    }
  }
}

// db[o] = sum_r d[r, o], with d masked by y > 0 first when kRelu (in place).
// Blocks of kSumBlock rows are summed plainly, the block sums with Kahan's
// compensation (in `total` and `carry`, cols floats each), so the error stays
// that of a short float sum at any batch.
template <bool kRelu>
void MaskAndSum(const float* __restrict y, float* __restrict d, int64_t rows, int64_t cols, float* __restrict db,
                float* __restrict total, float* __restrict carry) {
  constexpr int64_t kSumBlock = 64;
  std::fill(total, total + cols, 0.0f);
  std::fill(carry, carry + cols, 0.0f);
  for (int64_t r0 = 0; r0 < rows; r0 += kSumBlock) {
    std::fill(db, db + cols, 0.0f);
    for (int64_t r = r0; r < std::min(rows, r0 + kSumBlock); ++r) {
      float* row = d + r * cols;
      const float* yr = y + r * cols;
      for (int64_t o = 0; o < cols; ++o) {
        if constexpr (kRelu) row[o] = yr[o] > 0.0f ? row[o] : 0.0f;
        db[o] += row[o];
      }
    }
    for (int64_t o = 0; o < cols; ++o) {
      const float add = db[o] - carry[o];
      const float sum = total[o] + add;
      carry[o] = (sum - total[o]) - add;
      total[o] = sum;
    }
  }
  std::copy(total, total + cols, db);
}

}  // namespace

// ---------------------------------------------------------------------------

ConvGeometry ConvGeometry::Same(int64_t height, int64_t width, int64_t in_channels, int64_t out_channels,
                                int64_t kernel, int64_t stride) {
  ConvGeometry g;
  g.height = height;
  g.width = width;
  g.in_channels = in_channels;
  g.out_channels = out_channels;
  g.kernel = kernel;
  g.stride = stride;
  // TF/Flax SAME: out = ceil(n / s), total padding max((out - 1) s + k - n, 0),
  // the smaller half before (torch backend's SamePadding).
  auto same = [&](int64_t n, int64_t& out, int64_t& lo, int64_t& padded) {
    out = (n + stride - 1) / stride;
    const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - n, 0);
    lo = total / 2;
    padded = n + total;
  };
  same(height, g.out_height, g.pad_top, g.padded_height);
  same(width, g.out_width, g.pad_left, g.padded_width);
  return g;
}

// ---------------------------------------------------------------------------
// Conv2dSame. Scratch slots: 0 output, 1 padded input, 2 column matrix,
// 3 repacked weight, 4 weight gradient in (kh, kw, c) order, 5 column
// gradient, 6 padded input gradient, 7 input gradient, 8 bias-gradient sums.

Conv2dSame::Conv2dSame(const Scope& scope, int64_t height, int64_t width, int64_t in_channels,
                       int64_t out_channels, int64_t kernel, int64_t stride, bool relu, const InitSpec& weight_init)
    : Layer(scope.members()),
      g_(ConvGeometry::Same(height, width, in_channels, out_channels, kernel, stride)),
      patch_(kernel * kernel * in_channels),
      relu_(relu) {
  weight_ = scope.Make("weight", {out_channels, in_channels, kernel, kernel}, weight_init);
  bias_ = scope.Make("bias", {out_channels}, Zeros());
}

int64_t Conv2dSame::ChunkSamples() const {
  return std::max<int64_t>(1, kChunkFloats / (g_.out_height * g_.out_width * patch_));
}

void Conv2dSame::RepackWeight(const float* w, float* wt) const {
  const int64_t k = g_.kernel, cin = g_.in_channels, cout = g_.out_channels;
  for (int64_t o = 0; o < cout; ++o) {
    for (int64_t c = 0; c < cin; ++c) {
      for (int64_t kk = 0; kk < k * k; ++kk) wt[(kk * cin + c) * cout + o] = w[(o * cin + c) * k * k + kk];
    }
  }
}

void Conv2dSame::PadInput(const float* in, int64_t samples, float* padded) const {
  const int64_t c = g_.in_channels, w = g_.width, hp = g_.padded_height, wp = g_.padded_width;
  const int64_t left = g_.pad_left * c, right = (wp - w - g_.pad_left) * c;
  for (int64_t s = 0; s < samples; ++s) {
    const float* x = in + s * g_.in_size();
    for (int64_t hh = 0; hh < hp; ++hh) {
      float* dst = padded + (s * hp + hh) * wp * c;
      const int64_t h = hh - g_.pad_top;
      if (h < 0 || h >= g_.height) {
        std::fill(dst, dst + wp * c, 0.0f);
        continue;
      }
      std::fill(dst, dst + left, 0.0f);
      std::memcpy(dst + left, x + h * w * c, static_cast<size_t>(w * c) * sizeof(float));
      std::fill(dst + left + w * c, dst + left + w * c + right, 0.0f);
    }
  }
}

void Conv2dSame::Im2Col(const float* padded, int64_t samples, float* col) const {
  const int64_t c = g_.in_channels, k = g_.kernel, s = g_.stride, kc = k * c;
  const int64_t ho_n = g_.out_height, wo_n = g_.out_width, hp = g_.padded_height, wp = g_.padded_width;
  for (int64_t b = 0; b < samples; ++b) {
    for (int64_t ho = 0; ho < ho_n; ++ho) {
      float* row0 = col + (b * ho_n + ho) * wo_n * patch_;
      for (int64_t kh = 0; kh < k; ++kh) {
        const float* src = padded + ((b * hp + ho * s + kh) * wp) * c;
        float* dst = row0 + kh * kc;
        for (int64_t wo = 0; wo < wo_n; ++wo) CopyRun(src + wo * s * c, dst + wo * patch_, kc);
      }
    }
  }
}

void Conv2dSame::Col2Im(const float* dcol, int64_t samples, float* d_padded) const {
  const int64_t c = g_.in_channels, k = g_.kernel, s = g_.stride, kc = k * c;
  const int64_t ho_n = g_.out_height, wo_n = g_.out_width, hp = g_.padded_height, wp = g_.padded_width;
  std::fill(d_padded, d_padded + samples * hp * wp * c, 0.0f);
  for (int64_t b = 0; b < samples; ++b) {
    for (int64_t ho = 0; ho < ho_n; ++ho) {
      const float* row0 = dcol + (b * ho_n + ho) * wo_n * patch_;
      for (int64_t kh = 0; kh < k; ++kh) {
        float* dst = d_padded + ((b * hp + ho * s + kh) * wp) * c;
        const float* src = row0 + kh * kc;
        for (int64_t wo = 0; wo < wo_n; ++wo) AddRun(src + wo * patch_, dst + wo * s * c, kc);
      }
    }
  }
}

const float* Conv2dSame::Forward(const Pass& pass, const float* in) {
  const int64_t batch = pass.batch, cout = g_.out_channels, pixels = g_.out_height * g_.out_width;
  const int64_t chunk = std::min<int64_t>(batch, ChunkSamples());
  float* y = Scratch(pass, 0, static_cast<size_t>(batch * g_.out_size()));
  float* padded = Scratch(pass, 1, static_cast<size_t>(chunk * g_.padded_height * g_.padded_width * g_.in_channels));
  float* col = Scratch(pass, 2, static_cast<size_t>(chunk * pixels * patch_));
  float* wt = Scratch(pass, 3, static_cast<size_t>(patch_ * cout));
  RepackWeight(weight_->w(pass.member), wt);
  const float* b = bias_->w(pass.member);
  for (int64_t s0 = 0; s0 < batch; s0 += chunk) {
    const int64_t n = std::min(chunk, batch - s0);
    PadInput(in + s0 * g_.in_size(), n, padded);
    Im2Col(padded, n, col);
    float* yc = y + s0 * g_.out_size();
    Gemm(false, false, n * pixels, cout, patch_, 1.0f, col, patch_, wt, cout, 0.0f, yc, cout);
    if (relu_) {
      AddBias<true>(yc, b, n * pixels, cout);
    } else {
      AddBias<false>(yc, b, n * pixels, cout);
    }
  }
  return y;
}

float* Conv2dSame::Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) {
  const int64_t batch = pass.batch, cout = g_.out_channels, pixels = g_.out_height * g_.out_width;
  const int64_t cs = ChunkSamples();
  const int64_t chunk = std::min<int64_t>(batch, cs);
  const bool col_kept = batch <= cs;  // Forward's column matrix covers the whole batch.
  const int e = pass.member;
  float* sums = Scratch(pass, 8, static_cast<size_t>(2 * cout));
  if (relu_) {
    MaskAndSum<true>(Scratch(pass, 0, 0), d_out, batch * pixels, cout, bias_->g(e), sums, sums + cout);
  } else {
    MaskAndSum<false>(nullptr, d_out, batch * pixels, cout, bias_->g(e), sums, sums + cout);
  }
  float* padded = Scratch(pass, 1, 0);
  float* col = Scratch(pass, 2, 0);
  float* dwt = Scratch(pass, 4, static_cast<size_t>(patch_ * cout));
  float* wt = nullptr;
  float *dcol = nullptr, *d_padded = nullptr, *dx = nullptr;
  if (need_d_in) {
    wt = Scratch(pass, 3, static_cast<size_t>(patch_ * cout));
    RepackWeight(weight_->w(e), wt);
    dcol = Scratch(pass, 5, static_cast<size_t>(chunk * pixels * patch_));
    d_padded = Scratch(pass, 6, static_cast<size_t>(chunk * g_.padded_height * g_.padded_width * g_.in_channels));
    dx = Scratch(pass, 7, static_cast<size_t>(batch * g_.in_size()));
  }
  for (int64_t s0 = 0; s0 < batch; s0 += chunk) {
    const int64_t n = std::min(chunk, batch - s0), rows = n * pixels;
    if (!col_kept) {
      PadInput(in + s0 * g_.in_size(), n, padded);
      Im2Col(padded, n, col);
    }
    const float* dy = d_out + s0 * g_.out_size();
    Gemm(true, false, patch_, cout, rows, 1.0f, col, patch_, dy, cout, s0 == 0 ? 0.0f : 1.0f, dwt, cout);
    if (!need_d_in) continue;
    Gemm(false, true, rows, patch_, cout, 1.0f, dy, cout, wt, cout, 0.0f, dcol, patch_);
    Col2Im(dcol, n, d_padded);
    // Crop the padding off.
    const int64_t c = g_.in_channels, w = g_.width, wp = g_.padded_width;
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t h = 0; h < g_.height; ++h) {
        std::memcpy(dx + (s0 + b) * g_.in_size() + h * w * c,
                    d_padded + ((b * g_.padded_height + h + g_.pad_top) * wp + g_.pad_left) * c,
                    static_cast<size_t>(w * c) * sizeof(float));
      }
    }
  }
  // (kh, kw, c, out) -> canonical [out, c, kh, kw].
  const int64_t k = g_.kernel, cin = g_.in_channels;
  float* dw = weight_->g(e);
  for (int64_t o = 0; o < cout; ++o) {
    for (int64_t c = 0; c < cin; ++c) {
      for (int64_t kk = 0; kk < k * k; ++kk) dw[(o * cin + c) * k * k + kk] = dwt[(kk * cin + c) * cout + o];
    }
  }
  return dx;
}

// ---------------------------------------------------------------------------
// MaxPoolSame. Scratch slots: 0 output, 1 argmax (per-sample input index,
// stored as float: exact below 2^24), 2 input gradient.

MaxPoolSame::MaxPoolSame(int members, int64_t height, int64_t width, int64_t channels, int64_t kernel,
                         int64_t stride)
    : Layer(members), g_(ConvGeometry::Same(height, width, channels, channels, kernel, stride)) {
  TOKENRL_CHECK(g_.in_size() < (int64_t{1} << 24), "MaxPoolSame: {} inputs per sample, at most 2^24", g_.in_size());
}

const float* MaxPoolSame::Forward(const Pass& pass, const float* in) {
  const int64_t c_n = g_.in_channels, k = g_.kernel, s = g_.stride;
  float* y = Scratch(pass, 0, static_cast<size_t>(pass.batch * g_.out_size()));
  float* arg = Scratch(pass, 1, static_cast<size_t>(pass.batch * g_.out_size()));
  for (int64_t b = 0; b < pass.batch; ++b) {
    const float* x = in + b * g_.in_size();
    for (int64_t ho = 0; ho < g_.out_height; ++ho) {
      const int64_t h0 = ho * s - g_.pad_top;
      const int64_t h_lo = std::max<int64_t>(h0, 0), h_hi = std::min(h0 + k, g_.height);
      for (int64_t wo = 0; wo < g_.out_width; ++wo) {
        const int64_t w0 = wo * s - g_.pad_left;
        const int64_t w_lo = std::max<int64_t>(w0, 0), w_hi = std::min(w0 + k, g_.width);
        const int64_t o = b * g_.out_size() + (ho * g_.out_width + wo) * c_n;
        float* yo = y + o;
        float* ao = arg + o;
        // Window cells in row-major order; a later cell wins only when strictly
        // greater (or NaN), as torch's max_pool2d: the first maximum is kept.
        const int64_t first = (h_lo * g_.width + w_lo) * c_n;
        for (int64_t c = 0; c < c_n; ++c) {
          yo[c] = -std::numeric_limits<float>::infinity();
          ao[c] = static_cast<float>(first + c);
        }
        for (int64_t h = h_lo; h < h_hi; ++h) {
          for (int64_t w = w_lo; w < w_hi; ++w) {
            const int64_t cell = (h * g_.width + w) * c_n;
            const float* xc = x + cell;
            for (int64_t c = 0; c < c_n; ++c) {
              if (xc[c] > yo[c] || std::isnan(xc[c])) {
                yo[c] = xc[c];
                ao[c] = static_cast<float>(cell + c);
              }
            }
          }
        }
      }
    }
  }
  return y;
}

float* MaxPoolSame::Backward(const Pass& pass, const float*, float* d_out, bool need_d_in) {
  if (!need_d_in) return nullptr;
  const float* arg = Scratch(pass, 1, 0);
  float* dx = Scratch(pass, 2, static_cast<size_t>(pass.batch * g_.in_size()));
  std::fill(dx, dx + pass.batch * g_.in_size(), 0.0f);
  for (int64_t b = 0; b < pass.batch; ++b) {
    float* dxb = dx + b * g_.in_size();
    const int64_t base = b * g_.out_size();
    for (int64_t o = 0; o < g_.out_size(); ++o) dxb[static_cast<int64_t>(arg[base + o])] += d_out[base + o];
  }
  return dx;
}

// ---------------------------------------------------------------------------
// ResidualBlock. Scratch slots: 0 relu(x), 1 output, 2 input gradient.

ResidualBlock::ResidualBlock(const Scope& scope, int64_t height, int64_t width, int64_t channels, bool relu_out)
    : Layer(scope.members()), size_(height * width * channels), relu_out_(relu_out) {
  conv0_ = std::make_unique<Conv2dSame>(scope.Child("conv0"), height, width, channels, channels, 3, 1,
                                        /*relu=*/true, LecunConv(3, channels));
  conv1_ = std::make_unique<Conv2dSame>(scope.Child("conv1"), height, width, channels, channels, 3, 1,
                                        /*relu=*/false, LecunConv(3, channels));
}

const float* ResidualBlock::Forward(const Pass& pass, const float* in) {
  const int64_t n = pass.batch * size_;
  float* rx = Scratch(pass, 0, static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) rx[i] = std::max(in[i], 0.0f);
  const float* z = conv1_->Forward(pass, conv0_->Forward(pass, rx));
  float* y = Scratch(pass, 1, static_cast<size_t>(n));
  if (relu_out_) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::max(in[i] + z[i], 0.0f);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = in[i] + z[i];
  }
  return y;
}

float* ResidualBlock::Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) {
  const int64_t n = pass.batch * size_;
  if (relu_out_) {
    const float* y = Scratch(pass, 1, 0);
    for (int64_t i = 0; i < n; ++i) d_out[i] = y[i] > 0.0f ? d_out[i] : 0.0f;
  }
  const float* rx = Scratch(pass, 0, 0);
  const float* h = conv0_->LastOutput(pass);  // conv1's input.
  // conv1 has no fused ReLU, so d_out survives its Backward (the skip needs it).
  float* dh = conv1_->Backward(pass, h, d_out, true);
  float* drx = conv0_->Backward(pass, rx, dh, need_d_in);
  if (!need_d_in) return nullptr;
  float* dx = Scratch(pass, 2, static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) dx[i] = d_out[i] + (in[i] > 0.0f ? drx[i] : 0.0f);
  return dx;
}

// ---------------------------------------------------------------------------

std::unique_ptr<Layer> MakeEncoder(const EncoderConfig& config, const NetworkIo& io, const Scope& scope) {
  const int64_t k = config.width_multiplier;
  int64_t c = io.channels, h = io.height, w = io.width;
  switch (config.type) {
    case EncoderType::kMinatar: {
      const int64_t out = config.minatar_channels * k;
      return std::make_unique<Conv2dSame>(scope.Child("conv"), h, w, c, out, 3, 1, /*relu=*/true,
                                          Xavier(9.0 * c, 9.0 * out));
    }
    case EncoderType::kNature: {
      // Dopamine's NatureDQNNetwork torso: xavier_uniform kernels, ReLU after each.
      auto seq = std::make_unique<Sequential>(scope.members());
      const std::array<int64_t, 3> channels{32 * k, 64 * k, 64 * k}, kernels{8, 4, 3}, strides{4, 2, 1};
      for (int i = 0; i < 3; ++i) {
        const int64_t kk = kernels[i] * kernels[i];
        auto conv = std::make_unique<Conv2dSame>(scope.Child("conv" + std::to_string(i)), h, w, c, channels[i],
                                                 kernels[i], strides[i], /*relu=*/true,
                                                 Xavier(static_cast<double>(kk * c), static_cast<double>(kk * channels[i])));
        h = conv->geometry().out_height;
        w = conv->geometry().out_width;
        c = channels[i];
        seq->Add(std::move(conv));
      }
      return seq;
    }
    case EncoderType::kImpala: {
      // Per stack: conv (xavier, no activation) -> max-pool 3x3/2 -> 2 residual
      // blocks; ReLU at the very end (fused into the last block).
      auto seq = std::make_unique<Sequential>(scope.members());
      constexpr std::array<int64_t, 3> kChannels{16, 32, 32};
      for (int i = 0; i < 3; ++i) {
        const Scope stack = scope.Child("stack" + std::to_string(i));
        const int64_t out = kChannels[i] * k;
        seq->Add(std::make_unique<Conv2dSame>(stack.Child("conv"), h, w, c, out, 3, 1, /*relu=*/false,
                                              Xavier(9.0 * c, 9.0 * out)));
        auto pool = std::make_unique<MaxPoolSame>(scope.members(), h, w, out, 3, 2);
        const ConvGeometry g = ConvGeometry::Same(h, w, out, out, 3, 2);
        h = g.out_height;
        w = g.out_width;
        c = out;
        seq->Add(std::move(pool));
        seq->Add(std::make_unique<ResidualBlock>(stack.Child("block0"), h, w, c, /*relu_out=*/false));
        seq->Add(std::make_unique<ResidualBlock>(stack.Child("block1"), h, w, c, /*relu_out=*/i == 2));
      }
      return seq;
    }
  }
  TOKENRL_CHECK(false, "MakeEncoder: unknown encoder type");
  return nullptr;
}

}  // namespace tokenrl::nn::cpu
