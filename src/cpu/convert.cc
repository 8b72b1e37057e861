// Highway kernels for float format conversion. Each function reproduces
// cinch/ref/convert.hpp bit for bit, lane by lane, with integer arithmetic on
// the f32 bit pattern; row tails fall back to the reference itself.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/convert.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "cinch/ref/convert.hpp"
#include "host_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace cinch::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;

// Applies `body(i)` to whole vectors and `tail(i)` to the remaining elements.
template <class Body, class Tail>
HWY_INLINE void for_each_vector(std::int64_t n, Body body, Tail tail) {
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(DF()));
  std::int64_t i = 0;
  for (; i + lanes <= n; i += lanes) body(i);
  for (; i < n; ++i) tail(i);
}

HWY_INLINE VI splat(std::int32_t v) { return hn::Set(DI(), v); }

// Round-to-nearest-even of a non-negative f32 bit pattern to `Shift` fewer mantissa bits.
template <int Shift>
HWY_INLINE VI round_bits(VI a, std::int32_t rebase) {
  const VI lsb = hn::And(hn::ShiftRight<Shift>(a), splat(1));
  return hn::Sub(hn::ShiftRight<Shift>(hn::Add(a, hn::Add(splat((1 << (Shift - 1)) - 1), lsb))), splat(rebase));
}

// Format: ref::e4m3_format or ref::e5m2_format, the constants the reference uses.
template <class Format>
HWY_INLINE VI encode_fp8(VF v) {
  constexpr int mant = Format::mant_bits;
  const DF df;
  const VI bits = hn::BitCast(DI(), v);
  const VI sign = hn::And(hn::ShiftRight<24>(bits), splat(0x80));
  const VI a = hn::And(bits, splat(0x7FFFFFFF));
  const VI clamped = hn::Min(a, splat(std::int32_t(Format::max_bits)));
  const VI normal = round_bits<23 - mant>(clamped, std::int32_t(Format::rebase << mant));
  const VI sub = hn::NearestInt(hn::Mul(hn::BitCast(df, clamped), hn::Set(df, Format::subnormal_scale)));
  VI code = hn::IfThenElse(hn::Lt(clamped, splat(std::int32_t(Format::min_normal_bits))), sub, normal);
  code = hn::IfThenElse(hn::Gt(a, splat(0x7F800000)), splat(0x7F), code);
  return hn::Or(code, sign);
}

template <class Format>
HWY_INLINE VF decode_fp8(VI c) {
  constexpr int mant = Format::mant_bits;
  constexpr std::int32_t e_max = 0x7F >> mant;
  const DF df;
  const VI sign = hn::ShiftLeft<24>(hn::And(c, splat(0x80)));
  const VI e = hn::And(hn::ShiftRight<mant>(c), splat(e_max));
  const VI m = hn::And(c, splat((1 << mant) - 1));
  const VI normal = hn::Or(hn::ShiftLeft<23>(hn::Add(e, splat(std::int32_t(Format::rebase)))), hn::ShiftLeft<23 - mant>(m));
  const VI sub = hn::BitCast(DI(), hn::Mul(hn::ConvertTo(df, m), hn::Set(df, 1.0f / Format::subnormal_scale)));
  const VI nan = hn::Or(splat(0x7FC00000), hn::ShiftLeft<23 - mant>(m));
  VI r = hn::IfThenElse(hn::Eq(e, hn::Zero(DI())), sub, normal);
  if constexpr (Format::has_inf) {
    r = hn::IfThenElse(hn::Eq(e, splat(e_max)), hn::IfThenElse(hn::Eq(m, hn::Zero(DI())), splat(0x7F800000), nan), r);
  } else {
    r = hn::IfThenElse(hn::Eq(hn::And(c, splat(0x7F)), splat(0x7F)), nan, r);
  }
  return hn::BitCast(df, hn::Or(r, sign));
}

HWY_INLINE VI encode_f16_soft(VF v) {
  const DF df;
  const VI bits = hn::BitCast(DI(), v);
  const VI sign = hn::And(hn::ShiftRight<16>(bits), splat(0x8000));
  const VI a = hn::And(bits, splat(0x7FFFFFFF));
  const VI normal = round_bits<13>(a, 112 << 10);
  const VI sub = hn::NearestInt(hn::Mul(hn::BitCast(df, a), hn::Set(df, 16777216.0f)));
  VI h = hn::IfThenElse(hn::Lt(a, splat(0x38800000)), sub, normal);
  h = hn::IfThenElse(hn::Gt(a, splat(0x477FEFFF)), splat(0x7C00), h);
  const VI nan = hn::Or(splat(0x7E00), hn::And(hn::ShiftRight<13>(a), splat(0x3FF)));
  h = hn::IfThenElse(hn::Gt(a, splat(0x7F800000)), nan, h);
  return hn::Or(h, sign);
}

