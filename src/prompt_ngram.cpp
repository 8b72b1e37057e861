// Interpolated modified Kneser-Ney n-gram model over token ids: counting,
// continuation counts, discounts, scoring, and the stream format.
#include "cinch/prompt/ngram.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <fstream>

#include "cinch/io/bytes.hpp"
#include "cinch/io/stream.hpp"
#include "prompt_flat_map.hpp"
#include "prompt_io.hpp"

namespace cinch::prompt {
namespace {

// c(h) and the number of words seen once, twice, three or more times after h.
struct context_stats {
  std::uint32_t total = 0;
  std::array<std::uint32_t, 3> seen{};
};

constexpr io::tag stream_kind{"NGRM"};
constexpr std::uint16_t stream_version = 1;

void put_varint(io::byte_writer& w, std::uint64_t v) {
  while (v >= 0x80) {
    w.write(std::uint8_t(v | 0x80));
    v >>= 7;
  }
  w.write(std::uint8_t(v));
}

std::uint64_t get_varint(io::byte_reader& r) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    const std::uint8_t b = r.read<std::uint8_t>();
    v |= std::uint64_t(b & 0x7F) << shift;
    if (!(b & 0x80)) return v;
  }
  cinch::detail::fail(errc::corrupt_data, "prompt::ngram_model::from_bytes", "a varint is longer than 64 bits");
}

}  // namespace

struct ngram_model::impl {
  int order = 0;
  std::int64_t vocab = 0;
  int bits = 0;  // per id in a packed key; the oldest id sits in the highest bits
  std::vector<detail::flat_map<std::uint32_t>> grams;       // [k-1]: k-gram -> count (continuation below order)
  std::vector<detail::flat_map<context_stats>> contexts;    // [k-1]: (k-1)-gram -> stats
  std::vector<std::array<double, 3>> discount;              // [k-1]: D1, D2, D3+

  impl(int n, std::int64_t v) : order(n), vocab(v), bits(std::bit_width(std::uint64_t(v) + 1)) {
    grams.resize(std::size_t(n));
    contexts.resize(std::size_t(n));
    discount.resize(std::size_t(n));
  }

  [[nodiscard]] std::uint64_t boundary() const noexcept { return std::uint64_t(vocab); }

  // Derives the lower orders, context statistics and discounts from the counts
  // of the highest order.
  void finish() {
    for (int k = order - 1; k >= 1; --k) {
      const std::uint64_t mask = (std::uint64_t{1} << (bits * k)) - 1;
      detail::flat_map<std::uint32_t> lower(grams[std::size_t(k)].size() / 2);
      grams[std::size_t(k)].for_each([&](std::uint64_t key, std::uint32_t) { ++lower[key & mask]; });
      grams[std::size_t(k - 1)] = std::move(lower);
    }
    for (int k = 1; k <= order; ++k) {
      std::array<std::uint64_t, 5> n{};  // count-of-counts n1..n4
      detail::flat_map<context_stats> ctx(grams[std::size_t(k - 1)].size() / 4);
      grams[std::size_t(k - 1)].for_each([&](std::uint64_t key, std::uint32_t c) {
        context_stats& s = ctx[key >> bits];
        s.total += c;
        ++s.seen[std::min<std::uint32_t>(c, 3) - 1];
        if (c <= 4) ++n[c];
      });
      contexts[std::size_t(k - 1)] = std::move(ctx);
      std::array<double, 3> d = {0.5, 1.0, 1.5};
      if (n[1] && n[2] && n[3] && n[4]) {
        const double y = double(n[1]) / double(n[1] + 2 * n[2]);
        for (int r = 1; r <= 3; ++r)
          d[std::size_t(r - 1)] = std::clamp(r - (r + 1) * y * double(n[std::size_t(r + 1)]) / double(n[std::size_t(r)]),
                                             0.0, double(r));
      }
      discount[std::size_t(k - 1)] = d;
    }
  }

  // P(w | ctx) with ctx the order-1 previous ids, oldest first.
  [[nodiscard]] double prob(const std::uint64_t* ctx, std::uint64_t w) const noexcept {
    double p = 1.0 / double(vocab);
    std::uint64_t key = 0;  // the last k-1 ids of ctx
    for (int k = 1; k <= order; ++k) {
      if (k > 1) key |= ctx[order - k] << (bits * (k - 2));
      const context_stats* s = contexts[std::size_t(k - 1)].find(key);
      if (!s) break;  // an unseen context: no longer one was seen either
      const std::uint32_t* c = grams[std::size_t(k - 1)].find((key << bits) | w);
      const std::array<double, 3>& d = discount[std::size_t(k - 1)];
      const double gamma = (d[0] * s->seen[0] + d[1] * s->seen[1] + d[2] * s->seen[2]) / s->total;
      const double kept = c ? std::max(double(*c) - d[std::min<std::uint32_t>(*c, 3) - 1], 0.0) : 0.0;
      p = kept / s->total + gamma * p;
    }
    return p;
  }

