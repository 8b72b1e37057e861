// Reference asymmetric min-max group quantization (KIVI, ZipCache, MiKV): the
// exact specification that the SIMD and CUDA backends reproduce code for code.
//
// A group is n values x[0..n) sharing one scale and one minimum, b in {2, 4, 8}
// bits, L = 2^b - 1 levels:
//   mn, mx = min, max of the group, each plus 0.0f (so -0 counts as +0)
//   s      = (mx - mn) / L                       (f32, one division)
//   scale  = f32_to_f16(s), min = f32_to_f16(mn) (STORED as fp16, round to nearest even)
//   s16, m16 = the stored fp16 values as f32; codes use them, not s and mn, so
//              dequantization sees exactly the parameters the codes were made with
//   inv    = 1 / s16 (one division), or 0 when s16 == 0 (a constant group: codes 0)
//   code   = clamp(round_half_even((x - m16) * inv), 0, L)
//   x^     = code * s16 + m16
// code * s16 is exact in f32 (8 + 11 significant bits), so x^ has one rounding
// whether or not the multiply-add is fused: every backend gets the same bits.
//
// Error bound (usable group, per element):
//   |x - x^| <= s16 / 2 + |m16 - mn| + L * |s16 - s| + 2^-22 * (L * s16 + |x|)
// The first term is rounding to the nearest level; the next two come from storing
// min and scale in fp16 (codes clamp where the fp16 grid falls short of [mn, mx]);
// the last covers the f32 rounding of (x - m16) * inv and of x^.
//
// Non-finite groups: a group holding inf or NaN, or whose min or scale overflows
// fp16 (|min| or s >= 65520), is unusable: it stores scale = min = fp16 NaN
// (0x7E00) and codes 0, so it dequantizes to NaN throughout. The damage stays in
// that group and is visible.
//
// Packing, lowest bits first: b = 4 (u4x2): element 2j in bits 0-3 of byte j and
// 2j+1 in bits 4-7; b = 2 (u2x4): element 4j+k in bits 2k..2k+1 of byte j;
// b = 8 (u8): one code per byte. A group starts on a byte boundary (n is a
// multiple of 8 / b).
//
// KIVI layouts built from groups:
//   per token (values): a row x[0..n) of one token in groups of G consecutive
//     channels: codes packed along the row, scales/mins[n / G].
//   per channel (keys): a chunk of G tokens x [G, d] grouped over tokens, one group
//     per channel: codes stored channel-major [d][G] packed along tokens,
//     scales/mins[d].
#pragma once

#include <cstdint>

#include "cinch/config.hpp"
#include "cinch/ref/convert.hpp"

