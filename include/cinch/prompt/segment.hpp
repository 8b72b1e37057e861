// Deletion units: words, phrases and sentences, found without a model.
// Defined in cinch::kernels.
//
// word: a run of non-space characters with the whitespace before it (so deleting
//   a word never glues its neighbours together), less its trailing punctuation
//   (". , ; : ! ? …" and full-width forms, with any closing quotes or brackets
//   after them), which is a word of its own; each character of an unspaced script
//   (Han, Kana, Thai...) and each CJK punctuation mark is a word.
// phrase: words grouped by a chunker: a phrase starts at a sentence start, at
//   punctuation, after punctuation, and at an English function word (article,
//   preposition, conjunction, pronoun, auxiliary) that does not follow another.
//   A stand-in for the noun chunks of Selective Context's spaCy pipeline.
// sentence: ends after . ! ? (with closing quotes and brackets) followed by space
//   and a word that does not start lower-case, unless the word before the period
//   is a single letter or a common abbreviation (Mr, Dr, e.g, etc...); after
//   。！？ without space; at blank lines; and before a line that opens a
//   Markdown block (#, -, *, +, >, |, ```, "1.").
// line: a line with the newline before it (the first line has none), for code.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "cinch/prompt/structure.hpp"

namespace cinch::prompt {

enum class granularity { token, word, phrase, sentence, line };

// The byte offsets where units of `level` start, ascending; 0 first for
// non-empty text. level must not be token (token units come from a tokenizer:
// invalid_argument); invalid UTF-8 bytes count as punctuation.
[[nodiscard]] std::vector<std::size_t> unit_starts(std::string_view text, granularity level);

// The units themselves, covering the text.
[[nodiscard]] std::vector<text_range> segment(std::string_view text, granularity level);

}  // namespace cinch::prompt
