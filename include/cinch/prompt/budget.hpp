// How much of a prompt to keep, in tokens of the tokenizer the compressor is given
// (the target model's, when the engine supplies it).
#pragma once

#include <cstdint>
#include <optional>

namespace cinch::prompt {

// target = target_tokens when set, else round(rate * origin tokens) (half away
// from zero). rate must be in (0, 1] and target_tokens > 0, or cinch::error
// (invalid_argument); a target at or above the prompt's size keeps everything.
// Compressors meet the target within one token of the re-tokenized output where
// the deletion units allow it (token, word, phrase); with whole sentences, code
// blocks or documents as units the target is an upper bound. Text that must stay
// (instruction, question, protected structure) counts toward the target and is
// kept even when it alone exceeds it.
struct budget {
  double rate = 0.5;
  std::optional<std::int64_t> target_tokens;
};

}  // namespace cinch::prompt
