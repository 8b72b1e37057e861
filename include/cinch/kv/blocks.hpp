// ggml block formats for the KV cache: q8_0, q4_0, q4_1, q5_0, q5_1 and iq4_nl,
// byte-compatible with ggml (llama.cpp's --cache-type-k/-v). Defined in
// cinch::kernels; the arithmetic, and every edge case, is cinch/ref/ggml.hpp's.
#pragma once

#include "cinch/core/tensor_view.hpp"

namespace cinch::kv {

// True for the dtypes that quantize_blocks writes.
[[nodiscard]] constexpr bool is_ggml_block(dtype t) noexcept { return t >= dtype::q8_0 && t <= dtype::iq4_nl; }

// x: [..., d] f32 or f16, d a multiple of 32 (a head dimension, or all heads of
// a token as llama.cpp stores them), innermost stride 1, any outer strides.
// blocks: [..., d] of a ggml block dtype, the same logical shape, on the same
// device. Every 32 consecutive values of a row become one block.
void quantize_blocks(const tensor_view& x, const tensor_view& blocks);

// blocks: [..., d] of a ggml block dtype -> y: [..., d] f32 or f16, the same
// shape and device. Values are level * d (+ m), widened from the stored f16
// scales; f16 output rounds those f32 values to nearest even.
void dequantize_blocks(const tensor_view& blocks, const tensor_view& y);

}  // namespace cinch::kv
