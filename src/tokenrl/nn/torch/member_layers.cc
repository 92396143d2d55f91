
#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {

InitContext InitContext::Child(std::string_view name) const {
  return InitContext(root_seed_, members_, prefix_.empty() ? std::string(name) : prefix_ + "." + std::string(name));
}

torch::Tensor InitContext::Make(std::string_view name, const std::vector<int64_t>& shape, const InitSpec& spec) const {
  std::vector<int64_t> full{members_};
  full.insert(full.end(), shape.begin(), shape.end());
  torch::Tensor t = torch::empty(full, torch::kFloat32);
  const int64_t per_member = t.numel() / members_;
  const std::string full_name = prefix_.empty() ? std::string(name) : prefix_ + "." + std::string(name);
  float* data = t.data_ptr<float>();
  for (int e = 0; e < members_; ++e) {
    FillInit(std::span<float>(data + e * per_member, static_cast<size_t>(per_member)), spec,
             ParameterSeed(root_seed_, e, full_name));
  }
  return t;
}

torch::Tensor NoiseSource::Normal(const std::vector<int64_t>& shape) {
  torch::Tensor t = torch::empty(shape, torch::kFloat32);
  StandardNormals(rng_, std::span<float>(t.data_ptr<float>(), static_cast<size_t>(t.numel())));
  return t;
}

std::string NoiseSource::State() const { return RngState(rng_); }

bool NoiseSource::SetState(const std::string& state) { return SetRngState(rng_, state); }

namespace {

InitSpec Xavier(double fan_in, double fan_out) {
  return {.scheme = InitScheme::kXavierUniform, .fan_in = fan_in, .fan_out = fan_out};
}
InitSpec Zeros() { return {.scheme = InitScheme::kConstant, .value = 0.0}; }

}  // namespace

MemberLinearImpl::MemberLinearImpl(const InitContext& ctx, int64_t in, int64_t out, bool bias)
    : MemberLinearImpl(ctx, in, out, bias, Xavier(static_cast<double>(in), static_cast<double>(out))) {}

MemberLinearImpl::MemberLinearImpl(const InitContext& ctx, int64_t in, int64_t out, bool bias,
                                   const InitSpec& weight_init) {
  weight = register_parameter("weight", ctx.Make("weight", {in, out}, weight_init));
  if (bias) this->bias = register_parameter("bias", ctx.Make("bias", {1, out}, Zeros()));
}

torch::Tensor MemberLinearImpl::forward(const torch::Tensor& x) {
  return bias.defined() ? torch::baddbmm(bias, x, weight) : torch::bmm(x, weight);
}

NoisyMemberLinearImpl::NoisyMemberLinearImpl(const InitContext& ctx, int64_t in, int64_t out, double sigma_scale,
                                             std::shared_ptr<NoiseSource> noise_source)
    : noise(std::move(noise_source)) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  const InitSpec mu{.scheme = InitScheme::kUniform, .value = bound};
  const InitSpec sigma{.scheme = InitScheme::kConstant, .value = sigma_scale * bound};
  mu_weight = register_parameter("mu_weight", ctx.Make("mu_weight", {in, out}, mu));
  sigma_weight = register_parameter("sigma_weight", ctx.Make("sigma_weight", {in, out}, sigma));
  mu_bias = register_parameter("mu_bias", ctx.Make("mu_bias", {1, out}, mu));
  sigma_bias = register_parameter("sigma_bias", ctx.Make("sigma_bias", {1, out}, sigma));
}

torch::Tensor NoisyMemberLinearImpl::forward(const torch::Tensor& x) {
  if (!noise || !noise->enabled()) return torch::baddbmm(mu_bias, x, mu_weight);
  const int64_t members = mu_weight.size(0), in = mu_weight.size(1), out = mu_weight.size(2);
  auto f = [](const torch::Tensor& e) { return e.sign() * e.abs().sqrt(); };
  const torch::Tensor eps_in = f(noise->Normal({members, in, 1})).to(mu_weight.options());
  const torch::Tensor eps_out = f(noise->Normal({members, 1, out})).to(mu_weight.options());
  const torch::Tensor w = mu_weight + sigma_weight * (eps_in * eps_out);
  const torch::Tensor b = mu_bias + sigma_bias * eps_out;
  return torch::baddbmm(b, x, w);
}

