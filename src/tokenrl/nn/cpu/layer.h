#pragma once
// Building blocks of the built-in CPU engine (the "cpu" learner backend): a
// static chain of layers with hand-written forward and backward passes on
// float32 buffers, GEMMs from oneDNN (blas.h). Torch-free.
//
// Conventions (shared with the libtorch backend, which is this engine's
// oracle; see nn/torch/modules.h):
//  * Parameters are created through Scope::Make with the torch backend's
//    dotted names, so member e's initial values come from
//    ParameterSeed(root, e, name) and equal the torch backend's bit for bit.
//    Layouts per member: linear weight [in, out], bias [1, out]; conv weight
//    [out, in, k, k], bias [out]; experts [n, in, out] / [n, 1, out].
//  * Work is per member: member e's forward and backward touch only member
//    e's parameters, gradients and buffers, so members run on any thread and
//    results never depend on the thread count.
//  * Activations are per sample, flat and channels-last: a feature map is
//    [H, W, C] (index (h W + w) C + c), tokens are [T, D]. A layer maps
//    [batch, in_size()] to [batch, out_size()].
//  * Every buffer belongs to a (context, member) pair and only grows: after
//    the first passes at the largest batch, nothing is allocated. Context 0
//    holds the training pass whose activations Backward reads; context 1
//    serves every other pass (acting, bootstrap targets, diagnostics), so
//    those never clobber the training pass's caches.
//  * Noise (noisy layers) is drawn by DrawNoise for one context, for all
//    members at once, in the order the torch backend draws it (layers in
//    forward order; per layer eps_in [E, in] then eps_out [E, out]), before
//    any member's forward runs.

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/nn/init.h"
#include "tokenrl/nn/cpu/vector_isa.h"

namespace tokenrl::nn::cpu {

// out[o] = sum over rows of d[rows, cols] column o (bias gradients, which sum
// over batch x tokens rows). Rows are summed in blocks of 32, then the block
// sums are added, so the rounding error grows like 32 + rows / 32 instead of
// rows: as accurate as libtorch's blocked reductions (a plain running sum over
// 500 rows was 10-20x less accurate than float32 libtorch against a float64
// oracle, tests/nn/torch/cpu_learner_vs_torch_test.cc). Vector clones: see
// vector_isa.h.
[[gnu::always_inline]] inline void ColumnSumsBody(const float* __restrict d, int64_t rows, int64_t cols,
                                                  float* __restrict out) {
  constexpr int64_t kRowBlock = 32, kColumnChunk = 64;
  for (int64_t c0 = 0; c0 < cols; c0 += kColumnChunk) {
    const int64_t width = cols - c0 < kColumnChunk ? cols - c0 : kColumnChunk;
    float total[kColumnChunk] = {};
    for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
      const int64_t r1 = rows - r0 < kRowBlock ? rows : r0 + kRowBlock;
      float block[kColumnChunk] = {};
      for (int64_t r = r0; r < r1; ++r) {
        const float* __restrict row = d + r * cols + c0;
        for (int64_t o = 0; o < width; ++o) block[o] += row[o];
      }
      for (int64_t o = 0; o < width; ++o) total[o] += block[o];
    }
    for (int64_t o = 0; o < width; ++o) out[c0 + o] = total[o];
  }
}
TOKENRL_VECTOR_KERNEL(ColumnSums, ColumnSumsBody)

inline constexpr int kContexts = 2;
inline constexpr int kTrainContext = 0;
inline constexpr int kInferenceContext = 1;

// One parameter tensor: every member's values, contiguous, [E, numel].
struct Param {
  std::string name;            // Full dotted name, e.g. "mixer.dense.weight".
  std::vector<int64_t> shape;  // Per member.
  int64_t numel = 0;           // Per member.
  InitSpec init;               // The construction initializer (for resets).
  std::vector<float> value;    // [E, numel]
  std::vector<float> grad;     // [E, numel], written by Backward.
  float* w(int member) { return value.data() + member * numel; }
  const float* w(int member) const { return value.data() + member * numel; }
  float* g(int member) { return grad.data() + member * numel; }
};

