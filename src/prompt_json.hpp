// A small JSON reader (RFC 8259) for the files the prompt module reads
// (encoder.json, chat files) and for finding the string values of a JSON prompt,
// which it compresses in place. It keeps every value's byte range in the source.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cinch/core/error.hpp"

namespace cinch::prompt::detail {

struct json_value {
  enum class kind { null, boolean, number, string, array, object };
  kind type = kind::null;
  bool boolean = false;
  double number = 0;
  std::string string;          // unescaped
  std::size_t begin = 0;       // the value's bytes in the source; for a string,
  std::size_t end = 0;         // the text between the quotes
  std::vector<json_value> items;                            // array
  std::vector<std::pair<std::string, json_value>> members;  // object, in source order

  [[nodiscard]] const json_value* find(std::string_view key) const noexcept {
    for (const auto& m : members)
      if (m.first == key) return &m.second;
    return nullptr;
  }
};

// Parses all of `text` (surrounding whitespace allowed). Malformed input throws
// cinch::error(code, "<function>: <what> is not valid JSON at byte N: <why>").
// Nesting deeper than 256 levels is refused rather than risking the stack.
[[nodiscard]] json_value parse_json(std::string_view text, std::string_view function, std::string_view what,
                                    errc code);

// The bytes [begin, end) of every escape sequence inside the string values of
// `root` (\n, \", \uXXXX, surrogate pairs as one range), sorted: a deletion must
// not cut through one.
void collect_escapes(std::string_view text, const json_value& root, std::vector<std::pair<std::size_t, std::size_t>>& out);

}  // namespace cinch::prompt::detail
