// Symmetric absmax int8 rows on the GPU: one block per row. The absmax is a
// max over f32 bit patterns and the codes use the reference's own per-element
// function, so codes and scales equal the CPU's exactly.
#include "cinch/ref/quantize.hpp"
#include "cuda/common.cuh"
#include "cuda/cuda_backend.hpp"

namespace cinch::cuda {
namespace {

constexpr unsigned threads = 256;

__global__ void quantize_kernel(detail::row_layout x_rows, const float* x, detail::row_layout code_rows,
                                std::int8_t* codes, detail::row_layout scale_elems, float* scales) {
  __shared__ std::uint32_t warp_max[threads / 32];
  const std::int64_t cols = x_rows.cols;
  for (std::int64_t row = blockIdx.x; row < x_rows.rows; row += gridDim.x) {
    const float* xr = x + x_rows.row_offset(row);
    std::int8_t* cr = codes + code_rows.row_offset(row);
    std::uint32_t amax = 0;
    for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) amax = max(amax, ref::bits_of(xr[i]) & 0x7FFFFFFFu);
    for (int offset = 16; offset > 0; offset /= 2) amax = max(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, offset));
    if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = amax;
    __syncthreads();
    amax = 0;
    for (unsigned w = 0; w < threads / 32; ++w) amax = max(amax, warp_max[w]);
    __syncthreads();  // warp_max is reused by the next row

    const float a = ref::float_of(amax);
    const bool usable = amax != 0 && amax < 0x7F800000u;
    const float inv = usable ? __fdiv_rn(127.0f, a) : 0.0f;
    for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x)
      cr[i] = usable ? ref::quantize_i8(xr[i], inv) : std::int8_t{0};
    if (threadIdx.x == 0) scales[scale_elems.row_offset(row)] = __fdiv_rn(a, 127.0f);
  }
}

__global__ void dequantize_kernel(detail::row_layout code_rows, const std::int8_t* codes,
                                  detail::row_layout scale_elems, const float* scales, detail::row_layout y_rows,
                                  float* y) {
  for (std::int64_t row = blockIdx.y; row < y_rows.rows; row += gridDim.y) {
    const std::int8_t* cr = codes + code_rows.row_offset(row);
    float* yr = y + y_rows.row_offset(row);
    const float scale = scales[scale_elems.row_offset(row)];
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < y_rows.cols;
         i += std::int64_t(gridDim.x) * blockDim.x)
      yr[i] = __fmul_rn(float(cr[i]), scale);
  }
}

unsigned clamp_grid(std::int64_t n, std::int64_t limit) { return static_cast<unsigned>(n < 1 ? 1 : (n < limit ? n : limit)); }

}  // namespace

void quantize_rows(const detail::row_layout& x_rows, const float* x, const detail::row_layout& code_rows,
                   std::int8_t* codes, const detail::row_layout& scale_elems, float* scales, int device) {
  device_scope scope(device);
  quantize_kernel<<<clamp_grid(x_rows.rows, 1 << 20), threads>>>(x_rows, x, code_rows, codes, scale_elems, scales);
  finish("quantize_kernel");
}

void dequantize_rows(const detail::row_layout& code_rows, const std::int8_t* codes,
                     const detail::row_layout& scale_elems, const float* scales, const detail::row_layout& y_rows,
                     float* y, int device) {
  device_scope scope(device);
  const dim3 grid(clamp_grid((y_rows.cols + threads - 1) / threads, 1024), clamp_grid(y_rows.rows, 65535));
  dequantize_kernel<<<grid, threads>>>(code_rows, codes, scale_elems, scales, y_rows, y);
  finish("dequantize_kernel");
}

}  // namespace cinch::cuda
