// Scaled FP8 (vLLM semantics): hand-computed codes, saturation, the round-trip
// bound, per-head scales, vLLM's calibration, identical codes on every backend and
// CPU target, and bad input.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/kv/fp8.hpp>
#include <cinch/ref/fp8.hpp>

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

std::vector<std::uint8_t> quantize(const std::vector<float>& x, float scale, dtype format) {
  std::vector<std::uint8_t> q(x.size());
  cinch::kv::quantize_scaled(tensor_view(x.data(), dtype::f32, {std::int64_t(x.size())}), scale,
                             tensor_view(q.data(), format, {std::int64_t(x.size())}));
  return q;
}

std::vector<float> dequantize(const std::vector<std::uint8_t>& q, float scale, dtype format) {
  std::vector<float> y(q.size());
  cinch::kv::dequantize_scaled(tensor_view(q.data(), format, {std::int64_t(q.size())}), scale,
                               tensor_view(y.data(), dtype::f32, {std::int64_t(q.size())}));
  return y;
}

std::vector<float> random_values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = normal(rng) * std::ldexp(1.0f, int(i % 24) - 12);
  return x;
}

}  // namespace

TEST_CASE("scaled fp8: x / s, saturating, then back times s", "[kv][fp8]") {
  const float inf = std::numeric_limits<float>::infinity();
  // s = 2: 3 -> 1.5 = 0x3C; 896 -> 448 = 0x7E (largest e4m3); 900 and inf saturate to it; NaN -> 0x7F.
  // 2^-8 -> 2^-9, the smallest subnormal (0x01); 2^-10 -> 2^-11, a quarter of it, rounds to 0.
  const std::vector<std::uint8_t> q =
      quantize({3, 896, 900, -1e9f, inf, NAN, 0, 0.00390625f, 0.0009765625f}, 2.0f, dtype::f8_e4m3);
  CHECK(q == std::vector<std::uint8_t>{0x3C, 0x7E, 0x7E, 0xFE, 0x7E, 0x7F, 0x00, 0x01, 0x00});
  const std::vector<float> y = dequantize(q, 2.0f, dtype::f8_e4m3);
  CHECK(y[0] == 3.0f);
  CHECK(y[1] == 896.0f);
  CHECK(y[2] == 896.0f);
  CHECK(y[3] == -896.0f);
  CHECK(std::isnan(y[5]));
  CHECK(y[7] == 2.0f / 512.0f);
  // e5m2 saturates at 57344: with s = 0.5, 30000 -> 60000 -> 57344 -> 28672.
  const std::vector<std::uint8_t> r = quantize({30000, -1, 0.75f}, 0.5f, dtype::f8_e5m2);
  CHECK(r == std::vector<std::uint8_t>{0x7B, 0xC0, 0x3E});  // 57344, -2, 1.5
  CHECK(dequantize(r, 0.5f, dtype::f8_e5m2) == std::vector<float>{28672, -1, 0.75f});
}

TEST_CASE("scaled fp8 divides by the scale (not a multiply by 1/s)", "[kv][fp8]") {
  // x within a few f32 steps of s * (an e4m3 midpoint): there x / s and x * fl(1/s)
  // can land on opposite sides of the midpoint. Every backend must give the division's.
  const float s = 0.37f, inv = 1.0f / s;
  std::vector<float> x;
  for (int e = -6; e <= 7; ++e)
    for (int m = 0; m < 8; ++m) {
      const float base = std::ldexp(1.0f + (float(m) + 0.5f) / 8.0f, e) * s;
      for (int k = -2; k <= 2; ++k) {
        const float v = cinch::ref::float_of(cinch::ref::bits_of(base) + std::uint32_t(k));
        if (cinch::ref::f32_to_e4m3(v / s) != cinch::ref::f32_to_e4m3(v * inv)) x.push_back(v);
      }
    }
  REQUIRE(x.size() >= 10);
  for_each_cpu_target([&](const std::string&) {
    const std::vector<std::uint8_t> q = quantize(x, s, dtype::f8_e4m3);
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(q[i] == cinch::ref::f32_to_e4m3(x[i] / s));
  });
}

TEST_CASE("scaled fp8 round trip stays within half a step of the format", "[kv][fp8]") {
  const std::vector<float> x = random_values(4096, 1);
  const float s = cinch::kv::calibrate_scale(tensor_view(x.data(), dtype::f32, {4096}), cinch::kv::e4m3_max);
  const std::vector<float> y = dequantize(quantize(x, s, dtype::f8_e4m3), s, dtype::f8_e4m3);
  for (std::size_t i = 0; i < x.size(); ++i) {
    // e4m3: 3 mantissa bits -> relative half step 2^-4; subnormals: absolute 2^-10 (in units of s).
    const double bound = std::max(std::ldexp(std::fabs(double(x[i])), -4), std::ldexp(double(s), -10)) * (1 + 1e-6);
    REQUIRE(std::fabs(double(x[i]) - y[i]) <= bound);
  }
}

