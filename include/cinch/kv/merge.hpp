// Merging instead of dropping: two ways to keep some of what eviction would lose,
// on dense f32 host tensors. Defined in cinch::kernels.
//
// - MiniCache (cross-layer): two adjacent layers' keys (or values) share one unit
//   direction per token; each layer keeps only its magnitude. The tokens whose
//   directions differ most between the layers stay unmerged in both.
// - ZeroMerge / CAM (within a head): each evicted token is averaged into the kept
//   token with the most similar key, and the slot counts how many tokens it stands
//   for; attention adds alpha * log(count) to the slot's logit.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cinch/core/tensor.hpp"
#include "cinch/kv/select.hpp"

namespace cinch::kv {

// ------------------------------------------------------------------ MiniCache

struct minicache_options {
  double t = 0.6;           // SLERP position of the shared direction: 0 = layer a's, 1 = layer b's
  double retention = 0.05;  // fraction of each head's tokens kept unmerged: floor(retention * T + 1e-9) per head
};

// Two layers [kv_heads, T, head_dim] merged. Per head, the r = floor(retention * T)
// retained tokens keep their original rows for both layers; the other T - r tokens
// (in ascending token order) keep one direction and two magnitudes.
struct merged_layers {
  tensor directions;     // [kv_heads, T - r, head_dim] f32: shared unit direction e (zero when both rows are zero)
  tensor magnitudes;     // [2, kv_heads, T - r] f32: ||x|| of layer a (0) and layer b (1)
  tensor retained;       // [kv_heads, r] i32: retained token indices, ascending
  tensor retained_rows;  // [2, kv_heads, r, head_dim] f32: their original rows, layer a then b

  [[nodiscard]] std::int64_t heads() const { return retained.size(0); }
  [[nodiscard]] std::int64_t tokens() const { return retained.size(1) + directions.size(1); }
  [[nodiscard]] std::int64_t head_dim() const { return directions.size(2); }

  // Bytes of the four tensors above; two dense layers take 2 * heads * T * head_dim * 4.
  [[nodiscard]] std::int64_t bytes() const noexcept;

  // Layer `layer` (0 = a, 1 = b) rebuilt as [kv_heads, T, head_dim] f32: retained
  // tokens bit-exact, merged ones ||x|| * e (same norm as the original to rounding).
  [[nodiscard]] tensor restore(int layer) const;
  // The same written into out: [kv_heads, T, head_dim] f32 on the CPU, innermost
  // dimension dense.
  void restore(int layer, const tensor_view& out) const;
};

// MiniCache merge of layer a with the next layer b, both [kv_heads, T, head_dim]
// f32 on the CPU with a dense innermost dimension. Per token, in double:
//   u_a = a / ||a||, u_b = b / ||b||, c = clamp(u_a . u_b, -1, 1), r = u_b - c u_a,
//   theta = atan2(||r||, c) in [0, pi],
//   e = cos(t theta) u_a + sin(t theta) r / ||r||  (= SLERP(u_a, u_b; t)),
// rounded to f32. Special cases (theta as used for retention):
//   ||r|| <= 1e-7 with c > 0 (same direction): e = normalize((1 - t) u_a + t u_b), theta from atan2;
//   ||r|| <= 1e-7 with c < 0 (antipodal, the great circle is not unique):
//     e = cos(t pi) u_a + sin(t pi) p, p the unit vector orthogonal to u_a built from
//     the axis where |u_a| is smallest (lowest index on ties), or with head_dim 1
//     u_a if t <= 0.5 else u_b; theta = pi;
//   one row zero: e = the other row's direction, theta = 0 (both restore exactly);
//   both rows zero: e = 0, theta = 0.
// Retained per head: the r tokens of largest theta / pi (rounded to f32), ties to
// the lower index (kv::top_k's ranking). Non-finite inputs give unspecified rows.
// 0 <= t <= 1, 0 <= retention <= 1.
[[nodiscard]] merged_layers minicache_merge(const tensor_view& a, const tensor_view& b, minicache_options options = {});

// ------------------------------------------------------------------ ZeroMerge / CAM

enum class merge_similarity {
  dot,  // the kept key with the largest k_e . k_j (f32, summed over channels in order)
  l2,   // the kept key with the smallest sum over channels of (k_e - k_j)^2 (f32, in order)
};

// A head after merging: one slot per kept token.
struct merged_tokens {
  tensor keys;                // [k, key_dim] f32
  tensor values;              // [k, value_dim] f32
  std::vector<float> counts;  // tokens (weights) each slot stands for; they sum to the input weights' sum
};

// Merges every token not in `keep` into the kept token whose ORIGINAL key is most
// similar (ties to the lower index), so the assignment does not depend on merge
// order. Each slot becomes the weighted mean of its own and its merged tokens'
// keys and values, sum(w_i x_i) / sum(w_i) in double rounded to f32, which equals
// applying (w_i x_i + w_j x_j) / (w_i + w_j) with accumulating counts in any order
// (up to rounding); its count is sum(w_i).
// keys: [T, key_dim], values: [T, value_dim], f32 on the CPU, innermost dimension
// dense. keep: strictly ascending indices in [0, T), not empty when T > 0.
// weights: T finite values > 0, or empty for all 1. Non-finite keys give
// unspecified assignments.
[[nodiscard]] merged_tokens merge_evicted(const tensor_view& keys, const tensor_view& values, const keep_list& keep,
                                          std::span<const float> weights = {},
                                          merge_similarity similarity = merge_similarity::dot);

// Every head of a layer: keys [kv_heads, T, key_dim], values [kv_heads, T, value_dim],
// one keep_list per head, weights empty (all 1) or one vector of T per head.
[[nodiscard]] std::vector<merged_tokens> merge_evicted(const tensor_view& keys, const tensor_view& values,
                                                       std::span<const keep_list> keep,
                                                       std::span<const std::vector<float>> weights = {},
                                                       merge_similarity similarity = merge_similarity::dot);

// Reference attention over merged slots, in double: logit_j = q . k_j / sqrt(d) +
// alpha * log(count_j), p = softmax(logit), out = sum_j p_j v_j (rounded to f32).
// With alpha = 1, a slot of count w holding w identical tokens gets exactly their
// combined mass. q: [d]; keys: [k, d]; values: [k, value_dim]; counts: k finite
// values > 0; alpha finite; k >= 1. Returns value_dim floats.
[[nodiscard]] std::vector<float> attention_with_counts(const tensor_view& q, const tensor_view& keys,
                                                       const tensor_view& values, std::span<const float> counts,
                                                       double alpha = 1);

}  // namespace cinch::kv
