#include "tokenrl/env/atari/area_resize.h"

#include <algorithm>
#include <bit>

#include "tokenrl/core/status.h"

namespace tokenrl::env::atari {

AreaResizer::Axis AreaResizer::MakeAxis(int src, int dst) {
  // Output d covers [d*src, (d+1)*src) and source s covers [s*dst, (s+1)*dst),
  // both in units of 1/dst of a source pixel.
  const auto overlap = [&](int d, int s) -> int64_t {
    const int64_t lo = static_cast<int64_t>(d) * src, hi = lo + src;
    return std::max<int64_t>(0, std::min(hi, static_cast<int64_t>(s + 1) * dst) -
                                    std::max(lo, static_cast<int64_t>(s) * dst));
  };
  Axis axis;
  std::vector<int> first(static_cast<size_t>(dst)), last(static_cast<size_t>(dst));
  for (int d = 0; d < dst; ++d) {
    int s = static_cast<int>(static_cast<int64_t>(d) * src / dst);
    while (overlap(d, s) == 0) ++s;
    first[static_cast<size_t>(d)] = s;
    while (s + 1 < src && overlap(d, s + 1) > 0) ++s;
    last[static_cast<size_t>(d)] = s;
    axis.taps = std::max(axis.taps, last[static_cast<size_t>(d)] - first[static_cast<size_t>(d)] + 1);
  }
  axis.first.resize(static_cast<size_t>(dst));
  axis.weight.assign(static_cast<size_t>(dst) * static_cast<size_t>(axis.taps), 0);
  for (int d = 0; d < dst; ++d) {
    // Shift the window left at the far edge so padded taps stay in bounds (with weight 0).
    const int begin = std::min(first[static_cast<size_t>(d)], src - axis.taps);
    axis.first[static_cast<size_t>(d)] = begin;
    for (int j = 0; j < axis.taps; ++j) {
      axis.weight[static_cast<size_t>(d) * static_cast<size_t>(axis.taps) + static_cast<size_t>(j)] =
          static_cast<int32_t>(overlap(d, begin + j));
    }
  }
  return axis;
}

AreaResizer::AreaResizer(int src_h, int src_w, int dst_h, int dst_w)
    : src_h_(src_h), src_w_(src_w), dst_h_(dst_h), dst_w_(dst_w) {
  TOKENRL_CHECK(dst_h >= 1 && dst_h <= src_h && dst_w >= 1 && dst_w <= src_w,
                "AreaResizer: {}x{} -> {}x{} is not a downscale", src_h, src_w, dst_h, dst_w);
  // num <= 255 * src_h * src_w must fit int32 (with 2 num + den), and the
  // reciprocal trick needs x * reciprocal < 2^64 below.
  const uint64_t den = static_cast<uint64_t>(src_h) * static_cast<uint64_t>(src_w);
  TOKENRL_CHECK(den <= (uint64_t{1} << 22), "AreaResizer: {}x{} source is too large", src_h, src_w);
  rows_ = MakeAxis(src_h, dst_h);
  cols_ = MakeAxis(src_w, dst_w);
  row_sums_.resize(static_cast<size_t>(dst_h) * static_cast<size_t>(src_w));
  // floor(x / d) == (x * ceil(2^s / d)) >> s for all x < 2^n when s >= n + ceil(log2 d).
  const uint64_t d = 2 * den;
  const uint64_t max_x = 2 * 255 * den + den;
  const int n = std::bit_width(max_x);
  shift_ = n + std::bit_width(d - 1);
  reciprocal_ = ((uint64_t{1} << shift_) + d - 1) / d;
  TOKENRL_CHECK(shift_ <= 63 && std::bit_width(reciprocal_) + n <= 64, "AreaResizer: reciprocal overflow");
}

template <int kTaps>
void AreaResizer::ColumnPass(std::span<uint8_t> dst) const {
  // Everything in locals: stores through uint8_t pointers may alias any member.
  // kTaps > 0 fixes the tap count at compile time (the loop unrolls); 0 reads it.
  const int taps = kTaps > 0 ? kTaps : cols_.taps;
  const int dst_h = dst_h_, dst_w = dst_w_, shift = shift_;
  const size_t w = static_cast<size_t>(src_w_);
  const uint64_t den = static_cast<uint64_t>(src_h_) * static_cast<uint64_t>(src_w_);
  const uint64_t reciprocal = reciprocal_;
  const int32_t* first = cols_.first.data();
  const int32_t* weights = cols_.weight.data();
  const int32_t* all_sums = row_sums_.data();
  uint8_t* out = dst.data();
  for (int y = 0; y < dst_h; ++y) {
    const int32_t* sums = all_sums + static_cast<size_t>(y) * w;
    for (int x = 0; x < dst_w; ++x, ++out) {
      const int32_t* in = sums + first[x];
      const int32_t* weight = weights + static_cast<size_t>(x * taps);
      int32_t num = 0;  // <= 255 * src_h * src_w < 2^31 (checked in the constructor)
      for (int j = 0; j < taps; ++j) num += weight[j] * in[j];
      *out = static_cast<uint8_t>(((2 * static_cast<uint64_t>(num) + den) * reciprocal) >> shift);
    }
  }
}

void AreaResizer::Resize(std::span<const uint8_t> src, std::span<uint8_t> dst) const {
  TOKENRL_CHECK(src.size() == static_cast<size_t>(src_h_) * static_cast<size_t>(src_w_) &&
                    dst.size() == static_cast<size_t>(dst_h_) * static_cast<size_t>(dst_w_),
                "AreaResizer: buffers of {} and {} bytes for {}x{} -> {}x{}", src.size(), dst.size(), src_h_, src_w_,
                dst_h_, dst_w_);
  const size_t w = static_cast<size_t>(src_w_);
  // Row pass first: it runs along contiguous source rows, so it vectorizes.
  for (int y = 0; y < dst_h_; ++y) {
    int32_t* __restrict sums = row_sums_.data() + static_cast<size_t>(y) * w;
    std::fill(sums, sums + w, 0);
    for (int j = 0; j < rows_.taps; ++j) {
      const int32_t weight = rows_.weight[static_cast<size_t>(y * rows_.taps + j)];
      if (weight == 0) continue;
      const uint8_t* __restrict in = src.data() + static_cast<size_t>(rows_.first[static_cast<size_t>(y)] + j) * w;
      for (size_t c = 0; c < w; ++c) sums[c] += weight * static_cast<int32_t>(in[c]);
    }
  }
  // Column pass, then the exact mean rounded to nearest, ties up.
  switch (cols_.taps) {
    case 2: ColumnPass<2>(dst); break;
    case 3: ColumnPass<3>(dst); break;  // 160 -> 84
    case 4: ColumnPass<4>(dst); break;
    default: ColumnPass<0>(dst); break;
  }
}

}  // namespace tokenrl::env::atari
