// Extractive compression: keep the sentences most relevant to a question, in
// their original order (RECOMP's extractive setting, with BM25 or an
// engine-supplied embedding model instead of its trained dual encoder).
// Defined in cinch::kernels.
#pragma once

#include <string_view>

#include "cinch/prompt/bm25.hpp"
#include "cinch/prompt/budget.hpp"
#include "cinch/prompt/result.hpp"
#include "cinch/prompt/scorer.hpp"
#include "cinch/prompt/structure.hpp"
#include "cinch/prompt/tokenizer.hpp"

namespace cinch::prompt {

struct extractive_options {
  prompt::budget budget;
  bm25_params bm25;
  // Protected text is kept (as sentences of its own); by default nothing is.
  structure_options structure{structure::plain, {}, false, {}, {}};
};

// Sentence score: BM25 of the sentence (among the text's sentences) for the
// question, or, with an embedder, the cosine similarity of their embeddings.
// Whole sentences are kept, best first, while they fit: the target is an upper
// bound. With an empty question every score is 0 and the leading sentences stay.
// Token scores in the result: their sentence's score.
[[nodiscard]] result extractive(std::string_view text, std::string_view question, const tokenizer& tok,
                                const extractive_options& options = {}, const embedder* embed = nullptr);

}  // namespace cinch::prompt
