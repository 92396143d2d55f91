#include "tokenrl/nn/cpu/network.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "tokenrl/core/status.h"
#include "tokenrl/nn/cpu/conv_layers.h"
#include "tokenrl/nn/cpu/moe_layer.h"

namespace tokenrl::nn::cpu {
namespace {

// ---------------------------------------------------------------------------
// Tokenizers and poolings as fixed gathers over the channels-last map
// [H, W, C] (torch backend: tokenizers.cc, dense_mixers.cc).

using Sources = std::vector<std::vector<int32_t>>;

std::unique_ptr<Layer> Gather(int members, int64_t in_size, const Sources& sources, float scale) {
  return std::make_unique<GatherSum>(members, in_size, sources, scale);
}

// Tokens [T, D] from the map, or nullptr where the map already is the tokens
// (PerConv: token h W + w is the channel vector; PerSamp: one token).
std::unique_ptr<Layer> MakeTokenizer(const TokenizerConfig& config, const NetworkShapes& s, const Scope& scope) {
  const int c_n = s.feature_channels, h_n = s.feature_height, w_n = s.feature_width;
  const int64_t size = int64_t{c_n} * h_n * w_n;
  Sources sources;
  switch (config.type) {
    case TokenizerType::kPerConv:
    case TokenizerType::kPerSamp:
      return nullptr;
    case TokenizerType::kPerFeat:  // token c = feature map c, row-major.
      for (int c = 0; c < c_n; ++c) {
        for (int hw = 0; hw < h_n * w_n; ++hw) sources.push_back({hw * c_n + c});
      }
      return Gather(scope.members(), size, sources, 1.0f);
    case TokenizerType::kPerPatch: {  // rho x rho average pool (VALID), PerConv order.
      const int rho = static_cast<int>(config.patch_size);
      for (int ph = 0; ph < h_n / rho; ++ph) {
        for (int pw = 0; pw < w_n / rho; ++pw) {
          for (int c = 0; c < c_n; ++c) {
            std::vector<int32_t> list;
            for (int i = 0; i < rho; ++i) {
              for (int j = 0; j < rho; ++j) list.push_back(((ph * rho + i) * w_n + (pw * rho + j)) * c_n + c);
            }
            sources.push_back(std::move(list));
          }
        }
      }
      return Gather(scope.members(), size, sources, 1.0f / static_cast<float>(rho * rho));
    }
    case TokenizerType::kShuffled: {
      // The torch backend's permutation: Fisher-Yates with the portable
      // uniform draw, seeded from "tokenizer.permutation", member 0.
      std::vector<int64_t> perm(static_cast<size_t>(size));
      std::iota(perm.begin(), perm.end(), int64_t{0});
      std::mt19937_64 rng(ParameterSeed(scope.root_seed(), 0, scope.FullName("permutation")));
      for (size_t i = perm.size() - 1; i > 0; --i) {
        const size_t j = std::min(i, static_cast<size_t>(Uniform01(rng) * static_cast<double>(i + 1)));
        std::swap(perm[i], perm[j]);
      }
      for (int64_t p : perm) sources.push_back({static_cast<int32_t>(p)});
      return Gather(scope.members(), size, sources, 1.0f);
    }
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Head (torch backend: heads.cc): raw output Q [A] or logits [A, atoms].

class HeadLayer : public Layer {
 public:
  HeadLayer(const HeadConfig& config, int64_t features, int64_t actions, const Scope& scope)
      : Layer(scope.members()),
        features_(features),
        actions_(actions),
        atoms_(config.distributional ? config.num_atoms : 1),
        dueling_(config.dueling) {
    auto dense = [&](const std::string& name, int64_t out) -> std::unique_ptr<Layer> {
      if (config.noisy) return std::make_unique<NoisyLinear>(scope.Child(name), features, out, config.noisy_sigma_scale);
      return std::make_unique<Linear>(scope.Child(name), features, out, /*relu=*/false);
    };
    if (dueling_) {
      value_ = dense("value", atoms_);
      advantage_ = dense("advantage", actions_ * atoms_);
    } else {
      output_ = dense("output", actions_ * atoms_);
    }
  }
  int64_t in_size() const override { return features_; }
  int64_t out_size() const override { return actions_ * atoms_; }

  void DrawNoise(NoiseStream& noise, int context, bool enabled) override {
    if (dueling_) {
      value_->DrawNoise(noise, context, enabled);
      advantage_->DrawNoise(noise, context, enabled);
    } else {
      output_->DrawNoise(noise, context, enabled);
    }
  }

  const float* Forward(const Pass& pass, const float* in) override {
    if (!dueling_) return output_->Forward(pass, in);
    // logits[a, z] = v[z] + adv[a, z] - mean_a adv[a, z].
    const float* v = value_->Forward(pass, in);
    const float* adv = advantage_->Forward(pass, in);
    float* y = Scratch(pass, 0, static_cast<size_t>(pass.batch * out_size()));
    float* mean = Scratch(pass, 1, static_cast<size_t>(atoms_));
    for (int s = 0; s < pass.batch; ++s) {
      const float* vs = v + s * atoms_;
      const float* as = adv + s * actions_ * atoms_;
      float* ys = y + s * actions_ * atoms_;
      std::fill(mean, mean + atoms_, 0.0f);
      for (int64_t a = 0; a < actions_; ++a) {
        for (int64_t z = 0; z < atoms_; ++z) mean[z] += as[a * atoms_ + z];
      }
      for (int64_t z = 0; z < atoms_; ++z) mean[z] /= static_cast<float>(actions_);
      for (int64_t a = 0; a < actions_; ++a) {
        for (int64_t z = 0; z < atoms_; ++z) ys[a * atoms_ + z] = (vs[z] + as[a * atoms_ + z]) - mean[z];
      }
    }
    return y;
  }

  float* Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) override {
    if (!dueling_) return output_->Backward(pass, in, d_out, need_d_in);
    float* dv = Scratch(pass, 2, static_cast<size_t>(pass.batch * atoms_));
    float* dadv = Scratch(pass, 3, static_cast<size_t>(pass.batch * actions_ * atoms_));
    for (int s = 0; s < pass.batch; ++s) {
      const float* ds = d_out + s * actions_ * atoms_;
      float* dvs = dv + s * atoms_;
      float* das = dadv + s * actions_ * atoms_;
      std::fill(dvs, dvs + atoms_, 0.0f);
      for (int64_t a = 0; a < actions_; ++a) {
        for (int64_t z = 0; z < atoms_; ++z) dvs[z] += ds[a * atoms_ + z];
      }
      for (int64_t a = 0; a < actions_; ++a) {
        for (int64_t z = 0; z < atoms_; ++z) das[a * atoms_ + z] = ds[a * atoms_ + z] - dvs[z] / actions_;
      }
    }
    float* dx_v = value_->Backward(pass, in, dv, need_d_in);
    float* dx_a = advantage_->Backward(pass, in, dadv, need_d_in);
    if (!need_d_in) return nullptr;
    for (int64_t i = 0; i < pass.batch * features_; ++i) dx_a[i] += dx_v[i];
    return dx_a;
  }

 private:
  int64_t features_, actions_, atoms_;
  bool dueling_;
  std::unique_ptr<Layer> output_, value_, advantage_;
};

// Support z = linspace(v_min, v_max, atoms) in double (as torch's float64
// linspace: the first half counts up from v_min, the second down from v_max),
// then float.
std::vector<float> Linspace(double v_min, double v_max, int64_t n) {
  std::vector<float> z(static_cast<size_t>(n));
  const double step = (v_max - v_min) / static_cast<double>(n - 1);
  for (int64_t i = 0; i < n; ++i) {
    z[i] = static_cast<float>(i < n / 2 ? v_min + step * static_cast<double>(i)
                                        : v_max - step * static_cast<double>(n - 1 - i));
  }
  return z;
}

}  // namespace

Network::Network(const NetworkConfig& config, const NetworkIo& io, uint64_t seed, int members, uint64_t noise_seed)
    : config_(config),
      io_(io),
      members_(members),
      atoms_(config.head.distributional ? static_cast<int>(config.head.num_atoms) : 1),
      params_(seed, members),
      noise_(noise_seed),
      trunk_(members) {
  StatusOr<NetworkShapes> shapes = ComputeShapes(config, io);
  TOKENRL_CHECK(shapes.ok(), "cpu Network: {}", shapes.status().ToString());
  shapes_ = *shapes;
  const Scope root(&params_);
  const Scope mixer = root.Child("mixer");
  const MixerConfig& m = config.mixer;
  const int64_t map_size = int64_t{shapes_.feature_channels} * shapes_.feature_height * shapes_.feature_width;
  const int64_t hw = int64_t{shapes_.feature_height} * shapes_.feature_width;
  trunk_.Add(MakeEncoder(config.encoder, io, root.Child("encoder")));
  const bool tokens = m.type != MixerType::kFlatten && m.type != MixerType::kGap;
  if (tokens) {
    if (auto tokenizer = MakeTokenizer(config.tokenizer, shapes_, root.Child("tokenizer"))) {
      trunk_.Add(std::move(tokenizer));
    }
  }
  const int64_t t_n = shapes_.num_tokens, d_n = shapes_.token_dim;
  switch (m.type) {
    case MixerType::kFlatten:
      trunk_.Add(std::make_unique<Linear>(mixer.Child("dense"), map_size, m.hidden_units, true));
      if (m.extra_dense_layer) {
        trunk_.Add(std::make_unique<Linear>(mixer.Child("extra_dense"), m.hidden_units, m.hidden_units, true));
      }
      break;
    case MixerType::kTokenizedSum:
    case MixerType::kTokenizedMean: {
      trunk_.Add(std::make_unique<Linear>(mixer.Child("dense"), d_n, m.hidden_units, true, t_n));
      const float scale = m.type == MixerType::kTokenizedMean ? 1.0f / static_cast<float>(t_n) : 1.0f;
      trunk_.Add(std::make_unique<RowSum>(members, t_n, m.hidden_units, scale));
      break;
    }
    case MixerType::kGap:
      trunk_.Add(std::make_unique<RowSum>(members, hw, shapes_.feature_channels, 1.0f / static_cast<float>(hw)));
      trunk_.Add(std::make_unique<Linear>(mixer.Child("dense"), shapes_.feature_channels, m.hidden_units, true));
      break;
    case MixerType::kSoftMoe:
    case MixerType::kTokenChoice:
    case MixerType::kExpertChoice: {
      auto moe = std::make_unique<MoeLayer>(config, shapes_, mixer);
      moe_ = moe.get();
      trunk_.Add(std::move(moe));
      if (m.post_moe_dense) {
        trunk_.Add(std::make_unique<Linear>(mixer.Child("post_dense"), t_n * d_n, m.post_moe_dense_units, true));
      }
      break;
    }
  }
  TOKENRL_CHECK(trunk_.out_size() == shapes_.features, "cpu Network: mixer gives {} features, expected {}",
                trunk_.out_size(), shapes_.features);
  head_ = std::make_unique<HeadLayer>(config.head, shapes_.features, io.num_actions, root.Child("head"));
  if (config.head.distributional) support_ = Linspace(config.head.v_min, config.head.v_max, atoms_);
  const size_t slots = static_cast<size_t>(kContexts * members);
  input_.resize(slots);
  probabilities_.resize(slots);
  q_.resize(slots);
  features_.assign(slots, nullptr);
  raw_.assign(slots, nullptr);
}

Network::~Network() = default;

void Network::DrawNoise(int context, bool enabled) {
  trunk_.DrawNoise(noise_, context, enabled);
  head_->DrawNoise(noise_, context, enabled);
}

const float* Network::Forward(const Pass& pass, const uint8_t* obs) {
  const size_t slot = Slot(pass);
  const int c_n = io_.channels, hw = io_.height * io_.width;
  const size_t per_sample = static_cast<size_t>(c_n) * hw;
  std::vector<float>& x = input_[slot];
  if (x.size() < per_sample * pass.batch) x.resize(per_sample * pass.batch);
  // [C, H, W] uint8 -> [H, W, C] float times the input scale.
  const float scale = io_.input_scale;
  for (int s = 0; s < pass.batch; ++s) {
    const uint8_t* src = obs + s * per_sample;
    float* dst = x.data() + s * per_sample;
    for (int c = 0; c < c_n; ++c) {
      for (int i = 0; i < hw; ++i) dst[i * c_n + c] = static_cast<float>(src[c * hw + i]) * scale;
    }
  }
  const float* features = trunk_.Forward(pass, x.data());
  features_[slot] = features;
  const float* raw = head_->Forward(pass, features);
  raw_[slot] = raw;
  if (atoms_ == 1) return raw;
  // C51: p = softmax over atoms, Q = sum_z z p(z).
  const int64_t actions = io_.num_actions, rows = pass.batch * actions;
  std::vector<float>& p = probabilities_[slot];
  std::vector<float>& q = q_[slot];
  if (p.size() < static_cast<size_t>(rows * atoms_)) p.resize(static_cast<size_t>(rows * atoms_));
  if (q.size() < static_cast<size_t>(rows)) q.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* l = raw + r * atoms_;
    float* pr = p.data() + r * atoms_;
    const float max = *std::max_element(l, l + atoms_);
    float sum = 0.0f;
    for (int z = 0; z < atoms_; ++z) sum += (pr[z] = std::exp(l[z] - max));
    float value = 0.0f;
    for (int z = 0; z < atoms_; ++z) {
      pr[z] /= sum;
      value += pr[z] * support_[z];
    }
    q[r] = value;
  }
  return q.data();
}

const float* Network::raw_output(const Pass& pass) { return raw_[Slot(pass)]; }

const float* Network::probabilities(const Pass& pass) {
  return atoms_ == 1 ? nullptr : probabilities_[Slot(pass)].data();
}

const float* Network::features(const Pass& pass) const { return features_[Slot(pass)]; }

float Network::aux_loss(const Pass& pass) const { return moe_ ? moe_->aux_loss(pass) : 0.0f; }

void Network::Backward(const Pass& pass, float* d_raw) {
  float* d_features = head_->Backward(pass, features_[Slot(pass)], d_raw, /*need_d_in=*/true);
  trunk_.Backward(pass, input_[Slot(pass)].data(), d_features, /*need_d_in=*/false);
}

}  // namespace tokenrl::nn::cpu
