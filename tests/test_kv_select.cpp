// Eviction selectors and kv::top_k: the rank-key order, hand-computed selections,
// the reference against a sorting oracle, the Highway kernel against the reference
// on every target (odd sizes, ties, NaN, signed zeros, strided rows, the sample
// fallback), exact budgets on random ragged heads, the AdaKV safeguard, the
// PyramidKV schedule by hand, ChunkKV with a trailing partial chunk, and every error.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/kv/select.hpp>
#include <cinch/ref/topk.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <vector>

#include "cpu_targets.hpp"
#include "error_matchers.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
using cinch::kv::budget;
using cinch::kv::head_scores;
using cinch::kv::keep_list;
using cinch::kv::protection;

namespace {

constexpr float qnan = std::numeric_limits<float>::quiet_NaN();
constexpr float inf = std::numeric_limits<float>::infinity();

// The ranking spelled out with comparisons, independent of rank_key: true when a ranks above b.
bool ranks_above(float a, std::int64_t ia, float b, std::int64_t ib) {
  if (std::isnan(a) != std::isnan(b)) return std::isnan(b);
  if (!std::isnan(a) && a != b) return a > b;  // -0.0 == +0.0: a tie
  return ia < ib;
}

// Oracle: sort every index by the ranking, take k, sort ascending.
std::vector<std::int32_t> oracle_top_k(const float* x, std::int64_t n, std::int64_t k) {
  std::vector<std::int32_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return ranks_above(x[a], a, x[b], b); });
  order.resize(static_cast<std::size_t>(k));
  std::sort(order.begin(), order.end());
  return order;
}

std::vector<std::int32_t> run_top_k(const std::vector<float>& x, std::int64_t rows, std::int64_t n, std::int64_t k,
                                    std::int64_t row_stride) {
  std::vector<std::int32_t> idx(static_cast<std::size_t>(rows * k), -7);
  cinch::kv::top_k(tensor_view(x.data(), dtype::f32, {rows, n}, {row_stride, 1}), k,
                   tensor_view(idx.data(), dtype::i32, {rows, k}));
  return idx;
}

std::vector<std::int32_t> ref_top_k(const std::vector<float>& x, std::int64_t n, std::int64_t k) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(k));
  cinch::ref::top_k_row(x.data(), n, k, out.data());
  return out;
}

// Score sets that stress the ranking: distinct, few distinct values (ties),
// NaN/inf/signed zeros, sorted up, sorted down, all equal, all NaN.
std::vector<float> make_scores(int kind, std::int64_t count, std::mt19937& rng) {
  std::vector<float> x(static_cast<std::size_t>(count));
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> small(0, 5);
  for (std::int64_t i = 0; i < count; ++i) {
    float& v = x[static_cast<std::size_t>(i)];
    switch (kind) {
      case 0: v = normal(rng); break;
      case 1: v = float(small(rng)) * 0.5f; break;
      case 2: {
        const float specials[] = {qnan, -qnan, inf, -inf, 0.0f, -0.0f, 1.0f, -1.0f, 1e-45f, -1e-45f};
        v = small(rng) < 3 ? specials[rng() % 10] : normal(rng);
        break;
      }
      case 3: v = float(i); break;
      case 4: v = -float(i); break;
      case 5: v = 2.0f; break;
      default: v = qnan; break;
    }
  }
  return x;
}

// Independent oracle of the selectors: per head, protected tokens plus the best
// `extra(h)` others; then the best `pooled` of everything left, ranked by score,
// head, token.
struct token_ref {
  std::size_t head;
  std::int32_t index;
};

