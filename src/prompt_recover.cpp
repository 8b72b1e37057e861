// recover(): an answer's quoted fragments mapped back through the kept spans.
#include "cinch/prompt/recover.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "cinch/core/error.hpp"

namespace cinch::prompt {
namespace {

constexpr std::string_view fn = "prompt::recover";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Letters, digits and every byte of a multi-byte character belong to words.
bool is_word_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (u >= '0' && u <= '9') || ((u | 0x20) >= 'a' && (u | 0x20) <= 'z');
}

void check_spans(std::string_view original, const result& r) {
  std::size_t out_end = 0;
  for (std::size_t i = 0; i < r.spans.size(); ++i) {
    const kept_span& s = r.spans[i];
    if (s.begin > s.end || s.end > original.size())
      cinch::detail::fail(errc::invalid_argument, fn, "span ", i, " must lie in the original's ", original.size(),
                          " bytes, got [", s.begin, ", ", s.end, ")");
    if (s.out < out_end || s.out + (s.end - s.begin) > r.text.size())
      cinch::detail::fail(errc::invalid_argument, fn, "span ", i, " must follow the previous one inside the ",
                          r.text.size(), " compressed bytes, got output offset ", s.out);
    out_end = s.out + (s.end - s.begin);
  }
}

// The original range of compressed bytes [at, at + length), widened to whole
// words; nothing when a byte was inserted, the pieces are out of order, or more
// than max_gap original bytes were dropped between two of them.
std::optional<std::string_view> origin_of(std::string_view original, const result& r, std::size_t at,
                                          std::size_t length, std::size_t max_gap) {
  // The span holding compressed byte `at`: the last one starting at or before it.
  auto span = std::upper_bound(r.spans.begin(), r.spans.end(), at,
                               [](std::size_t v, const kept_span& s) { return v < s.out; });
  if (span == r.spans.begin()) return std::nullopt;
  --span;
  const std::size_t last = at + length - 1;
  if (at >= span->out + (span->end - span->begin)) return std::nullopt;
  const std::size_t begin = span->begin + (at - span->out);
  while (last >= span->out + (span->end - span->begin)) {
    const auto next = span + 1;
    const std::size_t out_end = span->out + (span->end - span->begin);
    if (next == r.spans.end() || next->out != out_end) return std::nullopt;  // an inserted byte
    if (next->begin < span->end || next->begin - span->end > max_gap) return std::nullopt;
    span = next;
  }
  std::size_t b = begin, e = span->begin + (last - span->out) + 1;
  if (is_word_byte(original[b]))
    while (b > 0 && is_word_byte(original[b - 1])) --b;
  if (is_word_byte(original[e - 1]))
    while (e < original.size() && is_word_byte(original[e])) ++e;
  return original.substr(b, e - b);
}

}  // namespace

std::string recover(std::string_view original, const result& r, std::string_view answer,
                    const recover_options& options) {
  check_spans(original, r);
  std::vector<std::string_view> words;
  for (std::size_t i = 0; i < answer.size();) {
    while (i < answer.size() && is_space(answer[i])) ++i;
    const std::size_t start = i;
    while (i < answer.size() && !is_space(answer[i])) ++i;
    if (i > start) words.push_back(answer.substr(start, i - start));
  }
  const std::string_view text = r.text;
  std::string out;
  for (std::size_t w = 0; w < words.size();) {
    if (!out.empty()) out += ' ';
    std::string match(words[w]);
    std::size_t at = text.find(match);
    if (at == std::string_view::npos) {
      out += words[w++];
      continue;
    }
    // The longest run of words from w that the compressed text holds.
    for (++w; w < words.size(); ++w) {
      std::string longer = match + ' ';
      longer += words[w];
      const std::size_t found = text.find(longer);
      if (found == std::string_view::npos) break;
      match = std::move(longer);
      at = found;
    }
    const std::optional<std::string_view> origin = origin_of(original, r, at, match.size(), options.max_gap);
    out += origin ? *origin : std::string_view(match);
  }
  return out;
}

}  // namespace cinch::prompt
