// Symmetric absmax int8 quantization of rows (one scale per row).
// Defined in cinch::kernels; the arithmetic is cinch/ref/quantize.hpp's.
#pragma once

#include "cinch/core/tensor_view.hpp"

namespace cinch {

// x: [..., n] f32  ->  codes: [..., n] i8, scales: [...] f32 (x's shape without
// its last dimension). code = round_half_even(x * 127 / amax), scale = amax / 127.
// Rows with inf or NaN get a non-finite scale and zero codes (see the reference).
void quantize_rows(const tensor_view& x, const tensor_view& codes, const tensor_view& scales);

// y = codes * scale, row by row; y is f32 of the codes' shape.
void dequantize_rows(const tensor_view& codes, const tensor_view& scales, const tensor_view& y);

}  // namespace cinch
