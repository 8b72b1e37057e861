// Float format conversion: f32 <-> f16, bf16, f8_e4m3, f8_e5m2.
// Defined in cinch::kernels; the arithmetic is cinch/ref/convert.hpp's.
#pragma once

#include "cinch/core/tensor_view.hpp"

namespace cinch {

// dst[i] = src[i] converted, for src and dst of equal shape on one device, one of
// them f32 and the other f32, f16, bf16, f8_e4m3 or f8_e5m2. Innermost
// dimensions must be dense; outer strides are free. Rounding, overflow and NaN
// rules: cinch/ref/convert.hpp. dst must not overlap src.
void convert(const tensor_view& src, const tensor_view& dst);

}  // namespace cinch
