// Scaled FP8 KV cache (vLLM semantics): q = fp8(x / s), x^ = f32(q) * s, with one
// scale per tensor or one per KV head. Defined in cinch::kernels; the arithmetic
// is cinch/ref/fp8.hpp's. The dtype of q picks the format: f8_e4m3 or f8_e5m2.
#pragma once

#include "cinch/core/tensor_view.hpp"
#include "cinch/ref/fp8.hpp"

namespace cinch::kv {

// vLLM's calibration constants (s = max|x| / C) and the formats' largest values.
inline constexpr float key_scale_constant = ref::fp8_key_scale_constant;      // 200
inline constexpr float value_scale_constant = ref::fp8_value_scale_constant;  // 100
inline constexpr float e4m3_max = ref::fp8_e4m3_max;                          // 448: max|x| maps to it
inline constexpr float e5m2_max = ref::fp8_e5m2_max;                          // 57344

// s = max|x| / constant over the whole tensor (1 when x is all zero).
// Throws errc::invalid_argument when x holds inf or NaN, or constant is not finite and > 0.
[[nodiscard]] float calibrate_scale(const tensor_view& x, float constant);

// Per KV head: scales[h] = max|x[h, ...]| / constant. x: [heads, ...] f32 (rank >= 2),
// scales: [heads] f32.
void calibrate_head_scales(const tensor_view& x, float constant, const tensor_view& scales);

// x: f32, q: f8_e4m3 or f8_e5m2 of x's shape. `scale` must be finite and > 0.
void quantize_scaled(const tensor_view& x, float scale, const tensor_view& q);
void dequantize_scaled(const tensor_view& q, float scale, const tensor_view& y);

// Per KV head: dimension 0 of x (and q, y) is the head; head_scales: [heads] f32,
// each finite and > 0.
void quantize_scaled(const tensor_view& x, const tensor_view& head_scales, const tensor_view& q);
void dequantize_scaled(const tensor_view& q, const tensor_view& head_scales, const tensor_view& y);

}  // namespace cinch::kv