HWY_INLINE VF decode_f16_soft(VI h) {
  const DF df;
  const VI sign = hn::ShiftLeft<16>(hn::And(h, splat(0x8000)));
  const VI e = hn::And(hn::ShiftRight<10>(h), splat(0x1F));
  const VI m = hn::And(h, splat(0x3FF));
  const VI normal = hn::Or(hn::ShiftLeft<23>(hn::Add(e, splat(112))), hn::ShiftLeft<13>(m));
  const VI sub = hn::BitCast(DI(), hn::Mul(hn::ConvertTo(df, m), hn::Set(df, 1.0f / 16777216.0f)));
  const VI special = hn::IfThenElse(hn::Eq(m, hn::Zero(DI())), splat(0x7F800000),
                                    hn::Or(splat(0x7FC00000), hn::ShiftLeft<13>(m)));
  VI r = hn::IfThenElse(hn::Eq(e, hn::Zero(DI())), sub, normal);
  r = hn::IfThenElse(hn::Eq(e, splat(31)), special, r);
  return hn::BitCast(df, hn::Or(r, sign));
}

// x86 AVX2 and AVX-512 have F16C, whose conversions round to nearest even and
// treat NaN as the reference does; elsewhere the integer version runs.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define CINCH_HW_F16 1
#else
#define CINCH_HW_F16 0
#endif

void convert_f32_to_f16(const void* src, void* dst, std::int64_t n) {
  const DF df;
  const auto* x = static_cast<const float*>(src);
  auto* y = static_cast<std::uint16_t*>(dst);
#if CINCH_HW_F16
  const hn::Rebind<hwy::float16_t, DF> dh;
  for_each_vector(
      n, [&](std::int64_t i) { hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, x + i)), dh, reinterpret_cast<hwy::float16_t*>(y + i)); },
      [&](std::int64_t i) { y[i] = ref::f32_to_f16(x[i]); });
#else
  const hn::Rebind<std::uint16_t, DF> du16;
  for_each_vector(
      n, [&](std::int64_t i) { hn::StoreU(hn::DemoteTo(du16, encode_f16_soft(hn::LoadU(df, x + i))), du16, y + i); },
      [&](std::int64_t i) { y[i] = ref::f32_to_f16(x[i]); });
#endif
}

void convert_f16_to_f32(const void* src, void* dst, std::int64_t n) {
  const DF df;
  const auto* x = static_cast<const std::uint16_t*>(src);
  auto* y = static_cast<float*>(dst);
#if CINCH_HW_F16
  const hn::Rebind<hwy::float16_t, DF> dh;
  for_each_vector(
      n, [&](std::int64_t i) { hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(x + i))), df, y + i); },
      [&](std::int64_t i) { y[i] = ref::f16_to_f32(x[i]); });
#else
  const hn::Rebind<std::uint16_t, DF> du16;
  for_each_vector(
      n, [&](std::int64_t i) { hn::StoreU(decode_f16_soft(hn::PromoteTo(DI(), hn::LoadU(du16, x + i))), df, y + i); },
      [&](std::int64_t i) { y[i] = ref::f16_to_f32(x[i]); });
#endif
}

void convert_f32_to_bf16(const void* src, void* dst, std::int64_t n) {
  const DF df;
  const hn::Rebind<std::uint16_t, DF> du16;
  const hn::RebindToUnsigned<DF> du;
  const auto* x = static_cast<const float*>(src);
  auto* y = static_cast<std::uint16_t*>(dst);
  for_each_vector(
      n,
      [&](std::int64_t i) {
        const auto bits = hn::BitCast(du, hn::LoadU(df, x + i));  // unsigned: logical shifts
        const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
        const auto rounded = hn::ShiftRight<16>(hn::Add(bits, hn::Add(hn::Set(du, 0x7FFFu), lsb)));
        const auto quiet = hn::Or(hn::ShiftRight<16>(bits), hn::Set(du, 0x40u));
        const VI a = hn::And(hn::BitCast(DI(), bits), splat(0x7FFFFFFF));
        const VI b = hn::IfThenElse(hn::Gt(a, splat(0x7F800000)), hn::BitCast(DI(), quiet), hn::BitCast(DI(), rounded));
        hn::StoreU(hn::DemoteTo(du16, b), du16, y + i);
      },
      [&](std::int64_t i) { y[i] = ref::f32_to_bf16(x[i]); });
}

