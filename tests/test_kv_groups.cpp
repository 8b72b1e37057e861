// KIVI group quantization: hand-computed groups with their packed bytes, the
// stated error bound, the NaN/inf rules, both KIVI layouts element by element,
// the attention helpers, identical results on every backend, and bad input.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/kv/groups.hpp>
#include <cinch/ref/groups.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "cpu_targets.hpp"
#include "error_matchers.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;

namespace {

dtype codes_dtype(int bits) { return bits == 4 ? dtype::u4x2 : bits == 2 ? dtype::u2x4 : dtype::u8; }

struct token_groups {
  std::vector<std::uint8_t> codes;
  std::vector<std::uint16_t> scales, mins;
};

token_groups quantize_tokens(const std::vector<float>& x, std::int64_t rows, std::int64_t n, std::int64_t group,
                             int bits) {
  token_groups q{std::vector<std::uint8_t>(std::size_t(rows * n * bits / 8)),
                 std::vector<std::uint16_t>(std::size_t(rows * n / group)),
                 std::vector<std::uint16_t>(std::size_t(rows * n / group))};
  cinch::kv::quantize_per_token(tensor_view(x.data(), dtype::f32, {rows, n}),
                                tensor_view(q.codes.data(), codes_dtype(bits), {rows, n}),
                                tensor_view(q.scales.data(), dtype::f16, {rows, n / group}),
                                tensor_view(q.mins.data(), dtype::f16, {rows, n / group}), group);
  return q;
}

std::vector<float> dequantize_tokens(const token_groups& q, std::int64_t rows, std::int64_t n, std::int64_t group,
                                     int bits) {
  std::vector<float> y(std::size_t(rows * n));
  cinch::kv::dequantize_per_token(tensor_view(q.codes.data(), codes_dtype(bits), {rows, n}),
                                  tensor_view(q.scales.data(), dtype::f16, {rows, n / group}),
                                  tensor_view(q.mins.data(), dtype::f16, {rows, n / group}),
                                  tensor_view(y.data(), dtype::f32, {rows, n}), group);
  return y;
}

// Rows of groups with varied scales, exact half-step ties, -0, outliers; one group
// in 17 holds a NaN or an inf and one in 23 is constant.
std::vector<float> random_groups(std::int64_t count, std::int64_t group, int bits, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> level(0, int(cinch::ref::group_levels(bits)) - 1);
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x(std::size_t(count * group));
  for (std::int64_t g = 0; g < count; ++g) {
    float* v = x.data() + g * group;
    const float scale = std::ldexp(1.0f, int(g % 13) - 6);
    const float offset = float(int(g % 5) - 2) * scale;
    for (std::int64_t i = 0; i < group; ++i) v[i] = offset + normal(rng) * scale;
    if (g % 3 == 0 && group >= 3) {  // min and max pin a power-of-two step: the others sit on exact ties
      const float step = std::ldexp(1.0f, int(g % 7) - 4);
      v[0] = 0.0f;
      v[1] = step * float(cinch::ref::group_levels(bits));
      for (std::int64_t i = 2; i < group; ++i) v[i] = (float(level(rng)) + 0.5f) * step;
    }
    if (g % 11 == 4) v[group - 1] = -0.0f;
    if (g % 17 == 5) v[std::size_t(g) % std::size_t(group)] = (g % 2 ? NAN : -inf);
    if (g % 23 == 7)
      for (std::int64_t i = 0; i < group; ++i) v[i] = -1.25f;
    if (g % 29 == 3) v[0] *= 40.0f;
  }
  return x;
}

}  // namespace

