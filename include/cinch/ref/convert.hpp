// Reference float conversions: the exact specification that the SIMD and CUDA
// backends reproduce bit for bit.
//
// f32 -> f16, bf16, f8_e4m3, f8_e5m2 round to nearest, ties to even.
//  * f16 and bf16 follow IEEE: overflow becomes +-inf; a NaN stays NaN with its
//    sign, its quiet bit set and the top payload bits kept (what x86 F16C does).
//  * fp8 saturates, as vLLM and CUDA's __NV_SATFINITE do: +-inf and every finite
//    value beyond the largest finite (e4m3: 448, e5m2: 57344) become that value
//    with its sign; NaN becomes the NaN code 0x7F with its sign. e4m3 here is the
//    "fn" variant (no infinities, one NaN per sign), e5m2 is IEEE-like.
// The narrow -> f32 direction is exact; NaNs come back quiet with their sign and
// their payload in the top mantissa bits.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "cinch/config.hpp"
#include "cinch/core/dtype.hpp"

namespace cinch::ref {

CINCH_HOST_DEVICE inline std::uint32_t bits_of(float x) noexcept {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}
CINCH_HOST_DEVICE inline float float_of(std::uint32_t u) noexcept {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

// Round-to-nearest-even of a non-negative float below 2^23, as an integer.
CINCH_HOST_DEVICE inline std::uint32_t round_even(float x) noexcept {
#if defined(__CUDA_ARCH__)
  return static_cast<std::uint32_t>(__float2int_rn(x));
#else
  return static_cast<std::uint32_t>(std::nearbyint(x));  // default rounding mode: ties to even
#endif
}

// Drops the low `shift` mantissa bits of a finite non-negative float's bit pattern,
// rounding to nearest even, and rebases the exponent by `bias_delta` (in the
// target's exponent field units, already shifted into place).
CINCH_HOST_DEVICE inline std::uint32_t round_bits(std::uint32_t abs_bits, int shift, std::uint32_t rebase) noexcept {
  const std::uint32_t half = (1u << (shift - 1)) - 1u;
  return ((abs_bits + half + ((abs_bits >> shift) & 1u)) >> shift) - rebase;
}

CINCH_HOST_DEVICE inline std::uint16_t f32_to_f16(float x) noexcept {
  const std::uint32_t bits = bits_of(x);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const std::uint32_t a = bits & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
  if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds to >= 65536: inf
  if (a < 0x38800000u)  // below 2^-14: subnormal, in units of 2^-24
    return static_cast<std::uint16_t>(sign | round_even(float_of(a) * 16777216.0f));
  return static_cast<std::uint16_t>(sign | round_bits(a, 13, 112u << 10));
}

CINCH_HOST_DEVICE inline float f16_to_f32(std::uint16_t h) noexcept {
  const std::uint32_t sign = (std::uint32_t(h) & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  if (e == 0) return float_of(sign | bits_of(float(m) * (1.0f / 16777216.0f)));
  if (e == 31) return float_of(sign | 0x7F800000u | (m ? 0x00400000u | (m << 13) : 0u));
  return float_of(sign | ((e + 112u) << 23) | (m << 13));
}

CINCH_HOST_DEVICE inline std::uint16_t f32_to_bf16(float x) noexcept {
  const std::uint32_t bits = bits_of(x);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);
  return static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

CINCH_HOST_DEVICE inline float bf16_to_f32(std::uint16_t b) noexcept {
  const std::uint32_t bits = std::uint32_t(b) << 16;
  return float_of((bits & 0x7FFFFFFFu) > 0x7F800000u ? bits | 0x00400000u : bits);
}

// The two 8-bit formats differ only in these constants (bit patterns are f32's).
struct e4m3_format {
  static constexpr int mant_bits = 3;
  static constexpr std::uint32_t rebase = 127 - 7;             // f32 bias - e4m3 bias
  static constexpr std::uint32_t max_bits = 0x43E00000u;       // 448
  static constexpr std::uint32_t min_normal_bits = 0x3C800000u;  // 2^-6
  static constexpr float subnormal_scale = 512.0f;             // 1 / 2^-9, the smallest subnormal
  static constexpr bool has_inf = false;                       // only 0x7F/0xFF are special (NaN)
};
struct e5m2_format {
  static constexpr int mant_bits = 2;
  static constexpr std::uint32_t rebase = 127 - 15;
  static constexpr std::uint32_t max_bits = 0x47600000u;       // 57344
  static constexpr std::uint32_t min_normal_bits = 0x38800000u;  // 2^-14
  static constexpr float subnormal_scale = 65536.0f;           // 1 / 2^-16
  static constexpr bool has_inf = true;                        // exponent all ones: inf and NaN
};

template <class Format>
CINCH_HOST_DEVICE std::uint8_t f32_to_fp8(float x) noexcept {
  const std::uint32_t bits = bits_of(x);
  const std::uint32_t sign = (bits >> 24) & 0x80u;
  std::uint32_t a = bits & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint8_t>(sign | 0x7Fu);
  if (a > Format::max_bits) a = Format::max_bits;  // saturate (inf too)
  if (a < Format::min_normal_bits)                 // subnormal: a count of the smallest step
    return static_cast<std::uint8_t>(sign | round_even(float_of(a) * Format::subnormal_scale));
  return static_cast<std::uint8_t>(sign | round_bits(a, 23 - Format::mant_bits, Format::rebase << Format::mant_bits));
}

template <class Format>
CINCH_HOST_DEVICE float fp8_to_f32(std::uint8_t c) noexcept {
  constexpr int mant = Format::mant_bits;
  constexpr std::uint32_t e_max = 0x7Fu >> mant;
  const std::uint32_t sign = (std::uint32_t(c) & 0x80u) << 24;
  const std::uint32_t e = (c >> mant) & e_max, m = c & ((1u << mant) - 1u);
  const bool special = Format::has_inf ? e == e_max : (c & 0x7Fu) == 0x7Fu;
  if (special) return float_of(sign | (Format::has_inf && m == 0 ? 0x7F800000u : 0x7FC00000u | (m << (23 - mant))));
  if (e == 0) return float_of(sign | bits_of(float(m) * (1.0f / Format::subnormal_scale)));
  return float_of(sign | ((e + Format::rebase) << 23) | (m << (23 - mant)));
}

CINCH_HOST_DEVICE inline std::uint8_t f32_to_e4m3(float x) noexcept { return f32_to_fp8<e4m3_format>(x); }
CINCH_HOST_DEVICE inline float e4m3_to_f32(std::uint8_t c) noexcept { return fp8_to_f32<e4m3_format>(c); }
CINCH_HOST_DEVICE inline std::uint8_t f32_to_e5m2(float x) noexcept { return f32_to_fp8<e5m2_format>(x); }
CINCH_HOST_DEVICE inline float e5m2_to_f32(std::uint8_t c) noexcept { return fp8_to_f32<e5m2_format>(c); }

// Element-wise conversion between two storage types of the same float value.
CINCH_HOST_DEVICE inline float to_f32(float x) noexcept { return x; }
CINCH_HOST_DEVICE inline float to_f32(f16_bits x) noexcept { return f16_to_f32(x.bits); }
CINCH_HOST_DEVICE inline float to_f32(bf16_bits x) noexcept { return bf16_to_f32(x.bits); }
CINCH_HOST_DEVICE inline float to_f32(f8_e4m3_bits x) noexcept { return e4m3_to_f32(x.bits); }
CINCH_HOST_DEVICE inline float to_f32(f8_e5m2_bits x) noexcept { return e5m2_to_f32(x.bits); }

template <class T>
CINCH_HOST_DEVICE T from_f32(float x) noexcept;
template <> CINCH_HOST_DEVICE inline float from_f32<float>(float x) noexcept { return x; }
template <> CINCH_HOST_DEVICE inline f16_bits from_f32<f16_bits>(float x) noexcept { return {f32_to_f16(x)}; }
template <> CINCH_HOST_DEVICE inline bf16_bits from_f32<bf16_bits>(float x) noexcept { return {f32_to_bf16(x)}; }
template <> CINCH_HOST_DEVICE inline f8_e4m3_bits from_f32<f8_e4m3_bits>(float x) noexcept { return {f32_to_e4m3(x)}; }
template <> CINCH_HOST_DEVICE inline f8_e5m2_bits from_f32<f8_e5m2_bits>(float x) noexcept { return {f32_to_e5m2(x)}; }

// One contiguous row: dst[i] = From -> f32 -> To of src[i].
template <class From, class To>
void convert_row(const From* src, To* dst, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = from_f32<To>(to_f32(src[i]));
}

}  // namespace cinch::ref
