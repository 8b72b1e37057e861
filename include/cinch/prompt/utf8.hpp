// UTF-8 decoding and validation, per RFC 3629: no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF. Prompt compression deletes text only
// at character boundaries found here, so CJK and emoji never come out broken.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace cinch::prompt {

// Decodes one code point at `pos`. On success returns the bytes it used (1-4)
// and sets cp; on an invalid or truncated sequence returns 0 and leaves cp alone.
[[nodiscard]] constexpr int decode_utf8(std::string_view s, std::size_t pos, char32_t& cp) noexcept {
  if (pos >= s.size()) return 0;
  const auto b0 = static_cast<std::uint8_t>(s[pos]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  int n;
  char32_t v, min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, v = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, v = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, v = b0 & 0x07, min = 0x10000;
  } else {
    return 0;  // a continuation byte or 0xF8..0xFF
  }
  if (s.size() - pos < std::size_t(n)) return 0;
  for (int i = 1; i < n; ++i) {
    const auto b = static_cast<std::uint8_t>(s[pos + std::size_t(i)]);
    if ((b & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  cp = v;
  return n;
}

// Offset of the first byte that does not start a valid sequence, or npos when
// all of `s` is valid UTF-8.
[[nodiscard]] constexpr std::size_t find_invalid_utf8(std::string_view s) noexcept {
  std::size_t pos = 0;
  char32_t cp = 0;
  while (pos < s.size()) {
    if (static_cast<std::uint8_t>(s[pos]) < 0x80) {  // ASCII needs no decoding; eight bytes at a time at run time
      ++pos;
      if (!std::is_constant_evaluated()) {
        for (std::uint64_t x = 0; pos + 8 <= s.size(); pos += 8) {
          std::memcpy(&x, s.data() + pos, 8);
          if (x & 0x8080808080808080u) break;
        }
      }
      continue;
    }
    const int n = decode_utf8(s, pos, cp);
    if (n == 0) return pos;
    pos += std::size_t(n);
  }
  return std::string_view::npos;
}

[[nodiscard]] constexpr bool is_valid_utf8(std::string_view s) noexcept {
  return find_invalid_utf8(s) == std::string_view::npos;
}

// True at 0, at s.size(), and before every byte that is not a continuation byte
// (10xxxxxx): the places where valid UTF-8 may be cut.
[[nodiscard]] constexpr bool is_char_boundary(std::string_view s, std::size_t pos) noexcept {
  if (pos == 0 || pos >= s.size()) return pos <= s.size();
  return (static_cast<std::uint8_t>(s[pos]) & 0xC0) != 0x80;
}

// Appends the UTF-8 form of cp (which must be a Unicode scalar value).
inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

}  // namespace cinch::prompt
