// KIVI-style asymmetric group quantization of the KV cache: values per token
// (groups of G consecutive channels), keys per channel (groups of G consecutive
// tokens). Defined in cinch::kernels; the arithmetic, error bound, NaN/inf rules
// and the bit packing are those of cinch/ref/groups.hpp.
//
// The code dtype picks the width: u4x2 (4-bit), u2x4 (2-bit) or u8 (8-bit).
// Scales and mins are fp16 (dtype f16), one per group. Every tensor may be a
// strided view; innermost dimensions must be dense. Tensors on a CUDA device run
// on the GPU and give the same codes as the CPU.
#pragma once

#include <cstdint>

#include "cinch/core/dtype.hpp"
#include "cinch/core/tensor_view.hpp"

namespace cinch::kv {

// Bits per code of a group-quantized code dtype: u4x2 -> 4, u2x4 -> 2, u8 -> 8.
// Throws errc::invalid_argument for any other dtype.
[[nodiscard]] int group_bits(dtype codes);

// Per token (values). x: [..., n] f32; codes: [..., n] u4x2 | u2x4 | u8;
// scales, mins: [..., n / group_size] f16. group_size must divide n and be a
// multiple of the codes per byte (2 for u4x2, 4 for u2x4) so groups start on a byte.
void quantize_per_token(const tensor_view& x, const tensor_view& codes, const tensor_view& scales,
                        const tensor_view& mins, std::int64_t group_size);
void dequantize_per_token(const tensor_view& codes, const tensor_view& scales, const tensor_view& mins,
                          const tensor_view& y, std::int64_t group_size);

// Per channel (keys), in chunks of group_size tokens. x: [..., T, d] f32 with T a
// multiple of group_size; codes: [..., T / group_size, d, group_size] (channel-major:
// each channel's codes packed along the chunk's tokens); scales, mins:
// [..., T / group_size, d] f16. Chunk k holds tokens [k G, (k + 1) G).
void quantize_per_channel(const tensor_view& x, const tensor_view& codes, const tensor_view& scales,
                          const tensor_view& mins, std::int64_t group_size);
void dequantize_per_channel(const tensor_view& codes, const tensor_view& scales, const tensor_view& mins,
                            const tensor_view& y, std::int64_t group_size);

}  // namespace cinch::kv
