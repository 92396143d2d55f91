// Noisy layers: the float normals both backends draw (nn/init.h
// StandardNormals), and the CPU engine's NoisyLinear on both of its paths
// (small batches never build W, larger ones do) against a float64 oracle.
// Torch-free; torch parity: tests/nn/torch/cpu_learner_vs_torch_test.cc.

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "tokenrl/nn/cpu/layer.h"
#include "tokenrl/nn/init.h"

namespace tokenrl::nn {
namespace {

TEST(StandardNormalsTest, MomentsTailsAndPairIndependence) {
  std::mt19937_64 rng(7);
  std::vector<float> z(200000);
  StandardNormals(rng, z);
  double sum = 0.0, sum_sq = 0.0, pair_product = 0.0;
  int tails = 0;
  for (size_t i = 0; i < z.size(); ++i) {
    sum += z[i];
    sum_sq += static_cast<double>(z[i]) * z[i];
    tails += std::fabs(z[i]) > 1.959964f;
    if (i % 2 == 0) pair_product += static_cast<double>(z[i]) * z[i + 1];
  }
  const double n = static_cast<double>(z.size());
  // Standard errors: mean 0.0022, variance 0.0032, tail fraction 0.0005,
  // pair correlation 0.0032; the bounds are about 4 of them.
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum_sq / n - (sum / n) * (sum / n), 1.0, 0.013);
  EXPECT_NEAR(tails / n, 0.05, 0.002);
  // cos and sin of one pair are independent normals, not copies.
  EXPECT_NEAR(pair_product / (n / 2), 0.0, 0.013);
}

TEST(StandardNormalsTest, OddSizesDropOnlyTheLastSine) {
  std::mt19937_64 odd_rng(11), even_rng(11);
  std::vector<float> odd(5), even(6);
  StandardNormals(odd_rng, odd);
  StandardNormals(even_rng, even);
  for (size_t i = 0; i < odd.size(); ++i) EXPECT_EQ(odd[i], even[i]) << i;
  EXPECT_EQ(odd_rng, even_rng);  // The same uniforms were consumed.
}

using cpu::kTrainContext;
using cpu::NoiseStream;
using cpu::NoisyLinear;
using cpu::ParamStore;
using cpu::Pass;
using cpu::Scope;

// y = x W + b and its gradients with W = mu + sigma eps_in eps_out^T, in double.
struct Oracle {
  std::vector<double> y, dx, d_mu, d_sigma;
};

Oracle NoisyOracle(const ParamStore& store, int e, const std::vector<float>& eps_in, const std::vector<float>& eps_out,
                   const std::vector<float>& x, const std::vector<float>& d_out, int64_t rows, int64_t in,
                   int64_t out) {
  const float* mu = store.Find("head.mu_weight")->w(e);
  const float* sigma = store.Find("head.sigma_weight")->w(e);
  const float* mu_b = store.Find("head.mu_bias")->w(e);
  const float* sigma_b = store.Find("head.sigma_bias")->w(e);
  auto w = [&](int64_t i, int64_t o) {
    return static_cast<double>(mu[i * out + o]) +
           static_cast<double>(sigma[i * out + o]) * eps_in[e * in + i] * eps_out[e * out + o];
  };
  Oracle r;
  r.y.assign(static_cast<size_t>(rows * out), 0.0);
  r.dx.assign(static_cast<size_t>(rows * in), 0.0);
  r.d_mu.assign(static_cast<size_t>(in * out), 0.0);
  r.d_sigma.assign(static_cast<size_t>(in * out), 0.0);
  for (int64_t s = 0; s < rows; ++s) {
    for (int64_t o = 0; o < out; ++o) {
      double acc = static_cast<double>(mu_b[o]) + static_cast<double>(sigma_b[o]) * eps_out[e * out + o];
      for (int64_t i = 0; i < in; ++i) acc += x[s * in + i] * w(i, o);
      r.y[s * out + o] = acc;
    }
    for (int64_t i = 0; i < in; ++i) {
      for (int64_t o = 0; o < out; ++o) {
        r.dx[s * in + i] += d_out[s * out + o] * w(i, o);
        r.d_mu[i * out + o] += static_cast<double>(x[s * in + i]) * d_out[s * out + o];
      }
    }
  }
  for (int64_t i = 0; i < in; ++i) {
    for (int64_t o = 0; o < out; ++o) {
      r.d_sigma[i * out + o] = r.d_mu[i * out + o] * eps_in[e * in + i] * eps_out[e * out + o];
    }
  }
  return r;
}

// Largest |a - b| over the largest |b|.
double RelativeError(const float* a, const std::vector<double>& b) {
  double diff = 0.0, scale = 1e-12;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return diff / scale;
}

TEST(NoisyLinearTest, BothPathsMatchTheOracle) {
  constexpr int64_t kIn = 37, kOut = 23;
  constexpr int kMembers = 2, kMember = 1;
  ParamStore store(5, kMembers);
  NoisyLinear layer(Scope(&store).Child("head"), kIn, kOut, /*sigma_scale=*/2.0);
  NoiseStream noise(9), replay(9);
  layer.DrawNoise(noise, kTrainContext, /*enabled=*/true);
  // The same seed replays the layer's draws: eps_in of every member, then eps_out.
  std::vector<float> eps_in(kMembers * kIn), eps_out(kMembers * kOut);
  replay.FactorizedNoise(eps_in.data(), static_cast<int64_t>(eps_in.size()));
  replay.FactorizedNoise(eps_out.data(), static_cast<int64_t>(eps_out.size()));

  for (const int batch : {1, 3, NoisyLinear::kFactorizedMaxBatch, NoisyLinear::kFactorizedMaxBatch + 4}) {
    SCOPED_TRACE(testing::Message() << "batch " << batch);
    std::mt19937 rng(static_cast<uint32_t>(batch));
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(batch * kIn)), d_out(static_cast<size_t>(batch * kOut));
    for (float& v : x) v = u(rng);
    for (float& v : d_out) v = u(rng);
    const Oracle oracle = NoisyOracle(store, kMember, eps_in, eps_out, x, d_out, batch, kIn, kOut);

    const Pass pass{.member = kMember, .context = kTrainContext, .batch = batch};
    EXPECT_LT(RelativeError(layer.Forward(pass, x.data()), oracle.y), 1e-5);
    const float* dx = layer.Backward(pass, x.data(), d_out.data(), /*need_d_in=*/true);
    EXPECT_LT(RelativeError(dx, oracle.dx), 1e-5);
    EXPECT_LT(RelativeError(store.Find("head.mu_weight")->g(kMember), oracle.d_mu), 1e-5);
    EXPECT_LT(RelativeError(store.Find("head.sigma_weight")->g(kMember), oracle.d_sigma), 1e-5);
  }
}

}  // namespace
}  // namespace tokenrl::nn
