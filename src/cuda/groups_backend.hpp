// Host-side launchers of the kv group-quantization, scaled-FP8 and Hadamard CUDA
// kernels (src/cuda/groups.cu, src/cuda/hadamard.cu). Plain C++: no CUDA types.
// Arguments have been validated by the public operations in src/kv/*.cpp; the
// kernels call the CINCH_HOST_DEVICE reference functions, so results equal the CPU's.
#pragma once

#include <cstdint>

#include "cinch/detail/rows.hpp"

namespace cinch::cuda {

// Per-token groups: rows of `values` (x or y) [..., n] f32, codes [..., n] (offsets
// in elements, codes_per_byte of them per byte), scales and mins [..., n / group] f16.
struct per_token_layout {
  detail::row_layout values, codes, scales, mins;
  std::int64_t n, group;
  int bits;
};

// Per-channel chunks: `values` are the rows of [..., T, d] (chunk k starts at row
// k * group, tokens token_stride elements apart); codes are the chunk rows of
// [..., T / group, d, group] with channels channel_stride bytes apart; scales and
// mins are the chunk rows of [..., T / group, d].
struct per_channel_layout {
  detail::row_layout values, codes, scales, mins;
  std::int64_t chunks, d, group, token_stride, channel_stride;
  int bits;
};

void quantize_per_token(const per_token_layout& l, const float* x, std::uint8_t* codes, std::uint16_t* scales,
                        std::uint16_t* mins, int device);
void dequantize_per_token(const per_token_layout& l, const std::uint8_t* codes, const std::uint16_t* scales,
                          const std::uint16_t* mins, float* y, int device);
void quantize_per_channel(const per_channel_layout& l, const float* x, std::uint8_t* codes, std::uint16_t* scales,
                          std::uint16_t* mins, int device);
void dequantize_per_channel(const per_channel_layout& l, const std::uint8_t* codes, const std::uint16_t* scales,
                            const std::uint16_t* mins, float* y, int device);

// Scaled fp8 over rows; format 0 = e4m3, 1 = e5m2. Row r uses head_scales[r / rows_per_head]
// (on the device) or, when head_scales is null, `scale`.
void quantize_scaled(const detail::row_layout& x_rows, const float* x, const detail::row_layout& q_rows,
                     std::uint8_t* q, int format, const float* head_scales, float scale, std::int64_t rows_per_head,
                     int device);
void dequantize_scaled(const detail::row_layout& q_rows, const std::uint8_t* q, int format, const float* head_scales,
                       float scale, std::int64_t rows_per_head, const detail::row_layout& y_rows, float* y,
                       int device);
// Writes max |x| bit patterns per group of rows_per_group rows to amax_bits (host array of
// rows / rows_per_group entries).
void absmax_bits(const detail::row_layout& x_rows, const float* x, std::int64_t rows_per_group,
                 std::uint32_t* amax_bits, int device);

// In-place FWHT of every row (n a power of two), randomized with `seed` when has_seed.
void hadamard(const detail::row_layout& rows, float* x, bool has_seed, std::uint64_t seed, bool signs_after,
              int device);

}  // namespace cinch::cuda
