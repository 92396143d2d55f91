// Mixture-of-experts mixers of the libtorch backend: SoftMoE, top-1 token
// choice and expert choice (softmoe_reference.md sections 4, 5 and 12).
//
// All three share one skeleton. Per sample (routing never crosses batch
// elements or members), a router turns the tokens X [T, D] into
//   dispatch weights  Dw [T, n, p]: slot (j, k) of expert j reads
//                     sum_i Dw[i, j, k] X_i,
//   combine weights   Cw [T, n, p]: token i receives
//                     sum_{j,k} Cw[i, j, k] expert_j(slot (j, k)).
// SoftMoE makes both dense softmaxes of the same logits; the two sparse
// routers make Dw a 0/1 assignment and Cw = Dw * gate, which is the einsum
// formulation of vmoe and exactly Dopamine's gather/scatter (empty slots read
// zeros, their outputs go nowhere, unassigned tokens get 0). The n experts'
// d -> H -> d MLPs are held batched ([E, n, ...]) and run as batched matrix
// products over E*n, never as a loop over experts.
//
// Parameter names (under the mixer's prefix):
//   phi [E, D, n, p], scale [E, 1] (SoftMoE; scale only when normalize),
//   router.weight [E, D, n] (token / expert choice),
//   experts.hidden.{weight [E, n, D, H], bias [E, n, 1, H]} (or, when the head
//   is noisy, experts.hidden.{mu,sigma}_{weight,bias}),
//   experts.output.{weight [E, n, H, D], bias [E, n, 1, D]},
//   post_dense.{weight, bias} (post_moe_dense).
//
// Deliberate departures from Dopamine:
//  * `scale` exists only when normalization is on (Dopamine creates an unused
//    scalar either way; section 4.7 counts it as "(+1)").
//  * Noisy experts draw factorized noise per member and per expert (Dopamine
//    shares one draw across experts) and obey the NoiseSource switch, i.e. no
//    noise in evaluation (Dopamine ignores eval mode there; section 10.9).

#include <cmath>

#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {
namespace {

InitSpec LecunNormal(double fan_in) { return {.scheme = InitScheme::kLecunNormal, .fan_in = fan_in}; }
InitSpec Xavier(double fan_in, double fan_out) {
  return {.scheme = InitScheme::kXavierUniform, .fan_in = fan_in, .fan_out = fan_out};
}
InitSpec Constant(double value) { return {.scheme = InitScheme::kConstant, .value = value}; }

// n independent Dense(in -> out) layers, one per expert: x [E, n, N, in] ->
// [E, n, N, out]. Each expert is initialized as its own Flax Dense (xavier with
// fans (in, out), zero bias), or as a noisy layer (mu ~ U(+-1/sqrt(in)),
// sigma = sigma_scale / sqrt(in)) with its own factorized noise.
struct ExpertLinearImpl : torch::nn::Module {
  ExpertLinearImpl(const InitContext& ctx, int64_t experts, int64_t in, int64_t out, bool noisy, double sigma_scale,
                   std::shared_ptr<NoiseSource> noise_source)
      : noise(std::move(noise_source)) {
    if (!noisy) {
      weight = register_parameter("weight", ctx.Make("weight", {experts, in, out}, Xavier(in, out)));
      bias = register_parameter("bias", ctx.Make("bias", {experts, 1, out}, Constant(0.0)));
      return;
    }
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    const InitSpec mu{.scheme = InitScheme::kUniform, .value = bound};
    mu_weight = register_parameter("mu_weight", ctx.Make("mu_weight", {experts, in, out}, mu));
    sigma_weight =
        register_parameter("sigma_weight", ctx.Make("sigma_weight", {experts, in, out}, Constant(sigma_scale * bound)));
    mu_bias = register_parameter("mu_bias", ctx.Make("mu_bias", {experts, 1, out}, mu));
    sigma_bias =
        register_parameter("sigma_bias", ctx.Make("sigma_bias", {experts, 1, out}, Constant(sigma_scale * bound)));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor w = weight, b = bias;
    if (!weight.defined()) {
      w = mu_weight;
      b = mu_bias;
      if (noise && noise->enabled()) {
        const int64_t members = w.size(0), experts = w.size(1), in = w.size(2), out = w.size(3);
        auto f = [](const torch::Tensor& e) { return e.sign() * e.abs().sqrt(); };
        const torch::Tensor eps_in = f(noise->Normal({members, experts, in, 1})).to(w.options());
        const torch::Tensor eps_out = f(noise->Normal({members, experts, 1, out})).to(w.options());
        w = w + sigma_weight * (eps_in * eps_out);
        b = b + sigma_bias * eps_out;
      }
    }
    const int64_t members = w.size(0), experts = w.size(1), in = w.size(2), out = w.size(3);
    const int64_t rows = x.size(2);
    return torch::baddbmm(b.reshape({members * experts, 1, out}), x.reshape({members * experts, rows, in}),
                          w.reshape({members * experts, in, out}))
        .reshape({members, experts, rows, out});
  }

