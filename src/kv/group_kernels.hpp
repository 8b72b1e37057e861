// Kernel tables of the kv group-quantization, Hadamard and scaled-FP8 families:
// a ref table (cinch/ref/*.hpp) and a simd table (Highway, src/cpu/groups.cc and
// src/cpu/hadamard.cc), picked with detail::use_reference_kernels(). Kernels work
// on one row, group or chunk, never allocate, and the public operations in
// src/kv/*.cpp split the work and spread it over threads.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>

#include "parallel.hpp"

namespace cinch::detail {

struct group_kernels {
  // One row of n values in groups of `group` consecutive elements.
  void (*quantize_row)(const float* x, std::int64_t n, std::int64_t group, int bits, std::uint8_t* codes,
                       std::uint16_t* scales, std::uint16_t* mins) noexcept;
  void (*dequantize_row)(const std::uint8_t* codes, const std::uint16_t* scales, const std::uint16_t* mins,
                         std::int64_t n, std::int64_t group, int bits, float* y) noexcept;
  // One chunk of `group` tokens x d channels grouped over tokens; channel c's codes
  // at codes + c * channel_stride bytes.
  void (*quantize_chunk)(const float* x, std::int64_t token_stride, std::int64_t d, std::int64_t group, int bits,
                         std::uint8_t* codes, std::int64_t channel_stride, std::uint16_t* scales,
                         std::uint16_t* mins) noexcept;
  void (*dequantize_chunk)(const std::uint8_t* codes, std::int64_t channel_stride, const std::uint16_t* scales,
                           const std::uint16_t* mins, std::int64_t d, std::int64_t group, int bits, float* y,
                           std::int64_t token_stride) noexcept;
};

struct hadamard_kernels {
  // One row of n = 2^m values in place; sign_bits (n entries of 0 or 0x80000000,
  // or null) are XOR-ed in before the transform, or after it when signs_after.
  void (*row)(float* x, std::int64_t n, const std::uint32_t* sign_bits, bool signs_after) noexcept;
};

struct fp8_kernels {
  // [0]: f8_e4m3, [1]: f8_e5m2.
  void (*quantize_row[2])(const float* x, float scale, std::uint8_t* q, std::int64_t n) noexcept;
  void (*dequantize_row[2])(const std::uint8_t* q, float scale, float* y, std::int64_t n) noexcept;
};

const group_kernels& active_group_kernels();
const hadamard_kernels& active_hadamard_kernels();
const fp8_kernels& active_fp8_kernels();

// Shortest round-trip text of a float, for error messages.
inline std::string float_text(float v) {
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  return std::string(buf, end);
}

}  // namespace cinch::detail

namespace cinch::cpu {
// Highway entry points (src/cpu/groups.cc, src/cpu/hadamard.cc), dispatched at run time.
void quantize_groups_row(const float* x, std::int64_t n, std::int64_t group, int bits, std::uint8_t* codes,
                         std::uint16_t* scales, std::uint16_t* mins) noexcept;
void dequantize_groups_row(const std::uint8_t* codes, const std::uint16_t* scales, const std::uint16_t* mins,
                           std::int64_t n, std::int64_t group, int bits, float* y) noexcept;
void quantize_groups_chunk(const float* x, std::int64_t token_stride, std::int64_t d, std::int64_t group, int bits,
                           std::uint8_t* codes, std::int64_t channel_stride, std::uint16_t* scales,
                           std::uint16_t* mins) noexcept;
void dequantize_groups_chunk(const std::uint8_t* codes, std::int64_t channel_stride, const std::uint16_t* scales,
                             const std::uint16_t* mins, std::int64_t d, std::int64_t group, int bits, float* y,
                             std::int64_t token_stride) noexcept;
void hadamard_row(float* x, std::int64_t n, const std::uint32_t* sign_bits, bool signs_after) noexcept;
}  // namespace cinch::cpu
