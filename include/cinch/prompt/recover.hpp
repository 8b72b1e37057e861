// Recovery of a model's answer against the original prompt (LongLLMLingua's
// "subsequence recovery"): an answer generated from a compressed prompt quotes
// its fragments ("uel Dil" for "Fuel Dilution"); recover() puts the original
// words back. Defined in cinch::kernels.
//
// The answer is split at ASCII whitespace into words. From each word on, the
// longest run of words that occurs, joined by single spaces, in the compressed
// text (its first occurrence) is a match; a word that occurs nowhere is left as
// it is. The compressed bytes of a match are mapped through the result's kept
// spans to the original bytes of its first and last kept byte, widened to whole
// words there (while the neighbouring original byte is a letter, a digit or part
// of a multi-byte character), and the original text of that range replaces the
// match. A match whose original range holds more than `max_gap` dropped bytes
// between two of its kept bytes, or which touches bytes the compressor inserted
// (separators), is left as it is: its pieces were not close in the original.
// Words are joined back with single spaces, as the answer's whitespace runs are
// not kept. Unlike the reference, which aligns token ids of a re-tokenized
// original, the kept spans give the exact origin of every compressed byte.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "cinch/prompt/result.hpp"

namespace cinch::prompt {

struct recover_options {
  std::size_t max_gap = 64;  // dropped original bytes allowed inside one match (about 10 tokens)
};

// `compressed` must come from compressing `original` (its spans index it):
// spans outside `original` or `compressed.text` throw invalid_argument.
[[nodiscard]] std::string recover(std::string_view original, const result& compressed, std::string_view answer,
                                  const recover_options& options = {});

}  // namespace cinch::prompt
