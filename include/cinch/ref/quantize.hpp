// Reference symmetric absmax int8 row quantization: the exact specification.
//
// For a row x[0..n):
//   amax  = max |x[i]|            (compared as bit patterns, so a NaN wins over inf)
//   scale = amax / 127            (stored; dequantized value = code * scale)
//   inv   = 127 / amax            (one rounding, then every code is a product)
//   code  = clamp(round_half_even(x[i] * inv), -127, 127)
// An all-zero row gets scale 0 and codes 0. A row holding inf or NaN gets a
// non-finite scale (inf, or NaN if any NaN) and codes 0, so dequantizing it gives
// NaN everywhere: the damage stays in that row and is visible.
#pragma once

#include <cstdint>

#include "cinch/ref/convert.hpp"

namespace cinch::ref {

// Largest |x[i]| as a bit pattern (0x7F800000 inf, above it NaN).
inline std::uint32_t absmax_bits(const float* x, std::int64_t n) noexcept {
  std::uint32_t amax = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint32_t a = bits_of(x[i]) & 0x7FFFFFFFu;
    amax = a > amax ? a : amax;
  }
  return amax;
}

// Codes of one element given inv = 127 / amax (finite, non-zero amax).
CINCH_HOST_DEVICE inline std::int8_t quantize_i8(float x, float inv) noexcept {
  const float y = x * inv;
  const float r = y < 0 ? -float(round_even(-y)) : float(round_even(y));
  return static_cast<std::int8_t>(r > 127.0f ? 127 : (r < -127.0f ? -127 : int(r)));
}

// Writes n codes and returns the row's scale.
inline float quantize_row_i8(const float* x, std::int8_t* codes, std::int64_t n) noexcept {
  const std::uint32_t amax_bits = absmax_bits(x, n);
  const float amax = float_of(amax_bits);
  const bool usable = amax_bits != 0 && amax_bits < 0x7F800000u;
  const float inv = usable ? 127.0f / amax : 0.0f;
  for (std::int64_t i = 0; i < n; ++i) codes[i] = usable ? quantize_i8(x[i], inv) : std::int8_t{0};
  return amax / 127.0f;
}

inline void dequantize_row_i8(const std::int8_t* codes, float scale, float* y, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) y[i] = float(codes[i]) * scale;
}

}  // namespace cinch::ref
