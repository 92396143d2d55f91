#pragma once
// Convolutional encoders of the built-in CPU engine (the torch backend's
// nn/torch/encoders.cc, same parameter names, shapes and initializers),
// forward and backward on per-member, channels-last float32 maps.
//
//  * Conv2dSame: SAME padding as TF/Flax (out = ceil(n / s), the odd padding
//    row/column at the end), weight [out, in, k, k] and bias [out] (the torch
//    backend's per-member layout), optionally followed by a fused ReLU. It
//    runs as im2col + one GEMM: a row of the column matrix is one output
//    pixel's k x k x in window in (kh, kw, c) order, so with channels-last
//    maps every (pixel, kh) run of k * in floats is one contiguous copy from
//    a zero-padded copy of the input. Weights are repacked to (kh, kw, c)
//    order from the canonical values on every call (they change after every
//    optimizer step; the repack is tiny). Large layers run in chunks of
//    samples so that the column matrix stays cache-sized; when a batch fits
//    one chunk, Backward reuses Forward's column matrix.
//  * MaxPoolSame: max-pool with SAME (-inf) padding; backward routes each
//    output gradient to the first maximum of its window in scan order
//    (row-major), torch's tie rule.
//  * ResidualBlock: y = x + conv1(relu(conv0(relu(x)))) (Impala), optionally
//    followed by ReLU (the encoder's final one).

#include <cstdint>
#include <memory>

#include "tokenrl/nn/cpu/layer.h"
#include "tokenrl/nn/network_config.h"

namespace tokenrl::nn::cpu {

// Geometry of a SAME conv or pool on [height, width, channels] maps.
struct ConvGeometry {
  int64_t height = 0, width = 0, in_channels = 0, out_channels = 0;
  int64_t kernel = 1, stride = 1;
  // Derived: output size, padding before (top/left), padded input size.
  int64_t out_height = 0, out_width = 0, pad_top = 0, pad_left = 0, padded_height = 0, padded_width = 0;
  static ConvGeometry Same(int64_t height, int64_t width, int64_t in_channels, int64_t out_channels,
                           int64_t kernel, int64_t stride);
  int64_t in_size() const { return height * width * in_channels; }
  int64_t out_size() const { return out_height * out_width * out_channels; }
};

// [H, W, in] -> [H', W', out], H' = ceil(H / stride). Parameters
// "<scope>.weight" [out, in, k, k] (weight_init) and "<scope>.bias" [out] (zeros).
class Conv2dSame : public Layer {
 public:
  Conv2dSame(const Scope& scope, int64_t height, int64_t width, int64_t in_channels, int64_t out_channels,
             int64_t kernel, int64_t stride, bool relu, const InitSpec& weight_init);
  int64_t in_size() const override { return g_.in_size(); }
  int64_t out_size() const override { return g_.out_size(); }
  const ConvGeometry& geometry() const { return g_; }
  // The output of the last Forward of (pass.context, pass.member).
  const float* LastOutput(const Pass& pass) { return Scratch(pass, 0, 0); }
  const float* Forward(const Pass& pass, const float* in) override;
  // Without the fused ReLU, d_out is left unchanged (ResidualBlock relies on it).
  float* Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) override;

 private:
  // Samples per chunk (the column matrix of one chunk is at most kChunkFloats).
  int64_t ChunkSamples() const;
  void RepackWeight(const float* w, float* wt) const;  // [out, in, k, k] -> [(kh, kw, c), out]
  void PadInput(const float* in, int64_t samples, float* padded) const;
  void Im2Col(const float* padded, int64_t samples, float* col) const;
  void Col2Im(const float* dcol, int64_t samples, float* d_padded) const;

  ConvGeometry g_;
  int64_t patch_;  // k * k * in, the GEMM's inner dimension.
  bool relu_;
  Param* weight_;
  Param* bias_;
};

// Max-pool kernel x kernel, stride, SAME padding with -inf, on [H, W, C].
class MaxPoolSame : public Layer {
 public:
  MaxPoolSame(int members, int64_t height, int64_t width, int64_t channels, int64_t kernel, int64_t stride);
  int64_t in_size() const override { return g_.in_size(); }
  int64_t out_size() const override { return g_.out_size(); }
  const float* Forward(const Pass& pass, const float* in) override;
  float* Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) override;

 private:
  ConvGeometry g_;
};

// Impala residual block on [H, W, C]: y = x + conv1(relu(conv0(relu(x)))),
// then relu(y) when relu_out. Parameters "<scope>.conv0" and "<scope>.conv1"
// (3x3, lecun_normal).
class ResidualBlock : public Layer {
 public:
  ResidualBlock(const Scope& scope, int64_t height, int64_t width, int64_t channels, bool relu_out);
  int64_t in_size() const override { return size_; }
  int64_t out_size() const override { return size_; }
  const float* Forward(const Pass& pass, const float* in) override;
  float* Backward(const Pass& pass, const float* in, float* d_out, bool need_d_in) override;

 private:
  int64_t size_;
  bool relu_out_;
  std::unique_ptr<Conv2dSame> conv0_, conv1_;
};

// Feature extractor: per sample in [H, W, C] float (channels-last, already
// scaled), out [H', W', C'] channels-last, shapes as ComputeShapes. Parameter
// names, shapes and initializers exactly as the torch encoders under `scope`
// (the network passes Scope "encoder"): minatar "conv.{weight, bias}"; nature
// "conv0".."conv2"; impala "stack<i>.conv", "stack<i>.block<j>.conv0/conv1".
std::unique_ptr<Layer> MakeEncoder(const EncoderConfig& config, const NetworkIo& io, const Scope& scope);

}  // namespace tokenrl::nn::cpu