TEST_CASE("per-head scales and vLLM calibration", "[kv][fp8]") {
  // x: [heads 2, tokens 3, dim 4].
  std::vector<float> x(24);
  for (std::size_t i = 0; i < 24; ++i) x[i] = float(int(i) - 7) * (i < 12 ? 1.0f : 10.0f);
  const tensor_view xv(x.data(), dtype::f32, {2, 3, 4});
  CHECK(cinch::kv::calibrate_scale(xv, cinch::kv::key_scale_constant) == 160.0f / 200.0f);  // max|x| = 16 * 10
  std::vector<float> scales(2);
  cinch::kv::calibrate_head_scales(xv, cinch::kv::value_scale_constant, tensor_view(scales.data(), dtype::f32, {2}));
  CHECK(scales == std::vector<float>{7.0f / 100.0f, 160.0f / 100.0f});
  std::vector<float> zeros(8, 0.0f);
  CHECK(cinch::kv::calibrate_scale(tensor_view(zeros.data(), dtype::f32, {8}), 448.0f) == 1.0f);
  CHECK(cinch::kv::calibrate_scale(tensor_view(x.data(), dtype::f32, {0}), 448.0f) == 1.0f);
  // "Fits the format": max|x| lands on 448 exactly.
  const float fit = cinch::kv::calibrate_scale(xv, cinch::kv::e4m3_max);
  std::vector<std::uint8_t> top(1);
  cinch::kv::quantize_scaled(tensor_view(x.data() + 23, dtype::f32, {1}), fit, tensor_view(top.data(), dtype::f8_e4m3, {1}));
  CHECK(top[0] == 0x7E);

  std::vector<std::uint8_t> q(24);
  cinch::kv::quantize_scaled(xv, tensor_view(scales.data(), dtype::f32, {2}), tensor_view(q.data(), dtype::f8_e5m2, {2, 3, 4}));
  for (std::size_t i = 0; i < 24; ++i) REQUIRE(q[i] == cinch::ref::f32_to_e5m2(x[i] / scales[i / 12]));
  std::vector<float> y(24);
  cinch::kv::dequantize_scaled(tensor_view(q.data(), dtype::f8_e5m2, {2, 3, 4}), tensor_view(scales.data(), dtype::f32, {2}),
                               tensor_view(y.data(), dtype::f32, {2, 3, 4}));
  for (std::size_t i = 0; i < 24; ++i) REQUIRE(y[i] == cinch::ref::e5m2_to_f32(q[i]) * scales[i / 12]);
}

TEST_CASE("scaled fp8 codes and values are identical on every backend and CPU target", "[kv][fp8][agreement]") {
  const float inf = std::numeric_limits<float>::infinity();
  for (const dtype format : {dtype::f8_e4m3, dtype::f8_e5m2}) {
    for (const std::int64_t cols : {1, 7, 513, 1001}) {
      const std::int64_t rows = 5;
      std::vector<float> x = random_values(std::size_t(rows * cols), unsigned(cols));
      x[0] = inf;
      x[std::size_t(rows * cols / 2)] = NAN;
      x[std::size_t(rows * cols - 1)] = -1e30f;
      const std::vector<float> head_scales{0.5f, 3.0f, 1e-3f, 7.25f, 100.0f};
      auto run = [&](std::vector<std::uint8_t>& q, std::vector<float>& y, bool per_head) {
        q.assign(std::size_t(rows * cols), 0);
        y.assign(q.size(), 0.0f);
        const tensor_view xv(x.data(), dtype::f32, {rows, cols}), qv(q.data(), format, {rows, cols});
        const tensor_view yv(y.data(), dtype::f32, {rows, cols}), hv(head_scales.data(), dtype::f32, {rows});
        if (per_head) {
          cinch::kv::quantize_scaled(xv, hv, qv);
          cinch::kv::dequantize_scaled(qv, hv, yv);
        } else {
          cinch::kv::quantize_scaled(xv, 0.37f, qv);
          cinch::kv::dequantize_scaled(qv, 0.37f, yv);
        }
      };
      for (const bool per_head : {false, true}) {
        std::vector<std::uint8_t> expect_q, q;
        std::vector<float> expect_y, y;
        cinch::force_backend(cinch::backend_kind::ref);
        run(expect_q, expect_y, per_head);
        cinch::force_backend(std::nullopt);
        for (std::int64_t i = 0; i < rows * cols; ++i)
          REQUIRE(expect_q[std::size_t(i)] ==
                  (format == dtype::f8_e4m3 ? cinch::ref::f32_to_e4m3(x[std::size_t(i)] / (per_head ? head_scales[std::size_t(i / cols)] : 0.37f))
                                            : cinch::ref::f32_to_e5m2(x[std::size_t(i)] / (per_head ? head_scales[std::size_t(i / cols)] : 0.37f))));
        for_each_cpu_target([&](const std::string& target) {
          INFO(target << " " << cinch::to_string(format) << " cols " << cols << " per head " << per_head);
          run(q, y, per_head);
          REQUIRE(q == expect_q);
          for (std::size_t i = 0; i < y.size(); ++i)
            REQUIRE((y[i] == expect_y[i] || (std::isnan(y[i]) && std::isnan(expect_y[i]))));
        });
      }
    }
  }
}

