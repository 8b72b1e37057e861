// kv::decode_attention: a hand-computed case, agreement with softmax attention
// (in double) over the DEQUANTIZED cache for every format, GQA 1/2/4, ragged and
// empty heads, residual-only heads, split-K, on the reference and every Highway
// target; argument errors; NaN propagation.
#include <catch2/catch.hpp>

#include <cinch/core/backend.hpp>
#include <cinch/kv/attention.hpp>
#include <cinch/kv/bounded.hpp>
#include <cinch/ref/attention.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <random>
#include <string>
#include <vector>

#include "cpu_targets.hpp"
#include "error_matchers.hpp"
#include "random_data.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
using namespace cinch::kv;

// Counts every allocation of the process (the tests below check that decode
// attention and appends after reserve make none).
// Not inlined, so that the compiler sees no new paired with free.
static std::atomic<long> allocations{0};
[[gnu::noinline]] void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
// Every replaceable form that pairs with the deletes below, so that nothing
// (Catch2 uses the nothrow form) is allocated by one allocator and freed by another.
[[gnu::noinline]] void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size ? size : 1);
}
[[gnu::noinline]] void* operator new[](std::size_t size) { return operator new(size); }
[[gnu::noinline]] void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return operator new(size, tag);
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

std::string name_of(const format& f) {
  std::string s(to_string(f.kind));
  if (is_kivi(f.kind)) s += "/G" + std::to_string(f.group);
  if (f.residual) s += "/R" + std::to_string(f.residual);
  if (f.rotate) s += "/rotated";
  return s;
}

// softmax(scale q K^T) V in double over the dequantized cache (every part of a
// mixed-precision head); zeros for an empty head.
std::vector<float> expected_attention(const cache& c, int layer, const std::vector<float>& q, int n_heads, float scale) {
  const int d = c.config().head_dim, group = n_heads / c.config().kv_heads;
  std::vector<float> out(q.size(), 0.0f);
  for (int h = 0; h < n_heads; ++h) {
    const int kvh = h / group;
    std::vector<float> k, v;
    for (int p = 0; p < c.parts(); ++p) {
      const std::int64_t n = c.view(layer, kvh, p).tokens;
      std::vector<float> kp(std::size_t(n * d)), vp(kp.size());
      c.dequantize(layer, kvh, tensor_view(kp.data(), dtype::f32, {n, d}), tensor_view(vp.data(), dtype::f32, {n, d}), p);
      k.insert(k.end(), kp.begin(), kp.end());
      v.insert(v.end(), vp.begin(), vp.end());
    }
    const std::int64_t n = std::int64_t(k.size()) / d;
    if (n == 0) continue;
    std::vector<double> s(static_cast<std::size_t>(n));
    double m = -1e300, sum = 0;
    for (std::int64_t t = 0; t < n; ++t) {
      double dot = 0;
      for (int i = 0; i < d; ++i) dot += double(q[std::size_t(h * d + i)]) * k[std::size_t(t * d + i)];
      s[std::size_t(t)] = scale * dot;
      m = std::max(m, s[std::size_t(t)]);
    }
    std::vector<double> acc(std::size_t(d), 0.0);
    for (std::int64_t t = 0; t < n; ++t) {
      const double p = std::exp(s[std::size_t(t)] - m);
      sum += p;
      for (int i = 0; i < d; ++i) acc[std::size_t(i)] += p * v[std::size_t(t * d + i)];
    }
    for (int i = 0; i < d; ++i) out[std::size_t(h * d + i)] = float(acc[std::size_t(i)] / sum);
  }
  return out;
}

