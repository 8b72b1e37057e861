// Protected ranges for structure preservation: a JSON walk, and a line-by-line
// Markdown scan (block markers first, then inline code, links, URLs, tags,
// emphasis and chat markers within each line).
#include "cinch/prompt/structure.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "cinch/core/error.hpp"
#include "prompt_json.hpp"

namespace cinch::prompt {
namespace {

constexpr std::string_view fn = "prompt::analyze_structure";

using ranges = std::vector<text_range>;

void add(ranges& out, std::size_t b, std::size_t e) {
  if (b < e) out.push_back({b, e});
}

// Sorted, merged, non-empty.
ranges normalized(ranges r) {
  std::sort(r.begin(), r.end(), [](const text_range& a, const text_range& b) { return a.begin < b.begin; });
  ranges out;
  for (const text_range& x : r) {
    if (x.begin >= x.end) continue;
    if (!out.empty() && x.begin <= out.back().end) out.back().end = std::max(out.back().end, x.end);
    else out.push_back(x);
  }
  return out;
}

// ---------------------------------------------------------------- JSON

void json_strings(const detail::json_value& v, std::string_view key, const structure_options& o, ranges& open,
                  std::vector<const detail::json_value*>& values) {
  using kind = detail::json_value::kind;
  switch (v.type) {
    case kind::string:
      if (o.json_keys.empty() || std::find(o.json_keys.begin(), o.json_keys.end(), key) != o.json_keys.end()) {
        add(open, v.begin, v.end);
        values.push_back(&v);
      }
      break;
    case kind::array:
      for (const auto& item : v.items) json_strings(item, key, o, open, values);
      break;
    case kind::object:
      for (const auto& [k, item] : v.members) json_strings(item, k, o, open, values);
      break;
    default: break;
  }
}

void json_ranges(std::string_view text, const detail::json_value& root, const structure_options& o, structure_plan& plan,
                 ranges& prot) {
  ranges open;
  std::vector<const detail::json_value*> values;
  json_strings(root, {}, o, open, values);
  std::size_t pos = 0;  // protect the complement of the open string contents
  for (const text_range& r : open) {
    add(prot, pos, r.begin);
    pos = r.end;
  }
  add(prot, pos, text.size());
  std::vector<std::pair<std::size_t, std::size_t>> escapes;
  for (const detail::json_value* v : values) detail::collect_escapes(text, *v, escapes);
  for (const auto& [b, e] : escapes) plan.unbreakable.push_back({b, e});
}

// ---------------------------------------------------------------- Markdown

enum class line_kind { paragraph, blank, fence, heading, rule, quote, list, table, role };

struct line {
  std::size_t begin, end;  // without the newline
  line_kind kind;
};

std::size_t skip_indent(std::string_view s, std::size_t p, std::size_t end, std::size_t max = 3) {
  std::size_t n = 0;
  while (p < end && s[p] == ' ' && n < max) ++p, ++n;
  return p;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

// Length of a fence opener/closer at p ("```", "~~~~"...), or 0.
std::size_t fence_at(std::string_view s, std::size_t p, std::size_t end) {
  if (p >= end || (s[p] != '`' && s[p] != '~')) return 0;
  std::size_t q = p;
  while (q < end && s[q] == s[p]) ++q;
  return q - p >= 3 ? q - p : 0;
}

bool is_rule(std::string_view s, std::size_t p, std::size_t end) {
  char c = 0;
  int n = 0;
  for (; p < end; ++p) {
    if (s[p] == ' ' || s[p] == '\t') continue;
    if ((s[p] != '-' && s[p] != '*' && s[p] != '_' && s[p] != '=') || (c && s[p] != c)) return false;
    c = s[p], ++n;
  }
  return n >= 3;
}

// The end of a list marker ("- ", "12. ", "- [x] ") starting at p, or p.
std::size_t list_marker(std::string_view s, std::size_t p, std::size_t end) {
  std::size_t q = p;
  if (q < end && (s[q] == '-' || s[q] == '*' || s[q] == '+')) {
    ++q;
  } else {
    while (q < end && q - p < 9 && s[q] >= '0' && s[q] <= '9') ++q;
    if (q == p || q >= end || (s[q] != '.' && s[q] != ')')) return p;
    ++q;
  }
  if (q >= end || s[q] != ' ') return p;
  ++q;
  if (end - q >= 4 && s[q] == '[' && (s[q + 1] == ' ' || s[q + 1] == 'x' || s[q + 1] == 'X') && s[q + 2] == ']' &&
      s[q + 3] == ' ')
    q += 4;
  return q;
}

// The end of a role label ("User:", "assistant :") at p, or p.
std::size_t role_label(std::string_view s, std::size_t p, std::size_t end) {
  static constexpr std::array<std::string_view, 7> roles = {"user", "assistant", "system", "human", "ai", "bot", "model"};
  if (p >= end || std::string_view("uUaAsShHbBmM").find(s[p]) == std::string_view::npos) return p;
  for (std::string_view r : roles) {
    if (!starts_with_ci(s.substr(p, end - p), r)) continue;
    std::size_t q = p + r.size();
    while (q < end && s[q] == ' ') ++q;
    if (q < end && s[q] == ':') return q + 1;
  }
  return p;
}

// The bytes inline_ranges looks at; everything else is skipped at once.
constexpr std::array<bool, 256> inline_specials = [] {
  std::array<bool, 256> t{};
  for (const unsigned char c : std::string_view("\\`*_~![]<hw")) t[c] = true;
  return t;
}();

void inline_ranges(std::string_view s, std::size_t b, std::size_t e, ranges& prot) {
  std::size_t p = b;
  while (p < e) {
    const char c = s[p];
    if (!inline_specials[static_cast<unsigned char>(c)]) {
      ++p;
      continue;
    }
    if (c == '\\' && p + 1 < e && std::ispunct(static_cast<unsigned char>(s[p + 1]))) {  // an escaped character
      add(prot, p, p + 2);
      p += 2;
    } else if (c == '`') {  // inline code: a run of n backticks up to the next run of n
      std::size_t q = p;
      while (q < e && s[q] == '`') ++q;
      const std::string_view run = s.substr(p, q - p);
      std::size_t close = s.substr(0, e).find(run, q);
      while (close != std::string_view::npos && close + run.size() < e && s[close + run.size()] == '`')
        close = s.substr(0, e).find(run, close + run.size() + 1);
      const std::size_t stop = close == std::string_view::npos ? q : close + run.size();
      add(prot, p, stop);
      p = stop;
    } else if (c == '*' || c == '_' || c == '~') {  // emphasis and strike-through markers
      std::size_t q = p;
      while (q < e && s[q] == c) ++q;
      add(prot, p, q);
      p = q;
    } else if (c == '!' && p + 1 < e && s[p + 1] == '[') {
      add(prot, p, p + 2);
      p += 2;
    } else if (c == '[' || c == ']') {  // link text brackets; "](target)" with its target
      if (c == ']' && p + 1 < e && s[p + 1] == '(') {
        std::size_t q = p + 2;
        int depth = 1;
        while (q < e && depth > 0) depth += s[q] == '(' ? 1 : s[q] == ')' ? -1 : 0, ++q;
        add(prot, p, q);
        p = q;
      } else {
        add(prot, p, p + 1);
        ++p;
      }
    } else if (c == '<' && p + 1 < e &&
               (std::isalpha(static_cast<unsigned char>(s[p + 1])) || s[p + 1] == '/' || s[p + 1] == '!' ||
                s[p + 1] == '|' || s[p + 1] == '<')) {  // HTML tags, autolinks, <|chat markers|>, <<SYS>>
      const std::size_t close = s.substr(0, e).find('>', p + 1);
      const std::size_t stop = close == std::string_view::npos ? p + 1 : close + 1;
      if (close != std::string_view::npos && close + 1 < e && s[close + 1] == '>') add(prot, p, close + 2), p = close + 2;
      else add(prot, p, stop), p = stop;
    } else if (p + 1 < e && s[p + 1] == (c == 'h' ? 't' : 'w') &&  // most h and w start no URL: one byte tells
               (s.substr(p, 7) == "http://" || s.substr(p, 8) == "https://" ||
                s.substr(p, 4) == "www.")) {  // bare URLs, less trailing punctuation
      std::size_t q = p;
      while (q < e && !std::isspace(static_cast<unsigned char>(s[q])) && s[q] != '<' && s[q] != '>' && s[q] != '"')
        ++q;
      while (q > p && std::string_view(".,;:!?)]'").find(s[q - 1]) != std::string_view::npos) --q;
      add(prot, p, q);
      p = q;
    } else {
      ++p;
    }
  }
}

// Chat markers that are not HTML-like: "[INST]", "[/INST]".
void chat_markers(std::string_view s, ranges& prot) {
  for (std::string_view m : {std::string_view("[INST]"), std::string_view("[/INST]")})
    for (std::size_t p = s.find(m); p != std::string_view::npos; p = s.find(m, p + m.size())) add(prot, p, p + m.size());
}

bool is_table_separator(std::string_view s, const line& l) {
  const std::string_view t = s.substr(l.begin, l.end - l.begin);
  return t.find('-') != std::string_view::npos && t.find('|') != std::string_view::npos &&
         t.find_first_not_of("|-: \t\r") == std::string_view::npos;
}

// A row of a pipe table: it starts with '|', or holds one next to a separator row.
bool is_table_row(std::string_view s, const std::vector<line>& lines, std::size_t i) {
  const line& l = lines[i];
  const std::string_view t = s.substr(l.begin, l.end - l.begin);
  if (t.find('|') == std::string_view::npos) return false;
  if (t.substr(t.find_first_not_of(" \t") == std::string_view::npos ? 0 : t.find_first_not_of(" \t")).starts_with("|"))
    return true;
  return (i > 0 && is_table_separator(s, lines[i - 1])) || (i + 1 < lines.size() && is_table_separator(s, lines[i + 1]));
}

void markdown_ranges(std::string_view s, const structure_options& o, ranges& prot) {
  std::vector<line> lines;
  for (std::size_t b = 0; b <= s.size();) {
    std::size_t e = s.find('\n', b);
    if (e == std::string_view::npos) e = s.size();
    lines.push_back({b, e, line_kind::paragraph});
    if (e == s.size()) break;
    b = e + 1;
  }
  // Block structure and per-line protection.
  std::size_t fence_len = 0;
  char fence_char = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    line& l = lines[i];
    const std::size_t p = skip_indent(s, l.begin, l.end);
    if (fence_len) {  // inside a fence: verbatim, or only the closing line
      l.kind = line_kind::fence;
      const std::size_t f = fence_at(s, p, l.end);
      const bool closes = f >= fence_len && s[p] == fence_char &&
                          s.substr(p + f, l.end - p - f).find_first_not_of(" \t\r") == std::string_view::npos;
      if (closes || !o.compress_code_blocks) add(prot, l.begin, l.end);
      if (closes) fence_len = 0;
      continue;
    }
    if (const std::size_t f = fence_at(s, p, l.end)) {
      l.kind = line_kind::fence;
      fence_len = f, fence_char = s[p];
      add(prot, l.begin, l.end);
      continue;
    }
    if (s.substr(l.begin, l.end - l.begin).find_first_not_of(" \t\r") == std::string_view::npos) {
      l.kind = line_kind::blank;
      continue;
    }
    std::size_t body = l.begin;  // the line's text after its block marker
    if (p < l.end && s[p] == '#') {
      std::size_t q = p;
      while (q < l.end && s[q] == '#') ++q;
      if (q - p <= 6 && (q == l.end || s[q] == ' ')) {
        l.kind = line_kind::heading;
        body = q < l.end ? q + 1 : q;
      }
    } else if (is_rule(s, p, l.end)) {
      l.kind = line_kind::rule;
      add(prot, l.begin, l.end);
      continue;
    } else if (p < l.end && s[p] == '>') {
      l.kind = line_kind::quote;
      for (body = p; body < l.end && (s[body] == '>' || s[body] == ' ');) ++body;
    } else if (const std::size_t m = list_marker(s, skip_indent(s, l.begin, l.end, 64), l.end);
               m != skip_indent(s, l.begin, l.end, 64)) {
      l.kind = line_kind::list;
      body = m;
    } else if (const std::size_t r = role_label(s, p, l.end); r != p) {
      l.kind = line_kind::role;
      body = r;
    } else if (s.substr(p, l.end - p).starts_with("<|im_start|>")) {  // ChatML: the role name after the marker
      l.kind = line_kind::role;
      body = l.end;
    }
    add(prot, l.begin, body);
    if (is_table_row(s, lines, i)) {  // pipes, and separator rows whole
      l.kind = line_kind::table;
      if (is_table_separator(s, l)) {
        add(prot, l.begin, l.end);
        continue;
      }
      for (std::size_t q = l.begin; q < l.end; ++q)
        if (s[q] == '|') add(prot, q, q + 1);
    }
    inline_ranges(s, body, l.end, prot);
  }
  // Line breaks that carry structure: those next to a block line, with any blank
  // lines between them (blank lines between paragraphs of prose may go).
  auto is_block = [&](std::size_t i) {
    return i < lines.size() && lines[i].kind != line_kind::paragraph && lines[i].kind != line_kind::blank;
  };
  for (std::size_t i = 0; i + 1 < lines.size();) {
    std::size_t j = i + 1;  // the next non-blank line
    while (j < lines.size() && lines[j].kind == line_kind::blank) ++j;
    if (is_block(i) || is_block(j)) add(prot, lines[i].end, j < lines.size() ? lines[j].begin : s.size());
    i = j;
  }
}

}  // namespace

structure_plan analyze_structure(std::string_view text, const structure_options& options) {
  for (const text_range& r : options.protect)
    if (r.begin > r.end || r.end > text.size())
      cinch::detail::fail(errc::invalid_argument, fn, "protect range [", r.begin, ", ", r.end,
                          ") must lie within the text of ", text.size(), " bytes");
  structure_plan plan{options.mode, {}, {}};
  ranges prot;
  if (options.mode == structure::json || options.mode == structure::detect) {
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    const bool looks_json = first != std::string_view::npos && (text[first] == '{' || text[first] == '[');
    if (options.mode == structure::json || looks_json) {
      try {
        const detail::json_value root = detail::parse_json(text, fn, "the text", errc::invalid_argument);
        plan.mode = structure::json;
        json_ranges(text, root, options, plan, prot);
      } catch (const cinch::error&) {
        if (options.mode == structure::json) throw;
      }
    }
    if (plan.mode == structure::detect) plan.mode = structure::markdown;
  }
  if (plan.mode == structure::markdown) {
    markdown_ranges(text, options, prot);
    chat_markers(text, prot);
  }
  for (const std::string& f : options.force_strings)
    if (!f.empty())
      for (std::size_t p = text.find(f); p != std::string_view::npos; p = text.find(f, p + f.size()))
        add(prot, p, p + f.size());
  prot.insert(prot.end(), options.protect.begin(), options.protect.end());
  plan.protect = normalized(std::move(prot));
  std::sort(plan.unbreakable.begin(), plan.unbreakable.end(),
            [](const text_range& a, const text_range& b) { return a.begin < b.begin; });
  return plan;
}

}  // namespace cinch::prompt
