// LLaVA-PruMerge and PruMerge+ (Shang et al., ICCV 2025), after the vision
// tower: keep the [CLS]-attention outliers, merge the rest into them.
//
//   outliers  a = inputs.cls_attention; Q1, Q3 its quartiles (linear
//             interpolation between order statistics, as numpy and torch do);
//             kept: the tokens with a > Q3 + 1.5 (Q3 - Q1), at least one (the
//             top token). The count adapts to the image (about 32 of 576).
//   plus      PruMerge+ also keeps tokens 0, s, 2s, ... (< N - 1) with
//             s = max(1, floor(floor(1 / rho) / 3)), rho = outliers / N, as its
//             reference does (about 144 of 576)
//   merge     every pruned token joins its most similar kept token (cosine of
//             inputs.keys, else features; ties toward the lower kept token) with
//             weight a_j, and the kept token keeps weight 1: x_i + sum a_j x_j,
//             the reference's unnormalized attention-weighted sum
// Fixed budgets (keep >= 1), for engines that size placeholders beforehand:
// PruMerge keeps the top `keep` by attention; PruMerge+ keeps the outliers (at
// most keep), fills up with evenly strided tokens, then by attention.
// Difference from the reference: it adds each kept token's 32 nearest tokens
// (kept or not, so a token may count several times) and appends one token of
// all pruned tokens; here each token counts once, so sizes sum to N.
#pragma once

#include <cstdint>

#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

struct prumerge_options {
  bool plus = false;      // PruMerge+: add the spatially uniform tokens
  std::int64_t keep = 0;  // 0: adaptive (IQR outliers); >= 1: exactly this many
};

[[nodiscard]] plan prumerge(const inputs& in, const prumerge_options& options = {});

}  // namespace cinch::tokens
