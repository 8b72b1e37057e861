// kv::cache: configuration and append errors, ragged heads, positions, the
// residual windows, real byte counts, reserve, views and documented NaN/inf behaviour.
#include <catch2/catch.hpp>

#include <cinch/kv/cache.hpp>
#include <cinch/ref/convert.hpp>
#include <cinch/ref/fp8.hpp>
#include <cinch/ref/ggml.hpp>
#include <cinch/ref/groups.hpp>
#include <cinch/ref/hadamard.hpp>
#include <cinch/ref/quantize.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <tuple>
#include <vector>

#include "error_matchers.hpp"
#include "random_data.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
using namespace cinch::kv;

namespace {

cache_config config_of(int layers, int heads, int head_dim, format k, format v) { return {layers, heads, head_dim, k, v}; }

// The dequantized keys and values of one head, [tokens, head_dim] each.
std::pair<std::vector<float>, std::vector<float>> dequantized(const cache& c, int layer, int head) {
  const std::int64_t n = c.tokens(layer, head), d = c.config().head_dim;
  std::vector<float> k(std::size_t(n * d)), v(k.size());
  c.dequantize(layer, head, tensor_view(k.data(), dtype::f32, {n, d}), tensor_view(v.data(), dtype::f32, {n, d}));
  return {k, v};
}

}  // namespace

TEST_CASE("cache configuration errors name the argument", "[kv][cache]") {
  const format f16{scheme::f16};
  require_error([&] { cache c(config_of(0, 1, 8, f16, f16)); }, errc::invalid_argument, {"kv::cache", "layers", "got 0"});
  require_error([&] { cache c(config_of(1, 0, 8, f16, f16)); }, errc::invalid_argument, {"kv_heads", "got 0"});
  require_error([&] { cache c(config_of(1, 1, 0, f16, f16)); }, errc::invalid_argument, {"head_dim", "got 0"});
  require_error([&] { cache c(config_of(1, 1, 2048, f16, f16)); }, errc::unsupported, {"head_dim", "1024", "got 2048"});
  require_error([&] { cache c(config_of(1, 1, 8, format{scheme::q4_0}, f16)); }, errc::unsupported,
                {"keys", "q4_0", "multiple of 32", "got 8"});
  require_error([&] { cache c(config_of(1, 1, 48, f16, format{scheme::q8_0})); }, errc::unsupported,
                {"values", "q8_0", "got 48"});
  require_error([&] { cache c(config_of(1, 1, 8, format{scheme::f16, 32, -1}, f16)); }, errc::invalid_argument,
                {"keys residual", "got -1"});
  require_error([&] { cache c(config_of(1, 1, 8, f16, format{scheme::fp8_e4m3, 32, 0, false, -1.0f})); },
                errc::invalid_argument, {"values fp8_scale", "-1"});
  require_error([&] { cache c(config_of(1, 1, 8, f16, format{static_cast<scheme>(99)})); }, errc::invalid_argument,
                {"values format", "99"});
}