MemberConv2dImpl::MemberConv2dImpl(const InitContext& ctx, int64_t in, int64_t out, int64_t kernel, int64_t stride)
    : MemberConv2dImpl(ctx, in, out, kernel, stride,
                       Xavier(static_cast<double>(kernel * kernel * in), static_cast<double>(kernel * kernel * out))) {}

MemberConv2dImpl::MemberConv2dImpl(const InitContext& ctx, int64_t in, int64_t out, int64_t kernel_size,
                                   int64_t stride_size, const InitSpec& weight_init)
    : kernel(kernel_size), stride(stride_size) {
  weight = register_parameter("weight", ctx.Make("weight", {out, in, kernel, kernel}, weight_init));
  bias = register_parameter("bias", ctx.Make("bias", {out}, Zeros()));
}

std::pair<int64_t, int64_t> SamePadding(int64_t size, int64_t kernel, int64_t stride) {
  const int64_t out = (size + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - size, 0);
  return {total / 2, total - total / 2};
}

torch::Tensor MemberConv2dImpl::forward(const torch::Tensor& x) {
  const int64_t members = x.size(0), batch = x.size(1), channels = x.size(2), h = x.size(3), w = x.size(4);
  const int64_t out = weight.size(1);
  const auto [h_lo, h_hi] = SamePadding(h, kernel, stride);
  const auto [w_lo, w_hi] = SamePadding(w, kernel, stride);
  const bool pad = h_lo + h_hi + w_lo + w_hi > 0;
  if (x.device().is_cpu()) {
    // One convolution per member on the CPU: libtorch 1.13's grouped
    // convolution through oneDNN 2.6 (Debian) returned wrong gradients on a
    // CPU without AVX-512 (Impala at 84x84: input gradient off by 14%,
    // tests/nn/torch/cpu_conv_parity_test.cc), while ungrouped ones agree with
    // the float64 oracle there. The GPU keeps the one grouped convolution.
    std::vector<torch::Tensor> ys;
    ys.reserve(static_cast<size_t>(members));
    for (int64_t e = 0; e < members; ++e) {
      torch::Tensor xe = x[e];
      if (pad) xe = torch::constant_pad_nd(xe, {w_lo, w_hi, h_lo, h_hi}, 0.0);
      ys.push_back(torch::conv2d(xe, weight[e], bias[e], torch::IntArrayRef({stride, stride})));
    }
    return torch::stack(ys);
  }
  // [E, B, C, H, W] -> [B, E*C, H, W]: one grouped convolution for all members.
  torch::Tensor grouped = x.transpose(0, 1).reshape({batch, members * channels, h, w});
  if (pad) grouped = torch::constant_pad_nd(grouped, {w_lo, w_hi, h_lo, h_hi}, 0.0);
  torch::Tensor y = torch::conv2d(grouped, weight.reshape({members * out, channels, kernel, kernel}),
                                  bias.reshape({members * out}), torch::IntArrayRef({stride, stride}),
                                  torch::IntArrayRef({0, 0}), torch::IntArrayRef({1, 1}), members);
  return y.reshape({batch, members, out, y.size(2), y.size(3)}).transpose(0, 1);
}

torch::Tensor MaxPoolSame(const torch::Tensor& x, int64_t kernel, int64_t stride) {
  const int64_t members = x.size(0), batch = x.size(1), channels = x.size(2), h = x.size(3), w = x.size(4);
  torch::Tensor flat = x.reshape({members * batch, channels, h, w});
  const auto [h_lo, h_hi] = SamePadding(h, kernel, stride);
  const auto [w_lo, w_hi] = SamePadding(w, kernel, stride);
  if (h_lo + h_hi + w_lo + w_hi > 0) {
    flat = torch::constant_pad_nd(flat, {w_lo, w_hi, h_lo, h_hi}, -std::numeric_limits<double>::infinity());
  }
  torch::Tensor y = torch::max_pool2d(flat, {kernel, kernel}, {stride, stride});
  return y.reshape({members, batch, channels, y.size(2), y.size(3)});
}

torch::Tensor FlattenChannelsLast(const torch::Tensor& x) {
  return x.permute({0, 1, 3, 4, 2}).reshape({x.size(0), x.size(1), -1});
}

}  // namespace tokenrl::nn::torch_backend
