// Decode attention on the GPU over device-resident head views (the layout of
// cinch/kv/format.hpp), split-K: one thread block per (query head, part, token split)
// runs the online softmax over its tokens in tiles of one token per thread,
// then one thread per query head merges the splits. Scores and values come from
// the reference's own per-token functions (ref::token_dot, ref::token_element),
// so the arithmetic per element is the specification's.
#include "cinch/ref/attention.hpp"
#include "cuda/common.cuh"
#include "kv/attention_kernels.hpp"

namespace cinch::cuda {
namespace {

constexpr int threads = 128;

__device__ std::int64_t split_point(std::int64_t n, int i, int splits) {
  return i == splits ? n : n * i / splits / 64 * 64;
}

__device__ float block_reduce(float v, bool take_max, float* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(0xFFFFFFFFu, v, offset);
    v = take_max ? fmaxf(v, other) : v + other;
  }
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  float r = scratch[0];
  for (int w = 1; w < threads / 32; ++w) r = take_max ? fmaxf(r, scratch[w]) : r + scratch[w];
  __syncthreads();  // scratch is reused by the next reduction
  return r;
}

// Shared memory: q [d] (rotated if the keys are), acc [d], weights [threads].
// Block (h, part * splits + split); its partial at (h * parts + part) * splits + split.
__global__ void attend_kernel(const kv::head_view* heads, int group, int parts, const float* q, std::int64_t q_row,
                              float scale, int splits, float* partials) {
  extern __shared__ float shared[];
  __shared__ float scratch[threads / 32];
  __shared__ float running_max, running_sum, shrink;
  const int h = blockIdx.x, part = int(blockIdx.y) / splits, split = int(blockIdx.y) % splits;
  const kv::head_view& hv = heads[h / group * parts + part];
  const int d = hv.keys.head_dim;
  float* qs = shared;
  float* acc = shared + d;
  float* weights = shared + 2 * d;
  for (int c = threadIdx.x; c < d; c += threads) {
    qs[c] = q[h * q_row + c];
    acc[c] = 0.0f;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    if (hv.keys.fmt.rotate) ref::fwht(qs, d);
    running_max = -INFINITY;
    running_sum = 0.0f;
  }
  __syncthreads();

  const std::int64_t begin = split_point(hv.tokens, split, splits), end = split_point(hv.tokens, split + 1, splits);
  for (std::int64_t t0 = begin; t0 < end; t0 += threads) {
    const std::int64_t t = t0 + threadIdx.x;
    const float s = t < end ? scale * ref::token_dot(hv.keys, t, qs) : -INFINITY;
    const float tile_max = block_reduce(s, true, scratch);  // fmaxf skips NaN; a NaN score still poisons the sum
    if (threadIdx.x == 0) {
      const float m = tile_max > running_max ? tile_max : running_max;
      shrink = m == running_max ? 1.0f : expf(running_max - m);
      running_max = m;
    }
    __syncthreads();
    const float p = t < end ? expf(s - running_max) : 0.0f;
    weights[threadIdx.x] = p;
    const float tile_sum = block_reduce(p, false, scratch);
    if (threadIdx.x == 0) running_sum = running_sum * shrink + tile_sum;
    const int count = int(end - t0 < threads ? end - t0 : threads);
    for (int c = threadIdx.x; c < d; c += threads) {
      float a = acc[c] * shrink;
      for (int j = 0; j < count; ++j) a += weights[j] * ref::token_element(hv.values, t0 + j, c);
      acc[c] = a;
    }
    __syncthreads();
  }
  float* out = partials + ((std::int64_t(h) * parts + part) * splits + split) * (d + 2);
  for (int c = threadIdx.x; c < d; c += threads) out[2 + c] = acc[c];
  if (threadIdx.x == 0) {
    out[0] = running_max;
    out[1] = running_sum;
  }
}

__global__ void merge_kernel(const kv::head_view* heads, int group, int parts, int n_heads, const float* partials,
                             int splits, float* out, std::int64_t out_row) {
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h >= n_heads) return;
  const kv::head_view& hv = heads[h / group * parts];
  const int d = hv.keys.head_dim;
  float* row = out + h * out_row;
  ref::merge_partials(partials + std::int64_t(h) * parts * splits * (d + 2), parts * splits, d + 2, d, row);
  if (hv.values.fmt.rotate) ref::fwht(row, d);
}

}  // namespace

void decode_attention(const kv::head_view* heads, int kv_heads, int parts, const float* q, std::int64_t q_row,
                      float* out, std::int64_t out_row, int n_heads, float scale, int splits, float* workspace,
                      int device) {
  device_scope scope(device);
  const int d = heads[0].keys.head_dim, group = n_heads / kv_heads;
  // The views go first (16-byte aligned), the partials after them.
  auto* views = reinterpret_cast<kv::head_view*>(workspace);
  const int count = kv_heads * parts;
  float* partials = workspace + (std::int64_t(count) * sizeof(kv::head_view) + 15) / 16 * 4;
  check(cudaMemcpy(views, heads, std::size_t(count) * sizeof(kv::head_view), cudaMemcpyHostToDevice), "cudaMemcpy");
  std::int64_t longest = 0;
  for (int i = 0; i < count; ++i) longest = heads[i].tokens > longest ? heads[i].tokens : longest;
  const int used = int(longest / 1024 + 1 < splits ? longest / 1024 + 1 : splits);
  const std::size_t shared = std::size_t(2 * d + threads) * sizeof(float);
  attend_kernel<<<dim3(unsigned(n_heads), unsigned(parts * used)), threads, shared>>>(views, group, parts, q, q_row,
                                                                                       scale, used, partials);
  check(cudaGetLastError(), "attend_kernel");
  merge_kernel<<<unsigned((n_heads + 63) / 64), 64>>>(views, group, parts, n_heads, partials, used, out, out_row);
  finish("decode_attention");
}

}  // namespace cinch::cuda
