// The host kernel table: one entry per operation, each working on one
// contiguous row. The public operations (src/ops.cpp) validate, split the
// tensors into rows and spread the rows over threads; kernels only compute.
#pragma once

#include <cstdint>

#include "cinch/core/dtype.hpp"

namespace cinch::detail {

using convert_row_fn = void (*)(const void* src, void* dst, std::int64_t n) noexcept;

// Float formats f32, f16, bf16, f8_e4m3, f8_e5m2 share their dtype's value as index.
inline constexpr int float_format_count = 5;
constexpr bool is_float_format(dtype t) noexcept { return static_cast<int>(t) < float_format_count; }

struct host_kernels {
  convert_row_fn to_f32[float_format_count];    // [from] -> f32
  convert_row_fn from_f32[float_format_count];  // f32 -> [to]
  // Writes n codes, returns the row's scale. `next` is the row that follows
  // (nullptr if none): SIMD kernels prefetch it while coding this one.
  float (*quantize_row_i8)(const float* x, std::int8_t* codes, std::int64_t n, const float* next) noexcept;
  void (*dequantize_row_i8)(const std::int8_t* codes, float scale, float* y, std::int64_t n) noexcept;
};

const host_kernels& ref_host_kernels() noexcept;
const host_kernels& simd_host_kernels() noexcept;

}  // namespace cinch::detail

namespace cinch::cpu {
// Entry points of the Highway kernels (src/cpu/*.cc), dispatched at run time.
void f32_to_f16_row(const void* src, void* dst, std::int64_t n) noexcept;
void f16_to_f32_row(const void* src, void* dst, std::int64_t n) noexcept;
void f32_to_bf16_row(const void* src, void* dst, std::int64_t n) noexcept;
void bf16_to_f32_row(const void* src, void* dst, std::int64_t n) noexcept;
void f32_to_e4m3_row(const void* src, void* dst, std::int64_t n) noexcept;
void e4m3_to_f32_row(const void* src, void* dst, std::int64_t n) noexcept;
void f32_to_e5m2_row(const void* src, void* dst, std::int64_t n) noexcept;
void e5m2_to_f32_row(const void* src, void* dst, std::int64_t n) noexcept;
float quantize_row_i8(const float* x, std::int8_t* codes, std::int64_t n, const float* next) noexcept;
void dequantize_row_i8(const std::int8_t* codes, float scale, float* y, std::int64_t n) noexcept;
// HWY_TARGET of the code that dispatch picks now (a Highway target bit).
std::int64_t dispatched_target() noexcept;
}  // namespace cinch::cpu
