// Character classes for pre-tokenization and word segmentation. Letters and
// numbers follow the Unicode general categories L* and N* (the table is generated
// by scripts/gen_unicode_classes.py; unicode_version() names its release);
// whitespace is the White_Space property, which is what \s means in GPT-2's regex.
#pragma once

#include <string_view>

namespace cinch::prompt {

enum class char_class : unsigned char { other, letter, number, space };

// The class of one code point (a value above U+10FFFF is `other`).
[[nodiscard]] char_class classify(char32_t cp) noexcept;

[[nodiscard]] inline bool is_letter(char32_t cp) noexcept { return classify(cp) == char_class::letter; }
[[nodiscard]] inline bool is_number(char32_t cp) noexcept { return classify(cp) == char_class::number; }
[[nodiscard]] inline bool is_space(char32_t cp) noexcept { return classify(cp) == char_class::space; }

// Scripts written without spaces between words (Han, Hiragana, Katakana, Thai,
// Lao, Khmer, Myanmar): word segmentation treats each such character as a word.
[[nodiscard]] bool is_unspaced_script(char32_t cp) noexcept;

// The Unicode release of the letter/number table, e.g. "14.0.0".
[[nodiscard]] std::string_view unicode_version() noexcept;

}  // namespace cinch::prompt