std::vector<keep_list> oracle_select(const std::vector<head_scores>& heads, protection p,
                                     const std::vector<std::int64_t>& per_head_total, std::int64_t pooled) {
  std::vector<keep_list> out(heads.size());
  std::vector<token_ref> rest;
  for (std::size_t h = 0; h < heads.size(); ++h) {
    const auto n = std::int64_t(heads[h].size());
    const std::int64_t sinks = std::min<std::int64_t>(p.sinks, n), window = std::min<std::int64_t>(p.window, n - sinks);
    std::vector<std::int32_t> others;
    for (std::int64_t i = 0; i < n; ++i) {
      if (i < sinks || i >= n - window) out[h].push_back(std::int32_t(i));
      else others.push_back(std::int32_t(i));
    }
    std::sort(others.begin(), others.end(),
              [&](std::int32_t a, std::int32_t b) { return ranks_above(heads[h][a], a, heads[h][b], b); });
    const std::int64_t extra = std::max<std::int64_t>(0, per_head_total[h] - std::int64_t(out[h].size()));
    for (std::size_t j = 0; j < others.size(); ++j) {
      if (std::int64_t(j) < extra) out[h].push_back(others[j]);
      else rest.push_back({h, others[j]});
    }
  }
  std::stable_sort(rest.begin(), rest.end(), [&](const token_ref& a, const token_ref& b) {
    const float sa = heads[a.head][a.index], sb = heads[b.head][b.index];
    if (std::isnan(sa) != std::isnan(sb)) return std::isnan(sb);
    if (!std::isnan(sa) && sa != sb) return sa > sb;
    return a.head != b.head ? a.head < b.head : a.index < b.index;
  });
  for (std::int64_t j = 0; j < pooled && j < std::int64_t(rest.size()); ++j)
    out[rest[std::size_t(j)].head].push_back(rest[std::size_t(j)].index);
  for (keep_list& k : out) std::sort(k.begin(), k.end());
  return out;
}

std::vector<head_scores> random_heads(std::mt19937& rng, std::size_t count, int max_len) {
  std::vector<head_scores> heads(count);
  std::uniform_int_distribution<int> len(0, max_len), kind(0, 2);
  for (head_scores& h : heads) {
    const std::vector<float> x = make_scores(kind(rng), len(rng), rng);
    h.assign(x.begin(), x.end());
  }
  return heads;
}

void force_simd(bool simd) {
  if (simd) cinch::force_backend(std::nullopt);
  else cinch::force_backend(cinch::backend_kind::ref);
}

}  // namespace

TEST_CASE("rank_key orders NaN < -inf < negatives < zeros < positives < inf", "[select]") {
  using cinch::ref::rank_key;
  CHECK(rank_key(qnan) == 0u);
  CHECK(rank_key(-qnan) == 0u);
  CHECK(rank_key(-inf) == 0x007FFFFFu);
  CHECK(rank_key(-0.0f) == rank_key(0.0f));
  CHECK(rank_key(0.0f) == 0x80000000u);
  const float ordered[] = {-inf, -3.0f, -1e-45f, 0.0f, 1e-45f, 1.0f, 3.0f, inf};
  for (std::size_t i = 0; i + 1 < std::size(ordered); ++i) CHECK(rank_key(ordered[i]) < rank_key(ordered[i + 1]));
  CHECK(rank_key(qnan) < rank_key(-inf));
}

TEST_CASE("reference top_k: hand-computed rows", "[select]") {
  using V = std::vector<std::int32_t>;
  CHECK(ref_top_k({3, 1, 4, 1, 5, 9, 2, 6}, 8, 3) == V{4, 5, 7});   // 5, 9, 6
  CHECK(ref_top_k({1, 2, 2, 2, 0}, 5, 2) == V{1, 2});              // ties: lower index
  CHECK(ref_top_k({qnan, -inf, qnan}, 3, 2) == V{0, 1});             // -inf, then the first NaN
  CHECK(ref_top_k({qnan, -inf, qnan}, 3, 1) == V{1});
  CHECK(ref_top_k({-0.0f, 0.0f}, 2, 1) == V{0});                   // the zeros tie
  CHECK(ref_top_k({0.0f, -0.0f}, 2, 1) == V{0});
  CHECK(ref_top_k({-1e-45f, -0.0f, 1e-45f}, 3, 2) == V{1, 2});
  CHECK(ref_top_k({5, 4, 3}, 3, 3) == V{0, 1, 2});                 // k == n
  CHECK(ref_top_k({7}, 1, 1) == V{0});
}

TEST_CASE("reference top_k equals the sorting oracle", "[select]") {
  std::mt19937 rng(11);
  for (int kind = 0; kind < 7; ++kind)
    for (std::int64_t n : {1, 2, 5, 33, 100, 517}) {
      const std::vector<float> x = make_scores(kind, n, rng);
      for (std::int64_t k : {std::int64_t(1), n / 3 + 1, n - 1, n}) {
        if (k < 1) continue;
        INFO("kind " << kind << " n " << n << " k " << k);
        CHECK(ref_top_k(x, n, k) == oracle_top_k(x.data(), n, k));
      }
    }
}