TEST_CASE("hand-computed 4-bit and 2-bit groups and their packed bytes", "[kv][groups]") {
  SECTION("4-bit, step 1: ties round to even") {
    // min 0, max 15: s = 1, codes = round_half_even(x).
    const token_groups q = quantize_tokens({0, 1, 2.5f, 3.5f, 15, 7.49f, 8, 14.5f}, 1, 8, 8, 4);
    CHECK(q.scales[0] == 0x3C00);  // 1.0
    CHECK(q.mins[0] == 0x0000);
    // codes 0 1 2 4 15 7 8 14; element 2j in the low nibble of byte j.
    CHECK(q.codes == std::vector<std::uint8_t>{0x10, 0x42, 0x7F, 0xE8});
    CHECK(dequantize_tokens(q, 1, 8, 8, 4) == std::vector<float>{0, 1, 2, 4, 15, 7, 8, 14});
  }
  SECTION("2-bit, min -1") {
    // min -1, max 2: s = 1, codes = round_half_even(x + 1) = 0 1 2 3 | 2 0 2 2.
    const token_groups q = quantize_tokens({-1, 0, 0.5f, 2, 1, -0.5f, 1.5f, 0.9f}, 1, 8, 8, 2);
    CHECK(q.scales[0] == 0x3C00);
    CHECK(q.mins[0] == 0xBC00);  // -1.0
    // element 4j + k in bits 2k..2k+1 of byte j.
    CHECK(q.codes == std::vector<std::uint8_t>{0xE4, 0xA2});
  }
  SECTION("codes use the fp16-rounded scale") {
    // s = 1/15 is stored as fp16 0x2C44 = 0.066650390625. 0.4333 / s16 = 6.5011 -> 7,
    // where the unrounded s would give 0.4333 * 15 = 6.4995 -> 6.
    const token_groups q = quantize_tokens({0, 1, 0.4333f, 0.25f}, 1, 4, 4, 4);
    CHECK(q.scales[0] == 0x2C44);
    CHECK(q.codes == std::vector<std::uint8_t>{0xF0, 0x47});  // codes 0 15 7 4
  }
  SECTION("8-bit codes are one byte each") {
    const token_groups q = quantize_tokens({0, 255, 100.5f, 101.5f}, 1, 4, 4, 8);
    CHECK(q.scales[0] == 0x3C00);
    CHECK(q.codes == std::vector<std::uint8_t>{0, 255, 100, 102});
  }
  SECTION("a constant group stores scale 0 and codes 0; -0 counts as +0") {
    const token_groups q = quantize_tokens({3, 3, 3, 3, -0.0f, -0.0f, -0.0f, -0.0f}, 1, 8, 4, 4);
    CHECK(q.scales == std::vector<std::uint16_t>{0x0000, 0x0000});
    CHECK(q.mins == std::vector<std::uint16_t>{0x4200, 0x0000});
    CHECK(q.codes == std::vector<std::uint8_t>{0, 0, 0, 0});
    CHECK(dequantize_tokens(q, 1, 8, 4, 4) == std::vector<float>{3, 3, 3, 3, 0, 0, 0, 0});
  }
}

TEST_CASE("non-finite groups and fp16 overflow store NaN parameters and zero codes", "[kv][groups]") {
  const float inf = std::numeric_limits<float>::infinity();
  // Groups of 4: NaN, +inf, -inf, step overflow (1e6 / 15 > 65504), min overflow (70000), fine.
  const std::vector<float> x{1, NAN, 2, 3, /**/ 1, 2, inf, 3, /**/ -inf, 1, 2, 3, /**/ 0, 1e6f, 5, 6,
                             /**/ 70000, 70001, 70002, 70003, /**/ 0, 5, 10, 15};
  const token_groups q = quantize_tokens(x, 1, 24, 4, 4);
  for (int g = 0; g < 5; ++g) {
    INFO("group " << g);
    CHECK(q.scales[std::size_t(g)] == cinch::ref::f16_nan_bits);
    CHECK(q.mins[std::size_t(g)] == cinch::ref::f16_nan_bits);
    CHECK(q.codes[std::size_t(2 * g)] == 0);
    CHECK(q.codes[std::size_t(2 * g + 1)] == 0);
  }
  const std::vector<float> y = dequantize_tokens(q, 1, 24, 4, 4);
  for (int i = 0; i < 20; ++i) CHECK(std::isnan(y[std::size_t(i)]));
  CHECK(std::vector<float>(y.begin() + 20, y.end()) == std::vector<float>{0, 5, 10, 15});  // the damage stays in its group
}

