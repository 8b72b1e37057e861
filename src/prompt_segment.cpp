// Word, phrase and sentence boundaries from GPT-2's pre-tokenizer pieces and a
// few language-independent rules.
#include "cinch/prompt/segment.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include "cinch/core/error.hpp"
#include "cinch/prompt/unicode.hpp"
#include "cinch/prompt/utf8.hpp"

namespace cinch::prompt {
namespace {

struct decoded {
  char32_t cp;
  std::size_t len;
  bool valid;
};
decoded at(std::string_view s, std::size_t pos) {
  const auto b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) return {b, 1, true};
  char32_t cp = 0;
  const int n = decode_utf8(s, pos, cp);
  return n ? decoded{cp, std::size_t(n), true} : decoded{0xFFFD, 1, false};
}

bool space_at(std::string_view s, std::size_t pos) {
  const auto b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) return b == ' ' || (b >= '\t' && b <= '\r');
  const decoded d = at(s, pos);
  return d.valid && is_space(d.cp);
}

// The start of the character before pos (> floor).
std::size_t char_before(std::string_view s, std::size_t pos, std::size_t floor) {
  std::size_t p = pos - 1;
  while (p > floor && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80 && pos - p < 4) --p;
  return p;
}

bool word_char(const decoded& d) {
  if (!d.valid) return false;
  const char_class c = classify(d.cp);
  return c == char_class::letter || c == char_class::number;
}

// A word: its start (leading whitespace included) and its core (the rest).
struct word {
  std::size_t start, core, end;
};

bool is_cjk_punct(char32_t c) { return (c >= 0x3000 && c <= 0x303F) || (c >= 0xFF00 && c <= 0xFF65); }

bool is_trailing_punct(char32_t c) {
  return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?' || c == U'\u2026' || c == U'。' ||
         c == U'，' || c == U'；' || c == U'：' || c == U'！' || c == U'？' || c == U'、';
}

bool is_closer(char32_t c);

// Where the trailing punctuation of the run [b, e) starts (". , ; : ! ? …", then
// closing quotes or brackets), or e when it has none or is all punctuation.
std::size_t trailing_punct(std::string_view text, std::size_t b, std::size_t e) {
  const auto last = static_cast<unsigned char>(text[e - 1]);
  if ((last >= 'a' && last <= 'z') || (last >= 'A' && last <= 'Z') || (last >= '0' && last <= '9'))
    return e;  // the common case: a word ending in a letter or digit
  std::size_t p = e;
  while (p > b && is_closer(at(text, char_before(text, p, b)).cp)) p = char_before(text, p, b);
  const std::size_t closers = p;
  while (p > b && is_trailing_punct(at(text, char_before(text, p, b)).cp)) p = char_before(text, p, b);
  return p == closers || p == b ? e : p;
}

// The end of the run of printable ASCII characters (0x21-0x7F) from pos: the
// first space, control character or byte >= 0x80 at or after it. Eight bytes at a
// time where the byte order allows, so a word costs no branch per letter.
std::size_t printable_ascii_end(std::string_view text, std::size_t pos) {
  if constexpr (std::endian::native == std::endian::little) {
    constexpr std::uint64_t ones = ~std::uint64_t(0) / 255, highs = ones * 0x80;
    for (; pos + 8 <= text.size(); pos += 8) {
      std::uint64_t x;
      std::memcpy(&x, text.data() + pos, 8);
      // The lowest flagged byte is exactly the first one below 0x21 (a borrow only
      // comes from a lower such byte) or with its top bit set.
      const std::uint64_t stop = ((x - ones * 0x21) & ~x & highs) | (x & highs);
      if (stop) return pos + std::size_t(std::countr_zero(stop)) / 8;
    }
  }
  while (pos < text.size() && static_cast<unsigned char>(text[pos]) > 0x20 && static_cast<unsigned char>(text[pos]) < 0x80)
    ++pos;
  return pos;
}