TEST_CASE("top_k: the Highway kernel gives the reference's indices on every target", "[select]") {
  std::mt19937 rng(5);
  const std::int64_t rows = 3;
  for_each_cpu_target([&](const std::string&) {
    for (int kind = 0; kind < 7; ++kind)
      for (std::int64_t n : {1, 7, 31, 100, 257, 1000, 4099, 8191, 33333}) {
        const std::int64_t stride = n + 5;
        const std::vector<float> x = make_scores(kind, rows * stride, rng);
        for (std::int64_t k : {std::int64_t(1), std::int64_t(2), n / 3, n / 32, n - 1, n}) {
          if (k < 1 || k > n) continue;
          INFO("kind " << kind << " n " << n << " k " << k);
          const auto simd = run_top_k(x, rows, n, k, stride);
          std::vector<std::int32_t> expected;
          for (std::int64_t r = 0; r < rows; ++r) {
            const std::vector<float> row(x.begin() + r * stride, x.begin() + r * stride + n);
            const auto e = ref_top_k(row, n, k);
            expected.insert(expected.end(), e.begin(), e.end());
          }
          REQUIRE(simd == expected);
        }
      }
  });
}

TEST_CASE("top_k: a misleading sample falls back to every score", "[select]") {
  // The strided sample (every n/1024-th score) sees only large values, so the
  // candidate floor lets through far fewer than k scores: the kernel must redo the pass.
  const std::int64_t n = 16384, k = 100;
  std::vector<float> x(n, 0.0f);
  for (std::int64_t i = 0; i < n; ++i) x[std::size_t(i)] = i % 16 == 0 ? 1000.0f + float(i) : float(i % 97) * 0.01f;
  for_each_cpu_target([&](const std::string&) { CHECK(run_top_k(x, 1, n, k, n) == ref_top_k(x, n, k)); });
  CHECK(ref_top_k(x, n, k) == oracle_top_k(x.data(), n, k));
}

TEST_CASE("top_k: the reference backend and k = 0", "[select]") {
  std::mt19937 rng(3);
  const std::vector<float> x = make_scores(2, 2 * 999, rng);
  cinch::force_backend(cinch::backend_kind::ref);
  const auto forced = run_top_k(x, 2, 999, 40, 999);
  cinch::force_backend(std::nullopt);
  CHECK(forced == run_top_k(x, 2, 999, 40, 999));
  std::vector<std::int32_t> none;
  cinch::kv::top_k(tensor_view(x.data(), dtype::f32, {2, 999}), 0, tensor_view(none.data(), dtype::i32, {2, 0}));
}

TEST_CASE("top_k: bad arguments", "[select]") {
  std::vector<float> x(12, 1.0f);
  std::vector<std::int32_t> idx(12);
  std::vector<std::uint16_t> half(12);
  const tensor_view scores(x.data(), dtype::f32, {3, 4});
  require_error([&] { cinch::kv::top_k(tensor_view(half.data(), dtype::f16, {3, 4}), 2, tensor_view(idx.data(), dtype::i32, {3, 2})); },
                errc::invalid_argument, {"kv::top_k", "scores", "f32", "f16"});
  require_error([&] { cinch::kv::top_k(scores, 2, tensor_view(x.data() + 0, dtype::f32, {3, 2})); },
                errc::invalid_argument, {"kv::top_k", "indices", "i32", "f32"});
  require_error([&] { cinch::kv::top_k(scores, 5, tensor_view(idx.data(), dtype::i32, {3, 5})); },
                errc::invalid_argument, {"kv::top_k", "k must be in [0, 4]", "got 5"});
  require_error([&] { cinch::kv::top_k(scores, -1, tensor_view(idx.data(), dtype::i32, {3, 2})); },
                errc::invalid_argument, {"kv::top_k", "k must be in [0, 4]", "got -1"});
  require_error([&] { cinch::kv::top_k(scores, 2, tensor_view(idx.data(), dtype::i32, {3, 3})); },
                errc::shape_mismatch, {"kv::top_k", "indices", "[3, 2]", "[3, 3]"});
  require_error([&] { cinch::kv::top_k(tensor_view(x.data(), dtype::f32, {}), 0, tensor_view(idx.data(), dtype::i32, {})); },
                errc::shape_mismatch, {"kv::top_k", "scores", "rank 0"});
  require_error([&] { cinch::kv::top_k(tensor_view(x.data(), dtype::f32, {3, 4}, {1, 3}), 2, tensor_view(idx.data(), dtype::i32, {3, 2})); },
                errc::unsupported, {"kv::top_k", "scores", "stride 1"});
  const std::int32_t* ro = idx.data();
  require_error([&] { cinch::kv::top_k(scores, 2, tensor_view(ro, dtype::i32, {3, 2})); }, errc::invalid_argument,
                {"kv::top_k", "indices", "writable"});
  require_error([&] { cinch::kv::top_k(scores, 2, tensor_view(idx.data(), dtype::i32, {3, 2}, {0, 1})); },
                errc::invalid_argument, {"kv::top_k", "indices", "alias itself"});
}

