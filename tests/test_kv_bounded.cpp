// kv::bounded_cache: decode-time eviction keeps every head at its budget, with
// StreamingLLM's sinks and window, H2O's accumulated attention (checked against
// softmax computed here), TOVA's shared head-averaged choice and KNorm's small
// keys; batches with slack; the kept tokens' positions and values are the
// original ones; bad options are errors.
#include <catch2/catch.hpp>

#include <cinch/kv/bounded.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "error_matchers.hpp"
#include "random_data.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
using namespace cinch::kv;

namespace {

std::vector<std::int32_t> positions_of(const cache& c, int layer, int head) {
  const std::span<const std::int32_t> p = c.positions(layer, head);
  return {p.begin(), p.end()};
}

}  // namespace

TEST_CASE("StreamingLLM keeps the sinks and the most recent tokens at every step", "[kv][bounded]") {
  constexpr int d = 8;
  bounded_cache b({2, 2, d, format{scheme::f32}, format{scheme::f32}}, bounded_options::streaming_llm(10, 4));
  const std::vector<float> x = random_values(2 * d * 50, 1);
  for (int t = 0; t < 50; ++t) {
    const tensor_view kv(x.data() + t * 2 * d, dtype::f32, {2, d});
    for (int l = 0; l < 2; ++l) b.append(l, kv, kv);
    REQUIRE(b.kv().tokens(1, 1) == std::min(t + 1, 10));
  }
  REQUIRE(positions_of(b.kv(), 0, 1) == std::vector<std::int32_t>{0, 1, 2, 3, 44, 45, 46, 47, 48, 49});
  REQUIRE(b.evicted() == 2 * 2 * 40);
  // The kept tokens are the original ones.
  std::vector<float> k(10 * d), v(10 * d);
  b.kv().dequantize(0, 1, tensor_view(k.data(), dtype::f32, {10, d}), tensor_view(v.data(), dtype::f32, {10, d}));
  REQUIRE(k[4 * d] == x[44 * 2 * d + d]);
}

TEST_CASE("slack evicts in batches back to the budget", "[kv][bounded]") {
  constexpr int d = 8;
  bounded_options o = bounded_options::streaming_llm(6, 2);
  o.slack = 3;
  bounded_cache b({1, 1, d, format{scheme::f16}, format{scheme::f16}}, o);
  const std::vector<float> x = random_values(d * 20, 2);
  std::vector<std::int64_t> lengths;
  for (int t = 0; t < 20; ++t) {
    const tensor_view kv(x.data() + t * d, dtype::f32, {1, d});
    b.append(0, kv, kv);
    lengths.push_back(b.kv().tokens(0, 0));
  }
  REQUIRE(lengths == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 6, 7, 8, 9, 6, 7, 8, 9, 6, 7, 8});
  REQUIRE(positions_of(b.kv(), 0, 0) == std::vector<std::int32_t>{0, 1, 14, 15, 16, 17, 18, 19});
}

TEST_CASE("H2O accumulates the softmax attention each token receives and keeps the heavy hitters", "[kv][bounded]") {
  constexpr int d = 4, q_heads = 2;  // two query heads share the one KV head
  bounded_options o = bounded_options::heavy_hitters(4);  // 2 heavy + 2 recent
  bounded_cache b({1, 1, d, format{scheme::f32}, format{scheme::f32}}, o);
  // Token 1 has a key aligned with every query: it stays a heavy hitter.
  const std::vector<float> keys = {0, 0, 0, 0, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1,
                                   -1, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 0};
  const std::vector<float> q = {1, 0.5f, 0, 0, 1, 0, 0.5f, 0};
  std::vector<float> expected(8, 0.0f), out(q.size());
  for (int t = 0; t < 8; ++t) {
    const tensor_view k(keys.data() + t * d, dtype::f32, {1, d});
    b.append(0, k, k);
    const std::vector<std::int32_t> held = positions_of(b.kv(), 0, 0);
    // What H2O adds, computed here in double: the mean over the two query heads
    // of softmax(q . k / sqrt(d)) over the held tokens.
    for (int i = 0; i < q_heads; ++i) {
      std::vector<double> logits;
      double top = -1e300, sum = 0;
      for (const std::int32_t p : held) {
        double dot = 0;
        for (int c = 0; c < d; ++c) dot += double(q[std::size_t(i * d + c)]) * keys[std::size_t(p * d + c)];
        logits.push_back(dot / 2.0);
        top = std::max(top, logits.back());
      }
      for (double& l : logits) sum += l = std::exp(l - top);
      for (std::size_t j = 0; j < held.size(); ++j) expected[std::size_t(held[j])] += float(logits[j] / sum / q_heads);
    }
    b.attend(0, tensor_view(q.data(), dtype::f32, {q_heads, d}), tensor_view(out.data(), dtype::f32, {q_heads, d}));
    const std::span<const float> s = b.scores(0, 0);
    const std::vector<std::int32_t> now = positions_of(b.kv(), 0, 0);
    REQUIRE(s.size() == now.size());
    for (std::size_t j = 0; j < now.size(); ++j) REQUIRE(s[j] == Approx(expected[std::size_t(now[j])]).epsilon(1e-5));
  }
  // Heavy: token 1 (aligned with both queries) and token 0 (attended at every
  // step: H2O's known pull toward early tokens); recent: 6 and 7.
  REQUIRE(positions_of(b.kv(), 0, 0) == std::vector<std::int32_t>{0, 1, 6, 7});
}

