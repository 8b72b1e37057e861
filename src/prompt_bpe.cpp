// Byte-level BPE with GPT-2's vocabulary files: the hand-written pre-tokenizer,
// the merge loop (a heap of candidate pairs over a linked list of symbols, so a
// long piece costs O(n log n)), and a cache of encoded pieces.
#include "cinch/prompt/bpe.hpp"

#include <algorithm>
#include <array>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <unordered_map>

#include "cinch/prompt/unicode.hpp"
#include "cinch/prompt/utf8.hpp"
#include "prompt_flat_map.hpp"
#include "prompt_io.hpp"
#include "prompt_json.hpp"

namespace cinch::prompt {
namespace {

// GPT-2's printable alphabet for bytes: '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF
// stand for themselves; the other 68 bytes map, in increasing order, to U+0100...
std::array<char32_t, 256> byte_alphabet() {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    map[std::size_t(b)] = printable ? char32_t(b) : next++;
  }
  return map;
}

struct piece_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct merge_entry {
  std::int32_t rank = -1;
  std::int32_t merged = -1;
};

std::uint64_t pair_key(std::int32_t a, std::int32_t b) { return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b); }

// Pieces cached by the tokenizer: most text reuses a few thousand words.
constexpr std::size_t cache_limit = 1 << 17;
constexpr std::size_t cache_max_piece = 64;

// The class of the character at pos, with its length; an invalid byte is a
// one-byte `other`.
struct char_at {
  char_class cls;
  std::size_t len;
};
char_at classify_at(std::string_view s, std::size_t pos) {
  char32_t cp = 0;
  const int n = decode_utf8(s, pos, cp);
  if (n == 0) return {char_class::other, 1};
  return {classify(cp), std::size_t(n)};
}

// Length of the longest run from pos of characters of class `cls`.
std::size_t run_of(std::string_view s, std::size_t pos, char_class cls) {
  std::size_t end = pos;
  while (end < s.size()) {
    const char_at c = classify_at(s, end);
    if (c.cls != cls) break;
    end += c.len;
  }
  return end - pos;
}

std::size_t contraction_at(std::string_view s, std::size_t pos) {
  if (s[pos] != '\'') return 0;
  const std::string_view rest = s.substr(pos + 1);
  for (std::string_view c : {"re", "ve", "ll"})
    if (rest.substr(0, 2) == c) return 3;
  if (!rest.empty() && (rest[0] == 's' || rest[0] == 't' || rest[0] == 'm' || rest[0] == 'd')) return 2;
  return 0;
}

// Calls emit(begin, end) for each piece of GPT-2's pre-tokenizer pattern.
template <class Emit>
void for_each_piece(std::string_view s, Emit&& emit) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    if (const std::size_t c = contraction_at(s, pos)) {  // 's|'t|'re|'ve|'m|'ll|'d
      emit(pos, pos + c);
      pos += c;
      continue;
    }
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional U+0020, then a run of one class.
    const std::size_t body = s[pos] == ' ' ? pos + 1 : pos;
    if (body < s.size()) {
      const char_class cls = classify_at(s, body).cls;
      if (cls != char_class::space) {
        const std::size_t end = body + run_of(s, body, cls);
        emit(pos, end);
        pos = end;
        continue;
      }
    }
    // '\s+(?!\S)|\s+': a whitespace run, less its last character when a
    // non-space follows and the run has more than one character.
    std::size_t end = pos, last = pos;
    while (end < s.size()) {
      const char_at c = classify_at(s, end);
      if (c.cls != char_class::space) break;
      last = end;
      end += c.len;
    }
    if (end < s.size() && last > pos) end = last;
    emit(pos, end);
    pos = end;
  }
}

}  // namespace

struct bpe_tokenizer::impl {
  std::vector<std::string> bytes_of;                  // id -> raw bytes
  std::unordered_map<std::string, std::int32_t> ids;  // raw bytes -> id
  std::array<std::int32_t, 256> byte_ids{};           // single-byte tokens
  std::vector<std::pair<std::int32_t, std::int32_t>> merge_list;
  detail::flat_map<merge_entry> merge_table;
  std::int32_t eos = -1;

  mutable std::shared_mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>, piece_hash, std::equal_to<>> cache;

  [[nodiscard]] merge_entry merge_of(std::int32_t a, std::int32_t b) const {
    const merge_entry* e = merge_table.find(pair_key(a, b));
    return e ? *e : merge_entry{};
  }

