// Highway kernels for KIVI-style group quantization, matching
// cinch/ref/groups.hpp code for code and bit for bit:
//  * per token: a vector's worth of consecutive groups at a time; each group's
//    min/max vectors are folded so that lane i holds group i's, then the fp16
//    parameters of all those groups are computed in lanes, then the codes.
//  * per channel: lanes run across channels, so each lane holds one group's
//    min/max directly; codes are gathered into 32-bit words per channel.
// round_to_f16 reproduces f32_to_f16 then f16_to_f32 for finite and infinite lanes.
// Codes: NearestInt (round half to even) then clamp, which equals the reference's
// clamp then round because |(x - min) * inv| < 2^31 for usable groups. Dequantized
// values: code * scale is exact, so an unfused or fused multiply-add agree.
// NaN: lane sums turn non-finite (inf + -inf, NaN + anything), which catches what
// vector min/max may drop; a sum that overflows means some |x| is far beyond fp16,
// where the reference also gives up on the group. A per-token batch with any
// non-finite sum runs the reference itself.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/groups.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <cstring>
#include <type_traits>

#include "cinch/ref/groups.hpp"
#include "kv/group_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace cinch::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET != HWY_SCALAR

// N codes (each < 2^Bits, in i32 lanes) packed into N * Bits / 8 bytes at out:
// truncated to bytes, then neighbouring bytes merged by shifts within wider lanes.
template <int Bits, class DI>
HWY_INLINE void store_packed(DI, hn::Vec<DI> q, std::uint8_t* out) {
  const hn::RebindToUnsigned<DI> du;
  const hn::Rebind<std::uint8_t, DI> d8;
  const auto bytes = hn::TruncateTo(d8, hn::BitCast(du, q));
  if constexpr (Bits == 8) {
    hn::StoreU(bytes, d8, out);
  } else if constexpr (Bits == 4) {
    const hn::Repartition<std::uint16_t, decltype(d8)> d16;  // lane: even | odd << 8
    const auto w = hn::BitCast(d16, bytes);
    const hn::Rebind<std::uint8_t, decltype(d16)> dout;
    hn::StoreU(hn::TruncateTo(dout, hn::Or(w, hn::ShiftRight<4>(w))), dout, out);
  } else {
    const hn::Repartition<std::uint32_t, decltype(d8)> d32;  // lane: four codes, one per byte
    const auto w = hn::BitCast(d32, bytes);
    const auto packed = hn::Or(hn::Or(w, hn::ShiftRight<6>(w)), hn::Or(hn::ShiftRight<12>(w), hn::ShiftRight<18>(w)));
    const hn::Rebind<std::uint8_t, decltype(d32)> dout;
    hn::StoreU(hn::TruncateTo(dout, packed), dout, out);
  }
}

// N codes unpacked from N * Bits / 8 bytes at in.
template <int Bits, class DI>
HWY_INLINE hn::Vec<DI> load_packed(DI di, const std::uint8_t* in) {
  const hn::Rebind<std::uint8_t, DI> d8;
  if constexpr (Bits == 8) {
    return hn::PromoteTo(di, hn::LoadU(d8, in));
  } else if constexpr (Bits == 4) {
    const hn::Repartition<std::uint16_t, decltype(d8)> d16;
    const hn::Rebind<std::uint8_t, decltype(d16)> din;
    const auto b = hn::PromoteTo(d16, hn::LoadU(din, in));
    const auto w = hn::Or(hn::And(b, hn::Set(d16, 0x0F)), hn::ShiftLeft<4>(hn::And(b, hn::Set(d16, 0xF0))));
    return hn::PromoteTo(di, hn::BitCast(d8, w));
  } else {
    const hn::Repartition<std::uint32_t, decltype(d8)> d32;
    const hn::Rebind<std::uint8_t, decltype(d32)> din;
    const auto b = hn::PromoteTo(d32, hn::LoadU(din, in));
    const auto w = hn::Or(hn::Or(hn::And(b, hn::Set(d32, 0x3u)), hn::And(hn::ShiftLeft<6>(b), hn::Set(d32, 0x300u))),
                          hn::Or(hn::And(hn::ShiftLeft<12>(b), hn::Set(d32, 0x30000u)),
                                 hn::And(hn::ShiftLeft<18>(b), hn::Set(d32, 0x3000000u))));
    return hn::PromoteTo(di, hn::BitCast(d8, w));
  }
}

