// The ggml block formats on the GPU: one thread per 32-value block, running the
// reference's own CINCH_HOST_DEVICE block functions (whose products go through
// __fmul_rn, so nvcc cannot fuse them), so the bytes and values equal the CPU's
// by construction.
#include "cinch/ref/ggml.hpp"
#include "cuda/common.cuh"
#include "kv/block_kernels.hpp"

namespace cinch::cuda {
namespace {

constexpr unsigned threads = 128;
constexpr std::int64_t values_per_block = ref::ggml_block_values;

// Runs body(r, i) for block i of every row r of `rows`, one pair per thread in a
// grid-stride loop.
template <class Body>
__device__ void for_each_block(const detail::row_layout& rows, Body body) {
  const std::int64_t per_row = rows.cols / values_per_block;
  const std::int64_t total = rows.rows * per_row;
  for (std::int64_t g = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; g < total;
       g += std::int64_t(gridDim.x) * blockDim.x)
    body(g / per_row, g % per_row);
}

template <dtype Format, class T>
__global__ void quantize_kernel(detail::row_layout x_rows, const T* x, detail::row_layout block_rows,
                                std::uint8_t* blocks) {
  constexpr std::int64_t bytes = info(Format).block_bytes;
  for_each_block(x_rows, [&](std::int64_t r, std::int64_t i) {
    ref::quantize_block<Format>(x + x_rows.row_offset(r) + i * values_per_block,
                                blocks + (block_rows.row_offset(r) / values_per_block + i) * bytes);
  });
}

template <dtype Format, class T>
__global__ void dequantize_kernel(detail::row_layout block_rows, const std::uint8_t* blocks, detail::row_layout y_rows,
                                  T* y) {
  constexpr std::int64_t bytes = info(Format).block_bytes;
  for_each_block(y_rows, [&](std::int64_t r, std::int64_t i) {
    ref::dequantize_block<Format>(blocks + (block_rows.row_offset(r) / values_per_block + i) * bytes,
                                  y + y_rows.row_offset(r) + i * values_per_block);
  });
}

unsigned grid_for(const detail::row_layout& rows) {
  const std::int64_t total = rows.rows * (rows.cols / values_per_block);
  const std::int64_t grid = (total + threads - 1) / threads;
  return static_cast<unsigned>(grid < 1 ? 1 : (grid < (1 << 20) ? grid : (1 << 20)));
}

// Calls body.template operator()<Format>() for a ggml block dtype.
template <class Body>
void with_format(dtype format, Body body) {
  switch (format) {
    case dtype::q8_0: return body.template operator()<dtype::q8_0>();
    case dtype::q4_0: return body.template operator()<dtype::q4_0>();
    case dtype::q4_1: return body.template operator()<dtype::q4_1>();
    case dtype::q5_0: return body.template operator()<dtype::q5_0>();
    case dtype::q5_1: return body.template operator()<dtype::q5_1>();
    default: return body.template operator()<dtype::iq4_nl>();
  }
}

}  // namespace

void quantize_blocks(const detail::row_layout& x_rows, const void* x, dtype x_type,
                     const detail::row_layout& block_rows, void* blocks, dtype format, int device) {
  device_scope scope(device);
  auto* out = static_cast<std::uint8_t*>(blocks);
  with_format(format, [&]<dtype Format>() {
    if (x_type == dtype::f16)
      quantize_kernel<Format><<<grid_for(x_rows), threads>>>(x_rows, static_cast<const f16_bits*>(x), block_rows, out);
    else
      quantize_kernel<Format><<<grid_for(x_rows), threads>>>(x_rows, static_cast<const float*>(x), block_rows, out);
  });
  finish("ggml quantize_kernel");
}

void dequantize_blocks(const detail::row_layout& block_rows, const void* blocks, dtype format,
                       const detail::row_layout& y_rows, void* y, dtype y_type, int device) {
  device_scope scope(device);
  const auto* in = static_cast<const std::uint8_t*>(blocks);
  with_format(format, [&]<dtype Format>() {
    if (y_type == dtype::f16)
      dequantize_kernel<Format><<<grid_for(y_rows), threads>>>(block_rows, in, y_rows, static_cast<f16_bits*>(y));
    else
      dequantize_kernel<Format><<<grid_for(y_rows), threads>>>(block_rows, in, y_rows, static_cast<float*>(y));
  });
  finish("ggml dequantize_kernel");
}

}  // namespace cinch::cuda
