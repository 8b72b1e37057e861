// The kernel table of the ggml block formats (q8_0, q4_0, q4_1, q5_0, q5_1,
// iq4_nl): one entry per format and operation, each working on ONE contiguous
// row of n values (n a multiple of 32) and the row's n/32 consecutive blocks.
// The reference table runs cinch/ref/ggml.hpp; the simd table (src/cpu/ggml.cc)
// gives the same bytes and the same float bits. Kernels never allocate.
//
// For decode attention on the compressed cache: dot and axpy work on the packed
// blocks directly (see ref::dot_block and ref::axpy_block for the exact sums).
#pragma once

#include <cstdint>

#include "cinch/core/dtype.hpp"
#include "cinch/detail/rows.hpp"

namespace cinch::kv::detail {

inline constexpr int block_format_count = 6;

// q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl: the table index is the dtype's position after q8_0.
constexpr bool is_block_format(dtype t) noexcept { return t >= dtype::q8_0 && t <= dtype::iq4_nl; }
constexpr int block_format_index(dtype t) noexcept { return static_cast<int>(t) - static_cast<int>(dtype::q8_0); }

// x: n f32 or f16 values (by table slot) -> n/32 blocks.
using quantize_row_fn = void (*)(const void* x, std::uint8_t* blocks, std::int64_t n) noexcept;
// n/32 blocks -> y: n f32 or f16 values.
using dequantize_row_fn = void (*)(const std::uint8_t* blocks, void* y, std::int64_t n) noexcept;
// Sum over the row's blocks, in block order, of ref::dot_block(q + 32 i, block i).
using dot_row_fn = float (*)(const float* q, const std::uint8_t* blocks, std::int64_t n) noexcept;
// y[j] += w * value j of the row, for j in [0, n).
using axpy_row_fn = void (*)(float w, const std::uint8_t* blocks, float* y, std::int64_t n) noexcept;

struct block_kernels {
  quantize_row_fn quantize_f32[block_format_count];
  quantize_row_fn quantize_f16[block_format_count];
  dequantize_row_fn dequantize_f32[block_format_count];
  dequantize_row_fn dequantize_f16[block_format_count];
  dot_row_fn dot[block_format_count];
  axpy_row_fn axpy[block_format_count];
};

const block_kernels& ref_block_kernels() noexcept;   // src/kv/blocks.cpp
const block_kernels& simd_block_kernels() noexcept;  // src/cpu/ggml.cc

// The table that cinch::detail::use_reference_kernels() selects for host tensors.
const block_kernels& active_block_kernels();

}  // namespace cinch::kv::detail

namespace cinch::cuda {
// src/cuda/ggml.cu (built with CINCH_WITH_CUDA): the public operations over rows
// on one device, synchronous. x and y are f32 or f16; `format` is a block dtype.
void quantize_blocks(const cinch::detail::row_layout& x_rows, const void* x, dtype x_type,
                     const cinch::detail::row_layout& block_rows, void* blocks, dtype format, int device);
void dequantize_blocks(const cinch::detail::row_layout& block_rows, const void* blocks, dtype format,
                       const cinch::detail::row_layout& y_rows, void* y, dtype y_type, int device);
}  // namespace cinch::cuda
