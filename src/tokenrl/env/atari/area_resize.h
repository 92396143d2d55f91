#pragma once
// AreaResizer: downscaling by area averaging, the semantics of OpenCV's
// cv::resize(..., INTER_AREA) that Dopamine applies to Atari frames
// (210x160 -> 84x84).
//
// Specification (docs/atari.md, "Resizing"): lay the source grid over the
// destination grid so that both cover the same rectangle. Output pixel (y, x)
// covers the source rectangle [y*sh, (y+1)*sh) x [x*sw, (x+1)*sw) with
// sh = src_h/dst_h and sw = src_w/dst_w (non-integer in general: 2.5 and
// 40/21 for 210x160 -> 84x84). Its value is the area-weighted mean of the
// source pixels that rectangle covers, each weighted by the area of its
// overlap, fractional overlaps included. The weights factor into a row weight
// times a column weight.
//
// Exactness and rounding: in units of 1/dst_h (rows) and 1/dst_w (columns)
// every overlap is an integer, so the mean is the exact fraction
// num / (src_h * src_w). tokenrl rounds it to the nearest integer, ties up
// (half away from zero: the values are non-negative), with integer arithmetic
// only: the result does not depend on the compiler or the FPU. OpenCV sums
// float32 weights and converts with saturate_cast<uchar> (cvRound, round to
// nearest), so it can differ by 1 where its float sum falls on the other side
// of .5 than the exact value, or on an exact tie that the platform rounds to
// even. Upscaling (dst > src), where OpenCV's INTER_AREA is bilinear, is not
// supported.

#include <cstdint>
#include <span>
#include <vector>

namespace tokenrl::env::atari {

class AreaResizer {
 public:
  // REQUIRES: 1 <= dst_h <= src_h, 1 <= dst_w <= src_w.
  AreaResizer(int src_h, int src_w, int dst_h, int dst_w);

  // Resizes one row-major grayscale image.
  // REQUIRES: src.size() == src_h * src_w, dst.size() == dst_h * dst_w.
  void Resize(std::span<const uint8_t> src, std::span<uint8_t> dst) const;

  int src_height() const { return src_h_; }
  int src_width() const { return src_w_; }
  int dst_height() const { return dst_h_; }
  int dst_width() const { return dst_w_; }

 private:
  // The source pixels one output index covers along one axis, as `taps`
  // consecutive sources starting at first[d] with integer overlaps (in units of
  // 1/dst; a row of weights sums to src), zero-padded to the same count.
  struct Axis {
    int taps = 0;
    std::vector<int32_t> first;   // [dst]
    std::vector<int32_t> weight;  // [dst * taps]
  };
  static Axis MakeAxis(int src, int dst);
  template <int kTaps>
  void ColumnPass(std::span<uint8_t> dst) const;

  int src_h_, src_w_, dst_h_, dst_w_;
  Axis rows_, cols_;
  // Rounding num / den to nearest, ties up, is floor((2 num + den) / (2 den)),
  // computed as a multiply and a shift with an exact reciprocal.
  uint64_t reciprocal_ = 0;
  int shift_ = 0;
  // [dst_h, src_w] scratch of the row pass: one Resize at a time per object.
  mutable std::vector<int32_t> row_sums_;
};

}  // namespace tokenrl::env::atari
