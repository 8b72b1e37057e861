// Reference ggml block formats q8_0, q4_0, q4_1, q5_0, q5_1 and iq4_nl: the
// exact specification that the SIMD and CUDA backends reproduce byte for byte.
//
// Each block holds 32 consecutive values, little-endian, without padding; d and
// m are IEEE binary16. The arithmetic is that of ggml's reference quantizers
// (quantize_row_*_ref): the scale is computed in f32, the codes are computed
// from that f32 scale, and only then is the scale rounded to f16 (f32_to_f16,
// nearest even). Dequantizing uses the stored f16 scale. M is the value of
// largest |x| (the FIRST one on ties: the test is a strict amax < |x|), min and
// max are the block's extremes, trunc rounds toward zero.
//
//   format  bytes  layout                      quantize                               value of code c
//   q8_0    34     d, 32 x i8                  d = amax/127, c = roundf(x*id)         c*d
//   q4_0    18     d, 16 nibble bytes          d = M/-8, c = min(15, trunc(x*id+8.5))  (c-8)*d
//   q4_1    20     d, m, 16 nibble bytes       d = (max-min)/15, m = min,             c*d + m
//                                              c = min(15, trunc((x-min)*id+0.5))
//   q5_0    22     d, qh, 16 nibble bytes      d = M/-16, c = min(31, trunc(x*id+16.5)) (c-16)*d
//   q5_1    24     d, m, qh, 16 nibble bytes   d = (max-min)/31, m = min,             c*d + m
//                                              c = trunc((x-min)*id+0.5)
//   iq4_nl  18     d, 16 nibble bytes          codebook search + refit (quantize_iq4_nl)  d*T[c]
//
// with id = d != 0 ? 1/d : 0 (a division, then a product per value). roundf
// rounds half away from zero. A nibble byte j holds code j in bits 0-3 and code
// j+16 in bits 4-7; qh is a little-endian u32 whose bit j is bit 4 of code j.
// The sign of d follows M: q4_0/q5_0 store a NEGATIVE d when M > 0 (M itself is
// code 0), and the value -M gives x*id + 8.5 = 16.5, clamped to 15.
//
// Every product is rounded to f32 before it is added to anything (no fused
// multiply-add, see rounded_product): compilers fuse a*b + c under
// -ffp-contract=fast, GCC's default for GNU C++, wherever the target has FMA,
// and that moves codes that sit on a rounding boundary.
//
// Edge cases (tests/test_kv_blocks.cpp checks each):
//  * All-zero block: q4_0/q5_0 store d = 0/-8 = -0.0 (bits 0x8000) and codes 8
//    / 16; q8_0 stores +0 and codes 0; q4_1/q5_1 store d = 0, m = min and codes
//    0 (so does any constant block); iq4_nl stores d = 0 and codes 0.
//  * NaN never wins amax/min/max (its comparisons are false), so d comes from
//    the other values, except in q8_0, whose running max is ggml's
//    MAX(a, b) = a > b ? a : b: a NaN resets it, so amax is the max over the
//    values after the last NaN (NaN when the last value is NaN).
//  * ±inf makes d infinite (or, for q8_0 with a NaN last, NaN); the block then
//    dequantizes to NaN everywhere, or ±inf where a code times inf has no 0.
//  * d beyond the f16 range is stored as ±inf, with the same effect; d below it
//    (amax under about 1e-6 for q8_0) is stored as 0 and the block reads back 0.
//  * Where ggml's reference converts NaN or an out-of-range float to an integer
//    (undefined behaviour in C: NaN elements, ±inf elements, or 1/d
//    overflowing for amax below about 1e-37) cinch defines the code: NaN gives
//    code 0 (what x86 builds of ggml produce), larger values saturate to the
//    highest code (q8_0: to ±127) and smaller ones to the lowest. Those blocks
//    read back as NaN, ±inf or 0 in ggml and here alike, except that a q8_0 block
//    with a NaN can hold values whose codes ggml wraps modulo 256.
//  * iq4_nl blocks with amax < 1e-15 get d = 0 and codes 0; ggml leaves their
//    codes unset (the previous block's, in a row). Any code reads back 0.
// These are the only differences from ggml's reference code; f16 NaN scales keep
// their sign and top payload bits (F16C behaviour, as ggml on x86).
#pragma once

