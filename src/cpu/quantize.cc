// Highway kernels for symmetric absmax int8 rows, matching
// cinch/ref/quantize.hpp code for code: the absmax compares f32 bit patterns as
// integers, the codes are round_half_even(x * inv) with inv = 127 / amax.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/quantize.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "cinch/ref/quantize.hpp"
#include "host_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace cinch::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;

float quantize_i8(const float* x, std::int8_t* codes, std::int64_t n, const float* next) {
  const DF df;
  const DI di;
  const hn::Rebind<std::int8_t, DF> d8;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(df));

  // Pass 1: absmax as a bit pattern (non-negative int32, so signed max orders it).
  auto amax0 = hn::Zero(di), amax1 = hn::Zero(di);
  const auto magnitude = hn::Set(di, 0x7FFFFFFF);
  std::int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    amax0 = hn::Max(amax0, hn::And(hn::BitCast(di, hn::LoadU(df, x + i)), magnitude));
    amax1 = hn::Max(amax1, hn::And(hn::BitCast(di, hn::LoadU(df, x + i + lanes)), magnitude));
  }
  auto amax_bits = static_cast<std::uint32_t>(hn::GetLane(hn::MaxOfLanes(di, hn::Max(amax0, amax1))));
  for (; i < n; ++i) {
    const std::uint32_t a = ref::bits_of(x[i]) & 0x7FFFFFFFu;
    amax_bits = a > amax_bits ? a : amax_bits;
  }

  const float amax = ref::float_of(amax_bits);
  if (amax_bits == 0 || amax_bits >= 0x7F800000u) {
    for (std::int64_t k = 0; k < n; ++k) codes[k] = 0;
    return amax / 127.0f;
  }

  // Pass 2: codes, from cache. The hardware prefetcher stops at page bounds
  // and this pass has no misses of its own, so fetch the next row meanwhile.
  const float inv = 127.0f / amax;
  const auto vinv = hn::Set(df, inv);
  const auto hi = hn::Set(di, 127), lo = hn::Set(di, -127);
  i = 0;
  for (; i + lanes <= n; i += lanes) {
    if (next && i % 16 == 0) hwy::Prefetch(next + i);
    const auto q = hn::NearestInt(hn::Mul(hn::LoadU(df, x + i), vinv));
    hn::StoreU(hn::DemoteTo(d8, hn::Min(hn::Max(q, lo), hi)), d8, codes + i);
  }
  for (; i < n; ++i) codes[i] = ref::quantize_i8(x[i], inv);
  return amax / 127.0f;
}

void dequantize_i8(const std::int8_t* codes, float scale, float* y, std::int64_t n) {
  const DF df;
  const DI di;
  const hn::Rebind<std::int8_t, DF> d8;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(df));
  const auto vscale = hn::Set(df, scale);
  std::int64_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(hn::Mul(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, codes + i))), vscale), df, y + i);
  for (; i < n; ++i) y[i] = float(codes[i]) * scale;
}

}  // namespace HWY_NAMESPACE
}  // namespace cinch::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cinch::cpu {

HWY_EXPORT(quantize_i8);
HWY_EXPORT(dequantize_i8);

float quantize_row_i8(const float* x, std::int8_t* codes, std::int64_t n, const float* next) noexcept {
  return HWY_DYNAMIC_DISPATCH(quantize_i8)(x, codes, n, next);
}
void dequantize_row_i8(const std::int8_t* codes, float scale, float* y, std::int64_t n) noexcept {
  HWY_DYNAMIC_DISPATCH(dequantize_i8)(codes, scale, y, n);
}

}  // namespace cinch::cpu
#endif