// The formats a head of d channels can use (ggml blocks need d % 32 == 0).
std::vector<format> formats_for(int d) {
  std::vector<format> out;
  for (scheme s : {scheme::f32, scheme::f16, scheme::bf16, scheme::fp8_e4m3, scheme::fp8_e5m2, scheme::int8})
    out.push_back(format{s});
  if (d % 32 == 0)
    for (scheme s : {scheme::q8_0, scheme::q4_0, scheme::q4_1, scheme::q5_0, scheme::q5_1, scheme::iq4_nl})
      out.push_back(format{s});
  out.push_back(format::kivi(4, 16, 32));
  out.push_back(format::kivi(2, 8, 16));
  out.push_back(format::kivi(8, 8, 16));
  out.push_back(format{d % 32 == 0 ? scheme::q4_0 : scheme::int8, 32, 5});  // a sliding residual window
  format rotated = format::kivi(2, 16, 32);
  rotated.rotate = true;
  out.push_back(rotated);
  format rotated_fp8{scheme::fp8_e4m3};
  rotated_fp8.rotate = true;
  out.push_back(rotated_fp8);
  return out;
}

// A two-layer cache with ragged heads: layer 0 holds 301, 77, 20, 0 tokens in
// its 4 KV heads (the third only in the residual window of KIVI formats, the
// last empty), layer 1 holds 40 in each, appended as one chunk. A mixed-precision
// cache gets every third token as not salient.
cache filled_cache(format k, format v, int d, unsigned seed, std::optional<mixed_precision> low = std::nullopt) {
  cache c({2, 4, d, k, v}, low);
  const std::int64_t lengths[] = {301, 77, 20, 0};
  std::vector<std::uint8_t> salient(301);
  for (std::size_t t = 0; t < salient.size(); ++t) salient[t] = t % 3 != 1;
  const auto flags = [&](std::int64_t first, std::int64_t n) {
    return low ? std::span<const std::uint8_t>(salient.data() + first, std::size_t(n)) : std::span<const std::uint8_t>();
  };
  for (int h = 0; h < 4; ++h) {
    const std::int64_t n = lengths[h];
    const std::vector<float> keys = random_values(std::size_t(n * d), seed + unsigned(h), 1.0f + float(h));
    const std::vector<float> values = random_values(std::size_t(n * d), seed + 100 + unsigned(h));
    // Token by token for the first, as decode does; in one chunk for the others.
    if (h == 0)
      for (std::int64_t t = 0; t < n; ++t)
        c.append(0, h, tensor_view(keys.data() + t * d, dtype::f32, {d}), tensor_view(values.data() + t * d, dtype::f32, {d}),
                 {}, flags(t, 1));
    else if (n > 0)
      c.append(0, h, tensor_view(keys.data(), dtype::f32, {n, d}), tensor_view(values.data(), dtype::f32, {n, d}), {},
               flags(0, n));
  }
  const std::vector<float> chunk = random_values(std::size_t(4 * 40 * d), seed + 7);
  c.append(1, tensor_view(chunk.data(), dtype::f32, {4, 40, d}), tensor_view(chunk.data(), dtype::f32, {4, 40, d}), {},
           flags(0, 40));
  return c;
}

// Largest |out - expected| relative to the largest |value| the cache holds (values are N(0, 1)).
double max_error(const std::vector<float>& out, const std::vector<float>& expected) {
  double e = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (std::isnan(out[i]) != std::isnan(expected[i])) return 1e300;
    e = std::max(e, double(std::fabs(out[i] - expected[i])));
  }
  return e;
}

// Float tolerance against the double-precision result over the dequantized
// cache: the kernels reorder f32 sums (blocks, lanes, splits) and fold the
// scales into the query, so each score carries a relative error of a few
// head_dim * 2^-24 and the output about 1e-6 of max |v| (about 4 here;
// measured at most 1.2e-6 on every target).
constexpr double tolerance = 5e-6;