TEST_CASE("append errors: wrong shape or dtype or head or layer or K/V mismatch or positions", "[kv][cache]") {
  cache c(config_of(2, 3, 8, format{scheme::f16}, format{scheme::f32}));
  std::vector<float> x(3 * 5 * 8, 1.0f);
  std::vector<cinch::f16_bits> h(x.size());
  const tensor_view row(x.data(), dtype::f32, {8});
  require_error([&] { c.append(2, 0, row, row); }, errc::invalid_argument, {"kv::cache::append", "layer", "[0, 2)", "got 2"});
  require_error([&] { c.append(0, 3, row, row); }, errc::invalid_argument, {"head", "[0, 3)", "got 3"});
  require_error([&] { c.append(0, -1, row, row); }, errc::invalid_argument, {"head", "got -1"});
  require_error([&] { c.append(0, 0, tensor_view(x.data(), dtype::f32, {9}), row); }, errc::shape_mismatch,
                {"k must have shape", "[head_dim]", "[8]", "got [9]"});
  require_error([&] { c.append(0, 0, tensor_view(x.data(), dtype::f32, {2, 8}), tensor_view(x.data(), dtype::f32, {3, 8})); },
                errc::shape_mismatch, {"v must have shape [2, 8], got [3, 8]"});
  require_error([&] { c.append(0, 0, tensor_view(h.data(), dtype::f16, {8}), row); }, errc::invalid_argument,
                {"k must have dtype f32, got f16"});
  require_error([&] { c.append(0, 0, tensor_view(x.data(), dtype::f32, {2, 4}, {8, 2}), tensor_view(x.data(), dtype::f32, {2, 4}, {8, 2})); },
                errc::shape_mismatch, {"k must have shape"});
  require_error([&] { c.append(0, 0, tensor_view(x.data(), dtype::f32, {2, 8}, {16, 2}), tensor_view(x.data(), dtype::f32, {2, 8}, {16, 2})); },
                errc::unsupported, {"dense innermost"});
  const std::int32_t pos[] = {4, 5, 6};
  require_error([&] { c.append(0, 0, tensor_view(x.data(), dtype::f32, {2, 8}), tensor_view(x.data(), dtype::f32, {2, 8}), pos); },
                errc::shape_mismatch, {"positions", "(2)", "got 3"});
  // A whole layer: [kv_heads, head_dim] or [kv_heads, tokens, head_dim].
  require_error([&] { c.append(0, tensor_view(x.data(), dtype::f32, {2, 8}), tensor_view(x.data(), dtype::f32, {2, 8})); },
                errc::shape_mismatch, {"[kv_heads, head_dim]", "[3, 8]", "got [2, 8]"});
  require_error([&] { c.append(0, tensor_view(x.data(), dtype::f32, {3, 5, 8}), tensor_view(x.data(), dtype::f32, {3, 4, 8})); },
                errc::shape_mismatch, {"v must have shape [3, 5, 8], got [3, 4, 8]"});
  require_error([&] { c.append(5, tensor_view(x.data(), dtype::f32, {3, 8}), tensor_view(x.data(), dtype::f32, {3, 8})); },
                errc::invalid_argument, {"layer", "got 5"});
  // Nothing was appended by the failed calls.
  for (int l = 0; l < 2; ++l)
    for (int hh = 0; hh < 3; ++hh) CHECK(c.tokens(l, hh) == 0);
  CHECK(c.bytes() == 0);
}

TEST_CASE("ragged heads with shared and explicit positions and layer-wide and token-major appends", "[kv][cache]") {
  const int d = 8;
  cache c(config_of(2, 2, d, format{scheme::f32}, format{scheme::f32}));
  const std::vector<float> x = random_values(4 * 2 * d, 1);
  c.append(0, 1, tensor_view(x.data(), dtype::f32, {3, d}), tensor_view(x.data(), dtype::f32, {3, d}));
  c.append(0, 1, tensor_view(x.data(), dtype::f32, {d}), tensor_view(x.data(), dtype::f32, {d}));
  const std::int32_t pos[] = {100, 7};
  c.append(1, 0, tensor_view(x.data(), dtype::f32, {2, d}), tensor_view(x.data(), dtype::f32, {2, d}), pos);
  CHECK(c.tokens(0, 0) == 0);
  CHECK(c.tokens(0, 1) == 4);
  CHECK(c.tokens(1, 0) == 2);
  CHECK(std::vector<std::int32_t>(c.positions(0, 1).begin(), c.positions(0, 1).end()) == std::vector<std::int32_t>{0, 1, 2, 3});
  CHECK(std::vector<std::int32_t>(c.positions(1, 0).begin(), c.positions(1, 0).end()) == std::vector<std::int32_t>{100, 7});

  // Every head of layer 1 at once: a chunk [kv_heads, tokens, d] given token-major [tokens, kv_heads, d].
  const tensor_view token_major = tensor_view(x.data(), dtype::f32, {4, 2, d}).permute({1, 0, 2});
  c.append(1, token_major, token_major);
  CHECK(c.tokens(1, 0) == 6);
  CHECK(c.tokens(1, 1) == 4);
  CHECK(c.positions(1, 0)[2] == 8);  // continues after the head's last position
  CHECK(c.positions(1, 1)[0] == 0);
  const auto [k1, v1] = dequantized(c, 1, 1);
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < d; ++i) CHECK(k1[std::size_t(t * d + i)] == x[std::size_t((t * 2 + 1) * d + i)]);
  // One token for every head: [kv_heads, d].
  c.append(0, tensor_view(x.data(), dtype::f32, {2, d}), tensor_view(x.data() + 2 * d, dtype::f32, {2, d}));
  CHECK(c.tokens(0, 0) == 1);
  CHECK(c.tokens(0, 1) == 5);
  const auto [k0, v0] = dequantized(c, 0, 0);
  CHECK(std::vector<float>(k0.begin(), k0.end()) == std::vector<float>(x.begin(), x.begin() + d));
  CHECK(std::vector<float>(v0.begin(), v0.end()) == std::vector<float>(x.begin() + 2 * d, x.begin() + 3 * d));
}