namespace cinch::ref {

CINCH_HOST_DEVICE constexpr std::uint32_t group_levels(int bits) noexcept { return (1u << bits) - 1u; }
CINCH_HOST_DEVICE constexpr int codes_per_byte(int bits) noexcept { return 8 / bits; }

inline constexpr std::uint16_t f16_nan_bits = 0x7E00;

// The stored parameters of one group and the f32 values the codes use.
struct group_params {
  std::uint16_t scale_bits;  // fp16
  std::uint16_t min_bits;    // fp16
  float min;                 // f16_to_f32(min_bits)
  float inv;                 // 1 / scale, 0 for a constant group
  bool usable;               // false: codes are all 0, scale and min are NaN
};

CINCH_HOST_DEVICE inline bool f16_is_finite(std::uint16_t h) noexcept { return (h & 0x7C00u) != 0x7C00u; }

// Parameters from the group's range; `finite` says every element was finite.
CINCH_HOST_DEVICE inline group_params make_group_params(float mn, float mx, bool finite, int bits) noexcept {
  mn += 0.0f;
  mx += 0.0f;
  const float s = (mx - mn) / float(group_levels(bits));
  group_params p{f32_to_f16(s), f32_to_f16(mn), 0.0f, 0.0f, false};
  p.usable = finite && f16_is_finite(p.scale_bits) && f16_is_finite(p.min_bits);
  if (!p.usable) {
    p.scale_bits = p.min_bits = f16_nan_bits;
    return p;
  }
  const float s16 = f16_to_f32(p.scale_bits);
  p.min = f16_to_f32(p.min_bits);
  p.inv = s16 > 0.0f ? 1.0f / s16 : 0.0f;
  return p;
}

// Code of one element of a usable group. |(x - min) * inv| stays below 2^31 for
// every usable group (fp16 bounds the min's error and the scale from below), so
// backends may round with a float-to-int conversion and clamp afterwards.
CINCH_HOST_DEVICE inline std::uint32_t quantize_code(float x, float min, float inv, std::uint32_t levels) noexcept {
  const float t = (x - min) * inv;
  if (!(t > 0.0f)) return 0;
  if (t >= float(levels)) return levels;
  return round_even(t);
}

CINCH_HOST_DEVICE inline float dequantize_code(std::uint32_t code, float scale, float min) noexcept {
  return float(code) * scale + min;
}

// Code i of a packed array.
CINCH_HOST_DEVICE inline std::uint32_t code_at(const std::uint8_t* codes, std::int64_t i, int bits) noexcept {
  const int per_byte = codes_per_byte(bits);
  return (std::uint32_t(codes[i / per_byte]) >> (int(i % per_byte) * bits)) & group_levels(bits);
}

// One group of n elements x[0], x[stride], ..., packed into codes[0 .. n * bits / 8).
CINCH_HOST_DEVICE inline void quantize_group(const float* x, std::int64_t stride, std::int64_t n, int bits,
                                             std::uint8_t* codes, std::uint16_t* scale, std::uint16_t* min) noexcept {
  float mn = x[0], mx = x[0];
  bool finite = true;
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i * stride];
    finite = finite && (bits_of(v) & 0x7F800000u) != 0x7F800000u;
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  const group_params p = make_group_params(mn, mx, finite, bits);
  *scale = p.scale_bits;
  *min = p.min_bits;
  const int per_byte = codes_per_byte(bits);
  for (std::int64_t j = 0; j < n / per_byte; ++j) {
    std::uint32_t byte = 0;
    for (int k = 0; k < per_byte; ++k)
      if (p.usable) byte |= quantize_code(x[(j * per_byte + k) * stride], p.min, p.inv, group_levels(bits)) << (k * bits);
    codes[j] = static_cast<std::uint8_t>(byte);
  }
}

CINCH_HOST_DEVICE inline void dequantize_group(const std::uint8_t* codes, std::uint16_t scale, std::uint16_t min,
                                               std::int64_t n, int bits, float* y, std::int64_t stride) noexcept {
  const float s = f16_to_f32(scale), m = f16_to_f32(min);
  for (std::int64_t i = 0; i < n; ++i) y[i * stride] = dequantize_code(code_at(codes, i, bits), s, m);
}

// ---------------------------------------------------------------- per token (values)

// A row x[0..n) in groups of `group` consecutive elements.
inline void quantize_per_token_row(const float* x, std::int64_t n, std::int64_t group, int bits, std::uint8_t* codes,
                                   std::uint16_t* scales, std::uint16_t* mins) noexcept {
  for (std::int64_t g = 0; g < n / group; ++g)
    quantize_group(x + g * group, 1, group, bits, codes + g * group / codes_per_byte(bits), scales + g, mins + g);
}

inline void dequantize_per_token_row(const std::uint8_t* codes, const std::uint16_t* scales, const std::uint16_t* mins,
                                     std::int64_t n, std::int64_t group, int bits, float* y) noexcept {
  for (std::int64_t g = 0; g < n / group; ++g)
    dequantize_group(codes + g * group / codes_per_byte(bits), scales[g], mins[g], group, bits, y + g * group, 1);
}

// Element c of a per-token row.
CINCH_HOST_DEVICE inline float per_token_value(const std::uint8_t* codes, const std::uint16_t* scales,
                                               const std::uint16_t* mins, std::int64_t group, int bits,
                                               std::int64_t c) noexcept {
  return dequantize_code(code_at(codes, c, bits), f16_to_f32(scales[c / group]), f16_to_f32(mins[c / group]));
}

