// Symmetric absmax int8 rows: hand-computed rows, the half-step error bound,
// the documented inf/NaN behaviour, and identical codes on every backend.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/ref/quantize.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "cpu_targets.hpp"

using cinch::dtype;
using cinch::tensor_view;

namespace {

struct quantized {
  std::vector<std::int8_t> codes;
  std::vector<float> scales;
};

quantized quantize(const std::vector<float>& x, std::int64_t rows, std::int64_t cols) {
  quantized q{std::vector<std::int8_t>(x.size()), std::vector<float>(std::size_t(rows))};
  cinch::quantize_rows(tensor_view(x.data(), dtype::f32, {rows, cols}), tensor_view(q.codes.data(), dtype::i8, {rows, cols}),
                       tensor_view(q.scales.data(), dtype::f32, {rows}));
  return q;
}

// Rows of varied scale with exact .5 ties after scaling, outliers and odd lengths.
std::vector<float> random_rows(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> tie(-126, 126);
  std::vector<float> x(std::size_t(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float scale = std::ldexp(1.0f, int(r % 20) - 10);
    for (std::int64_t c = 0; c < cols; ++c) {
      float v = normal(rng) * scale;
      if (c % 7 == 3) v = (float(tie(rng)) + 0.5f) * scale;  // a tie once amax = 127 * scale
      x[std::size_t(r * cols + c)] = v;
    }
    x[std::size_t(r * cols + (r % cols))] = 127.0f * scale;  // pins amax so the ties above are exact
  }
  return x;
}

}  // namespace

TEST_CASE("hand-computed rows", "[quantize]") {
  const quantized a = quantize({1.0f, -2.0f, 0.5f, 127.0f, -1.5f}, 1, 5);  // amax 127: inv 1
  CHECK(a.scales[0] == 1.0f);
  CHECK(a.codes == std::vector<std::int8_t>{1, -2, 0, 127, -2});  // 0.5 -> 0 and -1.5 -> -2: ties to even
  const quantized b = quantize({0.5f, 1.5f, 2.5f, -254.0f}, 1, 4);  // amax 254: inv 0.5
  CHECK(b.scales[0] == 2.0f);
  CHECK(b.codes == std::vector<std::int8_t>{0, 1, 1, -127});
}

TEST_CASE("dequantized values are within half a step", "[quantize]") {
  const std::int64_t rows = 40, cols = 1001;
  const std::vector<float> x = random_rows(rows, cols, 1);
  const quantized q = quantize(x, rows, cols);
  std::vector<float> y(x.size());
  cinch::dequantize_rows(tensor_view(q.codes.data(), dtype::i8, {rows, cols}), tensor_view(q.scales.data(), dtype::f32, {rows}),
                         tensor_view(y.data(), dtype::f32, {rows, cols}));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float step = q.scales[std::size_t(r)];
    for (std::int64_t c = 0; c < cols; ++c) {
      const std::size_t i = std::size_t(r * cols + c);
      REQUIRE(std::fabs(x[i] - y[i]) <= 0.5f * step * (1 + 1e-5f));
      REQUIRE(y[i] == float(q.codes[i]) * step);
    }
  }
}

TEST_CASE("zero, inf and NaN rows follow the documented rules", "[quantize]") {
  const float inf = std::numeric_limits<float>::infinity();
  const quantized q = quantize({0, 0, 0, 0, /**/ 1, inf, 2, 3, /**/ 1, NAN, -inf, 4}, 3, 4);
  CHECK(q.scales[0] == 0.0f);
  CHECK(q.scales[1] == inf);
  CHECK(std::isnan(q.scales[2]));  // a NaN outranks inf
  for (const std::int8_t c : q.codes) CHECK(c == 0);
  std::vector<float> y(12);
  cinch::dequantize_rows(tensor_view(q.codes.data(), dtype::i8, {3, 4}), tensor_view(q.scales.data(), dtype::f32, {3}),
                         tensor_view(y.data(), dtype::f32, {3, 4}));
  for (int i = 0; i < 4; ++i) CHECK(y[std::size_t(i)] == 0.0f);
  for (int i = 4; i < 12; ++i) CHECK(std::isnan(y[std::size_t(i)]));  // the damage is visible, and stays in its row
}

TEST_CASE("codes and scales are identical on every backend and CPU target", "[quantize][agreement]") {
  for (const std::int64_t cols : {1, 7, 64, 1000, 4099}) {
    const std::int64_t rows = 23;
    const std::vector<float> x = random_rows(rows, cols, unsigned(cols));
    std::vector<std::int8_t> expect(x.size());
    std::vector<float> expect_scales(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r)
      expect_scales[std::size_t(r)] = cinch::ref::quantize_row_i8(x.data() + r * cols, expect.data() + r * cols, cols);
    std::vector<float> expect_y(x.size());
    for (std::int64_t r = 0; r < rows; ++r)
      cinch::ref::dequantize_row_i8(expect.data() + r * cols, expect_scales[std::size_t(r)], expect_y.data() + r * cols, cols);

    auto check = [&](const std::string& target) {
      INFO(target << ", cols " << cols);
      const quantized q = quantize(x, rows, cols);
      REQUIRE(q.codes == expect);
      REQUIRE(q.scales == expect_scales);
      std::vector<float> y(x.size());
      cinch::dequantize_rows(tensor_view(q.codes.data(), dtype::i8, {rows, cols}), tensor_view(q.scales.data(), dtype::f32, {rows}),
                             tensor_view(y.data(), dtype::f32, {rows, cols}));
      REQUIRE(y == expect_y);
    };
    for_each_cpu_target(check);
    cinch::force_backend(cinch::backend_kind::ref);
    check("ref");
    cinch::force_backend(std::nullopt);
  }
}

TEST_CASE("row quantization follows strided layouts", "[quantize]") {
  // Keys laid out [tokens, heads, dim] quantized per (head, token) row through a permuted view,
  // with scales written into a strided column of a wider buffer.
  const std::int64_t tokens = 5, heads = 3, dim = 16;
  std::vector<float> keys = random_rows(tokens * heads, dim, 9);
  const tensor_view by_head = tensor_view(keys.data(), dtype::f32, {tokens, heads, dim}).permute({1, 0, 2});
  std::vector<std::int8_t> codes(std::size_t(heads * tokens * dim));
  std::vector<float> scale_buffer(std::size_t(heads * tokens * 2), -1.0f);
  const tensor_view scales(scale_buffer.data(), dtype::f32, {heads, tokens}, {tokens * 2, 2});
  cinch::quantize_rows(by_head, tensor_view(codes.data(), dtype::i8, {heads, tokens, dim}), scales);
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t t = 0; t < tokens; ++t) {
      std::int8_t expect[16];
      const float s = cinch::ref::quantize_row_i8(keys.data() + (t * heads + h) * dim, expect, dim);
      REQUIRE(scale_buffer[std::size_t(h * tokens * 2 + t * 2)] == s);
      REQUIRE(scale_buffer[std::size_t(h * tokens * 2 + t * 2 + 1)] == -1.0f);
      for (std::int64_t d = 0; d < dim; ++d) REQUIRE(codes[std::size_t((h * tokens + t) * dim + d)] == expect[d]);
    }
}
