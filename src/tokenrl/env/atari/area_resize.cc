#include "tokenrl/env/atari/area_resize.h"

#include <algorithm>

#include "tokenrl/core/status.h"

namespace tokenrl::env::atari {

AreaResizer::Taps AreaResizer::MakeTaps(int src, int dst) {
  // Output d covers [d*src, (d+1)*src) and source s covers [s*dst, (s+1)*dst),
  // both in units of 1/dst of a source pixel.
  Taps taps;
  taps.begin.push_back(0);
  for (int d = 0; d < dst; ++d) {
    const int64_t lo = static_cast<int64_t>(d) * src, hi = lo + src;
    for (int s = static_cast<int>(lo / dst); s < src && static_cast<int64_t>(s) * dst < hi; ++s) {
      const int64_t overlap = std::min(hi, static_cast<int64_t>(s + 1) * dst) - std::max(lo, static_cast<int64_t>(s) * dst);
      if (overlap <= 0) continue;
      taps.source.push_back(s);
      taps.weight.push_back(static_cast<int32_t>(overlap));
    }
    taps.begin.push_back(static_cast<int32_t>(taps.source.size()));
  }
  return taps;
}

AreaResizer::AreaResizer(int src_h, int src_w, int dst_h, int dst_w)
    : src_h_(src_h), src_w_(src_w), dst_h_(dst_h), dst_w_(dst_w) {
  TOKENRL_CHECK(dst_h >= 1 && dst_h <= src_h && dst_w >= 1 && dst_w <= src_w,
                "AreaResizer: {}x{} -> {}x{} is not a downscale", src_h, src_w, dst_h, dst_w);
  // The largest numerator is 255 * src_h * src_w; it must fit 2 * num + den in int64 (always) and the row sums
  // (255 * src_w) in int32.
  TOKENRL_CHECK(static_cast<int64_t>(src_w) * 255 < (int64_t{1} << 31), "AreaResizer: source too wide");
  rows_ = MakeTaps(src_h, dst_h);
  cols_ = MakeTaps(src_w, dst_w);
  row_sums_.resize(static_cast<size_t>(src_h) * static_cast<size_t>(dst_w));
}

void AreaResizer::Resize(std::span<const uint8_t> src, std::span<uint8_t> dst) const {
  TOKENRL_CHECK(src.size() == static_cast<size_t>(src_h_) * static_cast<size_t>(src_w_) &&
                    dst.size() == static_cast<size_t>(dst_h_) * static_cast<size_t>(dst_w_),
                "AreaResizer: buffers of {} and {} bytes for {}x{} -> {}x{}", src.size(), dst.size(), src_h_, src_w_,
                dst_h_, dst_w_);
  // Column pass: every source row to dst_w weighted sums (weights sum to src_w).
  for (int y = 0; y < src_h_; ++y) {
    const uint8_t* in = src.data() + static_cast<size_t>(y) * static_cast<size_t>(src_w_);
    int32_t* out = row_sums_.data() + static_cast<size_t>(y) * static_cast<size_t>(dst_w_);
    for (int x = 0; x < dst_w_; ++x) {
      int32_t sum = 0;
      for (int32_t t = cols_.begin[static_cast<size_t>(x)]; t < cols_.begin[static_cast<size_t>(x) + 1]; ++t) {
        sum += cols_.weight[static_cast<size_t>(t)] * in[cols_.source[static_cast<size_t>(t)]];
      }
      out[x] = sum;
    }
  }
  // Row pass, then the exact mean num / den rounded to nearest, ties up.
  const int64_t den = static_cast<int64_t>(src_h_) * src_w_;
  for (int y = 0; y < dst_h_; ++y) {
    uint8_t* out = dst.data() + static_cast<size_t>(y) * static_cast<size_t>(dst_w_);
    for (int x = 0; x < dst_w_; ++x) {
      int64_t num = 0;
      for (int32_t t = rows_.begin[static_cast<size_t>(y)]; t < rows_.begin[static_cast<size_t>(y) + 1]; ++t) {
        num += static_cast<int64_t>(rows_.weight[static_cast<size_t>(t)]) *
               row_sums_[static_cast<size_t>(rows_.source[static_cast<size_t>(t)]) * static_cast<size_t>(dst_w_) +
                         static_cast<size_t>(x)];
      }
      out[x] = static_cast<uint8_t>((2 * num + den) / (2 * den));
    }
  }
}

}  // namespace tokenrl::env::atari