// q . x^ for a per-token row: sum over groups g of s_g * (sum_c q_c code_c) + m_g * (sum_c q_c),
// each sum in increasing c, groups in order.
CINCH_HOST_DEVICE inline float per_token_dot(const float* q, const std::uint8_t* codes, const std::uint16_t* scales,
                                             const std::uint16_t* mins, std::int64_t n, std::int64_t group,
                                             int bits) noexcept {
  float total = 0.0f;
  for (std::int64_t g = 0; g < n / group; ++g) {
    float qc = 0.0f, qsum = 0.0f;
    for (std::int64_t c = g * group; c < (g + 1) * group; ++c) {
      qc += q[c] * float(code_at(codes, c, bits));
      qsum += q[c];
    }
    total += f16_to_f32(scales[g]) * qc + f16_to_f32(mins[g]) * qsum;
  }
  return total;
}

// y[c] += w * x^[c] over a per-token row (attention-weighted values).
CINCH_HOST_DEVICE inline void per_token_accumulate(float w, const std::uint8_t* codes, const std::uint16_t* scales,
                                                   const std::uint16_t* mins, std::int64_t n, std::int64_t group,
                                                   int bits, float* y) noexcept {
  for (std::int64_t c = 0; c < n; ++c) y[c] += w * per_token_value(codes, scales, mins, group, bits, c);
}

// ---------------------------------------------------------------- per channel (keys)

// A chunk of `group` tokens of d channels: token t at x + t * token_stride. Channel
// c's codes start at codes + c * channel_stride (bytes).
inline void quantize_per_channel_chunk(const float* x, std::int64_t token_stride, std::int64_t d, std::int64_t group,
                                       int bits, std::uint8_t* codes, std::int64_t channel_stride,
                                       std::uint16_t* scales, std::uint16_t* mins) noexcept {
  for (std::int64_t c = 0; c < d; ++c)
    quantize_group(x + c, token_stride, group, bits, codes + c * channel_stride, scales + c, mins + c);
}

inline void dequantize_per_channel_chunk(const std::uint8_t* codes, std::int64_t channel_stride,
                                         const std::uint16_t* scales, const std::uint16_t* mins, std::int64_t d,
                                         std::int64_t group, int bits, float* y, std::int64_t token_stride) noexcept {
  for (std::int64_t c = 0; c < d; ++c)
    dequantize_group(codes + c * channel_stride, scales[c], mins[c], group, bits, y + c, token_stride);
}

// Element (token t, channel c) of a per-channel chunk.
CINCH_HOST_DEVICE inline float per_channel_value(const std::uint8_t* codes, std::int64_t channel_stride,
                                                 const std::uint16_t* scales, const std::uint16_t* mins, int bits,
                                                 std::int64_t t, std::int64_t c) noexcept {
  return dequantize_code(code_at(codes + c * channel_stride, t, bits), f16_to_f32(scales[c]), f16_to_f32(mins[c]));
}

// Scores q . k^_t of a chunk's tokens use sum_c q_c (code s_c + m_c) =
// sum_c (q_c s_c) code + sum_c q_c m_c: the second sum (the bias) is shared by
// every token of the chunk. Sums run in increasing c.
CINCH_HOST_DEVICE inline float per_channel_bias(const float* q, const std::uint16_t* mins, std::int64_t d) noexcept {
  float bias = 0.0f;
  for (std::int64_t c = 0; c < d; ++c) bias += q[c] * f16_to_f32(mins[c]);
  return bias;
}

CINCH_HOST_DEVICE inline float per_channel_dot(const float* q, const std::uint8_t* codes, std::int64_t channel_stride,
                                               const std::uint16_t* scales, std::int64_t d, int bits, std::int64_t t,
                                               float bias) noexcept {
  float acc = 0.0f;
  for (std::int64_t c = 0; c < d; ++c)
    acc += (q[c] * f16_to_f32(scales[c])) * float(code_at(codes + c * channel_stride, t, bits));
  return acc + bias;
}

// scores[t] = q . k^_t for the chunk's `group` tokens.
inline void per_channel_scores(const float* q, const std::uint8_t* codes, std::int64_t channel_stride,
                               const std::uint16_t* scales, const std::uint16_t* mins, std::int64_t d,
                               std::int64_t group, int bits, float* scores) noexcept {
  const float bias = per_channel_bias(q, mins, d);
  for (std::int64_t t = 0; t < group; ++t) scores[t] = per_channel_dot(q, codes, channel_stride, scales, d, bits, t, bias);
}

}  // namespace cinch::ref