// The parameters of one network, in creation order (= the torch backend's
// registration order). Addresses are stable.
class ParamStore {
 public:
  ParamStore(uint64_t root_seed, int members) : root_seed_(root_seed), members_(members) {}
  // Creates `name` and fills member e from ParameterSeed(root_seed, e, name).
  Param* Make(const std::string& name, std::vector<int64_t> shape, const InitSpec& init);
  const std::vector<std::unique_ptr<Param>>& params() const { return params_; }
  Param* Find(std::string_view name) const;
  int members() const { return members_; }
  uint64_t root_seed() const { return root_seed_; }

 private:
  uint64_t root_seed_;
  int members_;
  std::vector<std::unique_ptr<Param>> params_;
};

// A naming scope, like the torch backend's InitContext.
class Scope {
 public:
  Scope(ParamStore* store, std::string prefix = "") : store_(store), prefix_(std::move(prefix)) {}
  Scope Child(std::string_view name) const { return Scope(store_, FullName(name)); }
  Param* Make(std::string_view name, std::vector<int64_t> shape, const InitSpec& init) const {
    return store_->Make(FullName(name), std::move(shape), init);
  }
  std::string FullName(std::string_view name) const {
    return prefix_.empty() ? std::string(name) : prefix_ + "." + std::string(name);
  }
  const std::string& prefix() const { return prefix_; }
  int members() const { return store_->members(); }
  uint64_t root_seed() const { return store_->root_seed(); }

 private:
  ParamStore* store_;
  std::string prefix_;
};

// Seeded noise of a network's noisy layers (the torch backend's NoiseSource
// recipe: std::mt19937_64 through StandardNormals).
class NoiseStream {
 public:
  explicit NoiseStream(uint64_t seed) : rng_(seed) {}
  // Fills `out` with f(z) = sign(z) sqrt|z| of float standard normals z.
  void FactorizedNoise(float* out, int64_t count);
  std::string State() const;
  bool SetState(const std::string& state);

 private:
  std::mt19937_64 rng_;
};

// Where a pass runs: member, context and batch size (samples).
struct Pass {
  int member = 0;
  int context = kTrainContext;
  int batch = 0;
};

class Layer {
 public:
  // Buffers are indexed up front: members then touch only their own slots,
  // so passes of different members may run concurrently.
  explicit Layer(int members)
      : members_(members), scratch_(static_cast<size_t>(kContexts) * members * kSlots) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  virtual int64_t in_size() const = 0;   // Floats per sample in.
  virtual int64_t out_size() const = 0;  // Floats per sample out.

  // in [batch, in_size] -> out [batch, out_size], a buffer of this layer
  // valid until the next Forward in the same (context, member).
  virtual const float* Forward(const Pass& pass, const float* in) = 0;

  // Backward of the last Forward of (pass.context, pass.member), whose input
  // was `in`. d_out [batch, out_size] is the loss gradient of the output (the
  // layer may overwrite it). Writes (not accumulates) member pass.member's
  // gradient of every parameter of this layer; returns d_in [batch, in_size]
  // (a buffer of this layer) when need_d_in, else nullptr.
  virtual float* Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) = 0;

  // Noisy layers: draw this context's noise for all members from `noise`
  // (enabled), or use mean weights (disabled). Others: nothing.
  virtual void DrawNoise(NoiseStream& /*noise*/, int /*context*/, bool /*enabled*/) {}

 protected:
  int members() const { return members_; }
  // Grow-only scratch buffer `slot` (< kSlots) of (context, member), at least
  // `count` floats; contents persist between calls.
  float* Scratch(const Pass& pass, int slot, size_t count);
  static constexpr int kSlots = 16;

 private:
  int members_;
  std::vector<std::vector<float>> scratch_;  // [(context * E + member) * kSlots + slot]
};

// A chain of layers run in order (an encoder, a residual stack, a network).
class Sequential : public Layer {
 public:
  explicit Sequential(int members) : Layer(members), inputs_(static_cast<size_t>(kContexts) * members) {}
  void Add(std::unique_ptr<Layer> layer) { layers_.push_back(std::move(layer)); }
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
  int64_t in_size() const override { return layers_.front()->in_size(); }
  int64_t out_size() const override { return layers_.back()->out_size(); }
  const float* Forward(const Pass& pass, const float* in) override;
  float* Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) override;
  void DrawNoise(NoiseStream& noise, int context, bool enabled) override;

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  // Inputs of each layer in the last Forward, per (context, member).
  std::vector<std::vector<const float*>> inputs_;
};