  torch::Tensor weight, bias;                                  // plain
  torch::Tensor mu_weight, sigma_weight, mu_bias, sigma_bias;  // noisy
  std::shared_ptr<NoiseSource> noise;
};
TORCH_MODULE(ExpertLinear);

// The experts' MLPs: slots [E, n, N, D] -> (outputs [E, n, N, D], hidden ReLU
// activations [E, n, N, H]). Only the first layer is noisy (section 4.4).
struct ExpertsImpl : torch::nn::Module {
  ExpertsImpl(const InitContext& ctx, int64_t experts, int64_t dim, int64_t hidden_units, const HeadConfig& head,
              std::shared_ptr<NoiseSource> noise) {
    hidden = register_module("hidden", ExpertLinear(ctx.Child("hidden"), experts, dim, hidden_units, head.noisy,
                                                    head.noisy_sigma_scale, std::move(noise)));
    output =
        register_module("output", ExpertLinear(ctx.Child("output"), experts, hidden_units, dim, false, 0.0, nullptr));
  }
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& slots) {
    torch::Tensor h = torch::relu(hidden->forward(slots));
    return {output->forward(h), h};
  }
  ExpertLinear hidden{nullptr}, output{nullptr};
};
TORCH_MODULE(Experts);

struct Routing {
  torch::Tensor dispatch, combine;  // [E, B, T, n, p]
  torch::Tensor router_probs;       // [E, B, T, n] (token / expert choice)
  torch::Tensor aux_loss;           // [E] or undefined
};

class MoeMixer : public MixerBase {
 public:
  MoeMixer(const NetworkConfig& config, const NetworkShapes& shapes, const InitContext& ctx,
           std::shared_ptr<NoiseSource> noise)
      : type_(config.mixer.type),
        normalize_(config.mixer.normalize),
        balance_weight_(config.mixer.load_balancing_loss_weight),
        tokens_(shapes.num_tokens),
        dim_(shapes.token_dim),
        experts_(config.mixer.num_experts),
        slots_(shapes.slots_per_expert) {
    if (type_ == MixerType::kSoftMoe) {
      // lecun_normal on the 3-D shape (D, n, p): JAX's fan_in is shape[-2] *
      // shape[0] = n D (section 4.3), not D.
      phi = register_parameter(
          "phi", ctx.Make("phi", {dim_, experts_, slots_}, LecunNormal(static_cast<double>(experts_ * dim_))));
      if (normalize_) scale = register_parameter("scale", ctx.Make("scale", {1}, Constant(1.0)));
    } else {
      router = register_module("router", MemberLinear(ctx.Child("router"), dim_, experts_, /*bias=*/false,
                                                      LecunNormal(static_cast<double>(dim_))));
    }
    experts = register_module("experts", Experts(ctx.Child("experts"), experts_, dim_, config.mixer.expert_hidden_units,
                                                 config.head, std::move(noise)));
    if (config.mixer.post_moe_dense) {
      post_dense = register_module(
          "post_dense", MemberLinear(ctx.Child("post_dense"), tokens_ * dim_, config.mixer.post_moe_dense_units));
    }
  }