  // BPE of one piece, appended to out.
  void merge_piece(std::string_view piece, std::vector<std::int32_t>& out) const {
    const std::size_t n = piece.size();
    if (n == 1) {
      out.push_back(byte_ids[static_cast<std::uint8_t>(piece[0])]);
      return;
    }
    struct symbol {
      std::int32_t id;
      std::int32_t prev, next;  // -1 at the ends
    };
    std::vector<symbol> sym(n);
    for (std::size_t i = 0; i < n; ++i)
      sym[i] = {byte_ids[static_cast<std::uint8_t>(piece[i])], std::int32_t(i) - 1,
                i + 1 < n ? std::int32_t(i + 1) : -1};
    // Candidates ordered by (rank, position): all occurrences of the best pair go
    // left to right, and a merge's new pairs always rank after it.
    using candidate = std::pair<std::int32_t, std::int32_t>;
    std::priority_queue<candidate, std::vector<candidate>, std::greater<>> heap;
    auto push = [&](std::int32_t left) {
      if (left < 0 || sym[std::size_t(left)].next < 0) return;
      const merge_entry m = merge_of(sym[std::size_t(left)].id, sym[std::size_t(sym[std::size_t(left)].next)].id);
      if (m.rank >= 0) heap.emplace(m.rank, left);
    };
    for (std::size_t i = 0; i + 1 < n; ++i) push(std::int32_t(i));
    while (!heap.empty()) {
      const auto [rank, left] = heap.top();
      heap.pop();
      symbol& l = sym[std::size_t(left)];
      if (l.id < 0 || l.next < 0) continue;  // merged away
      const merge_entry m = merge_of(l.id, sym[std::size_t(l.next)].id);
      if (m.rank != rank) continue;  // the pair changed since it was queued
      symbol& r = sym[std::size_t(l.next)];
      l.id = m.merged;
      r.id = -1;
      l.next = r.next;
      if (r.next >= 0) sym[std::size_t(r.next)].prev = left;
      push(l.prev);
      push(left);
    }
    for (std::int32_t i = 0; i >= 0; i = sym[std::size_t(i)].next) out.push_back(sym[std::size_t(i)].id);
  }

  // BPE of one piece through the cache.
  void encode_piece(std::string_view piece, std::vector<std::int32_t>& out) const {
    if (piece.size() > cache_max_piece || piece.size() == 1) {
      merge_piece(piece, out);
      return;
    }
    {
      std::shared_lock lock(cache_mutex);
      if (auto it = cache.find(piece); it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    const std::size_t first = out.size();
    merge_piece(piece, out);
    std::unique_lock lock(cache_mutex);
    if (cache.size() >= cache_limit) cache.clear();
    cache.emplace(std::string(piece), std::vector<std::int32_t>(out.begin() + std::ptrdiff_t(first), out.end()));
  }
};

bpe_tokenizer bpe_tokenizer::from_strings(std::string_view encoder_json, std::string_view vocab_bpe) {
  constexpr std::string_view fn = "prompt::bpe_tokenizer";
  auto p = std::make_shared<impl>();
  const std::array<char32_t, 256> alphabet = byte_alphabet();
  std::unordered_map<char32_t, unsigned char> byte_of;
  for (int b = 0; b < 256; ++b) byte_of[alphabet[std::size_t(b)]] = static_cast<unsigned char>(b);
  // Vocabulary strings are written in the printable alphabet; back to raw bytes.
  auto raw_bytes = [&](std::string_view s, std::string_view where) {
    std::string out;
    char32_t cp = 0;
    for (std::size_t pos = 0; pos < s.size();) {
      const int n = decode_utf8(s, pos, cp);
      auto it = n ? byte_of.find(cp) : byte_of.end();
      if (it == byte_of.end())
        cinch::detail::fail(errc::corrupt_data, fn, where, " '", s, "' has a character outside the byte alphabet");
      out.push_back(char(it->second));
      pos += std::size_t(n);
    }
    return out;
  };

  const detail::json_value vocab = detail::parse_json(encoder_json, fn, "encoder.json", errc::corrupt_data);
  if (vocab.type != detail::json_value::kind::object || vocab.members.empty())
    cinch::detail::fail(errc::corrupt_data, fn, "encoder.json must be a non-empty object of token -> id");
  const std::size_t n = vocab.members.size();
  p->bytes_of.resize(n);
  std::vector<bool> seen(n);
  for (const auto& [text, value] : vocab.members) {
    const double v = value.number;
    if (value.type != detail::json_value::kind::number || v < 0 || v >= double(n) || v != double(std::int64_t(v)))
      cinch::detail::fail(errc::corrupt_data, fn, "encoder.json: the id of '", text, "' must be an integer in [0, ", n,
                          ")");
    const auto id = std::size_t(v);
    if (seen[id]) cinch::detail::fail(errc::corrupt_data, fn, "encoder.json: id ", id, " is used twice");
    seen[id] = true;
    if (text == "<|endoftext|>") {
      p->eos = std::int32_t(id);
      p->bytes_of[id] = text;  // a special token decodes to its name
      continue;
    }
    p->bytes_of[id] = raw_bytes(text, "encoder.json: token");
    if (!p->ids.emplace(p->bytes_of[id], std::int32_t(id)).second)
      cinch::detail::fail(errc::corrupt_data, fn, "encoder.json: token '", text, "' appears twice");
  }
  for (int b = 0; b < 256; ++b) {
    auto it = p->ids.find(std::string(1, char(b)));
    if (it == p->ids.end())
      cinch::detail::fail(errc::corrupt_data, fn, "encoder.json has no token for byte ", b);
    p->byte_ids[std::size_t(b)] = it->second;
  }

  std::size_t line_no = 0, pos = 0;
  while (pos < vocab_bpe.size()) {
    std::size_t eol = vocab_bpe.find('\n', pos);
    if (eol == std::string_view::npos) eol = vocab_bpe.size();
    std::string_view line = vocab_bpe.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.front() == '#')) continue;
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos)
      cinch::detail::fail(errc::corrupt_data, fn, "vocab.bpe line ", line_no, " must be two tokens split by one space, got '",
                          line, "'");
    const std::string a = raw_bytes(line.substr(0, space), "vocab.bpe: token");
    const std::string b = raw_bytes(line.substr(space + 1), "vocab.bpe: token");
    auto ia = p->ids.find(a), ib = p->ids.find(b), iab = p->ids.find(a + b);
    if (ia == p->ids.end() || ib == p->ids.end() || iab == p->ids.end())
      cinch::detail::fail(errc::corrupt_data, fn, "vocab.bpe line ", line_no, " merges '", line,
                          "', but a part or the result is not in encoder.json");
    merge_entry& e = p->merge_table[pair_key(ia->second, ib->second)];
    if (e.rank < 0) e = {std::int32_t(p->merge_list.size()), iab->second};
    p->merge_list.emplace_back(ia->second, ib->second);
  }
  return bpe_tokenizer(std::move(p));
}