// ---------------------------------------------------------------- parameters in lanes

// A value rounded to fp16 as ref::f32_to_f16 does, as the f32 it stands for and as
// fp16 bits. Finite and infinite lanes only (NaN lanes give unspecified results).
template <class D>
struct f16_round {
  hn::Vec<D> value;
  hn::Vec<hn::RebindToSigned<D>> bits;
};

template <class D>
HWY_INLINE f16_round<D> round_to_f16(D d, hn::Vec<D> v) {
  const hn::RebindToSigned<D> di;
  const auto b = hn::BitCast(di, v);
  const auto a = hn::And(b, hn::Set(di, 0x7FFFFFFF));
  const auto sign16 = hn::And(hn::ShiftRight<16>(b), hn::Set(di, 0x8000));
  const auto normal = hn::And(hn::Add(a, hn::Add(hn::Set(di, 0xFFF), hn::And(hn::ShiftRight<13>(a), hn::Set(di, 1)))),
                              hn::Set(di, ~0x1FFF));
  const auto sub = hn::NearestInt(hn::Mul(hn::BitCast(d, a), hn::Set(d, 16777216.0f)));  // units of 2^-24
  const auto is_sub = hn::Lt(a, hn::Set(di, 0x38800000));
  const auto is_inf = hn::Gt(a, hn::Set(di, 0x477FEFFF));  // rounds to 65536 or more
  auto value = hn::IfThenElse(is_sub, hn::BitCast(di, hn::Mul(hn::ConvertTo(d, sub), hn::Set(d, 1.0f / 16777216.0f))),
                              normal);
  auto bits = hn::IfThenElse(is_sub, sub, hn::Sub(hn::ShiftRight<13>(normal), hn::Set(di, 112 << 10)));
  value = hn::IfThenElse(is_inf, hn::Set(di, 0x7F800000), value);
  bits = hn::IfThenElse(is_inf, hn::Set(di, 0x7C00), bits);
  return {hn::BitCast(d, hn::Or(value, hn::ShiftLeft<16>(sign16))), hn::Or(bits, sign16)};
}

// ref::make_group_params for one group per lane: the stored bits (NaN where
// unusable), the f32 min and 1 / scale the codes use, and which lanes are usable.
template <class D>
struct group_params {
  hn::Vec<hn::RebindToSigned<D>> scale_bits, min_bits;
  hn::Vec<D> min, inv;
  hn::Mask<hn::RebindToSigned<D>> usable;
};

template <int Bits, class D>
HWY_INLINE group_params<D> params_of(D d, hn::Vec<D> mn, hn::Vec<D> mx, hn::Mask<hn::RebindToSigned<D>> finite) {
  const hn::RebindToSigned<D> di;
  mn = hn::Add(mn, hn::Zero(d));  // -0 counts as +0
  mx = hn::Add(mx, hn::Zero(d));
  const f16_round<D> s16 = round_to_f16(d, hn::Div(hn::Sub(mx, mn), hn::Set(d, float(ref::group_levels(Bits)))));
  const f16_round<D> m16 = round_to_f16(d, mn);
  const auto exponent = hn::Set(di, 0x7C00);
  const auto usable = hn::And(finite, hn::And(hn::Ne(hn::And(s16.bits, exponent), exponent),
                                              hn::Ne(hn::And(m16.bits, exponent), exponent)));
  const auto nan = hn::Set(di, ref::f16_nan_bits);
  return {hn::IfThenElse(usable, s16.bits, nan), hn::IfThenElse(usable, m16.bits, nan), m16.value,
          hn::IfThenElseZero(hn::Gt(s16.value, hn::Zero(d)), hn::Div(hn::Set(d, 1.0f), s16.value)), usable};
}

// ---------------------------------------------------------------- per token

