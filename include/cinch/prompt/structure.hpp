// Structure preservation: the bytes of a prompt that compression must not touch,
// so JSON stays parseable, Markdown keeps its shape, code fences and chat roles
// survive, and only the text inside them is compressed. Defined in cinch::kernels.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cinch::prompt {

struct text_range {
  std::size_t begin;
  std::size_t end;
  friend bool operator==(const text_range&, const text_range&) = default;
};

enum class structure {
  detect,    // json when the whole text is a JSON object or array, else markdown
  plain,     // nothing protected beyond force_strings and protect
  markdown,  // see below; also right for plain prose and chat transcripts
  json,      // only string values are compressed (text that is not JSON throws)
};

// markdown protects: fenced code blocks (whole, unless compress_code_blocks: then
// the fence lines only), inline code, heading/list/quote markers, table pipes and
// separator rows, horizontal rules, link and image targets "](url)" and their
// brackets, URLs (http://, https://, www.), HTML tags and autolinks, emphasis markers, the line breaks (and
// blank lines) next to block lines (blank lines between prose paragraphs may go), chat markers (<|...|>, [INST], [/INST], <s>,
// </s>, <<SYS>>, <</SYS>>) and role labels opening a line ("User:", "Assistant:",
// "System:", "Human:", "AI:", any case).
// json protects everything but the contents of string values (never keys); with
// json_keys, only values whose nearest key is listed are compressed (a chat file:
// {"content"}). Escape sequences inside values are never cut.
struct structure_options {
  structure mode = structure::detect;
  std::vector<std::string> json_keys;
  bool compress_code_blocks = false;
  std::vector<std::string> force_strings;  // every occurrence is kept, e.g. "\n", "?"
  std::vector<text_range> protect;         // further byte ranges to keep
};

struct structure_plan {
  structure mode;                    // never detect
  std::vector<text_range> protect;   // sorted, disjoint, non-empty
  std::vector<text_range> unbreakable;  // sorted: no deletion may cut inside one (escapes)
};

// The ranges for `text` (valid UTF-8). A protect range past the end of the text,
// or text that is not JSON in json mode, throws invalid_argument.
[[nodiscard]] structure_plan analyze_structure(std::string_view text, const structure_options& options);

}  // namespace cinch::prompt