TEST_CASE("budget: counts and validation", "[select]") {
  CHECK(budget::ratio(0.25).count(4096) == 1024);
  CHECK(budget::ratio(0.29).count(100) == 29);  // 0.29 * 100 = 28.999999999999996 in double
  CHECK(budget::ratio(0.25).count(3) == 1);     // never empties a head
  CHECK(budget::ratio(1.0).count(7) == 7);
  CHECK(budget::ratio(0.5).count(0) == 0);
  CHECK(budget::tokens(512).count(100) == 100);
  CHECK(budget::tokens(512).count(4096) == 512);
  CHECK(budget::ratio(0.5).is_ratio());
  CHECK(budget::tokens(3).token_count() == 3);
  require_error([] { (void)budget::ratio(0.0); }, errc::invalid_argument, {"kv::budget::ratio", "(0, 1]", "got 0"});
  require_error([] { (void)budget::ratio(-0.5); }, errc::invalid_argument, {"kv::budget::ratio", "got -0.5"});
  require_error([] { (void)budget::ratio(1.5); }, errc::invalid_argument, {"kv::budget::ratio", "got 1.5"});
  require_error([] { (void)budget::ratio(double(qnan)); }, errc::invalid_argument, {"kv::budget::ratio", "got nan"});
  require_error([] { (void)budget::tokens(0); }, errc::invalid_argument, {"kv::budget::tokens", ">= 1", "got 0"});
}

TEST_CASE("select_top_k: hand-computed heads", "[select]") {
  const std::vector<head_scores> heads = {{0.5f, 0.1f, 0.9f, 0.3f, 0.7f, 0.2f}, {1, 1, 1}, {qnan, 1, qnan, 0}, {}};
  auto kept = cinch::kv::select_top_k(heads, budget::tokens(3));
  CHECK(kept[0] == keep_list{0, 2, 4});
  CHECK(kept[1] == keep_list{0, 1, 2});
  CHECK(kept[2] == keep_list{0, 1, 3});  // NaN lowest, the first NaN wins the tie
  CHECK(kept[3].empty());
  kept = cinch::kv::select_top_k(heads, budget::tokens(2));
  CHECK(kept[1] == keep_list{0, 1});
  CHECK(kept[2] == keep_list{1, 3});
  // Protection counts toward the budget: {0, 5} protected, plus the best one of 1..4.
  kept = cinch::kv::select_top_k(heads, budget::tokens(3), {1, 1});
  CHECK(kept[0] == keep_list{0, 2, 5});
  // Protection above the budget keeps the protected tokens only.
  kept = cinch::kv::select_top_k(heads, budget::tokens(3), {2, 2});
  CHECK(kept[0] == keep_list{0, 1, 4, 5});
  CHECK(kept[1] == keep_list{0, 1, 2});
  CHECK(cinch::kv::select_top_k(heads, budget::ratio(0.5))[0] == keep_list{0, 2, 4});
}

