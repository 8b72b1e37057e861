// LLMLingua (Jiang et al., EMNLP 2023) and LongLLMLingua (Jiang et al., ACL 2024):
// prompt = instruction + contexts (demonstrations, documents) + question; only
// the contexts are compressed, instruction and question pass through intact.
// Defined in cinch::kernels.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cinch/prompt/budget.hpp"
#include "cinch/prompt/result.hpp"
#include "cinch/prompt/scorer.hpp"
#include "cinch/prompt/segment.hpp"
#include "cinch/prompt/structure.hpp"
#include "cinch/prompt/tokenizer.hpp"

namespace cinch::prompt {

struct prompt_parts {
  std::string_view instruction;
  std::vector<std::string_view> contexts;
  std::string_view question;
};

// The original prompt, whose byte offsets every kept_span of these methods uses:
// the non-empty parts (instruction, contexts in order, question) joined by "\n\n".
// The compressed prompt has the same shape (dropped contexts leave no separator).
[[nodiscard]] std::string assemble(const prompt_parts& parts);

// LLMLingua. The budget is over the whole prompt (origin = tokens of assemble()),
// but the whole cut comes from the contexts.
// 1. Coarse (context_filter, with more than one context): contexts ranked by
//    perplexity alone, highest first, are kept until their tokens reach
//    context_budget_scale * (context target) + context_budget_extra (the one that
//    crosses it included, so the fine step has enough to meet the target); the
//    original order is restored.
// 1b. Sentences (sentence_filter, LLMLingua's use_sentence_level_filter; off by
//    default as there): the tokens of each kept context are scored alone (loss
//    l = -ln p, no prefix), sentences (segment.hpp) across the kept contexts are
//    ranked by mean loss, highest first (ties: the earlier one), and kept until
//    their tokens reach token_budget_ratio * (context target), the one that
//    crosses it included; the others leave the prompt before the fine step (their
//    protected structure stays). Token scores of a dropped sentence: these losses.
//    The first keep_first_sentences and last keep_last_sentences sentences of each
//    kept context are always kept and count first against that budget (the
//    reference's keep_first_sentence / keep_last_sentence).
// 2. Fine, iterative: the kept contexts are cut into segments of about
//    iterative_size tokens (at unit boundaries); each is scored with the kept
//    tokens of all earlier segments as prefix, loss l = -ln p (a unit's: the mean
//    over its tokens). The threshold is the floor(N tau)-th largest of the N unit
//    losses scored so far (one per token), this segment's included, where tau is
//    what the context target still allows over the free (not forced) tokens left,
//    this segment's included: a segment that kept more than its share lowers the
//    ratio of the rest. (LLMLingua fixes tau and pools only the kept tokens, whose
//    high losses push the threshold up; rates drift and the last segment is
//    often left alone.) The segment keeps its units above the threshold (ties
//    share the places left at it), clamped so the remaining segments can still
//    meet the target exactly: the last segment is compressed too.
// 3. The output is re-tokenized and settled to the target within one token.
// Token scores in the result: the losses.
struct llmlingua_options {
  prompt::budget budget;
  std::int64_t iterative_size = 200;
  bool context_filter = true;
  double context_budget_scale = 1.0;       // the "*k" of LLMLingua's context_budget
  std::int64_t context_budget_extra = 100;  // its "+100"
  bool sentence_filter = false;
  double token_budget_ratio = 1.4;         // the sentence filter's budget over the context target
  std::int64_t keep_first_sentences = 0;   // per kept context, always kept by the sentence filter
  std::int64_t keep_last_sentences = 0;
  bool keep_split = false;                 // keep every "\n\n" inside contexts
  granularity level = granularity::token;  // word keeps words whole
  structure_options structure;             // applied to each context; protect ranges in assemble()'s bytes
};

[[nodiscard]] result llmlingua(const prompt_parts& parts, const tokenizer& tok, const lm_scorer& lm,
                               const llmlingua_options& options = {});

// LongLLMLingua: question-aware. The question must not be empty.
// 1. Ranking: lm: mean loss of the question followed by `condition` with the
//    context as prefix, lower = more relevant; bm25: BM25 of the context for the
//    question, higher = more relevant. Contexts are kept in rank order as in
//    LLMLingua's coarse step.
// 2. Order: `sort` puts the kept contexts in relevance order (most relevant first,
//    against lost-in-the-middle); `original` keeps the input order.
// 3. Dynamic ratio: the k-th of N kept contexts by rank keeps
//    clamp(tau + dynamic_ratio (1 - 2k / (N - 1)), 0, 1) of its tokens (tau the
//    overall context ratio), rescaled so the budgets sum to the context target.
// 4. Tokens of each context are scored without and with the question as prefix;
//    contrastive: s = l(without) - l(with), how much the question explains the
//    token; otherwise s = l(without). Each context keeps its budget of best units.
// 5. Settled to the target on the re-tokenized output.
enum class rank_method { lm, bm25 };
enum class context_order { original, sort };

struct longllmlingua_options {
  prompt::budget budget{0.55, {}};
  rank_method rank = rank_method::lm;
  context_order order = context_order::sort;
  double dynamic_ratio = 0.3;
  bool contrastive = true;
  double context_budget_scale = 1.0;
  std::int64_t context_budget_extra = 100;
  std::string condition = "We can get the answer to this question in the given documents.";
  granularity level = granularity::token;
  structure_options structure;
};

[[nodiscard]] result longllmlingua(const prompt_parts& parts, const tokenizer& tok, const lm_scorer& lm,
                                   const longllmlingua_options& options = {});

}  // namespace cinch::prompt