TEST_CASE("dequantized values satisfy the stated error bound", "[kv][groups]") {
  for (const int bits : {2, 4, 8}) {
    const std::int64_t group = 32, rows = 64, n = 128;
    std::vector<float> x = random_groups(rows * n / group, group, bits, unsigned(bits));
    for (float& v : x)
      if (!std::isfinite(v)) v = 0.5f;  // finite groups only here
    const token_groups q = quantize_tokens(x, rows, n, group, bits);
    const std::vector<float> y = dequantize_tokens(q, rows, n, group, bits);
    const double levels = cinch::ref::group_levels(bits);
    for (std::int64_t g = 0; g < rows * n / group; ++g) {
      double mn = x[std::size_t(g * group)], mx = mn;
      for (std::int64_t i = 0; i < group; ++i) {
        mn = std::min(mn, double(x[std::size_t(g * group + i)]));
        mx = std::max(mx, double(x[std::size_t(g * group + i)]));
      }
      const double s = (mx - mn) / levels;
      const double s16 = cinch::ref::f16_to_f32(q.scales[std::size_t(g)]);
      const double m16 = cinch::ref::f16_to_f32(q.mins[std::size_t(g)]);
      for (std::int64_t i = 0; i < group; ++i) {
        const double xi = x[std::size_t(g * group + i)], yi = y[std::size_t(g * group + i)];
        const double bound = s16 / 2 + std::fabs(m16 - mn) + levels * std::fabs(s16 - s) +
                             std::ldexp(1.0, -22) * (levels * s16 + std::fabs(xi));
        INFO("bits " << bits << " group " << g << " x " << xi << " x^ " << yi << " bound " << bound);
        REQUIRE(std::fabs(xi - yi) <= bound);
      }
    }
  }
}

TEST_CASE("per-token layout: groups of consecutive channels, element by element", "[kv][groups][layout]") {
  // Values [tokens, heads, dim] seen per head as [heads, tokens, dim]; scale rows
  // padded to 4 entries in a wider buffer.
  const std::int64_t tokens = 6, heads = 3, dim = 48, group = 16, groups = dim / group;
  const std::vector<float> v = random_groups(tokens * heads * dim / group, group, 4, 3);
  const tensor_view by_head = tensor_view(v.data(), dtype::f32, {tokens, heads, dim}).permute({1, 0, 2});
  std::vector<std::uint8_t> codes(std::size_t(heads * tokens * dim / 2));
  std::vector<std::uint16_t> scale_buf(std::size_t(heads * tokens * 4), 0xFFFF), mins(std::size_t(heads * tokens * groups));
  const tensor_view scales(scale_buf.data(), dtype::f16, {heads, tokens, groups}, {tokens * 4, 4, 1});
  cinch::kv::quantize_per_token(by_head, tensor_view(codes.data(), dtype::u4x2, {heads, tokens, dim}), scales,
                                tensor_view(mins.data(), dtype::f16, {heads, tokens, groups}), group);
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t g = 0; g < dim / group; ++g) {
        std::uint8_t expect[8];
        std::uint16_t s, m;
        cinch::ref::quantize_group(v.data() + (t * heads + h) * dim + g * group, 1, group, 4, expect, &s, &m);
        const std::int64_t p = (h * tokens + t) * groups + g;
        REQUIRE(scale_buf[std::size_t((h * tokens + t) * 4 + g)] == s);
        REQUIRE(scale_buf[std::size_t((h * tokens + t) * 4 + 3)] == 0xFFFF);
        REQUIRE(mins[std::size_t(p)] == m);
        for (std::int64_t c = 0; c < group; ++c) {
          const std::int64_t e = (h * tokens + t) * dim + g * group + c;  // element index in the codes
          REQUIRE(((codes[std::size_t(e / 2)] >> (4 * (e % 2))) & 0xF) == cinch::ref::code_at(expect, c, 4));
        }
      }
}