constexpr std::int64_t max_lanes = HWY_MAX_BYTES / sizeof(float);
// Floats ahead of the group being read that are fetched into cache: a single
// sequential stream otherwise waits on memory between batches.
constexpr std::int64_t prefetch_distance = 2048;

// One group per lane: the lanes' groups (consecutive, `group` elements each) get
// their min/max in vectors, folded so that lane i holds group i's (ConcatEven/Odd
// halve the lanes per group at each level), then parameters in lanes, then codes.
// A batch holding inf or NaN anywhere (its lane sums say so) runs the reference.
template <int Bits, class D>
HWY_INLINE void quantize_batch(D d, const float* x, std::int64_t group, std::uint8_t* codes, std::uint16_t* scales,
                               std::uint16_t* mins) {
  const hn::RebindToSigned<D> di;
  const hn::Rebind<std::uint16_t, D> d16;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  hn::Vec<D> mn[max_lanes], mx[max_lanes];
  auto sum0 = hn::Zero(d), sum1 = sum0;  // two chains of adds, half as long
  for (std::int64_t g = 0; g < lanes; ++g) {
    const float* xg = x + g * group;
    for (std::int64_t line = 0; line < group; line += 16) hwy::Prefetch(xg + prefetch_distance + line);
    auto lo = hn::LoadU(d, xg), hi = lo, sum = lo;
    for (std::int64_t i = lanes; i < group; i += lanes) {
      const auto v = hn::LoadU(d, xg + i);
      lo = hn::Min(lo, v);
      hi = hn::Max(hi, v);
      sum = hn::Add(sum, v);
    }
    (g % 2 ? sum1 : sum0) = hn::Add(g % 2 ? sum1 : sum0, sum);
    mn[g] = lo;
    mx[g] = hi;
  }
  if (!hn::AllTrue(d, hn::IsFinite(hn::Add(sum0, sum1)))) {
    for (std::int64_t g = 0; g < lanes; ++g)
      ref::quantize_group(x + g * group, 1, group, Bits, codes + g * group * Bits / 8, scales + g, mins + g);
    return;
  }
  for (std::int64_t half = lanes / 2; half > 0; half /= 2)
    for (std::int64_t i = 0; i < half; ++i) {
      mn[i] = hn::Min(hn::ConcatEven(d, mn[2 * i + 1], mn[2 * i]), hn::ConcatOdd(d, mn[2 * i + 1], mn[2 * i]));
      mx[i] = hn::Max(hn::ConcatEven(d, mx[2 * i + 1], mx[2 * i]), hn::ConcatOdd(d, mx[2 * i + 1], mx[2 * i]));
    }
  const group_params<D> p = params_of<Bits>(d, mn[0], mx[0], hn::FirstN(di, static_cast<std::size_t>(lanes)));
  hn::StoreU(hn::DemoteTo(d16, p.scale_bits), d16, scales);
  hn::StoreU(hn::DemoteTo(d16, p.min_bits), d16, mins);
  alignas(64) float min[max_lanes], inv[max_lanes];
  alignas(64) std::int32_t usable[max_lanes];
  hn::Store(p.min, d, min);
  hn::Store(p.inv, d, inv);
  hn::Store(hn::VecFromMask(di, p.usable), di, usable);

  const auto zero = hn::Zero(di), top = hn::Set(di, std::int32_t(ref::group_levels(Bits)));
  for (std::int64_t g = 0; g < lanes; ++g) {
    const float* xg = x + g * group;
    std::uint8_t* cg = codes + g * group * Bits / 8;
    if (!usable[g]) {  // fp16 overflow of a finite group
      std::memset(cg, 0, static_cast<std::size_t>(group * Bits / 8));
      continue;
    }
    const auto vmin = hn::Set(d, min[g]), vinv = hn::Set(d, inv[g]);
    for (std::int64_t i = 0; i < group; i += lanes) {
      const auto q = hn::NearestInt(hn::Mul(hn::Sub(hn::LoadU(d, xg + i), vmin), vinv));
      store_packed<Bits>(di, hn::Min(hn::Max(q, zero), top), cg + i * Bits / 8);
    }
  }
}

