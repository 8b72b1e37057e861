// Reference scaled FP8 (vLLM's KV-cache semantics): the exact specification.
//
//   store: q  = fp8(x / s)      one IEEE division (not a multiply by 1/s), then
//                               the saturating round-to-nearest-even conversion
//                               of cinch/ref/convert.hpp (e4m3: +-448, e5m2: +-57344;
//                               inf saturates, NaN becomes the NaN code)
//   load:  x^ = f32(q) * s      one rounding
// s is one float per tensor or one per KV head. Public operations accept only
// finite s > 0.
//
// Calibration, as vLLM's calculate_kv_scales: s = max|x| / C with C = 200 for keys
// and 100 for values (K_SCALE_CONSTANT, V_SCALE_CONSTANT), which leaves headroom
// above the calibration batch; C = 448 (e4m3_max) makes max|x| land exactly on the
// largest e4m3 value ("fits the format"). An all-zero input gets s = 1, vLLM's
// default scale, since any scale reproduces zeros and 0 would divide by zero.
#pragma once

#include <cstdint>

#include "cinch/config.hpp"
#include "cinch/ref/convert.hpp"

namespace cinch::ref {

inline constexpr float fp8_e4m3_max = 448.0f;
inline constexpr float fp8_e5m2_max = 57344.0f;
inline constexpr float fp8_key_scale_constant = 200.0f;
inline constexpr float fp8_value_scale_constant = 100.0f;

// T is f8_e4m3_bits or f8_e5m2_bits.
template <class T>
CINCH_HOST_DEVICE T quantize_scaled(float x, float scale) noexcept {
  return from_f32<T>(x / scale);
}

template <class T>
CINCH_HOST_DEVICE float dequantize_scaled(T q, float scale) noexcept {
  return to_f32(q) * scale;
}

template <class T>
void quantize_scaled_row(const float* x, float scale, T* q, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) q[i] = quantize_scaled<T>(x[i], scale);
}

template <class T>
void dequantize_scaled_row(const T* q, float scale, float* y, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) y[i] = dequantize_scaled(q[i], scale);
}

// s = amax / constant, or 1 when amax is 0.
CINCH_HOST_DEVICE inline float fp8_scale_from_absmax(float amax, float constant) noexcept {
  return amax > 0.0f ? amax / constant : 1.0f;
}

}  // namespace cinch::ref