TEST_CASE("plain and int8 formats store exactly what their conversions give and count their bytes", "[kv][cache]") {
  const int d = 16, n = 5;
  const std::vector<float> x = random_values(std::size_t(n * d), 2, 3.0f);
  const tensor_view xv(x.data(), dtype::f32, {n, d});
  for (const scheme s : {scheme::f32, scheme::f16, scheme::bf16, scheme::int8}) {
    INFO(to_string(s));
    cache c(config_of(1, 1, d, format{s}, format{s}));
    c.append(0, 0, xv, xv);
    const auto [k, v] = dequantized(c, 0, 0);
    CHECK(k == v);
    for (int t = 0; t < n; ++t) {
      const float* row = x.data() + t * d;
      std::int8_t codes[d];
      const float scale = cinch::ref::quantize_row_i8(row, codes, d);
      for (int i = 0; i < d; ++i) {
        const float expected = s == scheme::f32    ? row[i]
                               : s == scheme::f16  ? cinch::ref::f16_to_f32(cinch::ref::f32_to_f16(row[i]))
                               : s == scheme::bf16 ? cinch::ref::bf16_to_f32(cinch::ref::f32_to_bf16(row[i]))
                                                   : float(codes[i]) * scale;
        CHECK(k[std::size_t(t * d + i)] == expected);
      }
    }
    const std::int64_t per_token = s == scheme::f32 ? 4 * d : s == scheme::int8 ? 4 + d : 2 * d;
    CHECK(c.bytes(0, 0) == 2 * n * per_token);
    CHECK(c.bytes() == 2 * n * per_token);
    const head_view h = c.view(0, 0);
    CHECK(h.tokens == n);
    CHECK(h.keys.packed_tokens == n);
    CHECK(h.keys.unit_bytes == per_token);
  }
}

TEST_CASE("a per-token residual window keeps the newest tokens exact and slides", "[kv][cache]") {
  const int d = 8, window = 3;
  cache c(config_of(1, 1, d, format{scheme::int8, 32, window}, format{scheme::f16}));
  const std::vector<float> x = random_values(std::size_t(10 * d), 3);
  for (int t = 0; t < 10; ++t) {
    c.append(0, 0, tensor_view(x.data() + t * d, dtype::f32, {d}), tensor_view(x.data() + t * d, dtype::f32, {d}));
    const head_view h = c.view(0, 0);
    CHECK(h.keys.packed_tokens == std::max(0, t + 1 - window));
    CHECK(h.keys.tokens - h.keys.packed_tokens == std::min(t + 1, window));
    CHECK(c.bytes(0, 0) == h.keys.packed_tokens * (4 + d) + std::min(t + 1, window) * 4 * d + (t + 1) * 2 * d);
  }
  const auto [k, v] = dequantized(c, 0, 0);
  for (int t = 0; t < 10; ++t) {
    std::int8_t codes[d];
    const float scale = cinch::ref::quantize_row_i8(x.data() + t * d, codes, d);
    for (int i = 0; i < d; ++i)
      CHECK(k[std::size_t(t * d + i)] == (t >= 10 - window ? x[std::size_t(t * d + i)] : float(codes[i]) * scale));
  }
}