void check_all_heads(const cache& c, attention_workspace* ws) {
  const int d = c.config().head_dim;
  for (int ratio : {1, 2, 4}) {
    const int n_heads = 4 * ratio;
    INFO("GQA ratio " << ratio);
    const std::vector<float> q = random_values(std::size_t(n_heads * d), unsigned(ratio) * 31, 0.7f);
    std::vector<float> out(q.size(), -1.0f);
    for (int layer = 0; layer < 2; ++layer) {
      INFO("layer " << layer);
      const tensor_view qv(q.data(), dtype::f32, {n_heads, d}), ov(out.data(), dtype::f32, {n_heads, d});
      if (ws)
        decode_attention(c, layer, qv, ov, *ws);
      else
        decode_attention(c, layer, qv, ov);
      const std::vector<float> expected = expected_attention(c, layer, q, n_heads, 1.0f / std::sqrt(float(d)));
      CHECK(max_error(out, expected) <= tolerance);
      if (layer == 0)  // the empty head: zeros
        for (int h = 3 * ratio; h < n_heads; ++h)
          for (int i = 0; i < d; ++i) CHECK(out[std::size_t(h * d + i)] == 0.0f);
    }
  }
}

// check_all_heads without and with a workspace, on the reference and on every Highway target.
void check_all_heads_on_every_backend(const cache& c, attention_workspace& ws) {
  const auto both = [&] {
    check_all_heads(c, nullptr);
    check_all_heads(c, &ws);
  };
  cinch::force_backend(cinch::backend_kind::ref);
  both();
  cinch::force_backend(std::nullopt);
  for_each_cpu_target([&](const std::string&) { both(); });
}

}  // namespace

TEST_CASE("hand-computed attention over two tokens", "[kv][attention]") {
  cache c({1, 1, 2, format{scheme::f32}, format{scheme::f32}});
  const float k[] = {1, 0, 0, 1}, v[] = {1, 2, 3, 4};
  c.append(0, 0, tensor_view(k, dtype::f32, {2, 2}), tensor_view(v, dtype::f32, {2, 2}));
  const float q[] = {std::log(3.0f), 0.0f};  // scores log 3 and 0: weights 3/4 and 1/4
  float out[2];
  decode_attention(c, 0, tensor_view(q, dtype::f32, {1, 2}), tensor_view(out, dtype::f32, {1, 2}), 1.0f);
  CHECK(out[0] == Approx(1.5f).epsilon(1e-6));
  CHECK(out[1] == Approx(2.5f).epsilon(1e-6));
  // Default scale 1/sqrt(2): weights 3^(1/sqrt 2) : 1.
  decode_attention(c, 0, tensor_view(q, dtype::f32, {1, 2}), tensor_view(out, dtype::f32, {1, 2}));
  const double w = std::pow(3.0, 1.0 / std::sqrt(2.0)), p = w / (w + 1);
  CHECK(out[0] == Approx(p * 1 + (1 - p) * 3).epsilon(1e-6));
}

TEST_CASE("attention equals softmax attention over the dequantized cache for every format and backend", "[kv][attention]") {
  for (const int d : {64, 16}) {
    for (const format& f : formats_for(d)) {
      INFO("head_dim " << d << ", format " << name_of(f));
      const cache c = filled_cache(f, f, d, 11);
      attention_workspace ws(16, d, 7);
      check_all_heads_on_every_backend(c, ws);
    }
  }
}

TEST_CASE("keys and values in different formats", "[kv][attention]") {
  const int d = 64;
  const std::pair<format, format> pairs[] = {
      {format{scheme::q4_0}, format{scheme::q8_0}}, {format::kivi(2), format{scheme::f16}},
      {format{scheme::int8}, format::kivi(4, 32, 64)}, {format{scheme::bf16}, format{scheme::iq4_nl}},
      {format::kivi(4), format::kivi(2, 16, 0)}};
  for (const auto& [k, v] : pairs) {
    INFO("keys " << name_of(k) << ", values " << name_of(v));
    const cache c = filled_cache(k, v, d, 23);
    attention_workspace ws(16, d);
    for_each_cpu_target([&](const std::string&) { check_all_heads(c, &ws); });
  }
}

