// Character classes: an ASCII table, then a binary search over the generated
// letter/number ranges.
#include "cinch/prompt/unicode.hpp"

#include <algorithm>
#include <array>

#include "prompt_unicode_data.hpp"

namespace cinch::prompt {
namespace {

constexpr std::array<char_class, 128> ascii_classes = [] {
  std::array<char_class, 128> t{};
  for (char32_t c = 0; c < 128; ++c) {
    if (c >= '0' && c <= '9') t[c] = char_class::number;
    else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) t[c] = char_class::letter;
    else if (c == ' ' || (c >= 0x09 && c <= 0x0D)) t[c] = char_class::space;
  }
  return t;
}();

// White_Space outside ASCII (PropList.txt; unchanged since Unicode 6.3).
constexpr bool is_non_ascii_space(char32_t c) noexcept {
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

}  // namespace

char_class classify(char32_t cp) noexcept {
  if (cp < 128) return ascii_classes[cp];
  if (is_non_ascii_space(cp)) return char_class::space;
  const auto* begin = std::begin(detail::letter_number_ranges);
  const auto* end = std::end(detail::letter_number_ranges);
  const auto* it = std::upper_bound(begin, end, cp, [](char32_t c, const detail::unicode_range& r) { return c < r.first; });
  if (it == begin) return char_class::other;
  --it;
  if (cp > it->last) return char_class::other;
  return it->cls == 1 ? char_class::letter : char_class::number;
}

bool is_unspaced_script(char32_t c) noexcept {
  return (c >= 0x0E00 && c <= 0x0EFF) ||    // Thai, Lao
         (c >= 0x1000 && c <= 0x109F) ||    // Myanmar
         (c >= 0x1780 && c <= 0x17FF) ||    // Khmer
         (c >= 0x3040 && c <= 0x30FF) ||    // Hiragana, Katakana
         (c >= 0x31F0 && c <= 0x31FF) ||    // Katakana phonetic extensions
         (c >= 0x3400 && c <= 0x4DBF) ||    // CJK extension A
         (c >= 0x4E00 && c <= 0x9FFF) ||    // CJK unified ideographs
         (c >= 0xF900 && c <= 0xFAFF) ||    // CJK compatibility ideographs
         (c >= 0xFF66 && c <= 0xFF9F) ||    // half-width Katakana
         (c >= 0x20000 && c <= 0x3FFFF);    // CJK extensions B and later
}

std::string_view unicode_version() noexcept { return detail::unicode_version; }

}  // namespace cinch::prompt