TEST_CASE("TOVA keeps the same tokens in every head, KNorm the smallest keys", "[kv][bounded]") {
  constexpr int d = 8, heads = 3;
  bounded_cache tova({1, heads, d, format{scheme::f16}, format{scheme::f16}}, {decode_policy::tova, 5, 0, -1, 0});
  bounded_cache knorm({1, heads, d, format{scheme::f16}, format{scheme::f16}}, {decode_policy::knorm, 5, 0, 1, 0});
  const std::vector<float> x = random_values(heads * d * 30, 3), q = random_values(2 * heads * d, 4);
  std::vector<float> out(q.size());
  for (int t = 0; t < 30; ++t) {
    const tensor_view kv(x.data() + t * heads * d, dtype::f32, {heads, d});
    tova.append(0, kv, kv);
    tova.attend(0, tensor_view(q.data(), dtype::f32, {2 * heads, d}), tensor_view(out.data(), dtype::f32, {2 * heads, d}));
    knorm.append(0, kv, kv);
  }
  for (int h = 1; h < heads; ++h) REQUIRE(positions_of(tova.kv(), 0, h) == positions_of(tova.kv(), 0, 0));
  for (int h = 0; h < heads; ++h) {
    // KNorm with one recent token: the 4 smallest norms among tokens 0..28, and token 29.
    std::vector<std::pair<float, std::int32_t>> norms;
    for (int t = 0; t < 29; ++t) {
      double s = 0;
      for (int c = 0; c < d; ++c) s += std::pow(x[std::size_t((t * heads + h) * d + c)], 2);
      norms.push_back({float(std::sqrt(s)), t});
    }
    std::sort(norms.begin(), norms.end());
    std::vector<std::int32_t> expected;
    for (int i = 0; i < 4; ++i) expected.push_back(norms[std::size_t(i)].second);
    std::sort(expected.begin(), expected.end());
    expected.push_back(29);
    REQUIRE(positions_of(knorm.kv(), 0, h) == expected);
  }
}

TEST_CASE("bounded_cache option errors", "[kv][bounded]") {
  const cache_config c{1, 1, 8, format{scheme::f16}, format{scheme::f16}};
  require_error([&] { bounded_cache b(c, {decode_policy::h2o, 0, 0, -1, 0}); }, errc::invalid_argument,
                {"kv::bounded_cache", "budget", ">= 1", "got 0"});
  require_error([&] { bounded_cache b(c, {decode_policy::h2o, 8, -1, -1, 0}); }, errc::invalid_argument, {"sinks", "got -1"});
  require_error([&] { bounded_cache b(c, {decode_policy::h2o, 8, 0, -1, -2}); }, errc::invalid_argument, {"slack", "got -2"});
  require_error([&] { bounded_cache b(c, {decode_policy::knorm, 8, 4, 5, 0}); }, errc::invalid_argument,
                {"sinks + recent", "<= budget (8)", "got 4 + 5"});
  require_error([&] { bounded_cache b(c, {static_cast<decode_policy>(9), 8, 0, -1, 0}); }, errc::invalid_argument,
                {"policy", "9"});
  bounded_cache b(c, bounded_options::heavy_hitters(4));
  std::vector<float> x(24), y(24);
  require_error([&] { b.append(0, tensor_view(x.data(), dtype::f32, {1, 3, 8}), tensor_view(x.data(), dtype::f32, {1, 3, 8})); },
                errc::shape_mismatch, {"kv::bounded_cache::append", "one decode token", "got [1, 3, 8]"});
  require_error([&] { b.append(0, tensor_view(x.data(), dtype::f32, {2, 8}), tensor_view(x.data(), dtype::f32, {2, 8})); },
                errc::shape_mismatch, {"kv::cache::append"});
  require_error([&] { b.attend(0, tensor_view(x.data(), dtype::f32, {3, 7}), tensor_view(y.data(), dtype::f32, {3, 7})); },
                cinch::errc::shape_mismatch, {"decode_attention"});
  require_error([&] { (void)b.scores(1, 0); }, errc::invalid_argument, {"layer", "got 1"});
}