TEST_CASE("reserve keeps decode appends from reallocating", "[kv][cache]") {
  const int d = 8;
  cache c(config_of(1, 2, d, format{scheme::int8, 32, 4}, format{scheme::f16}));
  require_error([&] { c.reserve(-1); }, errc::invalid_argument, {"kv::cache::reserve", "got -1"});
  c.reserve(100);
  const std::vector<float> x = random_values(std::size_t(2 * d), 4);
  c.append(0, tensor_view(x.data(), dtype::f32, {2, d}), tensor_view(x.data(), dtype::f32, {2, d}));
  for (int i = 0; i < 5; ++i) c.append(0, tensor_view(x.data(), dtype::f32, {2, d}), tensor_view(x.data(), dtype::f32, {2, d}));
  const head_view first = c.view(0, 1);
  for (int i = 0; i < 94; ++i) c.append(0, tensor_view(x.data(), dtype::f32, {2, d}), tensor_view(x.data(), dtype::f32, {2, d}));
  const head_view last = c.view(0, 1);
  CHECK(last.tokens == 100);
  CHECK(last.keys.packed == first.keys.packed);
  CHECK(last.values.packed == first.values.packed);
  CHECK(last.positions == first.positions);
}

TEST_CASE("fp8 scales: vLLM calibration on the first append or set per head", "[kv][cache]") {
  const int d = 8;
  for (const scheme s : {scheme::fp8_e4m3, scheme::fp8_e5m2}) {
    INFO(to_string(s));
    cache c(config_of(1, 2, d, format{s}, format{s}));
    std::vector<float> x = random_values(std::size_t(2 * d), 5);
    x[3] = -12.5f;  // max |x| of head 0 on its first append
    c.set_fp8_scales(0, 1, 0.5f, 0.25f);
    c.append(0, tensor_view(x.data(), dtype::f32, {2, d}), tensor_view(x.data(), dtype::f32, {2, d}));
    CHECK(c.view(0, 0).keys.scale == 12.5f / cinch::ref::fp8_key_scale_constant);
    CHECK(c.view(0, 0).values.scale == 12.5f / cinch::ref::fp8_value_scale_constant);
    CHECK(c.view(0, 1).keys.scale == 0.5f);
    CHECK(c.view(0, 1).values.scale == 0.25f);
    // Codes are the saturating conversion of x / scale; dequantized = float(code) * scale.
    const auto [k, v] = dequantized(c, 0, 1);
    for (int i = 0; i < d; ++i) {
      const float xi = x[std::size_t(d + i)];
      const float back = s == scheme::fp8_e4m3 ? cinch::ref::e4m3_to_f32(cinch::ref::f32_to_e4m3(xi / 0.5f))
                                               : cinch::ref::e5m2_to_f32(cinch::ref::f32_to_e5m2(xi / 0.5f));
      CHECK(k[std::size_t(i)] == back * 0.5f);
    }
    CHECK(c.bytes(0, 0) == 2 * d);
    require_error([&] { c.set_fp8_scales(0, 0, 1.0f, 1.0f); }, errc::invalid_argument,
                  {"kv::cache::set_fp8_scales", "before the head's first append", "holding 1"});
    require_error([&] { c.set_fp8_scales(0, 2, 1.0f, 1.0f); }, errc::invalid_argument, {"head", "got 2"});
  }
  cache fixed(config_of(1, 1, d, format{scheme::fp8_e4m3, 32, 0, false, 0.125f}, format{scheme::fp8_e4m3}));
  require_error([&] { fixed.set_fp8_scales(0, 0, 0.0f, 1.0f); }, errc::invalid_argument, {"finite and > 0"});
  const std::vector<float> zeros(d, 0.0f);
  fixed.append(0, 0, tensor_view(zeros.data(), dtype::f32, {d}), tensor_view(zeros.data(), dtype::f32, {d}));
  CHECK(fixed.view(0, 0).keys.scale == 0.125f);
  CHECK(fixed.view(0, 0).values.scale == 1.0f);  // an all-zero first append calibrates to 1
}

