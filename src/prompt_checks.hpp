// Calls into engine-supplied scorers and tokenizers, checking what comes back so
// a misbehaving engine is a cinch::error naming the compressor, never garbage.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "cinch/prompt/scorer.hpp"
#include "cinch/prompt/tokenizer.hpp"

namespace cinch::prompt::detail {

// One value per token, none NaN or +inf; values above 0 become 0.
[[nodiscard]] std::vector<float> checked_log_probs(std::string_view fn, const lm_scorer& lm,
                                                   std::span<const std::int32_t> prefix,
                                                   std::span<const std::int32_t> tokens);
// One value per token, each in [0, 1].
[[nodiscard]] std::vector<float> checked_keep_probs(std::string_view fn, const keep_scorer& keep,
                                                    std::span<const std::int32_t> tokens);
// A finite vector of length `dim` (any non-zero length when dim is 0).
[[nodiscard]] std::vector<float> checked_embedding(std::string_view fn, const embedder& e, std::string_view text,
                                                   std::size_t dim);
// Throws unless tokens follow the tokenizer contract for `text` (ids in [0, vocab)
// when vocab > 0).
void check_tokens(std::string_view fn, std::string_view text, std::span<const token> tokens, std::int64_t vocab);
// tok.encode(text), checked.
[[nodiscard]] std::vector<token> checked_encode(std::string_view fn, const tokenizer& tok, std::string_view text);

}  // namespace cinch::prompt::detail