TEST_CASE("scaled fp8 rejects bad input", "[kv][fp8][errors]") {
  std::vector<float> x(8, 1.0f), heads(2, 1.0f);
  std::vector<std::uint8_t> q(8);
  const tensor_view xv(x.data(), dtype::f32, {2, 4}), qv(q.data(), dtype::f8_e4m3, {2, 4});
  using cinch::kv::quantize_scaled;
  require_error([&] { quantize_scaled(xv, 1.0f, tensor_view(q.data(), dtype::i8, {2, 4})); }, errc::invalid_argument,
                {"kv::quantize_scaled", "q", "f8_e4m3 or f8_e5m2", "got i8"});
  require_error([&] { quantize_scaled(xv, 0.0f, qv); }, errc::invalid_argument, {"scale", "finite and > 0", "got 0"});
  require_error([&] { quantize_scaled(xv, -2.0f, qv); }, errc::invalid_argument, {"got -2"});
  require_error([&] { quantize_scaled(xv, NAN, qv); }, errc::invalid_argument, {"got nan"});
  require_error([&] { cinch::kv::dequantize_scaled(qv, std::numeric_limits<float>::infinity(), xv); },
                errc::invalid_argument, {"kv::dequantize_scaled", "got inf"});
  require_error([&] { quantize_scaled(xv, 1.0f, tensor_view(q.data(), dtype::f8_e4m3, {4, 2})); }, errc::shape_mismatch,
                {"q", "[2, 4]", "[4, 2]"});
  require_error([&] { quantize_scaled(tensor_view(x.data(), dtype::f16, {2, 4}), 1.0f, qv); }, errc::invalid_argument,
                {"x", "f32", "got f16"});
  require_error([&] { quantize_scaled(xv, tensor_view(heads.data(), dtype::f32, {3}), qv); }, errc::shape_mismatch,
                {"head_scales", "[2]", "[3]"});
  heads[1] = 0.0f;
  require_error([&] { quantize_scaled(xv, tensor_view(heads.data(), dtype::f32, {2}), qv); }, errc::invalid_argument,
                {"head_scales[1]", "finite and > 0", "got 0"});
  require_error([&] { quantize_scaled(tensor_view(x.data(), dtype::f32, {8}), tensor_view(heads.data(), dtype::f32, {2}),
                                      tensor_view(q.data(), dtype::f8_e4m3, {8})); },
                errc::shape_mismatch, {"x", "rank >= 2"});
  require_error([&] { (void)cinch::kv::calibrate_scale(xv, 0.0f); }, errc::invalid_argument,
                {"kv::calibrate_scale", "constant", "got 0"});
  x[5] = NAN;
  require_error([&] { (void)cinch::kv::calibrate_scale(xv, 200.0f); }, errc::invalid_argument, {"finite", "got NaN"});
  x[5] = -std::numeric_limits<float>::infinity();
  require_error([&] { (void)cinch::kv::calibrate_scale(xv, 200.0f); }, errc::invalid_argument, {"got inf"});
  require_error([&] { cinch::kv::calibrate_head_scales(xv, 100.0f, tensor_view(heads.data(), dtype::f32, {2})); },
                errc::invalid_argument, {"kv::calibrate_head_scales", "got inf"});
  require_error([&] { cinch::kv::calibrate_head_scales(xv, 100.0f, tensor_view(heads.data(), dtype::f32, {4})); },
                errc::shape_mismatch, {"scales", "[2]", "[4]"});
  require_error([&] { quantize_scaled(xv, 1.0f, tensor_view(x.data(), dtype::f8_e4m3, {2, 4})); }, errc::invalid_argument,
                {"q", "overlap"});
}