void convert_bf16_to_f32(const void* src, void* dst, std::int64_t n) {
  const DF df;
  const hn::Rebind<std::uint16_t, DF> du16;
  const auto* x = static_cast<const std::uint16_t*>(src);
  auto* y = static_cast<float*>(dst);
  for_each_vector(
      n,
      [&](std::int64_t i) {
        const VI bits = hn::ShiftLeft<16>(hn::PromoteTo(DI(), hn::LoadU(du16, x + i)));
        const VI a = hn::And(bits, splat(0x7FFFFFFF));
        const VI r = hn::IfThenElse(hn::Gt(a, splat(0x7F800000)), hn::Or(bits, splat(0x00400000)), bits);
        hn::StoreU(hn::BitCast(df, r), df, y + i);
      },
      [&](std::int64_t i) { y[i] = ref::bf16_to_f32(x[i]); });
}

template <class Format>
HWY_INLINE void encode_fp8_row(const void* src, void* dst, std::int64_t n) {
  const DF df;
  const hn::Rebind<std::uint8_t, DF> du8;
  const auto* x = static_cast<const float*>(src);
  auto* y = static_cast<std::uint8_t*>(dst);
  for_each_vector(
      n, [&](std::int64_t i) { hn::StoreU(hn::DemoteTo(du8, encode_fp8<Format>(hn::LoadU(df, x + i))), du8, y + i); },
      [&](std::int64_t i) { y[i] = ref::f32_to_fp8<Format>(x[i]); });
}

template <class Format>
HWY_INLINE void decode_fp8_row(const void* src, void* dst, std::int64_t n) {
  const DF df;
  const hn::Rebind<std::uint8_t, DF> du8;
  const auto* x = static_cast<const std::uint8_t*>(src);
  auto* y = static_cast<float*>(dst);
  for_each_vector(
      n, [&](std::int64_t i) { hn::StoreU(decode_fp8<Format>(hn::PromoteTo(DI(), hn::LoadU(du8, x + i))), df, y + i); },
      [&](std::int64_t i) { y[i] = ref::fp8_to_f32<Format>(x[i]); });
}

void convert_f32_to_e4m3(const void* src, void* dst, std::int64_t n) { encode_fp8_row<ref::e4m3_format>(src, dst, n); }
void convert_e4m3_to_f32(const void* src, void* dst, std::int64_t n) { decode_fp8_row<ref::e4m3_format>(src, dst, n); }
void convert_f32_to_e5m2(const void* src, void* dst, std::int64_t n) { encode_fp8_row<ref::e5m2_format>(src, dst, n); }
void convert_e5m2_to_f32(const void* src, void* dst, std::int64_t n) { decode_fp8_row<ref::e5m2_format>(src, dst, n); }

#undef CINCH_HW_F16

// NOLINTNEXTLINE(google-readability-casting)
std::int64_t target_of_this_code() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace cinch::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cinch::cpu {

HWY_EXPORT(convert_f32_to_f16);
HWY_EXPORT(convert_f16_to_f32);
HWY_EXPORT(convert_f32_to_bf16);
HWY_EXPORT(convert_bf16_to_f32);
HWY_EXPORT(convert_f32_to_e4m3);
HWY_EXPORT(convert_e4m3_to_f32);
HWY_EXPORT(convert_f32_to_e5m2);
HWY_EXPORT(convert_e5m2_to_f32);
HWY_EXPORT(target_of_this_code);

void f32_to_f16_row(const void* s, void* d, std::int64_t n) noexcept { HWY_DYNAMIC_DISPATCH(convert_f32_to_f16)(s, d, n); }
void f16_to_f32_row(const void* s, void* d, std::int64_t n) noexcept { HWY_DYNAMIC_DISPATCH(convert_f16_to_f32)(s, d, n); }
void f32_to_bf16_row(const void* s, void* d, std::int64_t n) noexcept { HWY_DYNAMIC_DISPATCH(convert_f32_to_bf16)(s, d, n); }
void bf16_to_f32_row(const void* s, void* d, std::int64_t n) noexcept { HWY_DYNAMIC_DISPATCH(convert_bf16_to_f32)(s, d, n); }
void f32_to_e4m3_row(const void* s, void* d, std::int64_t n) noexcept { HWY_DYNAMIC_DISPATCH(convert_f32_to_e4m3)(s, d, n); }
void e4m3_to_f32_row(const void* s, void* d, std::int64_t n) noexcept { HWY_DYNAMIC_DISPATCH(convert_e4m3_to_f32)(s, d, n); }
void f32_to_e5m2_row(const void* s, void* d, std::int64_t n) noexcept { HWY_DYNAMIC_DISPATCH(convert_f32_to_e5m2)(s, d, n); }
void e5m2_to_f32_row(const void* s, void* d, std::int64_t n) noexcept { HWY_DYNAMIC_DISPATCH(convert_e5m2_to_f32)(s, d, n); }
std::int64_t dispatched_target() noexcept { return HWY_DYNAMIC_DISPATCH(target_of_this_code)(); }

}  // namespace cinch::cpu
#endif