TEST_CASE("dequantize checks its outputs", "[kv][cache]") {
  cache c(config_of(1, 1, 8, format{scheme::f16}, format{scheme::f16}));
  const std::vector<float> x(16, 1.0f);
  c.append(0, 0, tensor_view(x.data(), dtype::f32, {2, 8}), tensor_view(x.data(), dtype::f32, {2, 8}));
  std::vector<float> k(16), v(16);
  require_error([&] { c.dequantize(0, 0, tensor_view(k.data(), dtype::f32, {1, 8}), tensor_view(v.data(), dtype::f32, {2, 8})); },
                errc::shape_mismatch, {"kv::cache::dequantize", "k must have shape [2, 8], got [1, 8]"});
  require_error([&] { c.dequantize(0, 0, tensor_view(k.data(), dtype::f32, {2, 8}), tensor_view(k.data(), dtype::f32, {2, 8})); },
                errc::invalid_argument, {"v must not overlap"});
  require_error([&] { c.dequantize(0, 0, tensor_view(static_cast<const float*>(k.data()), dtype::f32, {2, 8}), tensor_view(v.data(), dtype::f32, {2, 8})); },
                errc::invalid_argument, {"k must be writable"});
}

TEST_CASE("NaN and inf stay in the block they are quantized into", "[kv][cache]") {
  const int d = 8;
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = random_values(std::size_t(3 * d), 6);
  x[std::size_t(d + 2)] = nan;  // token 1
  x[std::size_t(2 * d + 5)] = inf;  // token 2
  const tensor_view xv(x.data(), dtype::f32, {3, d});
  SECTION("int8 rows: the token's scale is non-finite, its row dequantizes to NaN, the others are untouched") {
    cache c(config_of(1, 1, d, format{scheme::int8}, format{scheme::int8}));
    c.append(0, 0, xv, xv);
    const auto [k, v] = dequantized(c, 0, 0);
    for (int i = 0; i < d; ++i) {
      CHECK(std::isfinite(k[std::size_t(i)]));
      CHECK(std::isnan(k[std::size_t(d + i)]));
      CHECK(std::isnan(k[std::size_t(2 * d + i)]));
    }
  }
  SECTION("f16: the element keeps its NaN or inf") {
    cache c(config_of(1, 1, d, format{scheme::f16}, format{scheme::f16}));
    c.append(0, 0, xv, xv);
    const auto [k, v] = dequantized(c, 0, 0);
    CHECK(std::isnan(k[std::size_t(d + 2)]));
    CHECK(k[std::size_t(2 * d + 5)] == inf);
    CHECK(std::isfinite(k[std::size_t(d + 3)]));
  }
  SECTION("fp8: calibration skips non-finite values; NaN stays NaN, inf saturates, in its element only") {
    cache c(config_of(1, 1, d, format{scheme::fp8_e4m3}, format{scheme::fp8_e4m3}));
    c.append(0, 0, xv, xv);
    float amax = 0.0f;
    for (float v : x)
      if (std::isfinite(v)) amax = std::max(amax, std::fabs(v));
    const float scale = c.view(0, 0).keys.scale;
    CHECK(scale == amax / cinch::ref::fp8_key_scale_constant);
    const auto [k, v] = dequantized(c, 0, 0);
    CHECK(std::isnan(k[std::size_t(d + 2)]));
    CHECK(k[std::size_t(2 * d + 5)] == 448.0f * scale);
    for (std::size_t i = 0; i < k.size(); ++i)
      if (i != std::size_t(d + 2)) CHECK(std::isfinite(k[i]));
  }
}

