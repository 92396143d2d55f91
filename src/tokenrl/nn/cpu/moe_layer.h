#pragma once
// The mixture-of-experts mixers of the CPU engine: SoftMoE, top-1 token choice
// and expert choice, forward and hand-written backward, equal to the torch
// backend's MoeMixer (nn/torch/moe.cc) within float32 rounding.
//
// Per sample, a router turns the tokens X [T, D] into dispatch weights
// Dw [T, n p] and combine weights Cw [T, n p] (slot (j, k) of expert j is
// column j p + k); slot inputs are Dw^T X [n p, D], each expert's d -> H -> d
// ReLU MLP maps its p slots (of every sample: [B p, D] per expert), and token
// outputs are Cw times the slot outputs. SoftMoE: Dw = softmax over tokens,
// Cw = softmax over slots of the logits X^ phi^ (X^, phi^ L2-normalized with a
// learned scale when `normalize`). Token choice: argmax expert per token,
// first `capacity` (= p) tokens per expert in token order, Cw = Dw * gate.
// Expert choice: each expert's top-p tokens by router probability (stable
// descending sort, ties to the lower token index), Cw = Dw * probability.
// Dispatch of the sparse routers is a constant 0/1 assignment: gradients reach
// the router only through the gate / probabilities in Cw (and the token
// choice importance loss).
//
// Parameters under the scope (the network passes "mixer"), in creation order:
//   phi [D, n, p] (lecun_normal, fan_in n D), scale [1] (normalize only) |
//   router.weight [D, n] (lecun_normal, fan_in D);
//   experts.hidden.{weight [n, D, H], bias [n, 1, H]} or, when config.head.noisy,
//   experts.hidden.{mu_weight, sigma_weight, mu_bias, sigma_bias};
//   experts.output.{weight [n, H, D], bias [n, 1, D]}.
// post_moe_dense is not part of this layer (the network appends a Linear).
//
// Internally, expert activations are held expert-major ([n, B p, .]) so that
// each expert runs as one GEMM over the batch; expert_hidden() serves the
// sample-major view [B, n, p, H] on demand.

#include <cstdint>
#include <vector>

#include "tokenrl/nn/cpu/layer.h"
#include "tokenrl/nn/network_config.h"

namespace tokenrl::nn::cpu {

class MoeLayer : public Layer {
 public:
  MoeLayer(const NetworkConfig& config, const NetworkShapes& shapes, const Scope& scope);

  int64_t in_size() const override { return tokens_ * dim_; }   // T * D
  int64_t out_size() const override { return tokens_ * dim_; }  // T * D, token-major
  const float* Forward(const Pass& pass, const float* in) override;
  // Writes every parameter gradient of this layer for pass.member (zeros where
  // unused) and adds the gradient of the member's aux loss (weight 1).
  float* Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) override;
  void DrawNoise(NoiseStream& noise, int context, bool enabled) override;

  // Results of the last Forward of (pass.context, pass.member).
  float aux_loss(const Pass& pass) const;             // 0 when the router has none
  const float* dispatch(const Pass& pass) const;      // [B, T, n, p]
  const float* combine(const Pass& pass) const;       // [B, T, n, p]
  const float* expert_hidden(const Pass& pass) const;  // [B, n, p, H], post-ReLU

  int64_t tokens() const { return tokens_; }
  int64_t token_dim() const { return dim_; }
  int64_t experts() const { return experts_; }
  int64_t slots_per_expert() const { return slots_; }
  int64_t expert_hidden_units() const { return hidden_; }
  bool sparse() const { return type_ != MixerType::kSoftMoe; }

 private:
  // Per (context, member) results of the last Forward (pointers into this
  // layer's scratch buffers) and non-float scratch.
  struct State {
    int batch = 0;
    float aux = 0.0f;
    const float* dispatch = nullptr;
    const float* combine = nullptr;
    const float* hidden = nullptr;   // [n, B p, H], expert-major
    std::vector<int32_t> index;      // routing scratch, max(T, n)
    std::vector<uint64_t> keys;      // expert choice sort keys, T
    // Sparse routers: the token of each slot [B, S] (-1: empty), grow-only.
    std::vector<int32_t> slot_token;
    std::vector<float> hidden_view;  // expert_hidden's sample-major copy (grow-only)
    bool hidden_view_valid = false;
  };
  State& state(const Pass& pass) { return states_[static_cast<size_t>(pass.context) * members() + pass.member]; }
  const State& state(const Pass& pass) const {
    return states_[static_cast<size_t>(pass.context) * members() + pass.member];
  }

  // Routers: fill dispatch and combine [B, T, n p] from the tokens x.
  void SoftRoute(const Pass& pass, const float* x, float* dw, float* cw);
  void SparseRoute(const Pass& pass, const float* x, float* dw, float* cw);
  // Router backward: from the gradients of the dispatch (SoftMoE; may be
  // overwritten) and combine weights (SoftMoE: overwritten; sparse: via the
  // scratch dprobs [B T, n]), writes the router's
  // parameter gradients and, when dx is not null, adds the input gradient.
  void SoftRouteBackward(const Pass& pass, const float* x, float* d_dw, float* d_cw, float* dx);
  // Sparse: dprobs [B T, n] holds d probabilities from the combine weights.
  void SparseRouteBackward(const Pass& pass, const float* x, float* dprobs, float* dx);

  MixerType type_;
  bool normalize_, noisy_;
  double balance_weight_;
  int64_t tokens_, dim_, experts_, slots_, hidden_;
  Param* phi_ = nullptr;
  Param* scale_ = nullptr;
  Param* router_ = nullptr;
  Param *w1_ = nullptr, *b1_ = nullptr;  // plain first layer
  Param *mu_w1_ = nullptr, *sigma_w1_ = nullptr, *mu_b1_ = nullptr, *sigma_b1_ = nullptr;  // noisy
  Param *w2_ = nullptr, *b2_ = nullptr;
  // Noisy first layer, per context: enabled flag and f(eps) [E, n, D] / [E, n, H].
  bool noise_enabled_[kContexts] = {false, false};
  std::vector<float> eps_in_[kContexts], eps_out_[kContexts];
  mutable std::vector<State> states_;
};

}  // namespace tokenrl::nn::cpu
