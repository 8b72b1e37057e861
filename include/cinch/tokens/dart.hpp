// DART, "Stop Looking for Important Tokens in Multimodal Language Models:
// Duplication Matters More" (Wen et al., EMNLP 2025), before LLM layer K = 2.
//
//   pivots  the image_pivots tokens with the largest L1 norm of inputs.keys
//           (else of the features: the paper finds V-norm or random pivots nearly
//           as good), then text_pivots text tokens likewise from text_keys (else
//           text_features); text pivots need inputs.text_features
//   quota   the keep - image pivots tokens still to choose, split evenly over the
//           pivots (earlier pivots take the remainder)
//   choose  for each pivot in turn (image pivots by norm, then text pivots), the
//           quota of not-yet-chosen image tokens least similar to it (cosine of
//           the features, ties toward the lower index)
// Kept: image pivots + chosen, exactly keep tokens (the reference uses a quota
// of ceil(budget / pivots) and keeps about budget + image pivots, e.g. 132 for
// 128). The reference normalizes hidden states with the model's final RMSNorm
// before the cosine; pass normalized states for parity. When the candidates
// run out, fewer are kept.
#pragma once

#include <cstdint>

#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

struct dart_options {
  std::int64_t image_pivots = 4;
  std::int64_t text_pivots = 4;
};

[[nodiscard]] plan dart(const inputs& in, std::int64_t keep, const dart_options& options = {});

}  // namespace cinch::tokens
