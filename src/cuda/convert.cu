// Float format conversion on the GPU: element-wise over rows, each element
// through the reference conversion itself (cinch/ref/convert.hpp is
// __host__ __device__), so results match the spec bit for bit.
#include "cinch/ref/convert.hpp"
#include "cuda/common.cuh"
#include "cuda/cuda_backend.hpp"

namespace cinch::cuda {
namespace {

template <class From, class To>
__global__ void convert_kernel(detail::row_layout src_rows, const From* src, detail::row_layout dst_rows, To* dst) {
  const std::int64_t cols = src_rows.cols;
  for (std::int64_t row = blockIdx.y; row < src_rows.rows; row += gridDim.y) {
    const From* s = src + src_rows.row_offset(row);
    To* d = dst + dst_rows.row_offset(row);
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < cols;
         i += std::int64_t(gridDim.x) * blockDim.x)
      d[i] = ref::from_f32<To>(ref::to_f32(s[i]));
  }
}

template <class From, class To>
void launch(const detail::row_layout& s, const void* src, const detail::row_layout& d, void* dst) {
  const unsigned threads = 256;
  const auto blocks_x = static_cast<unsigned>((s.cols + threads - 1) / threads < 1024 ? (s.cols + threads - 1) / threads : 1024);
  const auto blocks_y = static_cast<unsigned>(s.rows < 65535 ? s.rows : 65535);
  convert_kernel<From, To><<<dim3(blocks_x, blocks_y), threads>>>(s, static_cast<const From*>(src), d,
                                                                  static_cast<To*>(dst));
  finish("convert_kernel");
}

}  // namespace

void convert(const detail::row_layout& s, const void* src, dtype from, const detail::row_layout& d, void* dst,
             dtype to, int device) {
  device_scope scope(device);
  switch (from == dtype::f32 ? to : from) {
    case dtype::f32: return launch<float, float>(s, src, d, dst);
    case dtype::f16:
      return from == dtype::f32 ? launch<float, f16_bits>(s, src, d, dst) : launch<f16_bits, float>(s, src, d, dst);
    case dtype::bf16:
      return from == dtype::f32 ? launch<float, bf16_bits>(s, src, d, dst) : launch<bf16_bits, float>(s, src, d, dst);
    case dtype::f8_e4m3:
      return from == dtype::f32 ? launch<float, f8_e4m3_bits>(s, src, d, dst)
                                : launch<f8_e4m3_bits, float>(s, src, d, dst);
    case dtype::f8_e5m2:
      return from == dtype::f32 ? launch<float, f8_e5m2_bits>(s, src, d, dst)
                                : launch<f8_e5m2_bits, float>(s, src, d, dst);
    default: detail::fail(errc::unsupported, "cuda::convert", "no kernel for ", to_string(from), " -> ", to_string(to));
  }
}

}  // namespace cinch::cuda
