// Token saliency for mixed-precision KV quantization: ZipCache's normalized
// attention, H2O's accumulated attention (MiKV's importance), and the split of
// tokens into high- and low-precision sets. Host tensors only; defined in
// cinch::kernels.
#pragma once

#include "cinch/core/tensor_view.hpp"

namespace cinch::kv {

// ZipCache: saliency[j] = (sum over queries i with position[i] >= j of attn[i, j])
//                         / #{i : position[i] >= j},
// the sum in increasing i, one division; 0 for a token no query can attend. The
// normalization removes plain accumulation's bias toward early tokens.
// attn: [..., Q, T] f32 (rows: queries, columns: tokens); query_positions: [Q] i32,
// each >= 0, shared by the leading dimensions; saliency: [..., T] f32.
void normalized_attention_saliency(const tensor_view& attn, const tensor_view& query_positions,
                                   const tensor_view& saliency);
// The same with the queries at the last Q positions: position[i] = T - Q + i (Q <= T).
void normalized_attention_saliency(const tensor_view& attn, const tensor_view& saliency);

// H2O / MiKV: scores[j] += attn[i, j] for i = 0, 1, ..., Q - 1 in turn; call it at
// each decoding step with that step's attention rows to keep the running sums.
// attn: [..., Q, T] f32; scores: [..., T] f32.
void accumulate_attention(const tensor_view& attn, const tensor_view& scores);

// Per row of saliency [..., T] f32: the floor(low_fraction * T) least salient tokens
// get low_bits, the others high_bits (written to bits: [..., T] u8). The
// high-precision set is the top T - n_low by (saliency descending, index ascending),
// so ties go to the lower index, as in every cinch selection: an eviction that
// keeps the same count from the same scores keeps exactly those tokens.
// low_fraction in [0, 1] (the count is floor(low_fraction * T), computed in double
// with a relative 1e-12 allowance for rounding, so 0.7 of 10 is 7);
// 1 <= low_bits <= high_bits <= 16; saliency must not hold NaN.
void choose_bits(const tensor_view& saliency, double low_fraction, int high_bits, int low_bits,
                 const tensor_view& bits);

}  // namespace cinch::kv