#include <cstdint>

#include "cinch/config.hpp"
#include "cinch/core/dtype.hpp"
#include "cinch/ref/convert.hpp"

namespace cinch::ref {

inline constexpr int ggml_block_values = 32;

// A product rounded to f32 before it is added to anything: compilers cannot
// fuse it into an fma.
CINCH_HOST_DEVICE inline float rounded_product(float a, float b) noexcept {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__SSE__)
  float p = a * b;
  __asm__("" : "+x"(p));
  return p;
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
  float p = a * b;
  __asm__("" : "+w"(p));
  return p;
#else
  volatile float p = a * b;
  return p;
#endif
}

// The non-linear iq4_nl codebook T (ggml's kvalues_iq4nl).
CINCH_HOST_DEVICE constexpr float iq4_nl_value(int c) noexcept {
  constexpr std::int8_t values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  return values[c];
}

namespace ggml_detail {

CINCH_HOST_DEVICE inline std::uint16_t load_u16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
CINCH_HOST_DEVICE inline void store_u16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
CINCH_HOST_DEVICE inline std::uint32_t load_u32(const std::uint8_t* p) noexcept {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
CINCH_HOST_DEVICE inline void store_u32(std::uint8_t* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// fabsf: clears the sign bit (of -0.0 and NaN too).
CINCH_HOST_DEVICE inline float magnitude(float v) noexcept { return float_of(bits_of(v) & 0x7FFFFFFFu); }

// trunc(v) limited to [0, top]: ggml's MIN(top, (int)v) wherever C defines it;
// NaN and v <= 0 give 0, v >= top gives top.
CINCH_HOST_DEVICE inline int clamped_trunc(float v, int top) noexcept {
  if (!(v > 0.0f)) return 0;
  if (v >= static_cast<float>(top)) return top;
  return static_cast<int>(v);
}

// roundf(v), half away from zero, limited to [-127, 127]; NaN gives 0.
CINCH_HOST_DEVICE inline int rounded_q8(float v) noexcept {
  if (!(v == v)) return 0;
  if (v >= 127.0f) return 127;
  if (v <= -127.0f) return -127;
  const int t = static_cast<int>(v);
  const float frac = v - static_cast<float>(t);  // exact
  return t + (frac >= 0.5f ? 1 : 0) - (frac <= -0.5f ? 1 : 0);
}

// The value of largest magnitude, the first one on ties (ggml: amax < |v|).
CINCH_HOST_DEVICE inline float signed_absmax(const float* x) noexcept {
  float amax = 0.0f, m = 0.0f;
  for (int j = 0; j < ggml_block_values; ++j) {
    const float a = magnitude(x[j]);
    if (amax < a) {
      amax = a;
      m = x[j];
    }
  }
  return m;
}

// Codes of 32 values in the nibble layout, plus qh for 5-bit codes.
CINCH_HOST_DEVICE inline void pack_nibbles(const int* c, std::uint8_t* qs) noexcept {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<std::uint8_t>((c[j] & 15) | (c[j + 16] & 15) << 4);
}
CINCH_HOST_DEVICE inline std::uint32_t high_bits(const int* c) noexcept {
  std::uint32_t qh = 0;
  for (int j = 0; j < ggml_block_values; ++j) qh |= std::uint32_t((c[j] >> 4) & 1) << j;
  return qh;
}
CINCH_HOST_DEVICE inline void unpack_nibbles(const std::uint8_t* qs, std::uint32_t qh, int* c) noexcept {
  for (int j = 0; j < 16; ++j) {
    c[j] = (qs[j] & 15) | int((qh >> j) & 1) << 4;
    c[j + 16] = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
  }
}

// Symmetric 4/5-bit (q4_0, q5_0): d = M / -half, codes relative to half.
template <int Bits>
CINCH_HOST_DEVICE inline void quantize_symmetric(const float* x, std::uint8_t* block) noexcept {
  constexpr int half = 1 << (Bits - 1);
  const float d = signed_absmax(x) / static_cast<float>(-half);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  int c[ggml_block_values];
  for (int j = 0; j < ggml_block_values; ++j)
    c[j] = clamped_trunc(rounded_product(x[j], id) + (static_cast<float>(half) + 0.5f), 2 * half - 1);
  store_u16(block, f32_to_f16(d));
  if constexpr (Bits == 5) store_u32(block + 2, high_bits(c));
  pack_nibbles(c, block + (Bits == 5 ? 6 : 2));
}

// Asymmetric 4/5-bit (q4_1, q5_1): d = (max - min) / top, m = min.
template <int Bits>
CINCH_HOST_DEVICE inline void quantize_asymmetric(const float* x, std::uint8_t* block) noexcept {
  constexpr int top = (1 << Bits) - 1;
  float lo = 3.40282347e38f, hi = -3.40282347e38f;  // FLT_MAX: ggml's starting values
  for (int j = 0; j < ggml_block_values; ++j) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
  const float d = (hi - lo) / static_cast<float>(top);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  int c[ggml_block_values];
  for (int j = 0; j < ggml_block_values; ++j) c[j] = clamped_trunc(rounded_product(x[j] - lo, id) + 0.5f, top);
  store_u16(block, f32_to_f16(d));
  store_u16(block + 2, f32_to_f16(lo));
  if constexpr (Bits == 5) store_u32(block + 4, high_bits(c));
  pack_nibbles(c, block + (Bits == 5 ? 8 : 4));
}

CINCH_HOST_DEVICE inline void quantize_q8(const float* x, std::uint8_t* block) noexcept {
  float amax = 0.0f;
  for (int j = 0; j < ggml_block_values; ++j) {
    const float a = magnitude(x[j]);
    amax = amax > a ? amax : a;  // MAX(amax, |x|): a NaN replaces amax, the next value replaces the NaN
  }
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_u16(block, f32_to_f16(d));
  for (int j = 0; j < ggml_block_values; ++j)
    block[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(rounded_q8(rounded_product(x[j], id))));
}

}  // namespace ggml_detail

// Index of the codebook entry nearest to v: ggml's best_index_int8, a binary
// search that clamps to the ends and takes the HIGHER index on an exact midpoint
// (the test is v - T[k-1] < T[k] - v). NaN gives 15.
CINCH_HOST_DEVICE inline int iq4_nl_nearest(float v) noexcept {
  if (v <= iq4_nl_value(0)) return 0;
  if (v >= iq4_nl_value(15)) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < iq4_nl_value(mid))
      hi = mid;
    else
      lo = mid;
  }
  return v - iq4_nl_value(hi - 1) < iq4_nl_value(hi) - v ? hi - 1 : hi;
}