bpe_tokenizer bpe_tokenizer::load(const std::filesystem::path& encoder_json, const std::filesystem::path& vocab_bpe) {
  constexpr std::string_view fn = "prompt::bpe_tokenizer::load";
  const std::string encoder = detail::read_file(encoder_json, fn);
  return from_strings(encoder, detail::read_file(vocab_bpe, fn));
}

bpe_tokenizer bpe_tokenizer::load_dir(const std::filesystem::path& dir) {
  return load(dir / "encoder.json", dir / "vocab.bpe");
}

std::vector<std::pair<std::size_t, std::size_t>> bpe_tokenizer::pre_tokenize(std::string_view text) {
  std::vector<std::pair<std::size_t, std::size_t>> pieces;
  for_each_piece(text, [&](std::size_t b, std::size_t e) { pieces.emplace_back(b, e); });
  return pieces;
}

std::vector<token> bpe_tokenizer::encode(std::string_view text) const {
  std::vector<token> tokens;
  tokens.reserve(text.size() / 3);
  std::vector<std::int32_t> ids;
  for_each_piece(text, [&](std::size_t b, std::size_t e) {
    ids.clear();
    impl_->encode_piece(text.substr(b, e - b), ids);
    for (const std::int32_t id : ids) {
      const std::size_t len = impl_->bytes_of[std::size_t(id)].size();
      tokens.push_back({id, b, b + len});
      b += len;
    }
  });
  return tokens;
}

std::int64_t bpe_tokenizer::count(std::string_view text) const {
  std::int64_t n = 0;
  std::vector<std::int32_t> ids;
  for_each_piece(text, [&](std::size_t b, std::size_t e) {
    ids.clear();
    impl_->encode_piece(text.substr(b, e - b), ids);
    n += std::int64_t(ids.size());
  });
  return n;
}

std::string bpe_tokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string out;
  for (const std::int32_t id : ids) out.append(token_bytes(id));
  return out;
}

std::int64_t bpe_tokenizer::vocab_size() const { return std::int64_t(impl_->bytes_of.size()); }

std::string_view bpe_tokenizer::token_bytes(std::int32_t id) const {
  if (id < 0 || std::size_t(id) >= impl_->bytes_of.size())
    cinch::detail::fail(errc::invalid_argument, "prompt::bpe_tokenizer::token_bytes", "id must be in [0, ",
                        impl_->bytes_of.size(), "), got ", id);
  return impl_->bytes_of[std::size_t(id)];
}

std::int32_t bpe_tokenizer::id_of(std::string_view bytes) const {
  auto it = impl_->ids.find(std::string(bytes));
  return it == impl_->ids.end() ? -1 : it->second;
}

std::int32_t bpe_tokenizer::eos_id() const noexcept { return impl_->eos; }

std::span<const std::pair<std::int32_t, std::int32_t>> bpe_tokenizer::merges() const noexcept {
  return impl_->merge_list;
}

}  // namespace cinch::prompt
