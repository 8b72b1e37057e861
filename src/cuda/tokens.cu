// CUDA tokens kernels: cosine similarity (a tiled GEMM whose every output runs
// one fused multiply-add chain over k in order, as ref::dot does), row argmax
// (max value, lowest index), and the merge of rows by a plan. They call the
// reference's per-element functions, so results equal the CPU's bit for bit.
#include <vector>

#include "cinch/ref/tokens.hpp"
#include "cuda/common.cuh"
#include "cuda/cuda_backend.hpp"
#include "cuda/tokens_backend.hpp"

namespace cinch::cuda {
namespace {

constexpr int tile = 16;

unsigned blocks_for(std::int64_t n, std::int64_t per_block, std::int64_t limit) {
  const std::int64_t b = (n + per_block - 1) / per_block;
  return static_cast<unsigned>(b < 1 ? 1 : (b < limit ? b : limit));
}

// Device memory released at scope exit.
template <class T>
class device_buffer {
 public:
  device_buffer(int device, std::size_t count)
      : device_(device), ptr_(static_cast<T*>(allocate(device, count ? count * sizeof(T) : 1))) {}
  ~device_buffer() { release(device_, ptr_); }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  T* get() const noexcept { return ptr_; }

 private:
  int device_;
  T* ptr_;
};

template <class T>
T* upload(device_buffer<T>& buffer, const T* host, std::size_t count) {
  if (count) copy_bytes(buffer.get(), host, count * sizeof(T));
  return buffer.get();
}

__global__ void inv_norms_kernel(const float* x, std::int64_t ld, std::int64_t n, std::int64_t d, float* inv) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    inv[i] = ref::inv_norm(x + i * ld, d);
}

// One output per thread, 16 x 16 per block; k advances in order through shared tiles.
__global__ void cosine_kernel(const float* a, std::int64_t lda, std::int64_t m, const float* inv_a, const float* b,
                              std::int64_t ldb, std::int64_t n, const float* inv_b, std::int64_t d, float* out,
                              std::int64_t ldo) {
  __shared__ float as[tile][tile + 1];
  __shared__ float bs[tile][tile + 1];
  const std::int64_t i = std::int64_t(blockIdx.y) * tile + threadIdx.y;
  const std::int64_t j = std::int64_t(blockIdx.x) * tile + threadIdx.x;
  const std::int64_t load_a = std::int64_t(blockIdx.y) * tile + threadIdx.x;  // row loaded by this thread
  const std::int64_t load_b = std::int64_t(blockIdx.x) * tile + threadIdx.x;
  float s = 0.0f;
  for (std::int64_t k0 = 0; k0 < d; k0 += tile) {
    const std::int64_t k = k0 + threadIdx.y;
    as[threadIdx.x][threadIdx.y] = load_a < m && k < d ? a[load_a * lda + k] : 0.0f;
    bs[threadIdx.x][threadIdx.y] = load_b < n && k < d ? b[load_b * ldb + k] : 0.0f;
    __syncthreads();
    const std::int64_t steps = d - k0 < tile ? d - k0 : tile;
    for (std::int64_t t = 0; t < steps; ++t) s = ref::fused_multiply_add(as[threadIdx.y][t], bs[threadIdx.x][t], s);
    __syncthreads();
  }
  if (i < m && j < n) out[i * ldo + j] = ref::cosine_of(s, inv_a[i], inv_b[j]);
}

struct candidate {
  float value;
  std::int64_t index;
};

// ref::argmax's order: -1 loses to anything, then the larger value, then the lower index.
__device__ candidate better(candidate x, candidate y) {
  if (x.index < 0) return y;
  if (y.index < 0) return x;
  if (y.value > x.value || (y.value == x.value && y.index < x.index)) return y;
  return x;
}

constexpr unsigned argmax_threads = 256;

// One block per row; column j == row + skip_offset is left out when skip.
template <class Index>
__global__ void row_argmax_kernel(const float* s, std::int64_t ld, std::int64_t m, std::int64_t n, bool skip,
                                  std::int64_t skip_offset, float* best, Index* index) {
  __shared__ float values[argmax_threads];
  __shared__ std::int64_t indices[argmax_threads];
  for (std::int64_t row = blockIdx.x; row < m; row += gridDim.x) {
    candidate c{-INFINITY, -1};
    for (std::int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const float v = s[row * ld + j];
      if ((skip && j == row + skip_offset) || v != v) continue;
      c = better(c, candidate{v, j});
    }
    values[threadIdx.x] = c.value;
    indices[threadIdx.x] = c.index;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) {
        const candidate r = better(candidate{values[threadIdx.x], indices[threadIdx.x]},
                                   candidate{values[threadIdx.x + half], indices[threadIdx.x + half]});
        values[threadIdx.x] = r.value;
        indices[threadIdx.x] = r.index;
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      best[row] = indices[0] < 0 ? -INFINITY : values[0];
      index[row] = static_cast<Index>(indices[0]);
    }
    __syncthreads();
  }
}