namespace ggml_detail {

// ggml's quantize_row_iq4_nl_ref (no quant_weights, ntry = -1: no scale search):
//   w_j = x_j^2; M as q4_0 but found with amax < |x| too; d0 = M / T[0] = M / -127
//   c_j = iq4_nl_nearest((1/d0) * x_j)
//   sumqx = sum_j (w_j*T[c_j])*x_j, sumq2 = sum_j (w_j*T[c_j])*T[c_j]   (in index order)
//   d = sumq2 > 0 ? sumqx / sumq2 : 0   (the codes are NOT recomputed with it)
// amax < 1e-15 gives d = 0 and codes 0.
CINCH_HOST_DEVICE inline void quantize_iq4(const float* x, std::uint8_t* block) noexcept {
  int c[ggml_block_values] = {};
  float amax = 0.0f, m = 0.0f;
  for (int j = 0; j < ggml_block_values; ++j) {
    const float a = magnitude(x[j]);
    if (a > amax) {
      amax = a;
      m = x[j];
    }
  }
  float d = 0.0f;
  if (!(amax < 1e-15f)) {
    const float id = 1.0f / (m / iq4_nl_value(0));
    float sumqx = 0.0f, sumq2 = 0.0f;
    for (int j = 0; j < ggml_block_values; ++j) {
      c[j] = iq4_nl_nearest(rounded_product(id, x[j]));
      const float q = iq4_nl_value(c[j]);
      const float wq = rounded_product(rounded_product(x[j], x[j]), q);
      sumqx = sumqx + rounded_product(wq, x[j]);
      sumq2 = sumq2 + rounded_product(wq, q);
    }
    d = sumq2 > 0.0f ? sumqx / sumq2 : 0.0f;
  }
  store_u16(block, f32_to_f16(d));
  pack_nibbles(c, block + 2);
}

// A decoded block: value j = level[j]*d (+ m when `has_min`).
struct levels {
  int level[ggml_block_values];
  float d;
  float m;
  bool has_min;
};

template <dtype Format>
CINCH_HOST_DEVICE inline levels decode(const std::uint8_t* block) noexcept {
  levels out{};
  out.d = f16_to_f32(load_u16(block));
  if constexpr (Format == dtype::q8_0) {
    for (int j = 0; j < ggml_block_values; ++j) out.level[j] = static_cast<std::int8_t>(block[2 + j]);
  } else if constexpr (Format == dtype::q4_0 || Format == dtype::iq4_nl) {
    unpack_nibbles(block + 2, 0, out.level);
    for (int j = 0; j < ggml_block_values; ++j)
      out.level[j] = Format == dtype::q4_0 ? out.level[j] - 8 : static_cast<int>(iq4_nl_value(out.level[j]));
  } else if constexpr (Format == dtype::q5_0) {
    unpack_nibbles(block + 6, load_u32(block + 2), out.level);
    for (int j = 0; j < ggml_block_values; ++j) out.level[j] -= 16;
  } else if constexpr (Format == dtype::q4_1) {
    unpack_nibbles(block + 4, 0, out.level);
  } else {
    static_assert(Format == dtype::q5_1, "not a ggml block format");
    unpack_nibbles(block + 8, load_u32(block + 4), out.level);
  }
  out.has_min = Format == dtype::q4_1 || Format == dtype::q5_1;
  if (out.has_min) out.m = f16_to_f32(load_u16(block + 2));
  return out;
}

CINCH_HOST_DEVICE inline float value(const levels& b, int j) noexcept {
  const float scaled = rounded_product(static_cast<float>(b.level[j]), b.d);
  return b.has_min ? scaled + b.m : scaled;
}

// Sum of 32 terms in a fixed tree, s[j] += s[j + h] for h = 16, 8, 4, 2, 1, so
// that SIMD and CUDA code can reproduce it bit for bit.
CINCH_HOST_DEVICE inline float tree_sum(float* s) noexcept {
  for (int h = 16; h >= 1; h /= 2)
    for (int j = 0; j < h; ++j) s[j] = s[j] + s[j + h];
  return s[0];
}

}  // namespace ggml_detail