TEST_CASE("decode_attention argument errors", "[kv][attention]") {
  cache c({2, 2, 8, format{scheme::f16}, format{scheme::f16}});
  std::vector<float> q(64, 0.5f), out(64);
  const auto call = [&](std::vector<std::int64_t> qs, std::vector<std::int64_t> os, int layer = 0) {
    decode_attention(c, layer, tensor_view(q.data(), dtype::f32, qs), tensor_view(out.data(), dtype::f32, os));
  };
  require_error([&] { call({4, 8}, {4, 8}, 2); }, errc::invalid_argument, {"kv::decode_attention", "layer", "got 2"});
  require_error([&] { call({3, 8}, {3, 8}); }, errc::shape_mismatch, {"q must be [n_heads, head_dim]", "multiple of kv_heads", "got [3, 8]"});
  require_error([&] { call({4, 7}, {4, 7}); }, errc::shape_mismatch, {"q must be", "got [4, 7]"});
  require_error([&] { call({32}, {32}); }, errc::shape_mismatch, {"q must be", "got [32]"});
  require_error([&] { call({4, 8}, {2, 8}); }, errc::shape_mismatch, {"out must have shape [4, 8], got [2, 8]"});
  std::vector<cinch::f16_bits> h(32);
  require_error([&] { decode_attention(c, 0, tensor_view(h.data(), dtype::f16, {4, 8}), tensor_view(out.data(), dtype::f32, {4, 8})); },
                errc::invalid_argument, {"q must have dtype f32, got f16"});
  require_error([&] { decode_attention(c, 0, tensor_view(q.data(), dtype::f32, {4, 8}), tensor_view(q.data(), dtype::f32, {4, 8})); },
                errc::invalid_argument, {"out must not overlap"});
  require_error([&] { decode_attention(c, 0, tensor_view(q.data(), dtype::f32, {4, 8}), tensor_view(out.data(), dtype::f32, {4, 8}), std::numeric_limits<float>::infinity()); },
                errc::invalid_argument, {"scale must be finite"});
  require_error([&] { decode_attention(c, 0, tensor_view(q.data(), dtype::f32, {4, 4}, {16, 2}), tensor_view(out.data(), dtype::f32, {4, 4})); },
                errc::shape_mismatch, {"q must be"});
  require_error([&] { attention_workspace ws(0, 8); }, errc::invalid_argument, {"kv::attention_workspace", "query_heads", "got 0"});
  require_error([&] { attention_workspace ws(4, 0); }, errc::invalid_argument, {"head_dim", "got 0"});
}

TEST_CASE("a NaN or inf key makes only the query heads reading its head NaN", "[kv][attention]") {
  const int d = 32;
  // ggml blocks ignore a NaN when they pick d (as ggml does: it becomes a code), so they get an inf.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const auto& [f, bad] : {std::pair{format{scheme::int8}, nan}, std::pair{format{scheme::q4_0}, inf},
                               std::pair{format{scheme::f16}, nan}, std::pair{format::kivi(4, 8, 8), nan},
                               std::pair{format::kivi(2, 8, 8), inf}}) {
    INFO(name_of(f) << " with " << bad);
    cache c({1, 2, d, f, f});
    std::vector<float> x = random_values(std::size_t(2 * 20 * d), 3);
    x[std::size_t(5 * d + 3)] = bad;  // head 0, token 5
    c.append(0, tensor_view(x.data(), dtype::f32, {2, 20, d}), tensor_view(x.data(), dtype::f32, {2, 20, d}));
    const std::vector<float> q = random_values(std::size_t(4 * d), 4);
    std::vector<float> out(q.size());
    for_each_cpu_target([&](const std::string&) {
      decode_attention(c, 0, tensor_view(q.data(), dtype::f32, {4, d}), tensor_view(out.data(), dtype::f32, {4, d}));
      for (int i = 0; i < 2 * d; ++i) CHECK(std::isnan(out[std::size_t(i)]));
      for (int i = 2 * d; i < 4 * d; ++i) CHECK(std::isfinite(out[std::size_t(i)]));
    });
  }
}