  bool takes_tokens() const override { return true; }

  MixerOutput forward(const torch::Tensor& x) override {
    TORCH_CHECK(x.dim() == 4 && x.size(2) == tokens_ && x.size(3) == dim_, "MoE mixer expects tokens [E, B, ", tokens_,
                ", ", dim_, "], got ", x.sizes());
    const int64_t members = x.size(0), batch = x.size(1);
    Routing r = type_ == MixerType::kSoftMoe       ? SoftRoute(x)
                : type_ == MixerType::kTokenChoice ? TokenChoiceRoute(x)
                                                   : ExpertChoiceRoute(x);
    const int64_t slots = experts_ * slots_, groups = members * batch;
    // Slot inputs: per sample, Dw^T X [n p, D] (from the unnormalized X).
    torch::Tensor slot_in =
        torch::bmm(r.dispatch.reshape({groups, tokens_, slots}).transpose(1, 2), x.reshape({groups, tokens_, dim_}));
    // [E, B, n, p, D] -> [E, n, B p, D]: each expert sees its slots of every sample.
    slot_in = slot_in.reshape({members, batch, experts_, slots_, dim_})
                  .permute({0, 2, 1, 3, 4})
                  .reshape({members, experts_, batch * slots_, dim_});
    auto [slot_out, hidden] = experts->forward(slot_in);
    slot_out = slot_out.reshape({members, experts_, batch, slots_, dim_})
                   .permute({0, 2, 1, 3, 4})
                   .reshape({groups, slots, dim_});
    // Token outputs: Cw [T, n p] times the slot outputs [n p, D].
    const torch::Tensor y = torch::bmm(r.combine.reshape({groups, tokens_, slots}), slot_out);

    MixerOutput out;
    out.features = y.reshape({members, batch, tokens_ * dim_});  // Token-major flatten.
    if (post_dense) {
      out.features = torch::relu(post_dense->forward(out.features));
      out.hidden = out.features;
    }
    out.expert_hidden = hidden.reshape({members, experts_, batch, slots_, hidden.size(3)}).permute({0, 2, 1, 3, 4});
    out.aux_loss = r.aux_loss;
    out.router_probs = r.router_probs;
    // Every router's weights are exposed (the sparse ones as 0/1 dispatch and
    // gated combine) so that the diagnostics see them.
    out.dispatch = r.dispatch;
    out.combine = r.combine;
    return out;
  }

  torch::Tensor phi, scale;
  MemberLinear router{nullptr};
  Experts experts{nullptr};
  MemberLinear post_dense{nullptr};

 private:
  // SoftMoE (section 4.1): logits L = X^ phi^ [T, n, p]; dispatch = softmax
  // over tokens, combine = softmax jointly over the n p slots.
  Routing SoftRoute(const torch::Tensor& x) {
    const int64_t members = x.size(0), batch = x.size(1);
    torch::Tensor xn = x, phin = phi;
    if (normalize_) {
      // Dopamine's placement of eps: v / (||v|| + 1e-6). Tensor::norm's
      // backward is 0 (not NaN) for an all-zero token.
      xn = x / (x.norm(2, {-1}, /*keepdim=*/true) + 1e-6);
      phin = scale.reshape({members, 1, 1, 1}) * phi / (phi.norm(2, {1}, /*keepdim=*/true) + 1e-6);
    }
    const torch::Tensor logits =
        torch::bmm(xn.reshape({members, batch * tokens_, dim_}), phin.reshape({members, dim_, experts_ * slots_}))
            .reshape({members, batch, tokens_, experts_ * slots_});
    const std::vector<int64_t> shape{members, batch, tokens_, experts_, slots_};
    Routing r;
    r.dispatch = torch::softmax(logits, 2).reshape(shape);
    r.combine = torch::softmax(logits, 3).reshape(shape);
    return r;
  }

  // Router probabilities softmax(X W) over experts, [E, B, T, n].
  torch::Tensor RouterProbs(const torch::Tensor& x) {
    const int64_t members = x.size(0), batch = x.size(1);
    return torch::softmax(router->forward(x.reshape({members, batch * tokens_, dim_})), -1)
        .reshape({members, batch, tokens_, experts_});
  }

