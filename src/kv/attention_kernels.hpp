// The decode-attention kernel table: the reference (cinch/ref/attention.hpp)
// and the Highway kernels (src/cpu/attention.cc) behind one signature.
#pragma once

#include <cstdint>

#include "cinch/kv/format.hpp"

namespace cinch::detail {

// Online-softmax partials of `group` query heads over tokens [begin, end) of one
// KV head. q: group rows of head_dim, in the keys' basis (rotated if they are).
// Partial i, at partials + i * stride: m, sum, acc[head_dim] as ref::attend_range
// leaves them (not normalized).
using attend_fn = void (*)(const kv::head_view& h, std::int64_t begin, std::int64_t end, const float* q, int group,
                           float scale, float* partials, std::int64_t stride) noexcept;

// Logits scale * q_i . k_t of `group` query heads over tokens [begin, end) of one
// KV head's keys: out[i * stride + t - begin]. q as for attend_fn.
using logits_fn = void (*)(const kv::stream_view& keys, std::int64_t begin, std::int64_t end, const float* q, int group,
                           float scale, float* out, std::int64_t stride) noexcept;

struct attention_kernels {
  attend_fn attend;
  logits_fn logits;
};

const attention_kernels& ref_attention_kernels() noexcept;
const attention_kernels& simd_attention_kernels() noexcept;

}  // namespace cinch::detail

namespace cinch::cuda {

// Decode attention on a GPU (src/cuda/attention.cu), synchronous: heads[kv_heads *
// parts] views whose pointers are device memory; q, out [n_heads, head_dim] device
// rows; workspace: device memory for kv_heads * parts head views, then
// n_heads * parts * splits * (head_dim + 2) floats of partials. Splits each
// part's tokens into up to `splits` ranges.
void decode_attention(const kv::head_view* heads, int kv_heads, int parts, const float* q, std::int64_t q_row,
                      float* out, std::int64_t out_row, int n_heads, float scale, int splits, float* workspace,
                      int device);

}  // namespace cinch::cuda
