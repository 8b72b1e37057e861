// Fast Walsh-Hadamard transform on the GPU: one block per row, the reference's
// stages h = 1, 2, 4, ... in order with a barrier between them, in shared memory
// when the row fits, else in place in global memory. Only adds, subtracts, one
// scale multiply and sign-bit XORs: the result equals the CPU's bit for bit.
#include "cinch/ref/hadamard.hpp"
#include "cuda/common.cuh"
#include "cuda/groups_backend.hpp"

namespace cinch::cuda {
namespace {

constexpr std::int64_t shared_floats = 8192;  // 32 KiB

__global__ void hadamard_kernel(detail::row_layout rows, float* x, bool in_shared, bool has_seed, std::uint64_t seed,
                                bool signs_after) {
  extern __shared__ float row_buffer[];
  const std::int64_t n = rows.cols;
  const float scale = ref::hadamard_scale(n);
  for (std::int64_t row = blockIdx.x; row < rows.rows; row += gridDim.x) {
    float* xr = x + rows.row_offset(row);
    float* buf = in_shared ? row_buffer : xr;
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const std::uint32_t sign = has_seed && !signs_after ? ref::hadamard_sign_bit(seed, i) : 0u;
      buf[i] = ref::float_of(ref::bits_of(xr[i]) ^ sign);
    }
    __syncthreads();
    for (std::int64_t h = 1; h < n; h *= 2) {
      for (std::int64_t p = threadIdx.x; p < n / 2; p += blockDim.x) {
        const std::int64_t j = (p / h) * 2 * h + p % h;
        const float a = buf[j], b = buf[j + h];
        buf[j] = a + b;
        buf[j + h] = a - b;
      }
      __syncthreads();
    }
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const std::uint32_t sign = has_seed && signs_after ? ref::hadamard_sign_bit(seed, i) : 0u;
      xr[i] = ref::float_of(ref::bits_of(__fmul_rn(buf[i], scale)) ^ sign);
    }
    __syncthreads();  // the buffer is reused by the next row
  }
}

}  // namespace

void hadamard(const detail::row_layout& rows, float* x, bool has_seed, std::uint64_t seed, bool signs_after,
              int device) {
  device_scope scope(device);
  const std::int64_t n = rows.cols;
  const bool in_shared = n <= shared_floats;
  const unsigned block = static_cast<unsigned>(n / 2 >= 256 ? 256 : (n / 2 >= 32 ? n / 2 : 32));
  const unsigned grid = static_cast<unsigned>(rows.rows < (1 << 20) ? rows.rows : (1 << 20));
  const std::size_t shared = in_shared ? static_cast<std::size_t>(n) * sizeof(float) : 0;
  hadamard_kernel<<<grid, block, shared>>>(rows, x, in_shared, has_seed, seed, signs_after);
  finish("hadamard_kernel");
}

}  // namespace cinch::cuda
