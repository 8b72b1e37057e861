// ToMe, "Token Merging: Your ViT but Faster" (Bolya et al., ICLR 2023):
// bipartite soft matching, run once per transformer block between attention
// and MLP, on the block's head-mean keys.
//
// One step over N tokens and their metric (inputs.keys, else inputs.features):
//   1. r <- min(r, floor((N - p) / 2)), p = protected tokens; r = 0 keeps all.
//   2. A = even tokens (0, 2, ...), B = odd tokens; scores cos(A_a, B_b).
//      A [CLS] token (index 0, in A) is never merged away; a distillation
//      token (index 1, in B) absorbs nothing.
//   3. Each a in A takes its most similar b (ties: the lower b); the r a's with
//      the highest similarity (ties: the lower a) merge into their b, the rest
//      stay.
// The plan keeps the original order (the reference emits [unmerged A, B]);
// tokens::apply with the sizes the tokens already carry does ToMe's
// size-weighted average, x_b <- (s_b x_b + sum s_a x_a) / (s_b + sum s_a), and
// its merged sizes are the next step's input sizes (or chain plans with
// tokens::compose). Output count: N - r after the clamp, exactly.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

struct tome_options {
  bool class_token = false;    // token 0 is [CLS]: never merged away
  bool distill_token = false;  // token 1 is a distillation token (DeiT): nothing merges into it
};

// One ToMe step removing r tokens (r >= 0; clamped as above).
[[nodiscard]] plan tome(const inputs& in, std::int64_t r, const tome_options& options = {});

// Proportional attention: log(s_j) per key token, added to the attention
// logits q_i . k_j / sqrt(d) of later blocks so a merged token weighs as the
// tokens it stands for. Sizes must be >= 1.
[[nodiscard]] std::vector<float> proportional_attention_bias(std::span<const std::int64_t> sizes);

// ToMe's r per layer: constant r (inflection 0), or a linear ramp from
// floor(r * (1 - inflection)) to 2 r minus that over the layers (inflection in
// [-1, 1]), truncated toward zero like the reference's int().
[[nodiscard]] std::vector<std::int64_t> tome_schedule(std::int64_t r, std::int64_t layers, double inflection = 0.0);

}  // namespace cinch::tokens