TEST_CASE("attention over an engine's own head views equals attention over the cache", "[kv][attention]") {
  const int d = 32;
  const cache c = filled_cache(format{scheme::q4_1}, format::kivi(4, 8, 16), d, 41);
  const std::vector<float> q = random_values(std::size_t(8 * d), 42);
  std::vector<float> a(q.size()), b(q.size());
  attention_workspace ws(8, d);
  const head_view views[] = {c.view(0, 0), c.view(0, 1), c.view(0, 2), c.view(0, 3)};
  decode_attention(c, 0, tensor_view(q.data(), dtype::f32, {8, d}), tensor_view(a.data(), dtype::f32, {8, d}), ws);
  decode_attention(views, tensor_view(q.data(), dtype::f32, {8, d}), tensor_view(b.data(), dtype::f32, {8, d}), ws);
  CHECK(a == b);

  require_error([&] { decode_attention(std::span<const head_view>(), tensor_view(q.data(), dtype::f32, {8, d}), tensor_view(b.data(), dtype::f32, {8, d}), ws); },
                errc::invalid_argument, {"kv::decode_attention", "kv_heads x parts (1) head views, got 0"});
  head_view broken[] = {views[0], views[1]};
  broken[1].values.packed_tokens = broken[1].tokens + 1;
  require_error([&] { decode_attention(broken, tensor_view(q.data(), dtype::f32, {8, d}), tensor_view(b.data(), dtype::f32, {8, d}), ws); },
                errc::invalid_argument, {"heads[1]", "packed_tokens <= tokens"});
  broken[1] = views[1];
  broken[1].keys.head_dim = 16;
  require_error([&] { decode_attention(broken, tensor_view(q.data(), dtype::f32, {8, d}), tensor_view(b.data(), dtype::f32, {8, d}), ws); },
                errc::invalid_argument, {"heads[1]", "head_dim 32"});
  require_error([&] { decode_attention(views, tensor_view(q.data(), dtype::f32, {6, d}), tensor_view(b.data(), dtype::f32, {6, d}), ws); },
                errc::shape_mismatch, {"multiple of kv_heads", "got [6, 32]"});
}

TEST_CASE("token_element reads back what dequantize gives one element at a time", "[kv][attention]") {
  const int d = 64;
  for (const format& f : formats_for(d)) {
    if (f.rotate) continue;  // dequantize also rotates back
    INFO(name_of(f));
    const cache c = filled_cache(f, f, d, 5);
    for (int h = 0; h < 3; ++h) {
      const std::int64_t n = c.tokens(0, h);
      std::vector<float> k(std::size_t(n * d)), v(k.size());
      c.dequantize(0, h, tensor_view(k.data(), dtype::f32, {n, d}), tensor_view(v.data(), dtype::f32, {n, d}));
      const head_view hv = c.view(0, h);
      bool same = true;
      for (std::int64_t t = 0; t < n; ++t)
        for (int i = 0; i < d; ++i)
          same = same && cinch::ref::token_element(hv.keys, t, i) == k[std::size_t(t * d + i)] &&
                 cinch::ref::token_element(hv.values, t, i) == v[std::size_t(t * d + i)];
      CHECK(same);
    }
  }
}

TEST_CASE("mixed precision: attention over both parts of every head", "[kv][attention]") {
  const int d = 32;
  const std::pair<format, mixed_precision> cases[] = {
      {format::kivi(4, 16, 32), mixed_precision{format::kivi(2, 16, 32), format::kivi(2, 8, 0)}},
      {format{scheme::f16}, mixed_precision{format{scheme::int8}, format{scheme::q4_0}}},
      {format{scheme::q8_0}, mixed_precision{format::kivi(2, 8, 8), format{scheme::fp8_e4m3}}}};
  for (const auto& [high, low] : cases) {
    INFO(name_of(high) << " beside " << name_of(low.keys) << " / " << name_of(low.values));
    const cache c = filled_cache(high, high, d, 61, low);
    REQUIRE(c.parts() == 2);
    CHECK(c.view(0, 0, 1).tokens == 100);  // every third token of 301
    CHECK(c.tokens(0, 0) == 301);
    attention_workspace ws(16, d, 7);
    check_all_heads_on_every_backend(c, ws);
    // The same from the views, head h's part p at h * 2 + p.
    std::vector<head_view> views;
    for (int h = 0; h < 4; ++h)
      for (int p = 0; p < 2; ++p) views.push_back(c.view(0, h, p));
    const std::vector<float> q = random_values(std::size_t(8 * d), 62);
    std::vector<float> a(q.size()), b(q.size());
    decode_attention(c, 0, tensor_view(q.data(), dtype::f32, {8, d}), tensor_view(a.data(), dtype::f32, {8, d}), ws);
    decode_attention(views, tensor_view(q.data(), dtype::f32, {8, d}), tensor_view(b.data(), dtype::f32, {8, d}), ws,
                     std::nullopt, 2);
    CHECK(a == b);
  }
}