TEST_CASE("per-channel layout: groups of consecutive tokens, codes channel-major", "[kv][groups][layout]") {
  // Keys [heads, T, d] -> codes [heads, T / G, d, G]: channel c of chunk k holds the
  // codes of tokens kG .. kG + G - 1 of that channel, packed along the tokens.
  const std::int64_t heads = 2, tokens = 64, d = 37, group = 32;
  for (const int bits : {2, 4, 8}) {
    const std::vector<float> k = random_groups(heads * tokens * d / group, group, bits, 10u + unsigned(bits));
    const std::int64_t chunks = tokens / group, bytes = group * bits / 8;
    std::vector<std::uint8_t> codes(std::size_t(heads * chunks * d * bytes));
    std::vector<std::uint16_t> scales(std::size_t(heads * chunks * d)), mins(scales.size());
    cinch::kv::quantize_per_channel(tensor_view(k.data(), dtype::f32, {heads, tokens, d}),
                                    tensor_view(codes.data(), codes_dtype(bits), {heads, chunks, d, group}),
                                    tensor_view(scales.data(), dtype::f16, {heads, chunks, d}),
                                    tensor_view(mins.data(), dtype::f16, {heads, chunks, d}), group);
    std::vector<float> y(k.size());
    cinch::kv::dequantize_per_channel(tensor_view(codes.data(), codes_dtype(bits), {heads, chunks, d, group}),
                                      tensor_view(scales.data(), dtype::f16, {heads, chunks, d}),
                                      tensor_view(mins.data(), dtype::f16, {heads, chunks, d}),
                                      tensor_view(y.data(), dtype::f32, {heads, tokens, d}), group);
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t ch = 0; ch < chunks; ++ch)
        for (std::int64_t c = 0; c < d; ++c) {
          INFO("bits " << bits << " head " << h << " chunk " << ch << " channel " << c);
          std::uint8_t expect[32];
          std::uint16_t s, m;
          const float* first = k.data() + (h * tokens + ch * group) * d + c;
          cinch::ref::quantize_group(first, d, group, bits, expect, &s, &m);
          const std::int64_t p = (h * chunks + ch) * d + c;
          REQUIRE(scales[std::size_t(p)] == s);
          REQUIRE(mins[std::size_t(p)] == m);
          const std::uint8_t* chunk_codes = codes.data() + (h * chunks + ch) * d * bytes;
          for (std::int64_t b = 0; b < bytes; ++b) REQUIRE(chunk_codes[c * bytes + b] == expect[b]);
          for (std::int64_t t = 0; t < group; ++t) {
            const float value = cinch::ref::per_channel_value(chunk_codes, bytes, scales.data() + (h * chunks + ch) * d,
                                                              mins.data() + (h * chunks + ch) * d, bits, t, c);
            const float got = y[std::size_t((h * tokens + ch * group + t) * d + c)];
            REQUIRE((got == value || (std::isnan(got) && std::isnan(value))));
          }
        }
  }
}

