// Selection given per-token scores: the core every compressor ends in, public so
// an engine with its own scores (a classifier's keep-probabilities, attention,
// anything where higher means keep) can use it directly. Defined in cinch::kernels.
//
// The text is cut into atoms, the smallest pieces that may be deleted: runs of
// tokens that start and end on UTF-8 character boundaries and outside escape
// sequences, with whitespace-only tokens joined to the token after them (so a
// deletion never glues two words). Atoms group into units of the chosen
// granularity; a unit's score aggregates its tokens' scores. Units touching
// protected structure (structure.hpp) are kept. Then the units are ranked by
// (score descending, position ascending) and taken whole while they fit the
// budget; what is left is filled by the best units that still fit whole, then by
// a prefix of the best remaining unit. With a tokenizer, the output is re-tokenized
// and units are added or dropped at the margin until its count meets the target.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "cinch/prompt/budget.hpp"
#include "cinch/prompt/result.hpp"
#include "cinch/prompt/segment.hpp"
#include "cinch/prompt/structure.hpp"
#include "cinch/prompt/tokenizer.hpp"

namespace cinch::prompt {

enum class aggregation { mean, first, max };

struct selection_options {
  prompt::budget budget;
  granularity level = granularity::word;
  aggregation aggregate = aggregation::mean;
  // When set, keep exactly the units whose score is above it (no budget).
  std::optional<float> threshold;
  // Keep every word unit containing a digit (LLMLingua-2's force_reserve_digit).
  bool force_digits = false;
  structure_options structure;
};

// `tokens` must be `text`'s tokens (tokenizer.hpp's contract) and `scores` hold one
// finite value per token; text must be valid UTF-8. Without `recount`, the counts
// in the result are of the selected tokens. Empty text gives an empty result.
[[nodiscard]] result select(std::string_view text, std::span<const token> tokens, std::span<const float> scores,
                            const selection_options& options, const tokenizer* recount = nullptr);

}  // namespace cinch::prompt