// Word starts, ascending.
std::vector<std::size_t> word_starts(std::string_view text) {
  std::vector<std::size_t> starts;
  starts.reserve(text.size() / 4);
  const std::size_t n = text.size();
  auto ascii_space = [](unsigned char b) { return b == ' ' || (b >= '\t' && b <= '\r'); };
  for (std::size_t pos = 0; pos < n;) {
    starts.push_back(pos);  // whitespace belongs to the word after it
    while (pos < n) {
      const auto b = static_cast<unsigned char>(text[pos]);
      if (b < 0x80) {
        if (!ascii_space(b)) break;
        ++pos;
      } else {
        const decoded d = at(text, pos);
        if (!d.valid || !is_space(d.cp)) break;
        pos += d.len;
      }
    }
    std::size_t end = pos;  // the run of non-space characters
    bool ascii = true;
    while (end < n) {
      end = printable_ascii_end(text, end);
      if (end == n) break;
      const auto b = static_cast<unsigned char>(text[end]);
      if (b < 0x80) {  // a space or a control character
        if (ascii_space(b)) break;
        ++end;
      } else {
        const decoded d = at(text, end);
        if (d.valid && is_space(d.cp)) break;
        ascii = false;
        end += d.len;
      }
    }
    if (pos == end) break;
    const std::size_t tail = trailing_punct(text, pos, end);
    if (ascii) {
      if (tail != end) starts.push_back(tail);
    } else {
      bool prev_unspaced = false;
      for (std::size_t p = pos; p < end;) {
        const decoded d = at(text, p);
        const bool unspaced = d.cp >= 0x0E00 && d.valid && (is_unspaced_script(d.cp) || is_cjk_punct(d.cp));
        if (p != pos && (unspaced || prev_unspaced || p == tail)) starts.push_back(p);
        prev_unspaced = unspaced;
        p += d.len;
      }
    }
    pos = end;
  }
  return starts;
}

std::vector<word> words_of(std::string_view text) {
  const std::vector<std::size_t> starts = word_starts(text);
  std::vector<word> words(starts.size());
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const std::size_t end = i + 1 < starts.size() ? starts[i + 1] : text.size();
    std::size_t core = starts[i];
    while (core < end && space_at(text, core)) core += at(text, core).len;
    words[i] = {starts[i], core, end};
  }
  return words;
}