TEST_CASE("attention helpers: scores on per-channel keys, dot and accumulation on per-token rows", "[kv][groups]") {
  const std::int64_t d = 64, group = 32;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> keys(static_cast<std::size_t>(group * d)), q(static_cast<std::size_t>(d));
  for (float& v : keys) v = normal(rng);
  for (float& v : q) v = normal(rng);
  for (const int bits : {2, 4}) {
    INFO("bits " << bits);
    const std::int64_t bytes = group * bits / 8;
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(d * bytes));
    std::vector<std::uint16_t> scales(static_cast<std::size_t>(d)), mins(static_cast<std::size_t>(d));
    cinch::ref::quantize_per_channel_chunk(keys.data(), d, d, group, bits, codes.data(), bytes, scales.data(), mins.data());
    std::vector<float> k_hat(keys.size());
    cinch::ref::dequantize_per_channel_chunk(codes.data(), bytes, scales.data(), mins.data(), d, group, bits, k_hat.data(), d);
    float scores[32];
    cinch::ref::per_channel_scores(q.data(), codes.data(), bytes, scales.data(), mins.data(), d, group, bits, scores);
    for (std::int64_t t = 0; t < group; ++t) {
      double exact = 0, magnitude = 0;
      for (std::int64_t c = 0; c < d; ++c) {
        exact += double(q[std::size_t(c)]) * k_hat[std::size_t(t * d + c)];
        magnitude += std::fabs(double(q[std::size_t(c)]) * k_hat[std::size_t(t * d + c)]) +
                     2 * std::fabs(double(q[std::size_t(c)]) * cinch::ref::f16_to_f32(mins[std::size_t(c)]));
      }
      REQUIRE(std::fabs(scores[t] - exact) <= 2 * d * std::ldexp(1.0, -24) * magnitude);
    }

    // The same keys as per-token rows: q . k^ and y += w * k^.
    std::vector<std::uint8_t> row_codes(static_cast<std::size_t>(d * bits / 8));
    std::vector<std::uint16_t> row_scales(static_cast<std::size_t>(d / group)), row_mins(row_scales.size());
    cinch::ref::quantize_per_token_row(keys.data(), d, group, bits, row_codes.data(), row_scales.data(), row_mins.data());
    std::vector<float> row(static_cast<std::size_t>(d)), acc(static_cast<std::size_t>(d), 1.0f);
    cinch::ref::dequantize_per_token_row(row_codes.data(), row_scales.data(), row_mins.data(), d, group, bits, row.data());
    double exact = 0, magnitude = 0;
    for (std::int64_t c = 0; c < d; ++c) {
      exact += double(q[std::size_t(c)]) * row[std::size_t(c)];
      magnitude += std::fabs(double(q[std::size_t(c)]) * row[std::size_t(c)]) +
                   2 * std::fabs(double(q[std::size_t(c)])) * std::fabs(cinch::ref::f16_to_f32(row_mins[std::size_t(c / group)]));
    }
    const float dot = cinch::ref::per_token_dot(q.data(), row_codes.data(), row_scales.data(), row_mins.data(), d, group, bits);
    REQUIRE(std::fabs(dot - exact) <= 2 * d * std::ldexp(1.0, -24) * magnitude);
    cinch::ref::per_token_accumulate(0.25f, row_codes.data(), row_scales.data(), row_mins.data(), d, group, bits, acc.data());
    for (std::int64_t c = 0; c < d; ++c) {
      REQUIRE(acc[std::size_t(c)] == 1.0f + 0.25f * row[std::size_t(c)]);
      REQUIRE(cinch::ref::per_token_value(row_codes.data(), row_scales.data(), row_mins.data(), group, bits, c) ==
              row[std::size_t(c)]);
    }
  }
}

