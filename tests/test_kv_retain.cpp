// kv::cache::retain (eviction's compaction): kept tokens read back bit-exactly
// with their original positions, the evicted bytes are really gone, attention
// over the compacted cache equals attention over the same subset of the
// uncompressed tokens (RoPE'd at their original positions), KIVI keys regroup
// exactly as a fresh cache would group the kept tokens, and appends, saves and
// mixed-precision heads keep working after eviction.
#include <catch2/catch.hpp>

#include <cinch/kv/attention.hpp>
#include <cinch/kv/cache.hpp>
#include <cinch/kv/select.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "error_matchers.hpp"
#include "random_data.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
using namespace cinch::kv;

namespace {

std::vector<float> dequantized(const cache& c, int layer, int head, bool keys, int part = 0) {
  const std::int64_t n = c.view(layer, head, part).tokens, d = c.config().head_dim;
  std::vector<float> k(std::size_t(n * d)), v(k.size());
  c.dequantize(layer, head, tensor_view(k.data(), dtype::f32, {n, d}), tensor_view(v.data(), dtype::f32, {n, d}), part);
  return keys ? k : v;
}

// Rows `keep` of x [*, d].
std::vector<float> rows_of(const std::vector<float>& x, const std::vector<std::int32_t>& keep, int d) {
  std::vector<float> out;
  for (const std::int32_t t : keep) out.insert(out.end(), x.begin() + t * d, x.begin() + (t + 1) * d);
  return out;
}

std::vector<std::int32_t> random_subset(int n, int keep, unsigned seed) {
  std::vector<std::int32_t> all(std::size_t(n), 0);
  for (int i = 0; i < n; ++i) all[std::size_t(i)] = i;
  std::shuffle(all.begin(), all.end(), std::mt19937(seed));
  all.resize(std::size_t(keep));
  std::sort(all.begin(), all.end());
  return all;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("retain keeps per-token records bit-exactly, their positions, and frees the rest", "[kv][retain]") {
  constexpr int d = 64, n = 150;
  for (scheme s : {scheme::f32, scheme::f16, scheme::bf16, scheme::fp8_e4m3, scheme::int8, scheme::q8_0, scheme::q4_0,
                   scheme::q5_1, scheme::iq4_nl, scheme::kivi4, scheme::kivi2}) {
    INFO("format " << to_string(s));
    // Values (per-token in every format) with a 16-token window mid-slide.
    const format f = is_kivi(s) ? format::kivi(kivi_bits(s), 16, 32) : format{s, 32, 16};
    cache c({1, 2, d, format{scheme::f16}, f});
    const std::vector<float> k = random_values(n * d, 1), v = random_values(n * d, 2);
    std::vector<std::int32_t> positions(n);
    for (int t = 0; t < n; ++t) positions[std::size_t(t)] = 1000 + 3 * t;
    for (int h = 0; h < 2; ++h)
      c.append(0, h, tensor_view(k.data(), dtype::f32, {n, d}), tensor_view(v.data(), dtype::f32, {n, d}), positions);
    const std::vector<float> before = dequantized(c, 0, 0, false);
    const std::int64_t bytes_before = c.bytes(0, 0), other_head = c.bytes(0, 1);

    // Tokens from the packed part and from the window.
    const std::vector<std::int32_t> keep = random_subset(n, 61, 5);
    c.retain(0, 0, keep);
    REQUIRE(c.tokens(0, 0) == 61);
    REQUIRE(c.tokens(0, 1) == n);
    REQUIRE(bitwise_equal(dequantized(c, 0, 0, false), rows_of(before, keep, d)));
    const std::span<const std::int32_t> kept = c.positions(0, 0);
    for (std::size_t i = 0; i < keep.size(); ++i) REQUIRE(kept[i] == positions[std::size_t(keep[i])]);
    // Exactly the evicted tokens' bytes are gone, keys and values: f16 keys are
    // 2d bytes a token; the values' packed records and f32 window rows are
    // counted from the view.
    const stream_view sv = c.view(0, 0).values;
    const std::int64_t value_bytes =
        sv.packed_tokens / sv.unit_tokens * sv.unit_bytes + (sv.tokens - sv.packed_tokens) * 4 * d;
    REQUIRE(c.bytes(0, 0) == 61 * 2 * d + value_bytes);
    REQUIRE(c.bytes(0, 0) < bytes_before * 61 / n + 32 * 4 * d);
    REQUIRE(c.bytes(0, 1) == other_head);
  }
}

TEST_CASE("retained KIVI keys regroup as a fresh cache groups the kept tokens", "[kv][retain]") {
  constexpr int d = 32, n = 100;
  const format kivi = format::kivi(4, 16, 32);
  cache c({1, 1, d, kivi, format{scheme::f32}});
  const std::vector<float> k = random_values(n * d, 11);
  c.append(0, 0, tensor_view(k.data(), dtype::f32, {n, d}), tensor_view(k.data(), dtype::f32, {n, d}));
  const std::vector<float> before = dequantized(c, 0, 0, true);
  const std::vector<std::int32_t> keep = random_subset(n, 57, 3);
  c.retain(0, 0, keep);

  // What the kept tokens were (packed ones dequantized, window ones exact),
  // appended to a fresh cache of the same formats.
  const std::vector<float> kept = rows_of(before, keep, d);
  cache fresh({1, 1, d, kivi, format{scheme::f32}});
  fresh.append(0, 0, tensor_view(kept.data(), dtype::f32, {57, d}), tensor_view(kept.data(), dtype::f32, {57, d}));
  REQUIRE(bitwise_equal(dequantized(c, 0, 0, true), dequantized(fresh, 0, 0, true)));
  REQUIRE(c.view(0, 0).keys.packed_tokens == 32);  // one full window of 32 flushed again, 25 in the window
  REQUIRE(c.bytes(0, 0) == fresh.bytes(0, 0));
}

TEST_CASE("attention after eviction equals attention over the kept subset at original positions", "[kv][retain]") {
  // RoPE'd keys: the cache keeps each kept key as it was rotated for its original
  // position, so the compacted cache must attend exactly like an uncompressed
  // cache built from the same subset.
  constexpr int d = 32, n = 90, kv_heads = 2, q_heads = 4;
  const std::vector<float> raw = random_values(std::size_t(n * d), 21), v = random_values(std::size_t(n * d), 22);
  std::vector<float> k = raw;
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < d / 2; ++i) {
      const double angle = t * std::pow(10000.0, -2.0 * i / d);
      float& a = k[std::size_t(t * d + i)];
      float& b = k[std::size_t(t * d + i + d / 2)];
      const float x = a, y = b;
      a = float(x * std::cos(angle) - y * std::sin(angle));
      b = float(x * std::sin(angle) + y * std::cos(angle));
    }
  cache full({1, kv_heads, d, format{scheme::f32}, format{scheme::f32}});
  for (int h = 0; h < kv_heads; ++h)
    full.append(0, h, tensor_view(k.data(), dtype::f32, {n, d}), tensor_view(v.data(), dtype::f32, {n, d}));
  const std::vector<std::int32_t> keep0 = random_subset(n, 30, 8), keep1 = random_subset(n, 45, 9);
  full.retain(0, 0, keep0);
  full.retain(0, 1, keep1);

  cache subset({1, kv_heads, d, format{scheme::f32}, format{scheme::f32}});
  for (auto [h, keep] : {std::pair{0, &keep0}, std::pair{1, &keep1}}) {
    const std::vector<float> ks = rows_of(k, *keep, d), vs = rows_of(v, *keep, d);
    const auto m = std::int64_t(keep->size());
    subset.append(0, h, tensor_view(ks.data(), dtype::f32, {m, d}), tensor_view(vs.data(), dtype::f32, {m, d}), *keep);
  }
  const std::vector<float> q = random_values(q_heads * d, 23);
  std::vector<float> a(q.size()), b(q.size());
  decode_attention(full, 0, tensor_view(q.data(), dtype::f32, {q_heads, d}), tensor_view(a.data(), dtype::f32, {q_heads, d}));
  decode_attention(subset, 0, tensor_view(q.data(), dtype::f32, {q_heads, d}), tensor_view(b.data(), dtype::f32, {q_heads, d}));
  REQUIRE(bitwise_equal(a, b));
  for (int h = 0; h < kv_heads; ++h) {
    const std::span<const std::int32_t> x = full.positions(0, h), y = subset.positions(0, h);
    REQUIRE(std::equal(x.begin(), x.end(), y.begin(), y.end()));
  }
}

TEST_CASE("appends, saves and loads continue after eviction", "[kv][retain]") {
  constexpr int d = 32;
  cache c({1, 1, d, format::kivi(2, 8, 16), format{scheme::q8_0, 32, 8}});
  const std::vector<float> x = random_values(200 * d, 31);
  c.append(0, 0, tensor_view(x.data(), dtype::f32, {100, d}), tensor_view(x.data(), dtype::f32, {100, d}));
  c.retain(0, 0, random_subset(100, 40, 1));
  c.append(0, 0, tensor_view(x.data() + 100 * d, dtype::f32, {100, d}),
           tensor_view(x.data() + 100 * d, dtype::f32, {100, d}));
  REQUIRE(c.tokens(0, 0) == 140);
  REQUIRE(c.positions(0, 0).back() == 199);  // appends continue after the last position, not the token count
  // The newest values are still exact in the window and the rest are q8_0 records.
  const std::vector<float> values = dequantized(c, 0, 0, false);
  REQUIRE(std::memcmp(values.data() + 132 * d, x.data() + 192 * d, 8 * d * sizeof(float)) == 0);
  std::vector<std::byte> bytes;
  c.save(bytes);
  const cache loaded = cache::load(bytes);
  REQUIRE(bitwise_equal(dequantized(loaded, 0, 0, true), dequantized(c, 0, 0, true)));
  REQUIRE(loaded.bytes() == c.bytes());

  const std::int64_t held = c.bytes();
  c.shrink_to_fit();
  REQUIRE(c.bytes() == held);
}

TEST_CASE("retain across the parts of a mixed-precision head", "[kv][retain]") {
  constexpr int d = 32, n = 40;
  cache c({1, 1, d, format{scheme::f16}, format{scheme::f16}}, mixed_precision{format::kivi(2, 8, 8), format{scheme::int8}});
  const std::vector<float> x = random_values(n * d, 41);
  std::vector<std::uint8_t> salient(n);
  for (int t = 0; t < n; ++t) salient[std::size_t(t)] = t % 4 == 0;  // 10 salient tokens in part 0, 30 in part 1
  c.append(0, 0, tensor_view(x.data(), dtype::f32, {n, d}), tensor_view(x.data(), dtype::f32, {n, d}), {}, salient);
  const std::vector<float> low_values = dequantized(c, 0, 0, false, 1);
  // Indices 0..9 are part 0, 10..39 part 1: keep salient 2, 5 and low 0, 7, 29.
  c.retain(0, 0, std::vector<std::int32_t>{2, 5, 10, 17, 39});
  REQUIRE(c.view(0, 0, 0).tokens == 2);
  REQUIRE(c.view(0, 0, 1).tokens == 3);
  REQUIRE(c.positions(0, 0, 0)[1] == 20);
  REQUIRE(c.positions(0, 0, 1)[2] == 39);
  REQUIRE(bitwise_equal(dequantized(c, 0, 0, false, 1), rows_of(low_values, {0, 7, 29}, d)));
}

TEST_CASE("retain errors leave the head unchanged", "[kv][retain]") {
  cache c({1, 2, 8, format{scheme::f32}, format{scheme::f32}});
  const std::vector<float> x = random_values(5 * 8, 51);
  c.append(0, 0, tensor_view(x.data(), dtype::f32, {5, 8}), tensor_view(x.data(), dtype::f32, {5, 8}));
  using list = std::vector<std::int32_t>;
  require_error([&] { c.retain(0, 0, list{0, 5}); }, errc::invalid_argument,
                {"kv::cache::retain", "keep", "strictly ascending", "[0, 5)", "got 5 at entry 1"});
  require_error([&] { c.retain(0, 0, list{2, 2}); }, errc::invalid_argument, {"got 2 at entry 1"});
  require_error([&] { c.retain(0, 0, list{3, 1}); }, errc::invalid_argument, {"got 1 at entry 1"});
  require_error([&] { c.retain(0, 0, list{-1}); }, errc::invalid_argument, {"got -1 at entry 0"});
  require_error([&] { c.retain(0, 2, list{}); }, errc::invalid_argument, {"head", "got 2"});
  REQUIRE(c.tokens(0, 0) == 5);
  c.retain(0, 0, list{0, 1, 2, 3, 4});
  REQUIRE(c.tokens(0, 0) == 5);
  c.retain(0, 0, list{});
  REQUIRE(c.tokens(0, 0) == 0);
  REQUIRE(c.bytes(0, 0) == 0);
}

TEST_CASE("demote moves evicted tokens to the low-precision part instead of dropping them (MiKV)", "[kv][retain]") {
  constexpr int d = 32, n = 24;
  const format low_keys{scheme::int8}, low_values = format::kivi(2, 8, 0);
  cache c({1, 1, d, format{scheme::f16}, format{scheme::f16}}, mixed_precision{low_keys, low_values});
  const std::vector<float> k = random_values(n * d, 61), v = random_values(n * d, 62);
  c.append(0, 0, tensor_view(k.data(), dtype::f32, {n, d}), tensor_view(v.data(), dtype::f32, {n, d}));
  const std::vector<float> high_k = dequantized(c, 0, 0, true), high_v = dequantized(c, 0, 0, false);
  const std::int64_t bytes_before = c.bytes(0, 0);

  const std::vector<std::int32_t> keep = {0, 3, 4, 10, 23};
  c.demote(0, 0, keep);
  REQUIRE(c.tokens(0, 0) == n);  // nothing dropped
  REQUIRE(c.view(0, 0, 0).tokens == 5);
  REQUIRE(c.view(0, 0, 1).tokens == n - 5);
  REQUIRE(bitwise_equal(dequantized(c, 0, 0, true, 0), rows_of(high_k, keep, d)));
  REQUIRE(c.positions(0, 0, 1)[0] == 1);
  REQUIRE(c.positions(0, 0, 1)[2] == 5);

  // Part 1 holds what its formats make of the demoted tokens' f16 values.
  std::vector<std::int32_t> moved;
  for (int t = 0; t < n; ++t)
    if (!std::binary_search(keep.begin(), keep.end(), t)) moved.push_back(t);
  const std::vector<float> mk = rows_of(high_k, moved, d), mv = rows_of(high_v, moved, d);
  cache low({1, 1, d, low_keys, low_values});
  const auto m = std::int64_t(moved.size());
  low.append(0, 0, tensor_view(mk.data(), dtype::f32, {m, d}), tensor_view(mv.data(), dtype::f32, {m, d}));
  REQUIRE(bitwise_equal(dequantized(c, 0, 0, true, 1), dequantized(low, 0, 0, true)));
  REQUIRE(bitwise_equal(dequantized(c, 0, 0, false, 1), dequantized(low, 0, 0, false)));
  REQUIRE(c.bytes(0, 0) == 5 * 2 * 2 * d + low.bytes(0, 0));
  REQUIRE(c.bytes(0, 0) < bytes_before);

  require_error([&] { c.demote(0, 0, std::vector<std::int32_t>{5}); }, errc::invalid_argument,
                {"kv::cache::demote", "part 0", "[0, 5)", "got 5"});
  cache single({1, 1, d, format{scheme::f16}, format{scheme::f16}});
  require_error([&] { single.demote(0, 0, {}); }, errc::invalid_argument, {"kv::cache::demote", "mixed-precision"});
}

TEST_CASE("a global budget frees real memory: heads keep different counts and hold only their bytes", "[kv][retain]") {
  // AdaKV over the heads of a q8_0 layer whose scores differ in spread: the
  // pooled top-k gives the peaked head fewer tokens than the flat one, and each
  // head then holds exactly its kept records.
  constexpr int d = 32, n = 256, heads = 4;
  cache c({1, heads, d, format{scheme::q8_0}, format{scheme::q8_0}});
  const std::vector<float> x = random_values(std::size_t(heads * n * d), 71);
  c.append(0, tensor_view(x.data(), dtype::f32, {heads, n, d}), tensor_view(x.data(), dtype::f32, {heads, n, d}));
  const std::int64_t record = 2 * (d / 32) * 34;  // a q8_0 block is 34 bytes; keys and values
  REQUIRE(c.bytes() == heads * n * record);

  std::vector<head_scores> scores(heads, head_scores(n));
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int h = 0; h < heads; ++h)
    for (float& s : scores[std::size_t(h)]) s = normal(rng) * float(1 << (2 * h));  // head 3 has the largest spread
  const std::vector<keep_list> keep = select_global(scores, budget::ratio(0.25));
  std::int64_t kept = 0;
  for (int h = 0; h < heads; ++h) {
    c.retain(0, h, keep[std::size_t(h)]);
    REQUIRE(c.bytes(0, h) == std::int64_t(keep[std::size_t(h)].size()) * record);
    kept += std::int64_t(keep[std::size_t(h)].size());
  }
  REQUIRE(kept == heads * n / 4);
  REQUIRE(c.bytes() == kept * record);
  REQUIRE(keep[3].size() > keep[0].size());  // ragged: the budget went where the scores are
}