std::string lower_core(std::string_view text, const word& w) {
  std::string s(text.substr(w.core, w.end - w.core));
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

bool is_function_word(std::string_view w) {
  static constexpr std::array<std::string_view, 96> list = {
      "a", "an", "the", "this", "that", "these", "those", "of", "in", "on", "at", "to", "for", "with", "from", "by",
      "about", "as", "into", "onto", "over", "under", "after", "before", "between", "through", "during", "without",
      "within", "upon", "against", "among", "and", "or", "but", "nor", "so", "yet", "if", "when", "while", "because",
      "although", "though", "since", "unless", "than", "then", "which", "who", "whom", "whose", "where", "what", "how",
      "is", "are", "was", "were", "be", "been", "being", "has", "have", "had", "do", "does", "did", "will", "would",
      "can", "could", "shall", "should", "may", "might", "must", "not", "i", "you", "he", "she", "it", "we", "they",
      "me", "him", "her", "us", "them", "my", "your", "his", "its", "our", "their"};
  return std::find(list.begin(), list.end(), w) != list.end();
}

bool is_abbreviation(std::string_view w) {
  static constexpr std::array<std::string_view, 26> list = {
      "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e", "i", "g", "cf", "fig", "no",
      "vol", "inc", "ltd", "co", "mt", "gen", "col", "capt", "lt", "rev"};
  return w.size() == 1 || std::find(list.begin(), list.end(), w) != list.end();
}

bool is_closer(char32_t c) {
  return c == '"' || c == '\'' || c == ')' || c == ']' || c == U'\u201D' || c == U'\u2019' || c == U'\u00BB' ||
         c == U'\u300D' || c == U'\u300F' || c == U'\uFF09';
}

// 0: the core does not end a sentence; 1: it does if a suitable word follows
// ('.', '!', '?', '…'); 2: it does unconditionally (CJK full stops).
int terminator_kind(std::string_view text, const word& w) {
  int kind = 0;
  bool only_period = true;
  for (std::size_t p = w.core; p < w.end;) {
    const decoded d = at(text, p);
    if (!d.valid) return 0;
    if (d.cp == U'。' || d.cp == U'！' || d.cp == U'？') kind = 2;
    else if (d.cp == '.' || d.cp == '!' || d.cp == '?' || d.cp == U'…') kind = std::max(kind, 1), only_period &= d.cp == '.';
    else if (!is_closer(d.cp)) return 0;
    p += d.len;
  }
  return kind == 1 && only_period ? -1 : kind;  // -1: periods only (abbreviations apply)
}

// Whether the line after the last newline of a word's leading whitespace opens
// a Markdown block.
bool opens_block(std::string_view text, std::size_t line) {
  while (line < text.size() && (text[line] == ' ' || text[line] == '\t')) ++line;
  const std::string_view rest = text.substr(line, 4);
  if (rest.empty()) return false;
  const char c = rest[0];
  if (c == '#' || c == '>' || c == '|' || rest.substr(0, 3) == "```" || rest.substr(0, 3) == "~~~") return true;
  if ((c == '-' || c == '*' || c == '+') && rest.size() > 1 && rest[1] == ' ') return true;
  std::size_t d = line;
  while (d < text.size() && text[d] >= '0' && text[d] <= '9') ++d;
  return d > line && d + 1 < text.size() && (text[d] == '.' || text[d] == ')') && text[d + 1] == ' ';
}

std::vector<bool> sentence_starts(std::string_view text, const std::vector<word>& words) {
  std::vector<bool> start(words.size(), false);
  if (!words.empty()) start[0] = true;
  for (std::size_t i = 1; i < words.size(); ++i) {
    const word& w = words[i];
    const std::string_view ws = text.substr(w.start, w.core - w.start);
    const std::size_t nl = ws.find('\n');
    if (nl != std::string_view::npos && (ws.find('\n', nl + 1) != std::string_view::npos ||
                                         opens_block(text, w.start + ws.rfind('\n') + 1))) {
      start[i] = true;
      continue;
    }
    const int kind = terminator_kind(text, words[i - 1]);
    if (kind == 2) {
      start[i] = true;
    } else if (kind != 0 && !ws.empty()) {
      const decoded first = at(text, w.core);
      const bool lower = first.valid && is_letter(first.cp) && first.cp < 128 && first.cp >= 'a' && first.cp <= 'z';
      const bool abbreviation = kind == -1 && i >= 2 && words[i - 1].start == words[i - 1].core &&
                                is_abbreviation(lower_core(text, words[i - 2]));
      start[i] = !lower && !abbreviation;
    }
  }
  return start;
}

}  // namespace

std::vector<std::size_t> unit_starts(std::string_view text, granularity level) {
  if (level == granularity::token)
    cinch::detail::fail(errc::invalid_argument, "prompt::unit_starts", "level must be word, phrase, sentence or line, got token");
  std::vector<std::size_t> out;
  if (level == granularity::line) {
    if (!text.empty()) out.push_back(0);
    for (std::size_t p = text.find('\n', 1); p != std::string_view::npos; p = text.find('\n', p + 1)) out.push_back(p);
    return out;
  }
  if (level == granularity::word) return word_starts(text);
  const std::vector<word> words = words_of(text);
  const std::vector<bool> sentence = sentence_starts(text, words);
  if (level == granularity::sentence) {
    for (std::size_t i = 0; i < words.size(); ++i)
      if (sentence[i]) out.push_back(words[i].start);
    return out;
  }
  bool prev_function = false, prev_punct = false;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const word& w = words[i];
    const bool punct = w.core == w.end || !word_char(at(text, w.core));
    const bool function = !punct && is_function_word(lower_core(text, w));
    const bool line_break = text.substr(w.start, w.core - w.start).find('\n') != std::string_view::npos;
    if (sentence[i] || punct || prev_punct || line_break || (function && !prev_function)) out.push_back(w.start);
    prev_function = function;
    prev_punct = punct;
  }
  return out;
}

std::vector<text_range> segment(std::string_view text, granularity level) {
  const std::vector<std::size_t> starts = unit_starts(text, level);
  std::vector<text_range> out(starts.size());
  for (std::size_t i = 0; i < starts.size(); ++i)
    out[i] = {starts[i], i + 1 < starts.size() ? starts[i + 1] : text.size()};
  return out;
}

}  // namespace cinch::prompt