template <int Bits, class D>
void quantize_row_with(D d, const float* x, std::int64_t n, std::int64_t group, std::uint8_t* codes,
                       std::uint16_t* scales, std::uint16_t* mins) {
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d)), groups = n / group;
  std::int64_t g = 0;
  for (; g + lanes <= groups; g += lanes)
    quantize_batch<Bits>(d, x + g * group, group, codes + g * group * Bits / 8, scales + g, mins + g);
  for (; g < groups; ++g)
    ref::quantize_group(x + g * group, 1, group, Bits, codes + g * group * Bits / 8, scales + g, mins + g);
}

template <int Bits, class DF>
void dequantize_row_with(DF df, const std::uint8_t* codes, const std::uint16_t* scales, const std::uint16_t* mins,
                         std::int64_t n, std::int64_t group, float* y) {
  const hn::RebindToSigned<DF> di;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(df));
  for (std::int64_t g = 0; g < n / group; ++g) {
    const auto s = hn::Set(df, ref::f16_to_f32(scales[g])), m = hn::Set(df, ref::f16_to_f32(mins[g]));
    for (std::int64_t i = g * group; i < (g + 1) * group; i += lanes) {
      const auto q = hn::ConvertTo(df, load_packed<Bits>(di, codes + i * Bits / 8));
      hn::StoreU(hn::Add(hn::Mul(q, s), m), df, y + i);
    }
  }
}

// Calls body(tag) with the widest float tag whose lane count divides `group`
// (at least 4 lanes, so that 2-bit codes fill a byte); false when none does.
template <class Body>
HWY_INLINE bool with_group_tag(std::int64_t group, Body body) {
  const hn::ScalableTag<float> full;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(full));
  if (lanes >= 4 && group % lanes == 0) return body(full), true;
  const hn::CappedTag<float, 8> eight;
  if (hn::Lanes(eight) == 8 && group % 8 == 0) return body(eight), true;
  const hn::CappedTag<float, 4> four;
  if (hn::Lanes(four) == 4 && group % 4 == 0) return body(four), true;
  return false;
}

template <int Bits>
void quantize_row_bits(const float* x, std::int64_t n, std::int64_t group, std::uint8_t* codes, std::uint16_t* scales,
                       std::uint16_t* mins) {
  if (!with_group_tag(group, [&](auto d) { quantize_row_with<Bits>(d, x, n, group, codes, scales, mins); }))
    ref::quantize_per_token_row(x, n, group, Bits, codes, scales, mins);
}

template <int Bits>
void dequantize_row_bits(const std::uint8_t* codes, const std::uint16_t* scales, const std::uint16_t* mins,
                         std::int64_t n, std::int64_t group, float* y) {
  if (!with_group_tag(group, [&](auto d) { dequantize_row_with<Bits>(d, codes, scales, mins, n, group, y); }))
    ref::dequantize_per_token_row(codes, scales, mins, n, group, Bits, y);
}

// ---------------------------------------------------------------- per channel

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using DU = hn::RebindToUnsigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;

constexpr std::int64_t max_words = 32;  // 32-bit words of codes per channel: G * bits <= 1024

