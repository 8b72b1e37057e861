// Element types, including packed sub-byte and ggml block-quantized ones.
#pragma once

#include <cstdint>
#include <string_view>

namespace cinch {

enum class dtype : std::uint8_t {
  f32, f16, bf16, f8_e4m3, f8_e5m2,  // floats
  i32, i8, u8,                       // integers
  i4x2, u4x2, u2x4,                  // packed: several values per byte, lowest bits first
  q8_0, q4_0, q4_1, q5_0, q5_1,      // ggml blocks of 32 along the innermost dimension
  iq4_nl,                            // ggml non-linear 4-bit blocks of 32
};

inline constexpr int dtype_count = 17;

struct dtype_info {
  std::string_view name;
  std::uint16_t block_elems;  // elements per storage block: 1 for plain types
  std::uint16_t block_bytes;  // bytes per storage block
  bool is_float;              // holds floating-point values (plain or block-quantized)
  bool is_block;              // elements are not individually addressable
};

// ggml block layouts: q8_0 = f16 d + 32 x i8; q4_0 = f16 d + 16 bytes of nibbles;
// q4_1 = f16 d, f16 m + 16 bytes; q5_0 = f16 d + 4 bytes of high bits + 16 bytes;
// q5_1 = f16 d, f16 m + 4 + 16 bytes; iq4_nl = f16 d + 16 bytes of codebook indices.
[[nodiscard]] constexpr dtype_info info(dtype t) noexcept {
  switch (t) {
    case dtype::f32: return {"f32", 1, 4, true, false};
    case dtype::f16: return {"f16", 1, 2, true, false};
    case dtype::bf16: return {"bf16", 1, 2, true, false};
    case dtype::f8_e4m3: return {"f8_e4m3", 1, 1, true, false};
    case dtype::f8_e5m2: return {"f8_e5m2", 1, 1, true, false};
    case dtype::i32: return {"i32", 1, 4, false, false};
    case dtype::i8: return {"i8", 1, 1, false, false};
    case dtype::u8: return {"u8", 1, 1, false, false};
    case dtype::i4x2: return {"i4x2", 2, 1, false, true};
    case dtype::u4x2: return {"u4x2", 2, 1, false, true};
    case dtype::u2x4: return {"u2x4", 4, 1, false, true};
    case dtype::q8_0: return {"q8_0", 32, 34, true, true};
    case dtype::q4_0: return {"q4_0", 32, 18, true, true};
    case dtype::q4_1: return {"q4_1", 32, 20, true, true};
    case dtype::q5_0: return {"q5_0", 32, 22, true, true};
    case dtype::q5_1: return {"q5_1", 32, 24, true, true};
    case dtype::iq4_nl: return {"iq4_nl", 32, 18, true, true};
  }
  return {"invalid", 1, 1, false, false};
}

[[nodiscard]] constexpr std::string_view to_string(dtype t) noexcept { return info(t).name; }

// 16- and 8-bit float storage types: raw bits, no arithmetic. Conversions live
// in cinch/ref/convert.hpp (exact) and cinch/core/convert.hpp (dispatched).
struct f16_bits { std::uint16_t bits; };
struct bf16_bits { std::uint16_t bits; };
struct f8_e4m3_bits { std::uint8_t bits; };
struct f8_e5m2_bits { std::uint8_t bits; };

// The dtype that stores a C++ element type, for typed access (tensor_view::as).
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr dtype value = dtype::f32; };
template <> struct dtype_of<f16_bits> { static constexpr dtype value = dtype::f16; };
template <> struct dtype_of<bf16_bits> { static constexpr dtype value = dtype::bf16; };
template <> struct dtype_of<f8_e4m3_bits> { static constexpr dtype value = dtype::f8_e4m3; };
template <> struct dtype_of<f8_e5m2_bits> { static constexpr dtype value = dtype::f8_e5m2; };
template <> struct dtype_of<std::int32_t> { static constexpr dtype value = dtype::i32; };
template <> struct dtype_of<std::int8_t> { static constexpr dtype value = dtype::i8; };
template <> struct dtype_of<std::uint8_t> { static constexpr dtype value = dtype::u8; };
template <class T> struct dtype_of<const T> : dtype_of<T> {};
template <class T> inline constexpr dtype dtype_of_v = dtype_of<T>::value;

}  // namespace cinch
