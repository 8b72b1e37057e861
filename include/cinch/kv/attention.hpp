// Decode attention computed directly on a compressed cache: q . k from the
// packed key codes, values accumulated from their codes with an online softmax,
// the residual window in f32; fp32 keys and values are never materialized.
// The arithmetic is cinch/ref/attention.hpp's.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "cinch/core/tensor.hpp"
#include "cinch/core/tensor_view.hpp"
#include "cinch/kv/cache.hpp"

namespace cinch::kv {

// Room for split-K partial results (a running max, sum and head_dim
// accumulators per query head and token split), so that a few long heads can
// use every thread. Sized once; decode_attention never allocates.
class attention_workspace {
 public:
  attention_workspace() = default;
  // query_heads x splits partials of head_dim; splits <= 0 picks 4 x the OpenMP
  // threads. On a CUDA device for attention over device-resident head views.
  attention_workspace(int query_heads, int head_dim, int splits = 0, device where = cpu_device);

  [[nodiscard]] int query_heads() const noexcept { return query_heads_; }
  [[nodiscard]] int head_dim() const noexcept { return head_dim_; }
  [[nodiscard]] int splits() const noexcept { return splits_; }
  [[nodiscard]] device where() const noexcept { return storage_.where(); }
  [[nodiscard]] float* partials() const noexcept { return storage_.data<float>(); }

 private:
  int query_heads_ = 0, head_dim_ = 0, splits_ = 0;
  tensor storage_;
};

// q, out: [n_heads, head_dim] f32 (rows dense). n_heads must be a multiple of the
// cache's kv_heads; query head h reads KV head h / (n_heads / kv_heads) (grouped-
// query attention). out = softmax(scale * q K^T) V over every token the head
// holds (both parts of a mixed-precision cache); scale defaults to 1 / sqrt(head_dim). A query head whose KV head holds
// no tokens gets out = 0. Without a workspace (or one made for fewer heads or a
// smaller head_dim) heads run in parallel without splitting their tokens.
void decode_attention(const cache& c, int layer, const tensor_view& q, const tensor_view& out,
                      std::optional<float> scale = std::nullopt);
void decode_attention(const cache& c, int layer, const tensor_view& q, const tensor_view& out,
                      attention_workspace& workspace, std::optional<float> scale = std::nullopt);

// The attention logits scale * q . k of every query head over every token of the
// KV head it reads (query head h reads KV head h / (n_heads / kv_heads)), from the
// packed codes with decode_attention's kernels: what window-query eviction
// scorers (SnapKV, H2O, TOVA) and engines needing attention weights read.
// q: [n_heads, head_dim]; out: [n_heads, T] f32, T the longest head's token
// count; row i holds its KV head's tokens in cache order (part 0's, then part
// 1's) and -inf past that head's last token. Rotated keys: q is rotated to match.
void attention_logits(const cache& c, int layer, const tensor_view& q, const tensor_view& out,
                      std::optional<float> scale = std::nullopt);

// The same over head views an engine holds itself: heads[kv_heads * parts] of one
// layer (head h's part p at h * parts + p; parts = 2 for a mixed-precision cache),
// laid out as cinch/kv/format.hpp says (kv::cache::view gives them; an engine may
// copy that storage to a GPU and point the views there). q, out and the workspace
// on one device; for a CUDA device every pointer in the views is device memory.
void decode_attention(std::span<const head_view> heads, const tensor_view& q, const tensor_view& out,
                      attention_workspace& workspace, std::optional<float> scale = std::nullopt, int parts = 1);

}  // namespace cinch::kv
