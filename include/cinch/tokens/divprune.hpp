// DivPrune, "Diversity-based Visual Token Pruning for Large Multimodal
// Models" (Alvar et al., CVPR 2025): a greedy max-min diversity selection.
//
// With distances D_ij = 1 - cos(x_i, x_j) on inputs.keys (else features; the
// paper uses the projected embeddings at the LLM input):
//   first   the token whose nearest other token is farthest (max_i min_{j != i} D_ij)
//   then    j* = argmax_j min_{s in S} D_sj over the unselected, K - 1 times
// (farthest-point sampling), ties toward the lower index. The first pick uses
// the symmetric cosine of cinch/ref/tokens.hpp, so it needs only half of the
// similarity matrix. The reference
// rescans the selected rows every step, O(K^2 N); this keeps a running
// min-distance vector and computes one similarity row per pick: O(N^2 d) for the
// first pick plus O(K N d).
// Paper default: keep 9.8% (about 56 of 576).
#pragma once

#include <cstdint>

#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

[[nodiscard]] plan divprune(const inputs& in, std::int64_t keep);

}  // namespace cinch::tokens