  // Top-1 token choice (section 5): each token picks its most probable expert
  // (argmax: the lowest expert index wins a tie); expert j keeps the first
  // p (= capacity) tokens in token order that picked it; kept tokens are
  // gated by their top probability, dropped tokens get 0.
  Routing TokenChoiceRoute(const torch::Tensor& x) {
    Routing r;
    r.router_probs = RouterProbs(x);
    const torch::Tensor choice = r.router_probs.argmax(-1);                      // [E, B, T]
    const torch::Tensor gate = r.router_probs.gather(-1, choice.unsqueeze(-1));  // [E, B, T, 1]
    const torch::Tensor chosen = torch::one_hot(choice, experts_);               // [E, B, T, n]
    // Position of each token among those that chose the same expert (-1 for
    // the experts it did not choose).
    const torch::Tensor position = chosen.cumsum(2) * chosen - 1;
    const torch::Tensor kept = position.ge(0).logical_and(position.lt(slots_));
    r.dispatch = torch::one_hot(position.clamp(0, slots_ - 1), slots_)
                     .mul(kept.unsqueeze(-1))
                     .to(x.scalar_type());  // [E, B, T, n, p]
    r.combine = r.dispatch * gate.unsqueeze(-1);
    if (balance_weight_ > 0.0) {
      // Importance loss (Riquelme et al. 2021; Dopamine losses.py): per
      // sample, CV^2 (population variance / mean^2) of the router
      // probabilities summed over tokens; averaged over the batch.
      const torch::Tensor importance = r.router_probs.sum(2);  // [E, B, n]
      const torch::Tensor mean = importance.mean(-1, /*keepdim=*/true);
      const torch::Tensor cv2 = (importance - mean).pow(2).mean(-1) / mean.squeeze(-1).pow(2);
      r.aux_loss = balance_weight_ * cv2.mean(1);
    }
    return r;
  }

  // Expert choice (vmoe's TopItemsPerExpert router, without noise): each
  // expert picks its p tokens with the highest gate; a token's output is the
  // gate-weighted sum over the experts that picked it (0 when none did).
  // Ties go to the lower token index: a stable descending sort, which is
  // deterministic on every device (torch::topk leaves tie order unspecified).
  Routing ExpertChoiceRoute(const torch::Tensor& x) {
    Routing r;
    r.router_probs = RouterProbs(x);
    const torch::Tensor by_expert = r.router_probs.detach().transpose(2, 3);  // [E, B, n, T]
    const torch::Tensor picked =
        std::get<1>(torch::sort(by_expert, /*stable=*/true, /*dim=*/-1, /*descending=*/true)).narrow(-1, 0, slots_);
    // One-hot over tokens [E, B, n, p, T] -> [E, B, T, n, p].
    r.dispatch = torch::one_hot(picked, tokens_).permute({0, 1, 4, 2, 3}).to(x.scalar_type());
    r.combine = r.dispatch * r.router_probs.unsqueeze(-1);
    return r;
  }

  MixerType type_;
  bool normalize_;
  double balance_weight_;
  int64_t tokens_, dim_, experts_, slots_;
};

}  // namespace

std::shared_ptr<MixerBase> MakeMoeMixer(const NetworkConfig& config, const NetworkShapes& shapes,
                                        const InitContext& ctx, std::shared_ptr<NoiseSource> noise) {
  TORCH_CHECK(config.mixer.type == MixerType::kSoftMoe || config.mixer.type == MixerType::kTokenChoice ||
                  config.mixer.type == MixerType::kExpertChoice,
              "MakeMoeMixer: not a MoE mixer type");
  TORCH_CHECK(shapes.slots_per_expert > 0, "MakeMoeMixer: slots_per_expert must be positive (use ComputeShapes)");
  return std::make_shared<MoeMixer>(config, shapes, ctx, std::move(noise));
}

}  // namespace tokenrl::nn::torch_backend
