// Output heads (softmoe_reference.md section 2.2): features [E, B, F] -> Q [E, B, A]
// and, for C51, logits/probabilities [E, B, A, atoms].
//
//  * Q head: one Dense(F -> A), xavier_uniform, zero bias (Dopamine DQN).
//  * C51: Dense(F -> A * atoms) reshaped to [A, atoms]; p = softmax over atoms;
//    Q = sum_z z p(z) with z = linspace(v_min, v_max, atoms).
//  * Dueling: value Dense(F -> atoms) and advantage Dense(F -> A * atoms)
//    (atoms = 1 without C51); logits = v + a - mean_a(a), applied to the logits
//    before the softmax (FullRainbowMoENetwork).
//  * Noisy: every Dense of the head is a NoisyMemberLinear (factorized
//    Gaussian, sigma = noisy_sigma_scale / sqrt(F)), drawing from the network's
//    NoiseSource.
//
// Parameter names: "output.*" for the single Dense of a non-dueling head,
// "value.*" and "advantage.*" for the dueling streams; noisy layers name their
// parameters mu_weight / sigma_weight / mu_bias / sigma_bias.

#include "tokenrl/nn/torch/modules.h"

namespace tokenrl::nn::torch_backend {
namespace {

// One Dense of the head, plain or noisy; x [E, B, in] -> [E, B, out].
class HeadLayer {
 public:
  HeadLayer() = default;
  HeadLayer(torch::nn::Module& owner, const std::string& name, const HeadConfig& config, int64_t in, int64_t out,
            const InitContext& ctx, const std::shared_ptr<NoiseSource>& noise) {
    if (config.noisy) {
      noisy_ =
          owner.register_module(name, NoisyMemberLinear(ctx.Child(name), in, out, config.noisy_sigma_scale, noise));
    } else {
      linear_ = owner.register_module(name, MemberLinear(ctx.Child(name), in, out));
    }
  }
  torch::Tensor operator()(const torch::Tensor& x) { return noisy_ ? noisy_->forward(x) : linear_->forward(x); }

 private:
  MemberLinear linear_{nullptr};
  NoisyMemberLinear noisy_{nullptr};
};

struct HeadImpl : HeadBase {
  HeadImpl(const HeadConfig& config, int64_t features, int64_t num_actions, const InitContext& ctx,
           const std::shared_ptr<NoiseSource>& noise)
      : num_actions_(num_actions),
        atoms_(config.distributional ? config.num_atoms : 1),
        distributional_(config.distributional),
        dueling_(config.dueling) {
    if (dueling_) {
      value_ = HeadLayer(*this, "value", config, features, atoms_, ctx, noise);
      advantage_ = HeadLayer(*this, "advantage", config, features, num_actions_ * atoms_, ctx, noise);
    } else {
      output_ = HeadLayer(*this, "output", config, features, num_actions_ * atoms_, ctx, noise);
    }
    if (distributional_) {
      // A buffer, so that it follows the module's device and dtype.
      support_ = register_buffer(
          "support", torch::linspace(config.v_min, config.v_max, atoms_, torch::TensorOptions(torch::kFloat64))
                         .to(torch::kFloat32));
    }
  }

  HeadOutput forward(const torch::Tensor& features) override {
    const int64_t members = features.size(0), batch = features.size(1);
    HeadOutput out;
    torch::Tensor logits;  // [E, B, A, atoms]
    if (dueling_) {
      const torch::Tensor v = value_(features).reshape({members, batch, 1, atoms_});
      const torch::Tensor a = advantage_(features).reshape({members, batch, num_actions_, atoms_});
      logits = v + a - a.mean(2, /*keepdim=*/true);
    } else {
      logits = output_(features);
      if (!distributional_) {  // Plain Q head: the layer output is Q.
        out.q = logits;
        return out;
      }
      logits = logits.reshape({members, batch, num_actions_, atoms_});
    }
    if (!distributional_) {  // Dueling without C51: Q = v + a - mean(a).
      out.q = logits.squeeze(-1);
      return out;
    }
    out.logits = logits;
    out.probabilities = torch::softmax(logits, -1);
    out.q = (out.probabilities * support_).sum(-1);
    return out;
  }

  int64_t num_actions_, atoms_;
  bool distributional_, dueling_;
  HeadLayer output_, value_, advantage_;
  torch::Tensor support_;
};

}  // namespace

std::shared_ptr<HeadBase> MakeHead(const HeadConfig& config, int64_t features, int64_t num_actions,
                                   const InitContext& ctx, std::shared_ptr<NoiseSource> noise) {
  return std::make_shared<HeadImpl>(config, features, num_actions, ctx, noise);
}

}  // namespace tokenrl::nn::torch_backend