TEST_CASE("select_top_k: exact budgets on random ragged heads", "[select]") {
  std::mt19937 rng(21);
  for (bool simd : {false, true}) {
    force_simd(simd);
    for (int trial = 0; trial < 40; ++trial) {
      const auto heads = random_heads(rng, 1 + rng() % 9, 600);
      const budget b = trial % 2 ? budget::ratio(0.05 + 0.9 * double(rng() % 100) / 100.0)
                                 : budget::tokens(1 + std::int64_t(rng() % 300));
      const protection p{int(rng() % 5), int(rng() % 40)};
      const auto kept = cinch::kv::select_top_k(heads, b, p);
      std::vector<std::int64_t> totals;
      for (std::size_t h = 0; h < heads.size(); ++h) {
        const auto n = std::int64_t(heads[h].size());
        const std::int64_t prot = std::min<std::int64_t>(n, std::int64_t(p.sinks) + p.window);
        CHECK(std::int64_t(kept[h].size()) == std::max(b.count(n), prot));
        CHECK(std::is_sorted(kept[h].begin(), kept[h].end()));
        CHECK(std::adjacent_find(kept[h].begin(), kept[h].end()) == kept[h].end());
        totals.push_back(b.count(n));
      }
      CHECK(kept == oracle_select(heads, p, totals, 0));
    }
  }
  force_simd(true);
}

TEST_CASE("select_global: AdaKV by hand", "[select]") {
  const std::vector<head_scores> heads = {{9, 8, 7, 6}, {0, 1, 2, 3}};
  auto kept = cinch::kv::select_global(heads, budget::tokens(4), 0.0);
  CHECK(kept[0] == keep_list{0, 1, 2, 3});
  CHECK(kept[1].empty());
  // floor 0.5: each head's share is 4 * 4 / 8 = 2, its safeguard floor(0.5 * 2) = 1.
  kept = cinch::kv::select_global(heads, budget::tokens(4), 0.5);
  CHECK(kept[0] == keep_list{0, 1, 2});
  CHECK(kept[1] == keep_list{3});
  // Pooled ties go to the lower head.
  const std::vector<head_scores> equal = {{1, 1}, {1, 1}};
  CHECK(cinch::kv::select_global(equal, budget::tokens(2), 0.0) == std::vector<keep_list>{{0, 1}, {}});
  // Ragged shares: 6 of 12 tokens, head 0 (8 tokens) has share 4 -> safeguard 2,
  // head 1 (4 tokens) has share 2 -> safeguard 1; the other 3 go to the pool's best.
  const std::vector<head_scores> ragged = {{5, 5, 5, 5, 5, 5, 5, 5}, {1, 2, 3, 4}};
  kept = cinch::kv::select_global(ragged, budget::ratio(0.5), 0.5);
  CHECK(kept[0] == keep_list{0, 1, 2, 3, 4});
  CHECK(kept[1] == keep_list{3});
  // Protection counts toward the safeguard and stays when it exceeds the total.
  kept = cinch::kv::select_global(heads, budget::tokens(2), 0.0, {1, 1});
  CHECK(kept[0] == keep_list{0, 3});
  CHECK(kept[1] == keep_list{0, 3});
}

TEST_CASE("select_global: floor respected and total exact on random ragged heads", "[select]") {
  std::mt19937 rng(8);
  for (bool simd : {false, true}) {
    force_simd(simd);
    for (int trial = 0; trial < 40; ++trial) {
      const auto heads = random_heads(rng, 1 + rng() % 12, 400);
      const budget b = trial % 2 ? budget::ratio(0.05 + 0.9 * double(rng() % 100) / 100.0)
                                 : budget::tokens(1 + std::int64_t(rng() % 900));
      const double floor_share = trial % 3 == 0 ? 0.2 : double(rng() % 101) / 100.0;
      const protection p{int(rng() % 3), int(rng() % 10)};
      const auto kept = cinch::kv::select_global(heads, b, floor_share, p);
      std::int64_t all = 0;
      for (const auto& h : heads) all += std::int64_t(h.size());
      const std::int64_t total = b.count(all);
      std::vector<std::int64_t> mandatory;
      std::int64_t mandatory_sum = 0, kept_sum = 0;
      for (std::size_t h = 0; h < heads.size(); ++h) {
        const auto n = std::int64_t(heads[h].size());
        const double share = double(total) * double(n) / double(all);
        const std::int64_t safe = std::min<std::int64_t>(n, std::int64_t(std::floor(floor_share * share + 1e-9)));
        const std::int64_t prot = std::min<std::int64_t>(n, std::int64_t(p.sinks) + p.window);
        mandatory.push_back(std::max(safe, prot));
        mandatory_sum += mandatory.back();
        kept_sum += std::int64_t(kept[h].size());
        CHECK(std::int64_t(kept[h].size()) >= safe);  // the AdaKV floor
        CHECK(std::is_sorted(kept[h].begin(), kept[h].end()));
      }
      CHECK(kept_sum == std::max(total, mandatory_sum));
      CHECK(kept == oracle_select(heads, p, mandatory, std::max<std::int64_t>(0, total - mandatory_sum)));
    }
  }
  force_simd(true);
}