// ------------------------------------------------------------------ per-block operations

// Quantizes x[0..32) into one block of `Format` (block: info(Format).block_bytes bytes).
template <dtype Format>
CINCH_HOST_DEVICE inline void quantize_block(const float* x, std::uint8_t* block) noexcept {
  if constexpr (Format == dtype::q8_0)
    ggml_detail::quantize_q8(x, block);
  else if constexpr (Format == dtype::q4_0)
    ggml_detail::quantize_symmetric<4>(x, block);
  else if constexpr (Format == dtype::q5_0)
    ggml_detail::quantize_symmetric<5>(x, block);
  else if constexpr (Format == dtype::q4_1)
    ggml_detail::quantize_asymmetric<4>(x, block);
  else if constexpr (Format == dtype::q5_1)
    ggml_detail::quantize_asymmetric<5>(x, block);
  else {
    static_assert(Format == dtype::iq4_nl, "not a ggml block format");
    ggml_detail::quantize_iq4(x, block);
  }
}

// f16 input: converted to f32 first (exact), then quantized as above.
template <dtype Format>
CINCH_HOST_DEVICE inline void quantize_block(const f16_bits* x, std::uint8_t* block) noexcept {
  float v[ggml_block_values];
  for (int j = 0; j < ggml_block_values; ++j) v[j] = f16_to_f32(x[j].bits);
  quantize_block<Format>(v, block);
}

