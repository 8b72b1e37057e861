// How a KV cache stores one side (keys or values) of a head, and the byte
// layout it keeps them in. Keys and values choose their format separately.
//
// Every head (each part of a mixed-precision head) holds its tokens oldest first,
// in two segments:
//   packed    tokens [0, packed_tokens): quantized records (see stream_view)
//   residual  tokens [packed_tokens, tokens): f32, [tokens - packed_tokens, head_dim]
// The residual window (KIVI) keeps the most recent tokens exact until a whole
// quantization group can be formed:
//   * per-token formats (everything except KIVI keys) keep at most `residual`
//     tokens; appending one more quantizes the oldest;
//   * KIVI keys (per-channel groups of `group` tokens) collect tokens until the
//     window holds exactly `residual` of them, then quantize all of them at once
//     (residual / group chunks) and empty it: 0 .. residual-1 tokens stay f32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cinch/config.hpp"
#include "cinch/core/dtype.hpp"

namespace cinch::kv {

enum class scheme : std::uint8_t {
  f32, f16, bf16,                        // plain, one element at a time
  fp8_e4m3, fp8_e5m2,                    // one fp8 code per element, x = float(code) * head scale (vLLM)
  int8,                                  // symmetric absmax per token: f32 scale + head_dim int8 codes
  q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl,  // ggml blocks of 32 channels of one token, byte-exact
  kivi4, kivi2, kivi8,                   // KIVI asymmetric groups: keys per channel, values per token
};

[[nodiscard]] constexpr std::string_view to_string(scheme s) noexcept {
  switch (s) {
    case scheme::f32: return "f32";
    case scheme::f16: return "f16";
    case scheme::bf16: return "bf16";
    case scheme::fp8_e4m3: return "fp8_e4m3";
    case scheme::fp8_e5m2: return "fp8_e5m2";
    case scheme::int8: return "int8";
    case scheme::q8_0: return "q8_0";
    case scheme::q4_0: return "q4_0";
    case scheme::q4_1: return "q4_1";
    case scheme::q5_0: return "q5_0";
    case scheme::q5_1: return "q5_1";
    case scheme::iq4_nl: return "iq4_nl";
    case scheme::kivi4: return "kivi4";
    case scheme::kivi2: return "kivi2";
    case scheme::kivi8: return "kivi8";
  }
  return "invalid";
}

// The ggml block dtype of a block scheme (q8_0 .. iq4_nl); f32 for any other.
[[nodiscard]] constexpr dtype ggml_dtype(scheme s) noexcept {
  switch (s) {
    case scheme::q8_0: return dtype::q8_0;
    case scheme::q4_0: return dtype::q4_0;
    case scheme::q4_1: return dtype::q4_1;
    case scheme::q5_0: return dtype::q5_0;
    case scheme::q5_1: return dtype::q5_1;
    case scheme::iq4_nl: return dtype::iq4_nl;
    default: return dtype::f32;
  }
}
[[nodiscard]] constexpr bool is_ggml(scheme s) noexcept { return ggml_dtype(s) != dtype::f32; }
[[nodiscard]] constexpr bool is_kivi(scheme s) noexcept {
  return s == scheme::kivi4 || s == scheme::kivi2 || s == scheme::kivi8;
}
[[nodiscard]] constexpr bool is_fp8(scheme s) noexcept { return s == scheme::fp8_e4m3 || s == scheme::fp8_e5m2; }
[[nodiscard]] constexpr int kivi_bits(scheme s) noexcept { return s == scheme::kivi4 ? 4 : s == scheme::kivi8 ? 8 : 2; }

struct format {
  scheme kind = scheme::f16;
  int group = 32;          // KIVI group G: tokens per key chunk, channels per value group
  int residual = 0;        // most recent tokens kept in f32 (KIVI default 128); a multiple of group for KIVI
  bool rotate = false;     // Walsh-Hadamard rotation along head_dim before storage (power-of-two head_dim)
  float fp8_scale = 0.0f;  // fp8: the scale of every head; 0 = calibrate each head on its first append (vLLM:
                           // max|x| / 200 for keys, / 100 for values, over the finite values, 1 if all are 0)

  // KIVI with its published defaults (G = 32, R = 128); bits 2, 4 or 8 (anything else: 4).
  [[nodiscard]] static constexpr format kivi(int bits, int group = 32, int residual = 128) noexcept {
    return {bits == 2 ? scheme::kivi2 : bits == 8 ? scheme::kivi8 : scheme::kivi4, group, residual, false, 0.0f};
  }
  friend constexpr bool operator==(const format&, const format&) = default;
};

enum class side : std::uint8_t { keys, values };

// One head's keys or values as the cache holds them (read-only, trivially
// copyable; the pointers stay valid until the next append to that head).
//
// packed storage, by format (little-endian, no padding between records):
//   per-token formats: packed_tokens records of unit_bytes, oldest first; record t:
//     f32 / f16 / bf16        head_dim elements (f16/bf16 as IEEE bit patterns)
//     fp8_e4m3 / fp8_e5m2     head_dim codes; x = float(code) * scale
//     int8                    f32 scale (4 bytes), then head_dim int8 codes; x = code * scale
//     q8_0 .. iq4_nl          head_dim / 32 ggml blocks, byte-identical to ggml's block_*
//     kivi (values)           ng = head_dim / group groups of channels (cinch/ref/groups.hpp):
//                             u16 fp16 scales[ng], u16 fp16 mins[ng], then the head_dim codes
//                             packed lowest bits first; x = code * scale + min
//   per-channel formats (KIVI keys): packed_tokens / group chunks of unit_bytes; chunk i
//     covers tokens [i*group, (i+1)*group): u16 fp16 scales[head_dim], u16 fp16 mins[head_dim],
//     then per channel c (channel-major) its group codes along the tokens, group * bits / 8 bytes.
//   KIVI records and chunks are padded with zero bytes to a multiple of 4 bytes.
//   At least 16 readable bytes follow the last unit (vector loads may read past a record).
// residual: tokens [packed_tokens, tokens), f32 row-major [tokens - packed_tokens, head_dim].
// Rotated streams store H x (H the orthonormal Sylvester-Hadamard matrix of
// size head_dim) in both parts.
struct stream_view {
  format fmt;
  side role = side::keys;
  std::int32_t head_dim = 0;
  std::int64_t tokens = 0;
  std::int64_t packed_tokens = 0;
  std::int32_t unit_tokens = 1;  // tokens per packed unit: 1, or group for per-channel keys
  std::int64_t unit_bytes = 0;
  const std::byte* packed = nullptr;
  const float* residual = nullptr;
  float scale = 1.0f;  // fp8 only

  [[nodiscard]] CINCH_HOST_DEVICE bool per_channel() const noexcept { return role == side::keys && is_kivi(fmt.kind); }
};

// One head of one layer: both streams, and the original position of every token.
struct head_view {
  stream_view keys, values;
  const std::int32_t* positions = nullptr;  // [tokens], oldest first
  std::int64_t tokens = 0;
};

}  // namespace cinch::kv