TEST_CASE("KIVI configuration errors", "[kv][cache]") {
  const format f16{scheme::f16};
  require_error([&] { cache c(config_of(1, 1, 16, format::kivi(2, 6, 12), f16)); }, errc::invalid_argument,
                {"keys group of kivi2", "multiple of 4", "got 6"});
  require_error([&] { cache c(config_of(1, 1, 16, f16, format::kivi(4, 0, 0))); }, errc::invalid_argument,
                {"values group", "got 0"});
  require_error([&] { cache c(config_of(1, 1, 16, format::kivi(4, 8, 20), f16)); }, errc::invalid_argument,
                {"keys residual must be a multiple of group (8), got 20"});
  require_error([&] { cache c(config_of(1, 1, 16, format::kivi(4, 8, 0), f16)); }, errc::invalid_argument,
                {"keys residual", "at least one group", "got 0"});
  require_error([&] { cache c(config_of(1, 1, 24, f16, format::kivi(4, 16, 32))); }, errc::unsupported,
                {"values format kivi4", "groups 16 channels", "got 24"});
  require_error([&] { cache c(config_of(1, 1, 24, format{scheme::f16, 32, 0, true}, f16)); }, errc::unsupported,
                {"keys rotation", "power-of-two", "got 24"});
}

TEST_CASE("KIVI windows: keys flush R tokens at once and values slide one token at a time", "[kv][cache]") {
  const int d = 16, G = 8, R = 16;
  for (const int bits : {4, 2, 8}) {
    INFO("bits " << bits);
    const cache_config cfg = config_of(1, 1, d, format::kivi(bits, G, R), format::kivi(bits, G, R));
    const std::int64_t key_chunk = (4 * d + d * G * bits / 8 + 3) / 4 * 4, value_record = (4 * d / G + d * bits / 8 + 3) / 4 * 4;
    const std::vector<float> x = random_values(std::size_t(50 * d), 7 + unsigned(bits));
    cache c(cfg);
    for (int t = 0; t < 50; ++t) {
      c.append(0, 0, tensor_view(x.data() + t * d, dtype::f32, {d}), tensor_view(x.data() + t * d, dtype::f32, {d}));
      const head_view h = c.view(0, 0);
      const int n = t + 1;
      CHECK(h.keys.packed_tokens == n / R * R);  // 0 .. R-1 keys stay f32
      CHECK(h.values.packed_tokens == std::max(0, n - R));
      CHECK(c.bytes(0, 0) == n / R * R / G * key_chunk + (n % R) * 4 * d + std::max(0, n - R) * value_record +
                                 std::min(n, R) * 4 * d);
    }
    // A prefill chunk of T tokens: the first T - T mod R keys are quantized (KIVI's prefill rule).
    cache p(cfg);
    p.append(0, 0, tensor_view(x.data(), dtype::f32, {37, d}), tensor_view(x.data(), dtype::f32, {37, d}));
    CHECK(p.view(0, 0).keys.packed_tokens == 32);
    CHECK(p.view(0, 0).values.packed_tokens == 21);

    // Contents: ref::groups' codes of the same tokens, the window exact.
    const auto [k, v] = dequantized(c, 0, 0);
    std::vector<float> expected_k(x.begin(), x.begin() + 50 * d), expected_v = expected_k;
    for (int chunk = 0; chunk < 48 / G; ++chunk) {
      std::vector<std::uint8_t> codes(std::size_t(d * G * bits / 8));
      std::vector<std::uint16_t> scales(static_cast<std::size_t>(d)), mins(static_cast<std::size_t>(d));
      cinch::ref::quantize_per_channel_chunk(x.data() + chunk * G * d, d, d, G, bits, codes.data(), G * bits / 8,
                                             scales.data(), mins.data());
      cinch::ref::dequantize_per_channel_chunk(codes.data(), G * bits / 8, scales.data(), mins.data(), d, G, bits,
                                               expected_k.data() + chunk * G * d, d);
    }
    for (int t = 0; t < 50 - R; ++t) {
      std::vector<std::uint8_t> codes(std::size_t(d * bits / 8));
      std::vector<std::uint16_t> scales(static_cast<std::size_t>(d / G)), mins(static_cast<std::size_t>(d / G));
      cinch::ref::quantize_per_token_row(x.data() + t * d, d, G, bits, codes.data(), scales.data(), mins.data());
      cinch::ref::dequantize_per_token_row(codes.data(), scales.data(), mins.data(), d, G, bits, expected_v.data() + t * d);
    }
    CHECK(k == expected_k);
    CHECK(v == expected_v);
  }
}