// ---------------------------------------------------------------------------
// Layers used by every network (layers.cc).

// Per-row Dense: rows = batch * rows_per_sample, x [rows, in] -> [rows, out],
// y = x W + b, optionally followed by ReLU (fused; backward masks by y > 0).
// Parameters "<scope>.weight" [in, out] (xavier_uniform(in, out) unless
// given) and "<scope>.bias" [1, out] (zeros) when bias.
class Linear : public Layer {
 public:
  Linear(const Scope& scope, int64_t in, int64_t out, bool relu, int64_t rows_per_sample = 1, bool bias = true);
  Linear(const Scope& scope, int64_t in, int64_t out, bool relu, int64_t rows_per_sample, bool bias,
         const InitSpec& weight_init);
  int64_t in_size() const override { return rows_per_sample_ * in_; }
  int64_t out_size() const override { return rows_per_sample_ * out_; }
  const float* Forward(const Pass& pass, const float* in) override;
  float* Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) override;

 private:
  int64_t in_, out_, rows_per_sample_;
  bool relu_;
  Param* weight_;
  Param* bias_ = nullptr;
};

// Factorized-Gaussian noisy Dense (torch backend's NoisyMemberLinear):
// "<scope>.{mu_weight, sigma_weight}" [in, out], "{mu_bias, sigma_bias}" [1, out].
class NoisyLinear : public Layer {
 public:
  NoisyLinear(const Scope& scope, int64_t in, int64_t out, double sigma_scale);
  int64_t in_size() const override { return in_; }
  int64_t out_size() const override { return out_; }
  const float* Forward(const Pass& pass, const float* in) override;
  float* Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) override;
  void DrawNoise(NoiseStream& noise, int context, bool enabled) override;

  // Passes of up to this many samples (acting) never build W: one pass over
  // mu and sigma computes x mu + ((x eps_in) sigma) eps_out, where building W
  // reads both, writes W and reads it again. Bigger batches build W for the
  // blocked GEMM: that loop at the training batch (32) made SoftMoE-1 Rainbow
  // training 1.6x slower (docs/benchmarks.md, "Noisy layers").
  static constexpr int kFactorizedMaxBatch = 8;

 private:
  // W of (member, context) into scratch slot 1.
  const float* BuildWeight(const Pass& pass);
  int64_t in_, out_;
  Param *mu_weight_, *sigma_weight_, *mu_bias_, *sigma_bias_;
  // Per context: enabled flag and f(eps) [E, in] / [E, out].
  bool enabled_[kContexts] = {false, false};
  std::vector<float> eps_in_[kContexts], eps_out_[kContexts];
};

// out[o] = scale * sum_k in[index[o][k]] over fixed index lists: the
// tokenizers (a permutation or an average pool of the channels-last map).
class GatherSum : public Layer {
 public:
  // `sources[o]` lists the input positions summed into output o.
  GatherSum(int members, int64_t in_size, const std::vector<std::vector<int32_t>>& sources, float scale);
  int64_t in_size() const override { return in_size_; }
  int64_t out_size() const override { return static_cast<int64_t>(offsets_.size()) - 1; }
  const float* Forward(const Pass& pass, const float* in) override;
  float* Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) override;

 private:
  int64_t in_size_;
  std::vector<int32_t> offsets_, index_;  // CSR of the sources.
  float scale_;
};

// Per sample, in [rows, width] -> out[w] = scale * sum_r in[r, w]: global
// average pooling over H'W' and the tokenized mixers' sum / mean over tokens.
class RowSum : public Layer {
 public:
  RowSum(int members, int64_t rows, int64_t width, float scale)
      : Layer(members), rows_(rows), width_(width), scale_(scale) {}
  int64_t in_size() const override { return rows_ * width_; }
  int64_t out_size() const override { return width_; }
  const float* Forward(const Pass& pass, const float* in) override;
  float* Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) override;

 private:
  int64_t rows_, width_;
  float scale_;
};

}  // namespace tokenrl::nn::cpu