TEST_CASE("a GPU workspace needs a CUDA device", "[kv][attention]") {
  if (cinch::cuda_device_count() > 0) return;  // covered by the device tests
  const auto backends = cinch::compiled_backends();
  const bool compiled = std::find(backends.begin(), backends.end(), cinch::backend_kind::cuda) != backends.end();
  require_error([] { attention_workspace ws(4, 8, 0, cinch::cuda_device(0)); },
                compiled ? errc::invalid_argument : errc::unsupported, {"kv::attention_workspace", "cuda"});
}

TEST_CASE("decode attention and decode appends after reserve allocate nothing", "[kv][attention]") {
  const int d = 64;
  cache c({1, 4, d, format::kivi(4, 32, 64), format{scheme::q8_0}});
  c.reserve(600);
  const std::vector<float> x = random_values(std::size_t(4 * d), 71), q = random_values(std::size_t(16 * d), 72);
  std::vector<float> out(q.size());
  attention_workspace ws(16, d);
  const tensor_view kv(x.data(), dtype::f32, {4, d}), qv(q.data(), dtype::f32, {16, d}), ov(out.data(), dtype::f32, {16, d});
  for (int t = 0; t < 300; ++t) c.append(0, kv, kv);
  decode_attention(c, 0, qv, ov, ws);  // the first parallel region starts the OpenMP threads
  decode_attention(c, 0, qv, ov);
  const long before = allocations.load();
  for (int t = 0; t < 200; ++t) {
    c.append(0, kv, kv);
    decode_attention(c, 0, qv, ov, ws);
    decode_attention(c, 0, qv, ov);
  }
  CHECK(allocations.load() == before);
}

TEST_CASE("decode-time eviction allocates nothing once its buffers are sized", "[kv][attention][bounded]") {
  const int d = 64;
  for (decode_policy policy : {decode_policy::streaming, decode_policy::h2o, decode_policy::tova, decode_policy::knorm}) {
    INFO("policy " << int(policy));
    bounded_cache b({1, 4, d, format{scheme::q8_0, 32, 16}, format{scheme::q4_0}}, {policy, 128, 4, -1, 16});
    const std::vector<float> x = random_values(std::size_t(4 * d), 81), q = random_values(std::size_t(16 * d), 82);
    std::vector<float> out(q.size());
    const tensor_view kv(x.data(), dtype::f32, {4, d}), qv(q.data(), dtype::f32, {16, d}), ov(out.data(), dtype::f32, {16, d});
    for (int t = 0; t < 200; ++t) {  // fills, evicts, and sizes the attention buffers on the first attend
      b.append(0, kv, kv);
      b.attend(0, qv, ov);
    }
    const long before = allocations.load();
    for (int t = 0; t < 300; ++t) {
      b.append(0, kv, kv);
      b.attend(0, qv, ov);
    }
    CHECK(allocations.load() == before);
    CHECK(b.evicted() > 4 * 300);
  }
}

