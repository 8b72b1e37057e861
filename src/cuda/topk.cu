// Top-k selection on the GPU: one block per row.
//  1. The reference's threshold t (the k-th best rank key) by radix selection,
//     four passes of 8 bits from the top: a shared histogram of the next digit
//     among keys matching the digits found so far, then the digit where the count
//     from the top reaches the k still wanted. Counts are exact integers, so t is
//     the reference's.
//  2. The indices in order, a tile of blockDim scores at a time: a block scan of
//     "key == t" ranks the ties (the first k - #{key > t} are taken, as in the
//     reference), a scan of "selected" gives each selected index its place.
#include "cinch/ref/topk.hpp"
#include "cuda/common.cuh"
#include "cuda/topk_backend.hpp"

namespace cinch::cuda {
namespace {

constexpr unsigned threads = 256;
constexpr unsigned warps = threads / 32;

// Exclusive prefix sum of v over the block; total gets the block's sum. Every thread calls it.
__device__ unsigned block_exclusive_scan(unsigned v, unsigned& total, unsigned* warp_sums) {
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  unsigned inclusive = v;
  for (unsigned offset = 1; offset < 32; offset *= 2) {
    const unsigned up = __shfl_up_sync(0xFFFFFFFFu, inclusive, offset);
    if (lane >= offset) inclusive += up;
  }
  if (lane == 31) warp_sums[warp] = inclusive;
  __syncthreads();
  unsigned before = 0;
  total = 0;
  for (unsigned w = 0; w < warps; ++w) {
    if (w < warp) before += warp_sums[w];
    total += warp_sums[w];
  }
  __syncthreads();  // warp_sums is reused by the next call
  return before + inclusive - v;
}

__global__ void top_k_kernel(detail::row_layout in, const float* scores, std::int64_t n, std::int64_t k,
                             detail::row_layout out_rows, std::int32_t* indices) {
  __shared__ unsigned histogram[256];
  __shared__ unsigned warp_sums[warps];
  __shared__ std::uint32_t prefix_shared;
  __shared__ long long wanted_shared;
  for (std::int64_t row = blockIdx.x; row < in.rows; row += gridDim.x) {
    const float* x = scores + in.row_offset(row);
    std::int32_t* out = indices + out_rows.row_offset(row);

    std::uint32_t prefix = 0, mask = 0;
    long long wanted = k;  // how many of the keys matching prefix/mask are still to be taken
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (unsigned b = threadIdx.x; b < 256; b += blockDim.x) histogram[b] = 0;
      __syncthreads();
      for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const std::uint32_t key = ref::rank_key(x[i]);
        if ((key & mask) == prefix) atomicAdd(&histogram[(key >> shift) & 0xFFu], 1u);
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        long long from_top = 0;
        unsigned digit = 255;
        for (;; --digit) {
          if (from_top + histogram[digit] >= wanted || digit == 0) break;
          from_top += histogram[digit];
        }
        prefix_shared = prefix | (std::uint32_t(digit) << shift);
        wanted_shared = wanted - from_top;
      }
      __syncthreads();
      prefix = prefix_shared;
      wanted = wanted_shared;
      mask |= 0xFFu << shift;
      __syncthreads();  // the next pass clears histogram and rewrites the shared pair
    }
    const std::uint32_t t = prefix;
    unsigned ties_before = 0, written = 0;  // over the tiles so far
    for (std::int64_t base = 0; base < n; base += blockDim.x) {
      const std::int64_t i = base + threadIdx.x;
      const std::uint32_t key = i < n ? ref::rank_key(x[i]) : 0u;
      const bool tie = i < n && key == t;
      unsigned tiles_ties = 0, tiles_selected = 0;
      const unsigned tie_rank = ties_before + block_exclusive_scan(tie ? 1u : 0u, tiles_ties, warp_sums);
      const bool selected = i < n && (key > t || (tie && tie_rank < wanted));
      const unsigned place = written + block_exclusive_scan(selected ? 1u : 0u, tiles_selected, warp_sums);
      if (selected) out[place] = static_cast<std::int32_t>(i);
      ties_before += tiles_ties;
      written += tiles_selected;
    }
  }
}

}  // namespace

void top_k(const detail::row_layout& score_rows, const float* scores, std::int64_t n, std::int64_t k,
           const detail::row_layout& index_rows, std::int32_t* indices, int device) {
  device_scope scope(device);
  const std::int64_t blocks = score_rows.rows < (1 << 20) ? score_rows.rows : (1 << 20);
  top_k_kernel<<<static_cast<unsigned>(blocks), threads>>>(score_rows, scores, n, k, index_rows, indices);
  finish("top_k_kernel");
}

}  // namespace cinch::cuda