TEST_CASE("group codes and values are identical on every backend and CPU target", "[kv][groups][agreement]") {
  struct shape {
    std::int64_t n, group;
  };
  for (const int bits : {2, 4, 8}) {
    for (const shape sh : {shape{32, 32}, shape{96, 32}, shape{40, 8}, shape{36, 12}, shape{64, 16}, shape{128, 64},
                           shape{20, 4}, shape{8, 8}, shape{60, 20}, shape{18, 6}}) {
      const std::int64_t rows = 7, n = sh.n, group = sh.group;
      if (group % (8 / bits)) continue;
      const std::vector<float> x = random_groups(rows * n / group, group, bits, unsigned(n * 10 + group + bits));
      cinch::force_backend(cinch::backend_kind::ref);
      const token_groups expect = quantize_tokens(x, rows, n, group, bits);
      const std::vector<float> expect_y = dequantize_tokens(expect, rows, n, group, bits);
      cinch::force_backend(std::nullopt);
      for_each_cpu_target([&](const std::string& target) {
        INFO(target << " per token: bits " << bits << " n " << n << " group " << group);
        const token_groups q = quantize_tokens(x, rows, n, group, bits);
        REQUIRE(q.codes == expect.codes);
        REQUIRE(q.scales == expect.scales);
        REQUIRE(q.mins == expect.mins);
        const std::vector<float> y = dequantize_tokens(q, rows, n, group, bits);
        for (std::size_t i = 0; i < y.size(); ++i)
          REQUIRE((y[i] == expect_y[i] || (std::isnan(y[i]) && std::isnan(expect_y[i]))));
      });
    }
    // Per channel: odd channel counts (vector tails), token rows wider than d.
    for (const std::int64_t d : {1, 7, 16, 37, 130}) {
      for (const std::int64_t group : {4, 8, 12, 32, 64}) {
        if (group % (8 / bits)) continue;
        const std::int64_t chunks = 3, tokens = chunks * group, row = d + 5, bytes = group * bits / 8;
        // Group (chunk k, channel c) is generated group k * d + c, placed down column c.
        const std::vector<float> groups = random_groups(chunks * d, group, bits, unsigned(d * 100 + group + bits));
        std::vector<float> buf(std::size_t(tokens * row), 7.0f);
        for (std::int64_t k = 0; k < chunks; ++k)
          for (std::int64_t c = 0; c < d; ++c)
            for (std::int64_t t = 0; t < group; ++t)
              buf[std::size_t((k * group + t) * row + 2 + c)] = groups[std::size_t((k * d + c) * group + t)];
        const tensor_view x = tensor_view(buf.data(), dtype::f32, {tokens, row}).slice(1, 2, 2 + d);
        auto run = [&](std::vector<std::uint8_t>& codes, std::vector<std::uint16_t>& scales, std::vector<std::uint16_t>& mins,
                       std::vector<float>& y) {
          codes.assign(std::size_t(chunks * d * bytes), 0xAB);
          scales.assign(std::size_t(chunks * d), 0);
          mins.assign(std::size_t(chunks * d), 0);
          y.assign(std::size_t(tokens * d), 0.0f);
          const tensor_view c(codes.data(), codes_dtype(bits), {chunks, d, group});
          const tensor_view s(scales.data(), dtype::f16, {chunks, d}), m(mins.data(), dtype::f16, {chunks, d});
          cinch::kv::quantize_per_channel(x, c, s, m, group);
          cinch::kv::dequantize_per_channel(c, s, m, tensor_view(y.data(), dtype::f32, {tokens, d}), group);
        };
        std::vector<std::uint8_t> expect_codes, codes;
        std::vector<std::uint16_t> expect_scales, expect_mins, scales, mins;
        std::vector<float> expect_y, y;
        cinch::force_backend(cinch::backend_kind::ref);
        run(expect_codes, expect_scales, expect_mins, expect_y);
        cinch::force_backend(std::nullopt);
        for_each_cpu_target([&](const std::string& target) {
          INFO(target << " per channel: bits " << bits << " d " << d << " group " << group);
          run(codes, scales, mins, y);
          REQUIRE(codes == expect_codes);
          REQUIRE(scales == expect_scales);
          REQUIRE(mins == expect_mins);
          for (std::size_t i = 0; i < y.size(); ++i)
            REQUIRE((y[i] == expect_y[i] || (std::isnan(y[i]) && std::isnan(expect_y[i]))));
        });
      }
    }
  }
}