TEST_CASE("ggml block records are byte-identical to the reference blocks", "[kv][cache]") {
  const int d = 64, n = 3;
  const std::vector<float> x = random_values(std::size_t(n * d), 8, 2.0f);
  cache c(config_of(1, 1, d, format{scheme::q4_0}, format{scheme::q5_1}));
  c.append(0, 0, tensor_view(x.data(), dtype::f32, {n, d}), tensor_view(x.data(), dtype::f32, {n, d}));
  const head_view h = c.view(0, 0);
  CHECK(h.keys.unit_bytes == 2 * 18);
  CHECK(h.values.unit_bytes == 2 * 24);
  CHECK(c.bytes(0, 0) == n * (2 * 18 + 2 * 24));
  for (int b = 0; b < n * d / 32; ++b) {
    std::uint8_t q4[18], q5[24];
    cinch::ref::quantize_block<dtype::q4_0>(x.data() + 32 * b, q4);
    cinch::ref::quantize_block<dtype::q5_1>(x.data() + 32 * b, q5);
    CHECK(std::memcmp(h.keys.packed + 18 * b, q4, 18) == 0);
    CHECK(std::memcmp(h.values.packed + 24 * b, q5, 24) == 0);
  }
}

TEST_CASE("rotated streams store H x and dequantize back to x", "[kv][cache]") {
  const int d = 16;
  format rotated{scheme::f32};
  rotated.rotate = true;
  cache c(config_of(1, 1, d, rotated, format{scheme::f32}));
  const std::vector<float> x = random_values(std::size_t(2 * d), 9);
  c.append(0, 0, tensor_view(x.data(), dtype::f32, {2, d}), tensor_view(x.data(), dtype::f32, {2, d}));
  std::vector<float> hx(x);
  cinch::ref::fwht(hx.data(), d);
  cinch::ref::fwht(hx.data() + d, d);
  CHECK(std::memcmp(c.view(0, 0).keys.packed, hx.data(), hx.size() * 4) == 0);
  const auto [k, v] = dequantized(c, 0, 0);
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(k[i] == Approx(x[i]).margin(1e-6));
    CHECK(v[i] == x[i]);
  }
}

