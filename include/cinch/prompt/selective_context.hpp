// Selective Context (Li et al., EMNLP 2023): delete the lexical units that carry
// the least self-information. Defined in cinch::kernels.
//
// Each sentence is scored on its own (empty prefix: a fresh context), token
// self-information I(t) = -ln p(t | sentence so far); a unit's score is the mean
// over its tokens. The paper's percentile cut (drop units below the
// reduce_ratio-th percentile) is replaced by an exact token budget: keep the most
// informative units until the target is met (the 0.35 default reduce_ratio is a
// 0.65 keep rate).
#pragma once

#include <string_view>

#include "cinch/prompt/budget.hpp"
#include "cinch/prompt/result.hpp"
#include "cinch/prompt/scorer.hpp"
#include "cinch/prompt/segment.hpp"
#include "cinch/prompt/structure.hpp"
#include "cinch/prompt/tokenizer.hpp"

namespace cinch::prompt {

struct selective_context_options {
  prompt::budget budget{0.65, {}};
  granularity level = granularity::phrase;
  structure_options structure;
};

// Token scores in the result: self-information in nats.
[[nodiscard]] result selective_context(std::string_view text, const tokenizer& tok, const lm_scorer& lm,
                                       const selective_context_options& options = {});

}  // namespace cinch::prompt
