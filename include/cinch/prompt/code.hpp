// LongCodeZip-style code compression (ASE 2025): keep the functions most relevant
// to a query, then the most relevant blocks of lines inside them under a 0/1
// knapsack. Defined in cinch::kernels.
//
// 1. Chunks: top-level definitions (code_chunks below).
// 2. Coarse: relevance(chunk) = L(query) - L(query | chunk), L the mean loss of
//    the query tokens (so the chunks that make the query most predictable rank
//    first); chunks are kept in rank order until they reach the target (the one
//    that crosses it included: the fine step trims), in their original order.
// 3. Fine, in kept chunks of at least min_lines_for_fine lines: lines are scored
//    by their mean token loss within the chunk; a block starts at a blank line and
//    at a line whose loss exceeds the mean of its neighbours' by more than 0.2
//    standard deviations of the chunk's line losses. Block value = L(query) -
//    L(query | block). Each chunk gets a budget rate (1 + beta (2 s - 1)) of its
//    tokens, s its min-max normalised relevance among these chunks, rescaled to the
//    target; its blocks are chosen by knapsack() under that budget, with its first
//    line (the signature) kept when keep_signatures.
// 4. Lines are added or dropped at the margin so the re-tokenized output fits the
//    target: whole lines are the units, so the target is an upper bound.
// Token scores in the result: their block's (or, in small chunks, chunk's) value.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "cinch/prompt/budget.hpp"
#include "cinch/prompt/result.hpp"
#include "cinch/prompt/scorer.hpp"
#include "cinch/prompt/structure.hpp"
#include "cinch/prompt/tokenizer.hpp"

namespace cinch::prompt {

struct code_options {
  prompt::budget budget;
  double importance_beta = 0.5;            // in [0, 1]
  std::int64_t min_lines_for_fine = 5;     // smaller chunks are kept or dropped whole
  bool keep_signatures = true;
  std::int64_t knapsack_items = 100;       // exact dynamic programming up to this many blocks
  std::int64_t knapsack_capacity = 2000;   // and this many tokens; greedy by value / weight beyond
  // Protected lines are kept, and so is every chunk holding one; nothing by default.
  structure_options structure{structure::plain, {}, false, {}, {}};
};

// Chunks of source code, covering it: a chunk starts at a line at column 0 and
// brace depth 0 that follows a blank line or a lone closing "}", or that opens a
// definition (def, class, fn, func, function, struct, impl, ...) not directly
// below a decorator or comment. A chunk's range starts at the newline before
// its first line (the first chunk at 0), like line units (segment.hpp).
[[nodiscard]] std::vector<text_range> code_chunks(std::string_view code);

// 0/1 knapsack: the items (weights >= 0) maximising total value with total weight
// <= capacity. Exact (dynamic programming over capacity) when items <= exact_items
// and capacity <= exact_capacity; otherwise greedy by value / weight (ties to the
// earlier item). Items of value <= 0 are never chosen.
[[nodiscard]] std::vector<bool> knapsack(std::span<const std::int64_t> weights, std::span<const double> values,
                                         std::int64_t capacity, std::int64_t exact_items = 100,
                                         std::int64_t exact_capacity = 2000);

// The query must not be empty.
[[nodiscard]] result compress_code(std::string_view code, std::string_view query, const tokenizer& tok,
                                   const lm_scorer& lm, const code_options& options = {});

}  // namespace cinch::prompt