template <int Bits>
void quantize_chunk_bits(const float* x, std::int64_t token_stride, std::int64_t d, std::int64_t group,
                         std::uint8_t* codes, std::int64_t channel_stride, std::uint16_t* scales,
                         std::uint16_t* mins) {
  constexpr int per_word = 32 / Bits;
  const std::int64_t words = group / per_word;
  if (group % per_word || words > max_words) {
    ref::quantize_per_channel_chunk(x, token_stride, d, group, Bits, codes, channel_stride, scales, mins);
    return;
  }
  const DF df;
  const DI di;
  const DU du;
  const hn::Rebind<std::uint16_t, DI> d16;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(df));
  const VI zero = hn::Zero(di), top = hn::Set(di, std::int32_t(ref::group_levels(Bits)));
  alignas(64) std::uint32_t word[max_words * max_lanes];

  std::int64_t c0 = 0;
  for (; c0 + lanes <= d; c0 += lanes) {
    VF mn = hn::LoadU(df, x + c0), mx = mn, sum = mn;
    for (std::int64_t t = 1; t < group; ++t) {
      const VF v = hn::LoadU(df, x + t * token_stride + c0);
      mn = hn::Min(mn, v);
      mx = hn::Max(mx, v);
      sum = hn::Add(sum, v);
    }
    const group_params<DF> p = params_of<Bits>(df, mn, mx, hn::RebindMask(di, hn::IsFinite(sum)));
    hn::StoreU(hn::DemoteTo(d16, p.scale_bits), d16, scales + c0);
    hn::StoreU(hn::DemoteTo(d16, p.min_bits), d16, mins + c0);

    for (std::int64_t k = 0; k < words; ++k) {
      auto w = hn::Zero(du);
      for (int j = 0; j < per_word; ++j) {
        const VF v = hn::LoadU(df, x + (k * per_word + j) * token_stride + c0);
        const VI q = hn::Min(hn::Max(hn::NearestInt(hn::Mul(hn::Sub(v, p.min), p.inv)), zero), top);
        w = hn::Or(w, hn::ShiftLeftSame(hn::BitCast(du, q), j * Bits));
      }
      hn::Store(hn::IfThenElseZero(hn::RebindMask(du, p.usable), w), du, word + k * lanes);
    }
    for (std::int64_t l = 0; l < lanes; ++l)
      for (std::int64_t k = 0; k < words; ++k)
        std::memcpy(codes + (c0 + l) * channel_stride + 4 * k, word + k * lanes + l, 4);
  }
  for (; c0 < d; ++c0)
    ref::quantize_group(x + c0, token_stride, group, Bits, codes + c0 * channel_stride, scales + c0, mins + c0);
}

template <int Bits>
void dequantize_chunk_bits(const std::uint8_t* codes, std::int64_t channel_stride, const std::uint16_t* scales,
                           const std::uint16_t* mins, std::int64_t d, std::int64_t group, float* y,
                           std::int64_t token_stride) {
  constexpr int per_word = 32 / Bits;
  const std::int64_t words = group / per_word;
  if (group % per_word || words > max_words) {
    ref::dequantize_per_channel_chunk(codes, channel_stride, scales, mins, d, group, Bits, y, token_stride);
    return;
  }
  const DF df;
  const DU du;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(df));
  const auto mask = hn::Set(du, ref::group_levels(Bits));
  alignas(64) std::uint32_t word[max_words * max_lanes];
  alignas(64) float scale[max_lanes], min[max_lanes];

  std::int64_t c0 = 0;
  for (; c0 + lanes <= d; c0 += lanes) {
    for (std::int64_t l = 0; l < lanes; ++l) {
      scale[l] = ref::f16_to_f32(scales[c0 + l]);
      min[l] = ref::f16_to_f32(mins[c0 + l]);
      for (std::int64_t k = 0; k < words; ++k) std::memcpy(word + k * lanes + l, codes + (c0 + l) * channel_stride + 4 * k, 4);
    }
    const VF s = hn::Load(df, scale), m = hn::Load(df, min);
    for (std::int64_t k = 0; k < words; ++k) {
      const auto w = hn::Load(du, word + k * lanes);
      for (int j = 0; j < per_word; ++j) {
        const VF q = hn::ConvertTo(df, hn::BitCast(DI(), hn::And(hn::ShiftRightSame(w, j * Bits), mask)));
        hn::StoreU(hn::Add(hn::Mul(q, s), m), df, y + (k * per_word + j) * token_stride + c0);
      }
    }
  }
  for (; c0 < d; ++c0)
    ref::dequantize_group(codes + c0 * channel_stride, scales[c0], mins[c0], group, Bits, y + c0, token_stride);
}

// Calls f(std::integral_constant<int, bits>{}) for bits 2, 4 or 8, the widths the
// public operations let through.
template <class F>
HWY_INLINE void with_bits(int bits, F f) {
  if (bits == 2) f(std::integral_constant<int, 2>());
  else if (bits == 4) f(std::integral_constant<int, 4>());
  else f(std::integral_constant<int, 8>());
}

