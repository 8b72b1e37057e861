// Recursive-descent JSON reader with byte offsets.
#include "prompt_json.hpp"

#include <charconv>
#include <cstdint>

#include "cinch/prompt/utf8.hpp"

namespace cinch::prompt::detail {
namespace {

constexpr int max_depth = 256;

class reader {
 public:
  reader(std::string_view text, std::string_view function, std::string_view what, errc code)
      : s_(text), function_(function), what_(what), code_(code) {}

  json_value document() {
    skip_space();
    json_value v = value(0);
    skip_space();
    if (pos_ != s_.size()) fail("unexpected data after the value");
    return v;
  }

 private:
  [[noreturn]] void fail(std::string_view why) const {
    cinch::detail::fail(code_, function_, what_, " is not valid JSON at byte ", pos_, ": ", why);
  }

  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }

  void expect_word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) fail("expected a value");
    pos_ += w.size();
  }

  json_value value(int depth) {
    if (depth > max_depth) fail("nesting deeper than 256 levels");
    if (pos_ >= s_.size()) fail("unexpected end of input");
    json_value v;
    v.begin = pos_;
    switch (s_[pos_]) {
      case '{': object(v, depth); break;
      case '[': array(v, depth); break;
      case '"':
        v.type = json_value::kind::string;
        string(v.string, v.begin, v.end);
        return v;
      case 't':
        expect_word("true");
        v.type = json_value::kind::boolean;
        v.boolean = true;
        break;
      case 'f':
        expect_word("false");
        v.type = json_value::kind::boolean;
        break;
      case 'n': expect_word("null"); break;
      default: number(v); break;
    }
    v.end = pos_;
    return v;
  }

  void object(json_value& v, int depth) {
    v.type = json_value::kind::object;
    ++pos_;
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
      std::string key;
      std::size_t b = 0, e = 0;
      string(key, b, e);
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':' after a key");
      ++pos_;
      skip_space();
      v.members.emplace_back(std::move(key), value(depth + 1));
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return;
      }
      fail("expected ',' or '}' in an object");
    }
  }

  void array(json_value& v, int depth) {
    v.type = json_value::kind::array;
    ++pos_;
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_space();
      v.items.push_back(value(depth + 1));
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return;
      }
      fail("expected ',' or ']' in an array");
    }
  }

  unsigned hex4() {
    if (s_.size() - pos_ < 4) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else fail("bad hex digit in a \\u escape");
    }
    return v;
  }

  // At the opening quote; leaves pos_ after the closing one.
  void string(std::string& out, std::size_t& begin, std::size_t& end) {
    begin = ++pos_;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') break;
      if (c < 0x20) fail("control character in a string");
      if (c != '\\') {
        char32_t cp = 0;
        const int n = decode_utf8(s_, pos_, cp);
        if (n == 0) fail("invalid UTF-8 in a string");
        out.append(s_.substr(pos_, std::size_t(n)));
        pos_ += std::size_t(n);
        continue;
      }
      if (++pos_ >= s_.size()) fail("unterminated escape");
      switch (s_[pos_++]) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          char32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(pos_, 2) != "\\u") fail("unpaired surrogate in a \\u escape");
            pos_ += 2;
            const char32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired surrogate in a \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate in a \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          fail("unknown escape");
      }
    }
    end = pos_++;
  }

  void number(json_value& v) {
    const std::size_t start = pos_;
    auto digits = [&] {
      const std::size_t d = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') ++pos_;
    else if (digits() == 0) fail("expected a value");
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) fail("expected digits after '.'");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail("expected digits in an exponent");
    }
    v.type = json_value::kind::number;
    std::from_chars(s_.data() + start, s_.data() + pos_, v.number);  // out of range leaves 0: only counts are read
  }

  std::string_view s_;
  std::string_view function_, what_;
  errc code_;
  std::size_t pos_ = 0;
};

}  // namespace

json_value parse_json(std::string_view text, std::string_view function, std::string_view what, errc code) {
  return reader(text, function, what, code).document();
}

void collect_escapes(std::string_view text, const json_value& v, std::vector<std::pair<std::size_t, std::size_t>>& out) {
  switch (v.type) {
    case json_value::kind::string:
      for (std::size_t i = v.begin; i < v.end;) {
        if (text[i] != '\\') {
          ++i;
          continue;
        }
        std::size_t len = text[i + 1] == 'u' ? 6 : 2;
        if (len == 6 && i + 12 <= v.end && text.substr(i + 6, 2) == "\\u") {
          const char h = text[i + 2];  // a high surrogate \uD8xx-\uDBxx pairs with the next escape
          const char h2 = text[i + 3];
          if ((h == 'd' || h == 'D') && ((h2 >= '8' && h2 <= '9') || (h2 >= 'a' && h2 <= 'b') || (h2 >= 'A' && h2 <= 'B')))
            len = 12;
        }
        out.emplace_back(i, i + len);
        i += len;
      }
      break;
    case json_value::kind::array:
      for (const auto& item : v.items) collect_escapes(text, item, out);
      break;
    case json_value::kind::object:
      for (const auto& m : v.members) collect_escapes(text, m.second, out);
      break;
    default: break;
  }
}

}  // namespace cinch::prompt::detail