TEST_CASE("select_threshold: by hand", "[select]") {
  const std::vector<head_scores> heads = {{0.5f, qnan, 0.2f, 0.7f}, {qnan, 0.0f}};
  auto kept = cinch::kv::select_threshold(heads, 0.5f);
  CHECK(kept[0] == keep_list{0, 3});  // >= keeps the equal score; NaN never passes
  CHECK(kept[1].empty());
  kept = cinch::kv::select_threshold(heads, 0.6f, {1, 1});
  CHECK(kept[0] == keep_list{0, 3});
  CHECK(kept[1] == keep_list{0, 1});  // protected NaN and 0.0
  CHECK(cinch::kv::select_threshold(heads, -inf)[0] == keep_list{0, 2, 3});
}

TEST_CASE("select_chunks: ChunkKV with a trailing partial chunk", "[select]") {
  // 7 tokens in chunks of 3: {0,1,2}, {3,4,5}, {6}. Per-token sums over heads:
  // 2 2 2 | 3 3 3 | 4, so the chunk means are 2, 3, 4 (sums would rank chunk 1 first).
  const std::vector<head_scores> heads = {{1, 1, 1, 0, 0, 0, 4}, {1, 1, 1, 3, 3, 3, 0}};
  auto kept = cinch::kv::select_chunks(heads, budget::ratio(0.34), 3);  // floor(3 * 0.34) = 1 chunk
  CHECK(kept == std::vector<keep_list>{{6}, {6}});
  kept = cinch::kv::select_chunks(heads, budget::ratio(0.67), 3);  // 2 chunks
  CHECK(kept[0] == keep_list{3, 4, 5, 6});
  CHECK(kept[1] == kept[0]);
  CHECK(cinch::kv::select_chunks(heads, budget::ratio(0.1), 3)[0] == keep_list{6});   // max(1, 0)
  CHECK(cinch::kv::select_chunks(heads, budget::tokens(6), 3)[0] == keep_list{3, 4, 5, 6});  // 6 / 3 chunks
  CHECK(cinch::kv::select_chunks(heads, budget::tokens(1), 3)[0] == keep_list{6});
  CHECK(cinch::kv::select_chunks(heads, budget::ratio(1.0), 3)[0] == keep_list{0, 1, 2, 3, 4, 5, 6});
  // A protected sink forces chunk 0, which counts toward the single chunk kept.
  CHECK(cinch::kv::select_chunks(heads, budget::ratio(0.34), 3, {1, 0})[0] == keep_list{0, 1, 2});
  CHECK(cinch::kv::select_chunks(heads, budget::ratio(0.67), 3, {1, 0})[0] == keep_list{0, 1, 2, 6});
  // A window reaching into chunk 1 forces chunks 1 and 2.
  CHECK(cinch::kv::select_chunks(heads, budget::ratio(0.34), 3, {0, 2})[0] == keep_list{3, 4, 5, 6});
  // NaN makes a chunk lowest; the default chunk is 20 tokens.
  const std::vector<head_scores> with_nan = {{qnan, 9, 9, 1, 1, 1}};
  CHECK(cinch::kv::select_chunks(with_nan, budget::tokens(3), 3)[0] == keep_list{3, 4, 5});
  const std::vector<head_scores> long_head = {head_scores(45, 1.0f)};
  CHECK(cinch::kv::select_chunks(long_head, budget::tokens(20))[0].size() == 20);
  CHECK(cinch::kv::select_chunks({}, budget::tokens(20)).empty());
}

