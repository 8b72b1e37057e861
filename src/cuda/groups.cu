// Group quantization and scaled FP8 on the GPU. Every thread runs the reference's
// own CINCH_HOST_DEVICE functions (one group, or one element), so codes, scales and
// values equal the CPU's: the divisions are IEEE (no fast math), and the only
// multiply-add, code * scale + min, has an exact product.
#include "cinch/ref/fp8.hpp"
#include "cinch/ref/groups.hpp"
#include "cuda/common.cuh"
#include "cuda/groups_backend.hpp"

namespace cinch::cuda {
namespace {

constexpr unsigned threads = 256;

unsigned grid_for(std::int64_t n, std::int64_t limit = 1 << 20) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks < limit ? blocks : limit));
}

__device__ std::int64_t thread_index() { return std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ std::int64_t thread_count() { return std::int64_t(gridDim.x) * blockDim.x; }

// One thread per group.
__global__ void quantize_per_token_kernel(per_token_layout l, const float* x, std::uint8_t* codes,
                                          std::uint16_t* scales, std::uint16_t* mins) {
  const std::int64_t groups = l.n / l.group, per_byte = ref::codes_per_byte(l.bits);
  for (std::int64_t t = thread_index(); t < l.values.rows * groups; t += thread_count()) {
    const std::int64_t r = t / groups, g = t % groups;
    ref::quantize_group(x + l.values.row_offset(r) + g * l.group, 1, l.group, l.bits,
                        codes + l.codes.row_offset(r) / per_byte + g * l.group / per_byte,
                        scales + l.scales.row_offset(r) + g, mins + l.mins.row_offset(r) + g);
  }
}

__global__ void dequantize_per_token_kernel(per_token_layout l, const std::uint8_t* codes,
                                            const std::uint16_t* scales, const std::uint16_t* mins, float* y) {
  const std::int64_t groups = l.n / l.group, per_byte = ref::codes_per_byte(l.bits);
  for (std::int64_t t = thread_index(); t < l.values.rows * groups; t += thread_count()) {
    const std::int64_t r = t / groups, g = t % groups;
    ref::dequantize_group(codes + l.codes.row_offset(r) / per_byte + g * l.group / per_byte,
                          scales[l.scales.row_offset(r) + g], mins[l.mins.row_offset(r) + g], l.group, l.bits,
                          y + l.values.row_offset(r) + g * l.group, 1);
  }
}

// One thread per (chunk, channel): neighbouring threads read neighbouring channels.
__global__ void quantize_per_channel_kernel(per_channel_layout l, const float* x, std::uint8_t* codes,
                                            std::uint16_t* scales, std::uint16_t* mins) {
  const std::int64_t per_byte = ref::codes_per_byte(l.bits);
  for (std::int64_t t = thread_index(); t < l.chunks * l.d; t += thread_count()) {
    const std::int64_t chunk = t / l.d, c = t % l.d;
    ref::quantize_group(x + l.values.row_offset(chunk * l.group) + c, l.token_stride, l.group, l.bits,
                        codes + l.codes.row_offset(chunk) / per_byte + c * l.channel_stride,
                        scales + l.scales.row_offset(chunk) + c, mins + l.mins.row_offset(chunk) + c);
  }
}

__global__ void dequantize_per_channel_kernel(per_channel_layout l, const std::uint8_t* codes,
                                              const std::uint16_t* scales, const std::uint16_t* mins, float* y) {
  const std::int64_t per_byte = ref::codes_per_byte(l.bits);
  for (std::int64_t t = thread_index(); t < l.chunks * l.d; t += thread_count()) {
    const std::int64_t chunk = t / l.d, c = t % l.d;
    ref::dequantize_group(codes + l.codes.row_offset(chunk) / per_byte + c * l.channel_stride,
                          scales[l.scales.row_offset(chunk) + c], mins[l.mins.row_offset(chunk) + c], l.group, l.bits,
                          y + l.values.row_offset(chunk * l.group) + c, l.token_stride);
  }
}

__device__ float scale_of_row(const float* head_scales, float scale, std::int64_t row, std::int64_t rows_per_head) {
  return head_scales ? head_scales[row / rows_per_head] : scale;
}

__global__ void quantize_scaled_kernel(detail::row_layout x_rows, const float* x, detail::row_layout q_rows,
                                       std::uint8_t* q, int format, const float* head_scales, float scale,
                                       std::int64_t rows_per_head) {
  for (std::int64_t row = blockIdx.y; row < x_rows.rows; row += gridDim.y) {
    const float s = scale_of_row(head_scales, scale, row, rows_per_head);
    const float* xr = x + x_rows.row_offset(row);
    std::uint8_t* qr = q + q_rows.row_offset(row);
    for (std::int64_t i = thread_index(); i < x_rows.cols; i += thread_count())
      qr[i] = format == 0 ? ref::quantize_scaled<f8_e4m3_bits>(xr[i], s).bits
                          : ref::quantize_scaled<f8_e5m2_bits>(xr[i], s).bits;
  }
}

__global__ void dequantize_scaled_kernel(detail::row_layout q_rows, const std::uint8_t* q, int format,
                                         const float* head_scales, float scale, std::int64_t rows_per_head,
                                         detail::row_layout y_rows, float* y) {
  for (std::int64_t row = blockIdx.y; row < y_rows.rows; row += gridDim.y) {
    const float s = scale_of_row(head_scales, scale, row, rows_per_head);
    const std::uint8_t* qr = q + q_rows.row_offset(row);
    float* yr = y + y_rows.row_offset(row);
    for (std::int64_t i = thread_index(); i < y_rows.cols; i += thread_count())
      yr[i] = format == 0 ? ref::dequantize_scaled(f8_e4m3_bits{qr[i]}, s) : ref::dequantize_scaled(f8_e5m2_bits{qr[i]}, s);
  }
}

// max |x| as bit patterns (non-negative, so integer order is float order; NaN above inf).
__global__ void absmax_kernel(detail::row_layout x_rows, const float* x, std::int64_t rows_per_group,
                              unsigned* amax) {
  for (std::int64_t row = blockIdx.y; row < x_rows.rows; row += gridDim.y) {
    const float* xr = x + x_rows.row_offset(row);
    unsigned m = 0;
    for (std::int64_t i = thread_index(); i < x_rows.cols; i += thread_count()) m = max(m, ref::bits_of(xr[i]) & 0x7FFFFFFFu);
    for (int offset = 16; offset > 0; offset /= 2) m = max(m, __shfl_xor_sync(0xFFFFFFFFu, m, offset));
    if (threadIdx.x % 32 == 0) atomicMax(amax + row / rows_per_group, m);
  }
}

dim3 row_grid(const detail::row_layout& rows) { return dim3(grid_for(rows.cols, 1024), grid_for(rows.rows * threads, 65535)); }

}  // namespace