  void check_id(std::int32_t id) const {
    if (id < 0 || id >= vocab)
      cinch::detail::fail(errc::invalid_argument, "prompt::ngram_model", "token id ", id, " is outside [0, ", vocab, ")");
  }
};

ngram_model ngram_model::train(std::span<const std::vector<std::int32_t>> sequences, std::int64_t vocab_size, int order) {
  constexpr std::string_view fn = "prompt::ngram_model::train";
  if (vocab_size < 1 || vocab_size >= (std::int64_t{1} << 31) - 1)
    cinch::detail::fail(errc::invalid_argument, fn, "vocab_size must be in [1, 2^31 - 1), got ", vocab_size);
  if (order < 1 || order * std::bit_width(std::uint64_t(vocab_size) + 1) > 64)
    cinch::detail::fail(errc::invalid_argument, fn, "order must be in [1, ", 64 / std::bit_width(std::uint64_t(vocab_size) + 1),
                        "] for vocab_size ", vocab_size, ", got ", order);
  auto p = std::make_shared<impl>(order, vocab_size);
  const std::uint64_t mask = order * p->bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << (order * p->bits)) - 1;
  std::size_t total = 0;
  for (const auto& s : sequences) total += s.size();
  detail::flat_map<std::uint32_t> counts(total / 2);
  for (const auto& seq : sequences) {
    std::uint64_t key = 0;  // the last order ids, boundary-padded
    for (int i = 0; i < order - 1; ++i) key = (key << p->bits) | p->boundary();
    for (const std::int32_t id : seq) {
      if (id < 0 || id >= vocab_size)
        cinch::detail::fail(errc::invalid_argument, fn, "token id ", id, " is outside [0, ", vocab_size, ")");
      key = ((key << p->bits) | std::uint64_t(id)) & mask;
      ++counts[key];
    }
  }
  p->grams[std::size_t(order - 1)] = std::move(counts);
  p->finish();
  return ngram_model(std::move(p));
}

ngram_model ngram_model::train(const tokenizer& tok, std::span<const std::string_view> documents, int order) {
  std::vector<std::vector<std::int32_t>> sequences;
  for (std::string_view doc : documents) {
    std::size_t pos = 0;
    while (pos < doc.size()) {
      // A paragraph ends at a blank line: "\n", optional spaces or tabs, "\n".
      std::size_t end = doc.size(), next = doc.size();
      for (std::size_t nl = doc.find('\n', pos); nl != std::string_view::npos; nl = doc.find('\n', nl + 1)) {
        std::size_t j = nl + 1;
        while (j < doc.size() && (doc[j] == ' ' || doc[j] == '\t' || doc[j] == '\r')) ++j;
        if (j < doc.size() && doc[j] == '\n') {
          end = nl, next = j + 1;
          break;
        }
      }
      std::vector<std::int32_t> ids = ids_of(tok.encode(doc.substr(pos, end - pos)));
      if (!ids.empty()) sequences.push_back(std::move(ids));
      pos = next;
    }
  }
  return train(sequences, tok.vocab_size(), order);
}

std::vector<std::byte> ngram_model::to_bytes() const {
  std::vector<std::byte> out;
  io::stream_writer stream(out, stream_kind, stream_version);
  io::byte_writer head;
  head.write(std::uint32_t(impl_->order));
  head.write(std::uint64_t(impl_->vocab));
  stream.add(io::tag{"HEAD"}, head.bytes());
  std::vector<std::pair<std::uint64_t, std::uint32_t>> entries;
  impl_->grams.back().for_each([&](std::uint64_t k, std::uint32_t c) { entries.emplace_back(k, c); });
  std::sort(entries.begin(), entries.end());
  io::byte_writer body;
  put_varint(body, entries.size());
  std::uint64_t prev = 0;
  for (const auto& [k, c] : entries) {
    put_varint(body, k - prev);
    put_varint(body, c);
    prev = k;
  }
  stream.add(io::tag{"GRAM"}, body.bytes());
  stream.finish();
  return out;
}

