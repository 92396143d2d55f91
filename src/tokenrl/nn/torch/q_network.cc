#include "tokenrl/nn/torch/q_network.h"

#include "tokenrl/core/status.h"

namespace tokenrl::nn::torch_backend {

QNetworkImpl::QNetworkImpl(const NetworkConfig& config, const NetworkIo& io, uint64_t seed, int members,
                           uint64_t noise_seed)
    : config_(config), io_(io), members_(members), noise_(std::make_shared<NoiseSource>(noise_seed)) {
  StatusOr<NetworkShapes> shapes = ComputeShapes(config, io);
  TOKENRL_CHECK(shapes.ok(), "QNetwork: {}", shapes.status().ToString());
  shapes_ = *shapes;
  const InitContext ctx(seed, members);
  // The mixer is built first to learn whether it takes tokens; registration
  // order (and so parameter order) stays encoder, tokenizer, mixer, head.
  auto mixer = MakeMixer(config, shapes_, ctx.Child("mixer"), noise_);
  TOKENRL_CHECK(mixer != nullptr, "QNetwork: no mixer for this config");
  encoder_ = register_module("encoder", MakeEncoder(config.encoder, io, ctx.Child("encoder")));
  if (mixer->takes_tokens()) {
    tokenizer_ = register_module("tokenizer", MakeTokenizer(config.tokenizer, shapes_, ctx.Child("tokenizer")));
  }
  mixer_ = register_module("mixer", std::move(mixer));
  head_ = register_module("head", MakeHead(config.head, shapes_.features, io.num_actions, ctx.Child("head"), noise_));
  dtype_probe_ = parameters().front();
}

NetworkOutput QNetworkImpl::forward(const torch::Tensor& obs) {
  torch::Tensor x = obs.to(dtype_probe_.scalar_type());
  if (io_.input_scale != 1.0f) x = x * static_cast<double>(io_.input_scale);
  torch::Tensor h = encoder_->forward(x);
  if (tokenizer_) h = tokenizer_->forward(h);
  MixerOutput m = mixer_->forward(h);
  HeadOutput head = head_->forward(m.features);
  NetworkOutput out;
  out.q = std::move(head.q);
  out.logits = std::move(head.logits);
  out.probabilities = std::move(head.probabilities);
  out.features = std::move(m.features);
  out.aux_loss = std::move(m.aux_loss);
  out.hidden = std::move(m.hidden);
  out.expert_hidden = std::move(m.expert_hidden);
  out.dispatch = std::move(m.dispatch);
  out.combine = std::move(m.combine);
  out.router_probs = std::move(m.router_probs);
  return out;
}

}  // namespace tokenrl::nn::torch_backend
