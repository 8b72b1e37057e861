// The fused low-rank apply on the GPU. One block per (rank tile, token group):
// it computes its tile of z = B x into shared memory with the reference's own
// ref::dot (so z equals the CPU's), then streams every output row of A against
// the tile and adds its partial sums into y atomically. No block recomputes
// another's z and the [tokens, r] intermediate never reaches global memory; the
// price is that the tiles' partial sums land in y in no fixed order.
#include "cinch/ref/lowrank.hpp"
#include "cuda/common.cuh"
#include "cuda/lowrank_backend.hpp"

namespace cinch::cuda {
namespace {

constexpr unsigned threads = 256;
// Tokens per block: the z tile [group, tile] sits in shared memory.
constexpr std::int64_t token_group = 8;
constexpr std::int64_t max_shared_floats = 12288;  // 48 KiB, the default limit

__global__ void clear_rows(std::int64_t rows, std::int64_t cols, float* y, std::int64_t ldy) {
  for (std::int64_t row = blockIdx.y; row < rows; row += gridDim.y)
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < cols;
         i += std::int64_t(gridDim.x) * blockDim.x)
      y[row * ldy + i] = 0.0f;
}

__global__ void apply_tiles(lowrank_apply_layout l, const float* a, const float* b, const float* x, float* y) {
  extern __shared__ float z[];  // [group tokens][tile]
  const std::int64_t j0 = std::int64_t(blockIdx.x) * l.tile;
  const std::int64_t len = l.r - j0 < l.tile ? l.r - j0 : l.tile;
  const std::int64_t t0 = std::int64_t(blockIdx.y) * token_group;
  const std::int64_t group = l.tokens - t0 < token_group ? l.tokens - t0 : token_group;
  for (std::int64_t e = threadIdx.x; e < group * len; e += blockDim.x) {
    const std::int64_t t = e / len, j = e % len;
    z[t * len + j] = ref::dot(b + (j0 + j) * l.ldb, std::int64_t(1), x + (t0 + t) * l.ldx, std::int64_t(1), l.n);
  }
  __syncthreads();
  for (std::int64_t i = threadIdx.x; i < l.m; i += blockDim.x)
    for (std::int64_t t = 0; t < group; ++t) {
      const float s = ref::dot(a + i * l.lda + j0, std::int64_t(1), z + t * len, std::int64_t(1), len);
      atomicAdd(y + (t0 + t) * l.ldy + i, s);
    }
}

__global__ void dense_rows(dense_apply_layout l, const float* w, const float* x, float* y) {
  for (std::int64_t row = blockIdx.y; row < l.tokens; row += gridDim.y)
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < l.m;
         i += std::int64_t(gridDim.x) * blockDim.x) {
      const float s = ref::dot(w + i * l.ldw, std::int64_t(1), x + row * l.ldx, std::int64_t(1), l.n);
      float& out = y[row * l.ldy + i];
      out = l.accumulate ? out + s : s;
    }
}

unsigned blocks_for(std::int64_t n, std::int64_t limit) {
  const std::int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b < limit ? b : limit));
}

}  // namespace

void lowrank_apply(const lowrank_apply_layout& l, const float* a, const float* b, const float* x, float* y,
                   int device) {
  device_scope scope(device);
  if (!l.accumulate) {
    clear_rows<<<dim3(blocks_for(l.m, 1024), unsigned(l.tokens < 65535 ? l.tokens : 65535)), threads>>>(l.tokens, l.m,
                                                                                                       y, l.ldy);
    finish("clear_rows");
  }
  lowrank_apply_layout tiled = l;
  tiled.tile = l.tile * token_group <= max_shared_floats ? l.tile : max_shared_floats / token_group;
  const std::int64_t tiles = (l.r + tiled.tile - 1) / tiled.tile, groups = (l.tokens + token_group - 1) / token_group;
  for (std::int64_t g0 = 0; g0 < groups; g0 += 65535) {  // gridDim.y is at most 65535
    const std::int64_t count = groups - g0 < 65535 ? groups - g0 : 65535;
    lowrank_apply_layout part = tiled;
    part.tokens = l.tokens - g0 * token_group;
    apply_tiles<<<dim3(unsigned(tiles), unsigned(count)), threads,
                  std::size_t(tiled.tile * token_group) * sizeof(float)>>>(part, a, b, x + g0 * token_group * l.ldx,
                                                                            y + g0 * token_group * l.ldy);
    finish("apply_tiles");
  }
}

void dense_apply(const dense_apply_layout& l, const float* w, const float* x, float* y, int device) {
  device_scope scope(device);
  dense_rows<<<dim3(blocks_for(l.m, 1024), unsigned(l.tokens < 65535 ? l.tokens : 65535)), threads>>>(l, w, x, y);
  finish("dense_rows");
}

}  // namespace cinch::cuda