void quantize_per_token(const per_token_layout& l, const float* x, std::uint8_t* codes, std::uint16_t* scales,
                        std::uint16_t* mins, int device) {
  device_scope scope(device);
  quantize_per_token_kernel<<<grid_for(l.values.rows * (l.n / l.group)), threads>>>(l, x, codes, scales, mins);
  finish("quantize_per_token_kernel");
}

void dequantize_per_token(const per_token_layout& l, const std::uint8_t* codes, const std::uint16_t* scales,
                          const std::uint16_t* mins, float* y, int device) {
  device_scope scope(device);
  dequantize_per_token_kernel<<<grid_for(l.values.rows * (l.n / l.group)), threads>>>(l, codes, scales, mins, y);
  finish("dequantize_per_token_kernel");
}

void quantize_per_channel(const per_channel_layout& l, const float* x, std::uint8_t* codes, std::uint16_t* scales,
                          std::uint16_t* mins, int device) {
  device_scope scope(device);
  quantize_per_channel_kernel<<<grid_for(l.chunks * l.d), threads>>>(l, x, codes, scales, mins);
  finish("quantize_per_channel_kernel");
}

void dequantize_per_channel(const per_channel_layout& l, const std::uint8_t* codes, const std::uint16_t* scales,
                            const std::uint16_t* mins, float* y, int device) {
  device_scope scope(device);
  dequantize_per_channel_kernel<<<grid_for(l.chunks * l.d), threads>>>(l, codes, scales, mins, y);
  finish("dequantize_per_channel_kernel");
}

void quantize_scaled(const detail::row_layout& x_rows, const float* x, const detail::row_layout& q_rows,
                     std::uint8_t* q, int format, const float* head_scales, float scale, std::int64_t rows_per_head,
                     int device) {
  device_scope scope(device);
  quantize_scaled_kernel<<<row_grid(x_rows), threads>>>(x_rows, x, q_rows, q, format, head_scales, scale,
                                                        rows_per_head);
  finish("quantize_scaled_kernel");
}

void dequantize_scaled(const detail::row_layout& q_rows, const std::uint8_t* q, int format, const float* head_scales,
                       float scale, std::int64_t rows_per_head, const detail::row_layout& y_rows, float* y,
                       int device) {
  device_scope scope(device);
  dequantize_scaled_kernel<<<row_grid(y_rows), threads>>>(q_rows, q, format, head_scales, scale, rows_per_head,
                                                          y_rows, y);
  finish("dequantize_scaled_kernel");
}

void absmax_bits(const detail::row_layout& x_rows, const float* x, std::int64_t rows_per_group,
                 std::uint32_t* amax_bits, int device) {
  device_scope scope(device);
  const std::int64_t groups = x_rows.rows / rows_per_group;
  const std::size_t bytes = static_cast<std::size_t>(groups) * sizeof(unsigned);
  unsigned* amax = nullptr;
  check(cudaMalloc(&amax, bytes), "cudaMalloc");
  check(cudaMemset(amax, 0, bytes), "cudaMemset");
  absmax_kernel<<<row_grid(x_rows), threads>>>(x_rows, x, rows_per_group, amax);
  const cudaError_t launched = cudaGetLastError();
  const cudaError_t copied = launched == cudaSuccess ? cudaMemcpy(amax_bits, amax, bytes, cudaMemcpyDeviceToHost) : launched;
  cudaFree(amax);
  check(copied, "absmax_kernel");
}

}  // namespace cinch::cuda