namespace {

// scale * q . k over the dequantized keys in double, -inf past a head's tokens;
// [n_heads, longest].
std::vector<double> expected_logits(const cache& c, int layer, const std::vector<float>& q, int n_heads) {
  const int d = c.config().head_dim, group = n_heads / c.config().kv_heads;
  std::int64_t longest = 0;
  for (int h = 0; h < c.config().kv_heads; ++h) longest = std::max(longest, c.tokens(layer, h));
  std::vector<double> out(std::size_t(n_heads * longest), -INFINITY);
  for (int i = 0; i < n_heads; ++i) {
    std::int64_t t0 = 0;
    for (int p = 0; p < c.parts(); ++p) {
      const std::int64_t n = c.view(layer, i / group, p).tokens;
      std::vector<float> k(std::size_t(n * d)), v(k.size());
      c.dequantize(layer, i / group, tensor_view(k.data(), dtype::f32, {n, d}), tensor_view(v.data(), dtype::f32, {n, d}), p);
      for (std::int64_t t = 0; t < n; ++t) {
        double dot = 0;
        for (int j = 0; j < d; ++j) dot += double(q[std::size_t(i * d + j)]) * k[std::size_t(t * d + j)];
        out[std::size_t(i * longest + t0 + t)] = dot / std::sqrt(double(d));
      }
      t0 += n;
    }
  }
  return out;
}

void check_logits(const cache& c) {
  const int d = c.config().head_dim;
  for (int layer = 0; layer < 2; ++layer) {
    const int n_heads = 8;
    std::int64_t longest = 0;
    for (int h = 0; h < 4; ++h) longest = std::max(longest, c.tokens(layer, h));
    const std::vector<float> q = random_values(std::size_t(n_heads * d), 91, 0.7f);
    std::vector<float> out(std::size_t(n_heads * longest), 7.0f);
    attention_logits(c, layer, tensor_view(q.data(), dtype::f32, {n_heads, d}),
                     tensor_view(out.data(), dtype::f32, {n_heads, longest}));
    const std::vector<double> expected = expected_logits(c, layer, q, n_heads);
    double worst = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (std::isinf(expected[i])) {
        REQUIRE(out[i] == -INFINITY);
        continue;
      }
      // Keys up to about 4 * 4 in magnitude, d products: a few d * 2^-24 relative.
      worst = std::max(worst, std::fabs(out[i] - expected[i]) / (1.0 + std::fabs(expected[i])));
    }
    CHECK(worst <= 2e-5);
  }
}

}  // namespace

TEST_CASE("attention_logits equals q . k over the dequantized keys for every format and backend", "[kv][attention]") {
  for (const int d : {64, 16}) {
    for (const format& f : formats_for(d)) {
      INFO("head_dim " << d << ", format " << name_of(f));
      const cache c = filled_cache(f, f, d, 13);
      cinch::force_backend(cinch::backend_kind::ref);
      check_logits(c);
      cinch::force_backend(std::nullopt);
      for_each_cpu_target([&](const std::string&) { check_logits(c); });
    }
  }
  // Both parts of a mixed-precision head, part 0's tokens first.
  check_logits(filled_cache(format{scheme::f16}, format{scheme::f16}, 32, 17,
                            mixed_precision{format::kivi(2, 8, 16), format{scheme::int8}}));
}

TEST_CASE("attention_logits argument errors", "[kv][attention]") {
  const cache c = filled_cache(format{scheme::f16}, format{scheme::f16}, 16, 19);
  std::vector<float> q(8 * 16), out(8 * 301);
  const tensor_view qv(q.data(), dtype::f32, {8, 16});
  require_error([&] { attention_logits(c, 2, qv, tensor_view(out.data(), dtype::f32, {8, 301})); }, errc::invalid_argument,
                {"kv::attention_logits", "layer", "got 2"});
  require_error([&] { attention_logits(c, 0, tensor_view(q.data(), dtype::f32, {6, 16}), tensor_view(out.data(), dtype::f32, {6, 301})); },
                errc::shape_mismatch, {"kv::attention_logits", "q must be", "multiple of 4", "got [6, 16]"});
  require_error([&] { attention_logits(c, 0, qv, tensor_view(out.data(), dtype::f32, {8, 300})); }, errc::shape_mismatch,
                {"out", "[8, 301]", "got [8, 300]"});
  require_error([&] { attention_logits(c, 0, qv, tensor_view(out.data(), dtype::f32, {8, 301}), INFINITY); },
                errc::invalid_argument, {"scale must be finite"});
}
