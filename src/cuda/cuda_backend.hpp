// Host-side entry points of the CUDA backend (defined in src/cuda/*.cu, built
// only with CINCH_WITH_CUDA). Plain C++: nothing here needs the CUDA headers.
// Arguments have been validated by the public operation; failures of the CUDA
// runtime throw cinch::error(errc::device_error).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cinch/core/dtype.hpp"
#include "cinch/detail/rows.hpp"

namespace cinch::cuda {

int device_count() noexcept;
std::string device_summary(int index);  // "NVIDIA H100 (sm_90, 79.1 GiB)"

void* allocate(int device, std::size_t bytes);  // errc::out_of_memory on failure
void release(int device, void* ptr) noexcept;
void copy_bytes(void* dst, const void* src, std::size_t bytes);  // any direction, synchronous

// The operations of src/ops.cpp over rows on one device (synchronous).
void convert(const detail::row_layout& src_rows, const void* src, dtype from, const detail::row_layout& dst_rows,
             void* dst, dtype to, int device);
void quantize_rows(const detail::row_layout& x_rows, const float* x, const detail::row_layout& code_rows,
                   std::int8_t* codes, const detail::row_layout& scale_elems, float* scales, int device);
void dequantize_rows(const detail::row_layout& code_rows, const std::int8_t* codes,
                     const detail::row_layout& scale_elems, const float* scales, const detail::row_layout& y_rows,
                     float* y, int device);

}  // namespace cinch::cuda