TEST_CASE("pyramid_budgets: the schedule by hand and its fallbacks", "[select]") {
  using V = std::vector<std::int64_t>;
  // b = 190, lo = floor(190 / 20) = 9, hi = 371; C_l = 10 + 371 - floor(l * 362 / 3).
  CHECK(cinch::kv::pyramid_budgets(4, 1000, 200, 10) == V{381, 261, 140, 19});
  // hi = 371 > tokens - window = 290: hi = 290, lo = 380 - 290 = 90; C_l = 10 + 290 - l * 100.
  CHECK(cinch::kv::pyramid_budgets(3, 300, 200, 10) == V{300, 200, 100});
  // beta 2: lo = 95, hi = 285.
  CHECK(cinch::kv::pyramid_budgets(2, 1000, 200, 10, 2.0) == V{295, 105});
  CHECK(cinch::kv::pyramid_budgets(3, 150, 200, 10) == V{150, 150, 150});  // nothing to evict
  CHECK(cinch::kv::pyramid_budgets(1, 1000, 200, 10) == V{200});          // one layer: SnapKV
  CHECK(cinch::kv::pyramid_budgets(3, 1000, 8, 8) == V{8, 8, 8});          // capacity <= window: SnapKV
  require_error([] { (void)cinch::kv::pyramid_budgets(0, 10, 5, 1); }, errc::invalid_argument,
                {"kv::pyramid_budgets", "layers", "got 0"});
  require_error([] { (void)cinch::kv::pyramid_budgets(2, -1, 5, 1); }, errc::invalid_argument,
                {"kv::pyramid_budgets", "tokens", "got -1"});
  require_error([] { (void)cinch::kv::pyramid_budgets(2, 10, 0, 1); }, errc::invalid_argument,
                {"kv::pyramid_budgets", "capacity", "got 0"});
  require_error([] { (void)cinch::kv::pyramid_budgets(2, 10, 5, -1); }, errc::invalid_argument,
                {"kv::pyramid_budgets", "window", "got -1"});
  require_error([] { (void)cinch::kv::pyramid_budgets(2, 10, 5, 1, 0.5); }, errc::invalid_argument,
                {"kv::pyramid_budgets", "beta", "got 0.5"});
  require_error([] { (void)cinch::kv::pyramid_budgets(2, 10, 5, 1, double(inf)); }, errc::invalid_argument,
                {"kv::pyramid_budgets", "beta", "got inf"});
}

TEST_CASE("selectors: bad arguments", "[select]") {
  const std::vector<head_scores> heads = {{1, 2, 3}, {1, 2}};
  const budget b = budget::tokens(1);
  for (const protection bad : {protection{-1, 0}, protection{0, -2}}) {
    const char* what = bad.sinks < 0 ? "protect.sinks" : "protect.window";
    require_error([&] { (void)cinch::kv::select_top_k(heads, b, bad); }, errc::invalid_argument,
                  {"kv::select_top_k", what, ">= 0"});
    require_error([&] { (void)cinch::kv::select_global(heads, b, 0.2, bad); }, errc::invalid_argument,
                  {"kv::select_global", what});
    require_error([&] { (void)cinch::kv::select_threshold(heads, 0.0f, bad); }, errc::invalid_argument,
                  {"kv::select_threshold", what});
    require_error([&] { (void)cinch::kv::select_chunks({heads.data(), 1}, b, 3, bad); }, errc::invalid_argument,
                  {"kv::select_chunks", what});
  }
  require_error([&] { (void)cinch::kv::select_global(heads, b, -0.1); }, errc::invalid_argument,
                {"kv::select_global", "floor_share", "[0, 1]", "got -0.1"});
  require_error([&] { (void)cinch::kv::select_global(heads, b, 1.5); }, errc::invalid_argument,
                {"kv::select_global", "floor_share", "got 1.5"});
  require_error([&] { (void)cinch::kv::select_global(heads, b, double(qnan)); }, errc::invalid_argument,
                {"kv::select_global", "floor_share", "got nan"});
  require_error([&] { (void)cinch::kv::select_threshold(heads, qnan); }, errc::invalid_argument,
                {"kv::select_threshold", "threshold", "NaN"});
  require_error([&] { (void)cinch::kv::select_chunks(heads, b); }, errc::shape_mismatch,
                {"kv::select_chunks", "equal lengths", "heads[0] has 3", "got 2", "heads[1]"});
  require_error([&] { (void)cinch::kv::select_chunks({heads.data(), 1}, b, 0); }, errc::invalid_argument,
                {"kv::select_chunks", "chunk", ">= 1", "got 0"});
}
