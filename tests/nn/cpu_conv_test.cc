// The CPU engine's convolutional layers and encoders (nn/cpu/conv_layers.h),
// torch-free: encoder shapes against ComputeShapes and parameter names against
// the torch backend's, closed-form convolutions (identity and shift kernels,
// where SAME puts its padding), forward and backward against a naive direct
// convolution in double (including layers that run in several chunks),
// finite differences through whole encoders, and the max-pool's gradient
// routing (ties go to the first maximum in scan order, as torch).

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "tokenrl/nn/cpu/conv_layers.h"

namespace tokenrl::nn::cpu {
namespace {

std::vector<float> Random(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = u(rng);
  return v;
}

EncoderConfig Encoder(EncoderType type, int64_t k = 1) {
  EncoderConfig c;
  c.type = type;
  c.width_multiplier = k;
  return c;
}

NetworkIo Io(int channels, int size) { return {.channels = channels, .height = size, .width = size, .num_actions = 4}; }

TEST(CpuConv, EncoderShapesMatchComputeShapes) {
  for (EncoderType type : {EncoderType::kMinatar, EncoderType::kNature, EncoderType::kImpala}) {
    for (int size : {10, 84}) {
      for (int64_t k : {1, 2}) {
        NetworkConfig config;
        config.encoder = Encoder(type, k);
        const NetworkIo io = Io(4, size);
        StatusOr<NetworkShapes> shapes = ComputeShapes(config, io);
        ASSERT_TRUE(shapes.ok()) << shapes.status().ToString();
        ParamStore store(7, 1);
        auto enc = MakeEncoder(config.encoder, io, Scope(&store).Child("encoder"));
        SCOPED_TRACE(std::to_string(static_cast<int>(type)) + " size " + std::to_string(size));
        EXPECT_EQ(enc->in_size(), 4 * size * size);
        EXPECT_EQ(enc->out_size(),
                  int64_t{shapes->feature_channels} * shapes->feature_height * shapes->feature_width);
      }
    }
  }
}

TEST(CpuConv, EncoderParametersAsTorch) {
  auto names = [](EncoderType type) {
    ParamStore store(7, 2);
    MakeEncoder(Encoder(type), Io(4, 10), Scope(&store).Child("encoder"));
    std::vector<std::string> out;
    for (const auto& p : store.params()) {
      std::string text = p->name;
      for (int64_t d : p->shape) text += fmt::format(" {}", d);
      out.push_back(text);
    }
    return out;
  };
  EXPECT_EQ(names(EncoderType::kMinatar),
            (std::vector<std::string>{"encoder.conv.weight 16 4 3 3", "encoder.conv.bias 16"}));
  EXPECT_EQ(names(EncoderType::kNature),
            (std::vector<std::string>{"encoder.conv0.weight 32 4 8 8", "encoder.conv0.bias 32",
                                      "encoder.conv1.weight 64 32 4 4", "encoder.conv1.bias 64",
                                      "encoder.conv2.weight 64 64 3 3", "encoder.conv2.bias 64"}));
  const std::vector<std::string> impala = names(EncoderType::kImpala);
  ASSERT_EQ(impala.size(), 30u);
  EXPECT_EQ(impala[0], "encoder.stack0.conv.weight 16 4 3 3");
  EXPECT_EQ(impala[2], "encoder.stack0.block0.conv0.weight 16 16 3 3");
  EXPECT_EQ(impala[8], "encoder.stack0.block1.conv1.weight 16 16 3 3");
  EXPECT_EQ(impala[10], "encoder.stack1.conv.weight 32 16 3 3");
  EXPECT_EQ(impala[29], "encoder.stack2.block1.conv1.bias 32");
  // Initializers: xavier bound for the minatar conv, lecun for the blocks, zero biases.
  ParamStore store(7, 2);
  MakeEncoder(Encoder(EncoderType::kImpala), Io(4, 10), Scope(&store).Child("encoder"));
  EXPECT_EQ(store.Find("encoder.stack0.conv.weight")->init.scheme, InitScheme::kXavierUniform);
  EXPECT_EQ(store.Find("encoder.stack0.conv.weight")->init.fan_out, 9.0 * 16);
  EXPECT_EQ(store.Find("encoder.stack1.block0.conv0.weight")->init.scheme, InitScheme::kLecunNormal);
  EXPECT_EQ(store.Find("encoder.stack1.block0.conv0.weight")->init.fan_in, 9.0 * 32);
  for (float b : store.Find("encoder.stack2.block1.conv1.bias")->value) EXPECT_EQ(b, 0.0f);
}

// A conv whose weight is set by hand: w(o, c, kh, kw).
struct HandConv {
  HandConv(int64_t h, int64_t w, int64_t cin, int64_t cout, int64_t k, int64_t s, bool relu)
      : store(1, 1), conv(Scope(&store).Child("c"), h, w, cin, cout, k, s, relu, InitSpec{}) {
    weight = store.Find("c.weight");
    bias = store.Find("c.bias");
    std::fill(weight->value.begin(), weight->value.end(), 0.0f);
  }
  float& W(int64_t o, int64_t c, int64_t kh, int64_t kw) {
    const ConvGeometry& g = conv.geometry();
    return weight->value[static_cast<size_t>(((o * g.in_channels + c) * g.kernel + kh) * g.kernel + kw)];
  }
  ParamStore store;
  Conv2dSame conv;
  Param *weight, *bias;
};

TEST(CpuConv, IdentityKernelAddsBiasAndRelu) {
  HandConv hc(5, 6, 3, 3, 3, 1, /*relu=*/true);
  for (int c = 0; c < 3; ++c) hc.W(c, c, 1, 1) = 1.0f;
  hc.bias->value = {0.5f, -0.25f, 0.0f};
  const std::vector<float> x = Random(2 * 5 * 6 * 3, 3);
  const float* y = hc.conv.Forward({.batch = 2}, x.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_FLOAT_EQ(y[i], std::max(x[i] + hc.bias->value[i % 3], 0.0f)) << i;
}

// SAME on 5 with k = 3, s = 2: out 3, total padding (3 - 1) 2 + 3 - 5 = 2 ->
// one before, one after; on 6: out 3, padding 1, all of it after.
TEST(CpuConv, SamePaddingGoesAtTheEnd) {
  for (int64_t size : {5, 6}) {
    HandConv hc(size, size, 1, 2, 3, 2, /*relu=*/false);
    hc.W(0, 0, 0, 0) = 1.0f;  // y0[ho, wo] = x[2 ho - lo, 2 wo - lo]
    hc.W(1, 0, 2, 2) = 1.0f;  // y1[ho, wo] = x[2 ho - lo + 2, 2 wo - lo + 2]
    const int64_t lo = size == 5 ? 1 : 0;
    ASSERT_EQ(hc.conv.geometry().out_height, 3);
    const std::vector<float> x = Random(size * size, 4);
    const float* y = hc.conv.Forward({.batch = 1}, x.data());
    auto at = [&](int64_t h, int64_t w) {
      return h < 0 || w < 0 || h >= size || w >= size ? 0.0f : x[static_cast<size_t>(h * size + w)];
    };
    for (int64_t ho = 0; ho < 3; ++ho) {
      for (int64_t wo = 0; wo < 3; ++wo) {
        EXPECT_EQ(y[(ho * 3 + wo) * 2 + 0], at(2 * ho - lo, 2 * wo - lo)) << size << " " << ho << " " << wo;
        EXPECT_EQ(y[(ho * 3 + wo) * 2 + 1], at(2 * ho - lo + 2, 2 * wo - lo + 2)) << size << " " << ho << " " << wo;
      }
    }
  }
}

// Naive direct convolution in double: forward, and the backward of
// loss = sum(y * r).
struct Naive {
  std::vector<double> y, dw, db, dx;
};
Naive NaiveConv(const ConvGeometry& g, bool relu, const float* w, const float* b, const std::vector<float>& x,
                const std::vector<float>& r, int64_t batch) {
  Naive n;
  const int64_t cin = g.in_channels, cout = g.out_channels, k = g.kernel;
  n.y.assign(static_cast<size_t>(batch * g.out_size()), 0.0);
  n.dw.assign(static_cast<size_t>(cout * cin * k * k), 0.0);
  n.db.assign(static_cast<size_t>(cout), 0.0);
  n.dx.assign(x.size(), 0.0);
  auto xi = [&](int64_t s, int64_t h, int64_t ww, int64_t c) { return (s * g.height + h) * g.width * cin + ww * cin + c; };
  for (int64_t s = 0; s < batch; ++s) {
    for (int64_t ho = 0; ho < g.out_height; ++ho) {
      for (int64_t wo = 0; wo < g.out_width; ++wo) {
        for (int64_t o = 0; o < cout; ++o) {
          double acc = b[o];
          for (int64_t kh = 0; kh < k; ++kh) {
            for (int64_t kw = 0; kw < k; ++kw) {
              const int64_t h = ho * g.stride + kh - g.pad_top, ww = wo * g.stride + kw - g.pad_left;
              if (h < 0 || ww < 0 || h >= g.height || ww >= g.width) continue;
              for (int64_t c = 0; c < cin; ++c) {
                acc += static_cast<double>(w[((o * cin + c) * k + kh) * k + kw]) * x[static_cast<size_t>(xi(s, h, ww, c))];
              }
            }
          }
          const size_t yi = static_cast<size_t>(s * g.out_size() + (ho * g.out_width + wo) * cout + o);
          n.y[yi] = relu ? std::max(acc, 0.0) : acc;
          const double d = relu && acc <= 0.0 ? 0.0 : r[yi];
          n.db[static_cast<size_t>(o)] += d;
          for (int64_t kh = 0; kh < k; ++kh) {
            for (int64_t kw = 0; kw < k; ++kw) {
              const int64_t h = ho * g.stride + kh - g.pad_top, ww = wo * g.stride + kw - g.pad_left;
              if (h < 0 || ww < 0 || h >= g.height || ww >= g.width) continue;
              for (int64_t c = 0; c < cin; ++c) {
                const size_t wi = static_cast<size_t>(((o * cin + c) * k + kh) * k + kw);
                n.dw[wi] += d * x[static_cast<size_t>(xi(s, h, ww, c))];
                n.dx[static_cast<size_t>(xi(s, h, ww, c))] += d * w[wi];
              }
            }
          }
        }
      }
    }
  }
  return n;
}

// max |a - b| / max(1, max |b|). Sums over thousands of rows in float32
// (GEMMs, bias gradients) stay within a few 1e-6 of the double reference.
template <typename A>
double RelError(const A* a, const std::vector<double>& b) {
  double err = 0.0, scale = 1.0;
  for (size_t i = 0; i < b.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return err / scale;
}

TEST(CpuConv, MatchesNaiveConvolution) {
  struct Case {
    int64_t h, w, cin, cout, k, s, batch;
  };
  // Out channels a multiple of 16 take the panel kernels, others the BLAS
  // GEMM. The last three run in several chunks of samples (the column matrix
  // of one sample is over a quarter of the chunk limit), so Backward
  // recomputes them and accumulates the weight gradient over chunks.
  const std::vector<Case> cases = {{5, 4, 2, 3, 3, 1, 2},    {10, 10, 4, 16, 3, 1, 3},  {10, 10, 10, 16, 3, 1, 5},
                                   {7, 7, 3, 32, 4, 2, 2},   {9, 11, 4, 5, 8, 4, 2},    {2, 3, 2, 2, 3, 2, 2},
                                   {84, 84, 4, 32, 8, 4, 9}, {48, 48, 16, 4, 3, 1, 3}, {64, 64, 8, 16, 3, 1, 3}};
  for (const Case& c : cases) {
    for (bool relu : {false, true}) {
      SCOPED_TRACE(fmt::format("{}x{}x{} -> {} k{} s{} batch {} relu {}", c.h, c.w, c.cin, c.cout, c.k, c.s,
                               c.batch, relu));
      ParamStore store(11, 2);
      Conv2dSame conv(Scope(&store).Child("c"), c.h, c.w, c.cin, c.cout, c.k, c.s, relu,
                      InitSpec{.scheme = InitScheme::kUniform, .value = 0.5});
      Param* bias = store.Find("c.bias");
      bias->value = Random(static_cast<int64_t>(bias->value.size()), 5, -0.2f, 0.2f);
      const int member = 1;
      const ConvGeometry& g = conv.geometry();
      const std::vector<float> x = Random(c.batch * g.in_size(), 6);
      const std::vector<float> r = Random(c.batch * g.out_size(), 7);
      const Pass pass{.member = member, .batch = static_cast<int>(c.batch)};
      const float* y = conv.Forward(pass, x.data());
      const Naive n = NaiveConv(g, relu, store.Find("c.weight")->w(member), bias->w(member), x, r, c.batch);
      EXPECT_LT(RelError(y, n.y), 1e-5);
      std::vector<float> d = r;
      const float* dx = conv.Backward(pass, x.data(), d.data(), true);
      EXPECT_LT(RelError(store.Find("c.weight")->g(member), n.dw), 1e-5);
      EXPECT_LT(RelError(bias->g(member), n.db), 1e-5);
      EXPECT_LT(RelError(dx, n.dx), 1e-5);
      // Member 0 untouched.
      for (float v : std::vector<float>(store.Find("c.weight")->grad.begin(),
                                        store.Find("c.weight")->grad.begin() + store.Find("c.weight")->numel)) {
        ASSERT_EQ(v, 0.0f);
      }
      // need_d_in = false: same parameter gradients, no input gradient.
      std::vector<float> before(store.Find("c.weight")->g(member),
                                store.Find("c.weight")->g(member) + store.Find("c.weight")->numel);
      conv.Forward(pass, x.data());
      d = r;
      EXPECT_EQ(conv.Backward(pass, x.data(), d.data(), false), nullptr);
      EXPECT_TRUE(std::equal(before.begin(), before.end(), store.Find("c.weight")->g(member)));
    }
  }
}

// Central differences of loss = sum(out * r) in double over float outputs.
void CheckFiniteDifferences(Layer& layer, ParamStore& store, int64_t batch, uint64_t seed, int samples_per_tensor) {
  const Pass pass{.member = 0, .batch = static_cast<int>(batch)};
  std::vector<float> x = Random(batch * layer.in_size(), seed);
  const std::vector<float> r = Random(batch * layer.out_size(), seed + 1);
  auto loss = [&]() {
    const float* y = layer.Forward(pass, x.data());
    double l = 0.0;
    for (size_t i = 0; i < r.size(); ++i) l += static_cast<double>(y[i]) * r[i];
    return l;
  };
  loss();
  std::vector<float> d = r;
  const float* dx_ptr = layer.Backward(pass, x.data(), d.data(), true);
  ASSERT_NE(dx_ptr, nullptr);
  const std::vector<float> dx(dx_ptr, dx_ptr + x.size());
  std::vector<std::vector<float>> grads;
  for (const auto& p : store.params()) grads.emplace_back(p->g(0), p->g(0) + p->numel);
  // Points within eps of a ReLU kink or a max-pool switch are skipped: there
  // the one-sided differences disagree.
  const float eps = 1e-3f;
  std::mt19937_64 rng(seed + 2);
  int checked = 0, skipped = 0;
  auto check = [&](float* v, float analytic, const std::string& what) {
    const float saved = *v;
    const double center = loss();
    *v = saved + eps;
    const double plus = loss();
    *v = saved - eps;
    const double minus = loss();
    *v = saved;
    const double tolerance = 2e-3 + 1e-2 * std::fabs(analytic);
    if (std::fabs((plus - center) - (center - minus)) / eps > tolerance) {
      ++skipped;
      return;
    }
    ++checked;
    EXPECT_NEAR(analytic, (plus - minus) / (2.0 * eps), tolerance) << what;
  };
  for (size_t t = 0; t < store.params().size(); ++t) {
    Param& p = *store.params()[t];
    for (int i = 0; i < samples_per_tensor; ++i) {
      const int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(p.numel));
      check(p.w(0) + j, grads[t][static_cast<size_t>(j)], p.name + "[" + std::to_string(j) + "]");
    }
  }
  for (int i = 0; i < samples_per_tensor; ++i) {
    const size_t j = rng() % x.size();
    check(&x[j], dx[j], "input[" + std::to_string(j) + "]");
  }
  EXPECT_LE(skipped * 10, checked) << skipped << " skipped near kinks";
}

TEST(CpuConv, FiniteDifferencesConv) {
  for (bool relu : {false, true}) {
    for (int64_t s : {1, 2}) {
      ParamStore store(3, 1);
      Conv2dSame conv(Scope(&store).Child("c"), 5, 4, 2, 3, 3, s, relu,
                      InitSpec{.scheme = InitScheme::kUniform, .value = 0.5});
      store.Find("c.bias")->value = Random(3, 9, -0.2f, 0.2f);
      SCOPED_TRACE(fmt::format("relu {} stride {}", relu, s));
      CheckFiniteDifferences(conv, store, 2, 21, 12);
    }
  }
}

TEST(CpuConv, FiniteDifferencesEncoders) {
  struct Case {
    EncoderType type;
    int channels, size;
  };
  for (const Case& c : {Case{EncoderType::kMinatar, 4, 6}, Case{EncoderType::kNature, 2, 12},
                        Case{EncoderType::kImpala, 2, 7}}) {
    SCOPED_TRACE(static_cast<int>(c.type));
    ParamStore store(5, 1);
    auto enc = MakeEncoder(Encoder(c.type), Io(c.channels, c.size), Scope(&store).Child("encoder"));
    // Non-zero biases, so that every path is exercised.
    for (const auto& p : store.params()) {
      if (p->shape.size() == 1) p->value = Random(p->numel, 31, -0.1f, 0.1f);
    }
    CheckFiniteDifferences(*enc, store, 2, 41, 6);
  }
}

TEST(CpuConv, MaxPoolRoutesToFirstMaximum) {
  // One channel 4x4 -> 2x2 (k3 s2, padding 1 after): windows rows/cols {0,1,2}
  // and {2,3}. Input 2 x channels: channel 0 has ties, channel 1 distinct.
  MaxPoolSame pool(1, 4, 4, 2, 3, 2);
  ASSERT_EQ(pool.out_size(), 2 * 2 * 2);
  std::vector<float> x(32, 0.0f);
  auto at = [&](int h, int w, int c) -> float& { return x[static_cast<size_t>((h * 4 + w) * 2 + c)]; };
  // Channel 0: a 5 at (0,1) and (1,0) (tie in window (0,0): (0,1) comes first
  // in row-major order), a 5 at (2,2) shared by all four windows (window (0,0)
  // keeps (0,1), the others take (2,2) first).
  at(0, 1, 0) = 5.0f;
  at(1, 0, 0) = 5.0f;
  at(2, 2, 0) = 5.0f;
  // Channel 1: negatives everywhere, max of window (1,1) at (3,3); all windows
  // tie at -1 elsewhere -> first cell.
  for (int h = 0; h < 4; ++h) {
    for (int w = 0; w < 4; ++w) at(h, w, 1) = -1.0f;
  }
  at(3, 3, 1) = -0.5f;
  const float* y = pool.Forward({.batch = 1}, x.data());
  EXPECT_EQ(std::vector<float>(y, y + 8), (std::vector<float>{5, -1, 5, -1, 5, -1, 5, -0.5f}));
  std::vector<float> d = {1, 10, 2, 20, 3, 30, 4, 40};
  const float* dx = pool.Backward({.batch = 1}, x.data(), d.data(), true);
  std::vector<float> expected(32, 0.0f);
  auto e = [&](int h, int w, int c) -> float& { return expected[static_cast<size_t>((h * 4 + w) * 2 + c)]; };
  e(0, 1, 0) = 1.0f;
  e(2, 2, 0) = 2.0f + 3.0f + 4.0f;
  e(0, 0, 1) = 10.0f;  // window (0,0) starts at (0,0)
  e(0, 2, 1) = 20.0f;  // window (0,1) starts at (0,2)
  e(2, 0, 1) = 30.0f;  // window (1,0) starts at (2,0)
  e(3, 3, 1) = 40.0f;
  EXPECT_EQ(std::vector<float>(dx, dx + 32), expected);
}

TEST(CpuConv, ContextsKeepSeparateCaches) {
  // A pass in the inference context between the training Forward and its
  // Backward must not change the training gradients.
  ParamStore store(9, 1);
  auto enc = MakeEncoder(Encoder(EncoderType::kImpala), Io(3, 9), Scope(&store).Child("encoder"));
  const std::vector<float> x = Random(2 * enc->in_size(), 1), other = Random(4 * enc->in_size(), 2);
  const std::vector<float> r = Random(2 * enc->out_size(), 3);
  auto grads = [&](bool interleave) {
    enc->Forward({.batch = 2}, x.data());
    if (interleave) enc->Forward({.context = kInferenceContext, .batch = 4}, other.data());
    std::vector<float> d = r;
    enc->Backward({.batch = 2}, x.data(), d.data(), false);
    std::vector<float> g;
    for (const auto& p : store.params()) g.insert(g.end(), p->grad.begin(), p->grad.end());
    return g;
  };
  EXPECT_EQ(grads(false), grads(true));
}

}  // namespace
}  // namespace tokenrl::nn::cpu