__global__ void merge_kernel(const float* x, const std::int64_t* row_begin, const std::int64_t* offsets,
                             const float* weights, const float* divisors, std::int64_t rows, std::int64_t d,
                             float* out, std::int64_t ldo) {
  for (std::int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const std::int64_t first = row_begin[r], count = row_begin[r + 1] - first;
    const bool copy = ref::merge_is_copy(count, weights + first, divisors[r]);
    for (std::int64_t c = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < d;
         c += std::int64_t(gridDim.x) * blockDim.x) {
      if (copy) {
        out[r * ldo + c] = x[offsets[first] + c];
        continue;
      }
      float acc = 0.0f;
      for (std::int64_t s = 0; s < count; ++s)
        acc = ref::fused_multiply_add(weights[first + s], x[offsets[first + s] + c], acc);
      out[r * ldo + c] = __fdiv_rn(acc, divisors[r]);
    }
  }
}

void cosine_into(const float* a, std::int64_t lda, std::int64_t m, const float* b, std::int64_t ldb, std::int64_t n,
                 std::int64_t d, float* out, std::int64_t ldo, int device) {
  device_buffer<float> inv_a(device, std::size_t(m)), inv_b(device, std::size_t(n));
  inv_norms_kernel<<<blocks_for(m, 128, 4096), 128>>>(a, lda, m, d, inv_a.get());
  finish("inv_norms_kernel");
  inv_norms_kernel<<<blocks_for(n, 128, 4096), 128>>>(b, ldb, n, d, inv_b.get());
  finish("inv_norms_kernel");
  const dim3 grid(blocks_for(n, tile, 65535), blocks_for(m, tile, 65535));
  if (std::int64_t(grid.x) * tile < n || std::int64_t(grid.y) * tile < m)
    detail::fail(errc::unsupported, "tokens::cosine_similarity", "CUDA matrices must have fewer than ",
                 std::int64_t(65535) * tile, " rows, got ", m, " x ", n);
  cosine_kernel<<<grid, dim3(tile, tile)>>>(a, lda, m, inv_a.get(), b, ldb, n, inv_b.get(), d, out, ldo);
  finish("cosine_kernel");
}

}  // namespace

void token_cosine(const float* a, std::int64_t lda, std::int64_t m, const float* b, std::int64_t ldb, std::int64_t n,
                  std::int64_t d, float* out, std::int64_t ldo, int device) {
  device_scope scope(device);
  cosine_into(a, lda, m, b, ldb, n, d, out, ldo, device);
}

void token_cosine_argmax(const float* a, std::int64_t lda, std::int64_t m, const float* b, std::int64_t ldb,
                         std::int64_t n, std::int64_t d, bool exclude_diagonal, float* best, std::int32_t* index,
                         int device) {
  device_scope scope(device);
  device_buffer<float> s(device, std::size_t(m) * std::size_t(n));
  cosine_into(a, lda, m, b, ldb, n, d, s.get(), n, device);
  row_argmax_kernel<<<blocks_for(m, 1, 65535), argmax_threads>>>(s.get(), n, m, n, exclude_diagonal, 0, best, index);
  finish("row_argmax_kernel");
}

void token_row_argmax(const float* s, std::int64_t ld, std::int64_t m, std::int64_t n, float* best,
                      std::int32_t* index, int device) {
  device_scope scope(device);
  row_argmax_kernel<<<blocks_for(m, 1, 65535), argmax_threads>>>(s, ld, m, n, false, 0, best, index);
  finish("row_argmax_kernel");
}

void token_merge(const float* x, const std::int64_t* row_begin, const std::int64_t* offsets, const float* weights,
                 const float* divisors, std::int64_t rows, std::int64_t d, float* out, std::int64_t ldo, int device) {
  device_scope scope(device);
  const std::size_t sources = std::size_t(row_begin[rows]);
  device_buffer<std::int64_t> begin_d(device, std::size_t(rows + 1)), offsets_d(device, sources);
  device_buffer<float> weights_d(device, sources), divisors_d(device, std::size_t(rows));
  const dim3 grid(blocks_for(d, 128, 1024), blocks_for(rows, 1, 65535));
  merge_kernel<<<grid, 128>>>(x, upload(begin_d, row_begin, std::size_t(rows + 1)),
                              upload(offsets_d, offsets, sources), upload(weights_d, weights, sources),
                              upload(divisors_d, divisors, std::size_t(rows)), rows, d, out, ldo);
  finish("merge_kernel");
}

}  // namespace cinch::cuda
