// FastV, "An Image is Worth 1/2 Tokens After Layer 2" (Chen et al., ECCV 2024):
// at LLM layer K-1, rank the visual tokens by the attention the text gives
// them and keep the top ones from layer K on (hidden states, mask, positions,
// hence the KV cache of later layers).
//
// The official code ranks by the last prompt token's row, head-mean; the
// paper's prose says "average attention received" (FastV issue #44). Pass one
// row for the former, several for the latter: rows are averaged. The reference
// needs output_attentions (eager attention); attention_rows computes just the
// rows it needs from queries and keys, which keeps FlashAttention usable for
// the layer itself.
#pragma once

#include <cstdint>
#include <span>

#include "cinch/core/tensor_view.hpp"
#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

// Keeps the `keep` tokens with the highest mean inputs.text_attention
// (required) score, ties toward the lower index. keep >= 1, clamped to N.
// Defaults in the literature: K = 2 or 3, keep 50% (paper) to 22% (LightCompress's
// 128 of 576).
[[nodiscard]] plan fastv(const inputs& in, std::int64_t keep);

struct attention_options {
  float scale = 0.0f;  // logit scale; 0 means 1 / sqrt(head_dim)
  // Sequence position of each query row: query r sees keys l <= query_positions[r]
  // (causal). Empty: every query sees all keys (queries after the keys).
  std::span<const std::int64_t> query_positions;
};

// Head-mean attention probabilities of R query tokens over the visual block:
//   q     [R, H, head_dim]     post-RoPE queries of the layer
//   keys  [Hkv, L, head_dim]   post-RoPE keys of all L positions (H a multiple of Hkv:
//                              query head h reads key head h / (H / Hkv))
//   out   [R, N]               out[r, j] = mean_h softmax_l(scale q[r,h] . k[l])
//                              at l = first + j, for the visual block [first, first + N)
// f32 host tensors with dense rows. The dot products are the shared kernel's (one
// fma chain each, identical on every backend); the softmax subtracts the row max and
// sums in key order.
void attention_rows(const tensor_view& q, const tensor_view& keys, std::int64_t first, const tensor_view& out,
                    const attention_options& options = {});

}  // namespace cinch::tokens