#endif  // HWY_TARGET != HWY_SCALAR

// The exported kernels: one instantiation per code width. The scalar target runs the reference.
void quantize_row(const float* x, std::int64_t n, std::int64_t group, int bits, std::uint8_t* codes,
                  std::uint16_t* scales, std::uint16_t* mins) {
#if HWY_TARGET == HWY_SCALAR
  ref::quantize_per_token_row(x, n, group, bits, codes, scales, mins);
#else
  with_bits(bits, [&](auto b) { quantize_row_bits<b.value>(x, n, group, codes, scales, mins); });
#endif
}

void dequantize_row(const std::uint8_t* codes, const std::uint16_t* scales, const std::uint16_t* mins, std::int64_t n,
                    std::int64_t group, int bits, float* y) {
#if HWY_TARGET == HWY_SCALAR
  ref::dequantize_per_token_row(codes, scales, mins, n, group, bits, y);
#else
  with_bits(bits, [&](auto b) { dequantize_row_bits<b.value>(codes, scales, mins, n, group, y); });
#endif
}

void quantize_chunk(const float* x, std::int64_t token_stride, std::int64_t d, std::int64_t group, int bits,
                    std::uint8_t* codes, std::int64_t channel_stride, std::uint16_t* scales, std::uint16_t* mins) {
#if HWY_TARGET == HWY_SCALAR
  ref::quantize_per_channel_chunk(x, token_stride, d, group, bits, codes, channel_stride, scales, mins);
#else
  with_bits(bits, [&](auto b) {
    quantize_chunk_bits<b.value>(x, token_stride, d, group, codes, channel_stride, scales, mins);
  });
#endif
}

void dequantize_chunk(const std::uint8_t* codes, std::int64_t channel_stride, const std::uint16_t* scales,
                      const std::uint16_t* mins, std::int64_t d, std::int64_t group, int bits, float* y,
                      std::int64_t token_stride) {
#if HWY_TARGET == HWY_SCALAR
  ref::dequantize_per_channel_chunk(codes, channel_stride, scales, mins, d, group, bits, y, token_stride);
#else
  with_bits(bits, [&](auto b) {
    dequantize_chunk_bits<b.value>(codes, channel_stride, scales, mins, d, group, y, token_stride);
  });
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace cinch::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cinch::cpu {

HWY_EXPORT(quantize_row);
HWY_EXPORT(dequantize_row);
HWY_EXPORT(quantize_chunk);
HWY_EXPORT(dequantize_chunk);

void quantize_groups_row(const float* x, std::int64_t n, std::int64_t group, int bits, std::uint8_t* codes,
                         std::uint16_t* scales, std::uint16_t* mins) noexcept {
  HWY_DYNAMIC_DISPATCH(quantize_row)(x, n, group, bits, codes, scales, mins);
}
void dequantize_groups_row(const std::uint8_t* codes, const std::uint16_t* scales, const std::uint16_t* mins,
                           std::int64_t n, std::int64_t group, int bits, float* y) noexcept {
  HWY_DYNAMIC_DISPATCH(dequantize_row)(codes, scales, mins, n, group, bits, y);
}
void quantize_groups_chunk(const float* x, std::int64_t token_stride, std::int64_t d, std::int64_t group, int bits,
                           std::uint8_t* codes, std::int64_t channel_stride, std::uint16_t* scales,
                           std::uint16_t* mins) noexcept {
  HWY_DYNAMIC_DISPATCH(quantize_chunk)(x, token_stride, d, group, bits, codes, channel_stride, scales, mins);
}
void dequantize_groups_chunk(const std::uint8_t* codes, std::int64_t channel_stride, const std::uint16_t* scales,
                             const std::uint16_t* mins, std::int64_t d, std::int64_t group, int bits, float* y,
                             std::int64_t token_stride) noexcept {
  HWY_DYNAMIC_DISPATCH(dequantize_chunk)(codes, channel_stride, scales, mins, d, group, bits, y, token_stride);
}

}  // namespace cinch::cpu
#endif