TEST_CASE("group quantization rejects bad input", "[kv][groups][errors]") {
  std::vector<float> x(64, 1.0f);
  std::vector<std::uint8_t> codes(64);
  std::vector<std::uint16_t> scales(16), mins(16);
  const tensor_view xv(x.data(), dtype::f32, {2, 32});
  const tensor_view c4(codes.data(), dtype::u4x2, {2, 32});
  const tensor_view s(scales.data(), dtype::f16, {2, 2}), m(mins.data(), dtype::f16, {2, 2});
  using cinch::kv::quantize_per_token;

  CHECK(cinch::kv::group_bits(dtype::u2x4) == 2);
  require_error([&] { (void)cinch::kv::group_bits(dtype::i4x2); }, errc::invalid_argument, {"kv::group_bits", "i4x2"});
  require_error([&] { quantize_per_token(xv, tensor_view(codes.data(), dtype::i8, {2, 32}), s, m, 16); },
                errc::invalid_argument, {"kv::quantize_per_token", "codes", "u4x2", "got i8"});
  require_error([&] { quantize_per_token(xv, c4, tensor_view(x.data(), dtype::f32, {2, 2}), m, 16); },
                errc::invalid_argument, {"scales", "f16", "got f32"});
  require_error([&] { quantize_per_token(xv, c4, s, m, 0); }, errc::invalid_argument, {"group_size", ">= 1", "got 0"});
  require_error([&] { quantize_per_token(xv, c4, s, m, 5); }, errc::invalid_argument, {"multiple of 2", "got 5"});
  require_error([&] { quantize_per_token(xv, tensor_view(codes.data(), dtype::u2x4, {2, 32}), s, m, 6); },
                errc::invalid_argument, {"multiple of 4", "got 6"});
  require_error([&] { quantize_per_token(xv, c4, s, m, 12); }, errc::shape_mismatch, {"group_size 12", "divide", "32"});
  require_error([&] { quantize_per_token(xv, c4, tensor_view(scales.data(), dtype::f16, {2, 4}), m, 16); },
                errc::shape_mismatch, {"scales", "[2, 2]", "[2, 4]"});
  require_error([&] { quantize_per_token(xv, tensor_view(codes.data(), dtype::u4x2, {2, 30}), s, m, 16); },
                errc::shape_mismatch, {"codes", "[2, 32]"});
  require_error([&] { quantize_per_token(tensor_view(x.data(), dtype::f32, {}), c4, s, m, 16); },
                errc::shape_mismatch, {"x", "rank 0"});
  require_error([&] { quantize_per_token(xv, c4.as_read_only(), s, m, 16); }, errc::invalid_argument, {"codes", "writable"});
  require_error([&] { quantize_per_token(xv, c4, tensor_view(x.data(), dtype::f16, {2, 2}), m, 16); },
                errc::invalid_argument, {"scales", "overlap"});
  require_error([&] { quantize_per_token(xv, c4, s, tensor_view(scales.data(), dtype::f16, {2, 2}), 16); },
                errc::invalid_argument, {"mins", "overlap"});
  if (cinch::cuda_device_count() == 0) {  // no device to run on: the call must not reach a kernel
    const auto gpu = cinch::cuda_device(0);
    const errc expected = cinch::compiled_backends().size() == 3 ? errc::invalid_argument : errc::unsupported;
    require_error(
        [&] {
          quantize_per_token(tensor_view(x.data(), dtype::f32, {2, 32}, gpu), tensor_view(codes.data(), dtype::u4x2, {2, 32}, gpu),
                             tensor_view(scales.data(), dtype::f16, {2, 2}, gpu), tensor_view(mins.data(), dtype::f16, {2, 2}, gpu), 16);
        },
        expected, {"kv::quantize_per_token", "cuda:0"});
  }
  require_error([&] { quantize_per_token(xv, c4, tensor_view(scales.data(), dtype::f16, {2, 2}, cinch::cuda_device(0)), m, 16); },
                errc::invalid_argument, {"scales", "must be on cpu"});
  require_error(
      [&] { cinch::kv::dequantize_per_token(c4, s, m, tensor_view(x.data(), dtype::f32, {2, 32}, {1, 2}), 16); },
      errc::unsupported, {"kv::dequantize_per_token", "y", "stride 1"});

  using cinch::kv::quantize_per_channel;
  const tensor_view keys(x.data(), dtype::f32, {8, 8});
  const tensor_view kc(codes.data(), dtype::u4x2, {2, 8, 4});
  const tensor_view ks(scales.data(), dtype::f16, {2, 8}), km(mins.data(), dtype::f16, {2, 8});
  quantize_per_channel(keys, kc, ks, km, 4);  // the valid call the others vary
  require_error([&] { quantize_per_channel(tensor_view(x.data(), dtype::f32, {64}), kc, ks, km, 4); },
                errc::shape_mismatch, {"kv::quantize_per_channel", "x", "rank >= 2"});
  require_error([&] { quantize_per_channel(keys, kc, ks, km, 3); }, errc::invalid_argument, {"multiple of 2"});
  require_error([&] { quantize_per_channel(keys, tensor_view(codes.data(), dtype::u4x2, {1, 8, 6}), ks, km, 6); },
                errc::shape_mismatch, {"group_size 6", "token count 8"});
  require_error([&] { quantize_per_channel(keys, tensor_view(codes.data(), dtype::u4x2, {2, 4, 8}), ks, km, 4); },
                errc::shape_mismatch, {"codes", "[2, 8, 4]", "[2, 4, 8]"});
  require_error([&] { quantize_per_channel(keys, kc, tensor_view(scales.data(), dtype::f16, {8, 2}), km, 4); },
                errc::shape_mismatch, {"scales", "[2, 8]"});
  require_error([&] { cinch::kv::dequantize_per_channel(kc, ks, km, tensor_view(x.data(), dtype::f16, {8, 8}), 4); },
                errc::invalid_argument, {"kv::dequantize_per_channel", "y", "f32", "got f16"});
}