// y[0..32) = the block's values: level*d (q8_0, q4_0, q5_0, iq4_nl) or level*d + m
// (q4_1, q5_1), with the f16 d and m widened to f32 and the product rounded first.
template <dtype Format>
CINCH_HOST_DEVICE inline void dequantize_block(const std::uint8_t* block, float* y) noexcept {
  const ggml_detail::levels b = ggml_detail::decode<Format>(block);
  for (int j = 0; j < ggml_block_values; ++j) y[j] = ggml_detail::value(b, j);
}

// f16 output: the f32 values above rounded to f16 (nearest even).
template <dtype Format>
CINCH_HOST_DEVICE inline void dequantize_block(const std::uint8_t* block, f16_bits* y) noexcept {
  const ggml_detail::levels b = ggml_detail::decode<Format>(block);
  for (int j = 0; j < ggml_block_values; ++j) y[j].bits = f32_to_f16(ggml_detail::value(b, j));
}

// Dot product of a query segment q[0..32) with one block, for attention on the
// compressed cache, without dequantizing:
//   symmetric formats:  d * S(q_j * level_j)
//   q4_1, q5_1:         d * S(q_j * level_j) + m * S(q_j)
// where level_j is c_j (q8_0, q4_1, q5_1), c_j - 8 (q4_0), c_j - 16 (q5_0) or
// T[c_j] (iq4_nl), every product is rounded, and S sums its 32 terms in the
// tree of ggml_detail::tree_sum. The SIMD and CUDA versions give the same bits.
template <dtype Format>
CINCH_HOST_DEVICE inline float dot_block(const float* q, const std::uint8_t* block) noexcept {
  const ggml_detail::levels b = ggml_detail::decode<Format>(block);
  float s[ggml_block_values];
  for (int j = 0; j < ggml_block_values; ++j) s[j] = rounded_product(q[j], static_cast<float>(b.level[j]));
  const float dot = rounded_product(b.d, ggml_detail::tree_sum(s));
  if (!b.has_min) return dot;
  for (int j = 0; j < ggml_block_values; ++j) s[j] = q[j];
  return dot + rounded_product(b.m, ggml_detail::tree_sum(s));
}

// y[j] += w * value_j for j in [0, 32): value_j exactly as dequantize_block gives
// it, then the rounded product, then the sum (same bits on every backend).
template <dtype Format>
CINCH_HOST_DEVICE inline void axpy_block(float w, const std::uint8_t* block, float* y) noexcept {
  const ggml_detail::levels b = ggml_detail::decode<Format>(block);
  for (int j = 0; j < ggml_block_values; ++j) y[j] = y[j] + rounded_product(w, ggml_detail::value(b, j));
}

// ------------------------------------------------------------------ rows of blocks

// n values (a multiple of 32) into n/32 consecutive blocks, and back.
template <dtype Format, class T>
void quantize_row_blocks(const T* x, std::uint8_t* blocks, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n / ggml_block_values; ++i)
    quantize_block<Format>(x + i * ggml_block_values, blocks + i * info(Format).block_bytes);
}

template <dtype Format, class T>
void dequantize_row_blocks(const std::uint8_t* blocks, T* y, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n / ggml_block_values; ++i)
    dequantize_block<Format>(blocks + i * info(Format).block_bytes, y + i * ggml_block_values);
}

// Dot product of q[0..n) with a row of n/32 blocks: the block results added in
// block order, starting from 0.
template <dtype Format>
float dot_row_blocks(const float* q, const std::uint8_t* blocks, std::int64_t n) noexcept {
  float sum = 0.0f;
  for (std::int64_t i = 0; i < n / ggml_block_values; ++i)
    sum = sum + dot_block<Format>(q + i * ggml_block_values, blocks + i * info(Format).block_bytes);
  return sum;
}

// y[0..n) += w * the row's values.
template <dtype Format>
void axpy_row_blocks(float w, const std::uint8_t* blocks, float* y, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n / ggml_block_values; ++i)
    axpy_block<Format>(w, blocks + i * info(Format).block_bytes, y + i * ggml_block_values);
}

}  // namespace cinch::ref
