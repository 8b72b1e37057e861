// LLMLingua-2 style selection (Pan et al., Findings of ACL 2024): a token
// classifier's keep-probabilities, merged into words, then the most probable words
// up to the budget. Defined in cinch::kernels.
//
// The text is cut into chunks of at most keep_scorer::max_tokens() tokens, each
// cut moved back to the last token ending in '.' or '\n'; each chunk is scored on
// its own. Word probability = mean (or first, or max) of its tokens'. Unlike the
// original, which applies one percentile per 512-token chunk, the budget is met
// over the whole text (exactly, on the re-tokenized output), or a probability
// threshold keeps every word above it (the "threshold mode" users asked for).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cinch/prompt/budget.hpp"
#include "cinch/prompt/result.hpp"
#include "cinch/prompt/scorer.hpp"
#include "cinch/prompt/select.hpp"
#include "cinch/prompt/structure.hpp"
#include "cinch/prompt/tokenizer.hpp"

namespace cinch::prompt {

struct llmlingua2_options {
  prompt::budget budget{0.33, {}};
  std::optional<float> threshold;  // keep words with probability above it; the budget is then ignored
  aggregation aggregate = aggregation::mean;
  std::vector<std::string> force_tokens = {"\n", "?"};  // kept wherever they occur
  bool force_digits = false;                            // keep every word with a digit
  // LLMLingua-2's drop_consecutive: a forced piece whose text (less surrounding
  // whitespace) is a force token, repeating the last kept piece with nothing kept
  // between them, is dropped. With a budget the tokens it frees go to the next
  // best words, which may land between the two.
  bool drop_consecutive = false;
  structure_options structure;
};

// Token scores in the result: keep-probabilities.
[[nodiscard]] result llmlingua2(std::string_view text, const tokenizer& tok, const keep_scorer& keep,
                                const llmlingua2_options& options = {});

}  // namespace cinch::prompt