ngram_model ngram_model::from_bytes(std::span<const std::byte> bytes) {
  constexpr std::string_view fn = "prompt::ngram_model::from_bytes";
  const io::stream_reader stream(bytes, stream_kind, stream_version);
  io::byte_reader head = stream.open(io::tag{"HEAD"});
  const auto order = head.read<std::uint32_t>();
  const auto vocab = head.read<std::uint64_t>();
  head.expect_end();
  if (vocab < 1 || vocab >= (std::uint64_t{1} << 31) - 1 || order < 1 || order * std::bit_width(vocab + 1) > 64)
    cinch::detail::fail(errc::corrupt_data, fn, "order ", order, " and vocab_size ", vocab, " do not fit a model");
  auto p = std::make_shared<impl>(int(order), std::int64_t(vocab));
  io::byte_reader body = stream.open(io::tag{"GRAM"});
  const std::uint64_t n = get_varint(body);
  if (n > body.remaining() / 2)
    cinch::detail::fail(errc::corrupt_data, fn, n, " n-grams cannot fit in ", body.remaining(), " bytes");
  detail::flat_map<std::uint32_t> counts{std::size_t(n)};
  std::uint64_t key = 0;
  const std::uint64_t id_mask = (std::uint64_t{1} << p->bits) - 1;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t delta = get_varint(body), c = get_varint(body);
    if ((i > 0 && delta == 0) || c == 0 || c > 0xFFFFFFFFu || delta > ~key)
      cinch::detail::fail(errc::corrupt_data, fn, "n-gram ", i, " is out of order or has count ", c);
    key += delta;
    if (order * std::uint32_t(p->bits) < 64 && (key >> (order * std::uint32_t(p->bits))) != 0)
      cinch::detail::fail(errc::corrupt_data, fn, "n-gram ", i, " has bits above its ", order, " ids");
    for (std::uint32_t j = 0; j < order; ++j) {  // boundary ids only as padding, never as a word
      const std::uint64_t id = (key >> (p->bits * j)) & id_mask;
      if (id > vocab || (j == 0 && id == vocab))
        cinch::detail::fail(errc::corrupt_data, fn, "n-gram ", i, " holds id ", id, " outside the vocabulary");
    }
    counts[key] = std::uint32_t(c);
  }
  body.expect_end();
  p->grams.back() = std::move(counts);
  p->finish();
  return ngram_model(std::move(p));
}

void ngram_model::save(const std::filesystem::path& path) const {
  const std::vector<std::byte> bytes = to_bytes();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!out) cinch::detail::fail(errc::invalid_argument, "prompt::ngram_model::save", "cannot write '", path.string(), "'");
}

ngram_model ngram_model::load(const std::filesystem::path& path) {
  const std::string bytes = detail::read_file(path, "prompt::ngram_model::load");
  return from_bytes(std::as_bytes(std::span<const char>(bytes)));
}

double ngram_model::log_prob(std::span<const std::int32_t> context, std::int32_t token) const {
  impl_->check_id(token);
  std::array<std::uint64_t, 64> ctx;
  const std::size_t n = std::size_t(impl_->order - 1);
  for (std::size_t i = 0; i < n; ++i) {
    const std::ptrdiff_t j = std::ptrdiff_t(context.size()) - std::ptrdiff_t(n) + std::ptrdiff_t(i);
    if (j >= 0) impl_->check_id(context[std::size_t(j)]);
    ctx[i] = j >= 0 ? std::uint64_t(context[std::size_t(j)]) : impl_->boundary();
  }
  return std::log(impl_->prob(ctx.data(), std::uint64_t(token)));
}

std::vector<float> ngram_model::log_probs(std::span<const std::int32_t> prefix, std::span<const std::int32_t> tokens) const {
  const std::size_t n = std::size_t(impl_->order - 1);
  // A sliding window: the boundary padding, the tail of the prefix, then the tokens.
  std::vector<std::uint64_t> window(n, impl_->boundary());
  const std::size_t skip = prefix.size() > n ? prefix.size() - n : 0;
  for (std::size_t i = skip; i < prefix.size(); ++i) {
    impl_->check_id(prefix[i]);
    window.push_back(std::uint64_t(prefix[i]));
  }
  for (const std::int32_t t : tokens) impl_->check_id(t);
  window.insert(window.end(), tokens.begin(), tokens.end());
  const std::size_t start = window.size() - tokens.size() - n;
  std::vector<float> out(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i)
    out[i] = float(std::log(impl_->prob(window.data() + start + i, std::uint64_t(tokens[i]))));
  return out;
}

double ngram_model::perplexity(std::span<const std::int32_t> tokens) const {
  if (tokens.empty()) return 1.0;
  const std::vector<float> lp = log_probs({}, tokens);
  double sum = 0;
  for (const float v : lp) sum += double(v);
  return std::exp(-sum / double(tokens.size()));
}

int ngram_model::order() const noexcept { return impl_->order; }
std::int64_t ngram_model::vocab_size() const noexcept { return impl_->vocab; }

std::int64_t ngram_model::ngrams(int n) const {
  if (n < 1 || n > impl_->order)
    cinch::detail::fail(errc::invalid_argument, "prompt::ngram_model::ngrams", "n must be in [1, ", impl_->order,
                        "], got ", n);
  return std::int64_t(impl_->grams[std::size_t(n - 1)].size());
}

}  // namespace cinch::prompt