TEST_CASE("mixed precision: salient tokens in the high formats and the others in the low ones", "[kv][cache]") {
  const int d = 16;
  const mixed_precision low{format::kivi(2, 8, 8), format::kivi(2, 8, 0)};
  cache c(config_of(1, 2, d, format::kivi(4, 8, 8), format::kivi(4, 8, 0)), low);
  CHECK(c.parts() == 2);
  const std::vector<float> x = random_values(std::size_t(20 * d), 12);
  std::vector<std::uint8_t> salient(20);
  for (std::size_t t = 0; t < 20; ++t) salient[t] = t % 4 == 0;  // 5 salient, 15 not
  c.append(0, 1, tensor_view(x.data(), dtype::f32, {20, d}), tensor_view(x.data(), dtype::f32, {20, d}), {}, salient);
  CHECK(c.tokens(0, 1) == 20);
  CHECK(c.view(0, 1, 0).tokens == 5);
  CHECK(c.view(0, 1, 1).tokens == 15);
  CHECK(std::vector<std::int32_t>(c.positions(0, 1, 0).begin(), c.positions(0, 1, 0).end()) ==
        std::vector<std::int32_t>{0, 4, 8, 12, 16});
  CHECK(c.positions(0, 1, 1)[0] == 1);
  CHECK(c.positions(0, 1, 1)[14] == 19);
  // Part 1: the non-salient tokens in 2-bit KIVI; part 0 the salient ones in 4-bit.
  std::vector<float> low_rows, high_rows;
  std::int64_t parts_bytes = 0;
  for (std::size_t t = 0; t < 20; ++t)
    (salient[t] ? high_rows : low_rows).insert((salient[t] ? high_rows : low_rows).end(), x.begin() + std::ptrdiff_t(t * d),
                                               x.begin() + std::ptrdiff_t((t + 1) * d));
  for (const auto& [rows, keys, values, part] : {std::tuple{&high_rows, format::kivi(4, 8, 8), format::kivi(4, 8, 0), 0},
                                                 std::tuple{&low_rows, low.keys, low.values, 1}}) {
    cache alone(config_of(1, 1, d, keys, values));
    const std::int64_t n = std::int64_t(rows->size()) / d;
    alone.append(0, 0, tensor_view(rows->data(), dtype::f32, {n, d}), tensor_view(rows->data(), dtype::f32, {n, d}));
    std::vector<float> k(rows->size()), v(rows->size()), ka(rows->size()), va(rows->size());
    c.dequantize(0, 1, tensor_view(k.data(), dtype::f32, {n, d}), tensor_view(v.data(), dtype::f32, {n, d}), part);
    alone.dequantize(0, 0, tensor_view(ka.data(), dtype::f32, {n, d}), tensor_view(va.data(), dtype::f32, {n, d}));
    CHECK(k == ka);
    CHECK(v == va);
    parts_bytes += alone.bytes();
  }
  CHECK(c.bytes(0, 1) == parts_bytes);  // each part holds its own windows and records
  // Without flags every token is salient.
  c.append(0, 0, tensor_view(x.data(), dtype::f32, {3, d}), tensor_view(x.data(), dtype::f32, {3, d}));
  CHECK(c.view(0, 0, 0).tokens == 3);
  CHECK(c.view(0, 0, 1).tokens == 0);

  require_error([&] { c.append(0, 1, tensor_view(x.data(), dtype::f32, {2, d}), tensor_view(x.data(), dtype::f32, {2, d}), {}, salient); },
                errc::shape_mismatch, {"salient must hold one flag per token (2), got 20"});
  require_error([&] { (void)c.view(0, 1, 2); }, errc::invalid_argument, {"kv::cache::view", "part must be in [0, 2), got 2"});
  cache plain(config_of(1, 1, d, format{scheme::f16}, format{scheme::f16}));
  require_error([&] { plain.append(0, 0, tensor_view(x.data(), dtype::f32, {2, d}), tensor_view(x.data(), dtype::f32, {2, d}), {}, std::span(salient).first(2)); },
                errc::invalid_argument, {"salient flags need a mixed-precision cache"});
  require_error([&] { (void)plain.positions(0, 0, 1); }, errc::invalid_argument, {"part must be in [0, 1), got 1"});
  format rotated = format::kivi(2, 8, 8);
  rotated.rotate = true;
  require_error([&] { cache bad(config_of(1, 1, d, format::kivi(4, 8, 8), format{scheme::f16}), mixed_precision{rotated, format{scheme::f16}}); },
                errc::invalid_argument, {"must rotate as keys and values do"});
  require_error([&] { cache bad(config_of(1, 1, d, format{scheme::f16}, format{scheme::f16}), mixed_precision{format{scheme::f16}, format::kivi(4, 32, 32)}); },
                errc::unsupported, {"values format kivi4", "got 16"});
}
