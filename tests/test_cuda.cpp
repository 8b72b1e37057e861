// The CUDA backend against the reference. Exits 77 (ctest: skipped) when no
// GPU is visible; compiled wherever the CUDA backend is, so it cannot rot.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/ref/convert.hpp>
#include <cinch/ref/quantize.hpp>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

using cinch::dtype;
using cinch::tensor;
using cinch::tensor_view;

int main(int argc, char** argv) {
  if (cinch::cuda_device_count() == 0) {
    std::puts("test_cuda: no CUDA device visible, skipped");
    return 77;
  }
  std::fputs(cinch::describe().c_str(), stdout);
  return Catch::Session().run(argc, argv);
}

namespace {

std::vector<float> values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::uint32_t> bits;
  std::normal_distribution<float> normal(0.0f, 100.0f);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t b = bits(rng);
    float f;
    std::memcpy(&f, &b, 4);
    v[i] = i % 3 ? normal(rng) : f;  // a third raw bit patterns: NaN, inf, subnormals
  }
  return v;
}

tensor to_gpu(const tensor_view& host) {
  tensor t = tensor::empty(host.shape(), host.type(), cinch::cuda_device(0));
  cinch::copy(host, t);
  return t;
}

}  // namespace

TEST_CASE("GPU conversions equal the reference bit for bit", "[cuda]") {
  const std::int64_t rows = 37, cols = 1031;
  const std::vector<float> x = values(std::size_t(rows * cols), 1);
  const tensor gx = to_gpu(tensor_view(x.data(), dtype::f32, {rows, cols}));
  for (const dtype t : {dtype::f16, dtype::bf16, dtype::f8_e4m3, dtype::f8_e5m2}) {
    INFO(cinch::to_string(t));
    tensor narrow = tensor::empty({rows, cols}, t, cinch::cuda_device(0));
    cinch::convert(gx, narrow);
    tensor host_narrow = tensor::empty({rows, cols}, t);
    cinch::copy(narrow, host_narrow);
    tensor ref_narrow = tensor::empty({rows, cols}, t);
    cinch::force_backend(cinch::backend_kind::ref);
    cinch::convert(tensor_view(x.data(), dtype::f32, {rows, cols}), ref_narrow);
    cinch::force_backend(std::nullopt);
    REQUIRE(std::memcmp(host_narrow.data(), ref_narrow.data(), std::size_t(ref_narrow.nbytes())) == 0);

    tensor wide = tensor::empty({rows, cols}, dtype::f32, cinch::cuda_device(0));
    cinch::convert(narrow, wide);
    std::vector<float> back(x.size()), ref_back(x.size());
    cinch::copy(wide, tensor_view(back.data(), dtype::f32, {rows, cols}));
    cinch::convert(ref_narrow, tensor_view(ref_back.data(), dtype::f32, {rows, cols}));
    REQUIRE(std::memcmp(back.data(), ref_back.data(), back.size() * 4) == 0);
  }
}

TEST_CASE("GPU int8 rows equal the reference", "[cuda]") {
  const std::int64_t rows = 129, cols = 4099;
  std::vector<float> x = values(std::size_t(rows * cols), 2);
  for (std::int64_t r = 0; r < rows; ++r)  // mostly finite rows
    for (std::int64_t c = 0; c < cols; ++c)
      if (r % 10 && !std::isfinite(x[std::size_t(r * cols + c)])) x[std::size_t(r * cols + c)] = 1.0f;
  const tensor gx = to_gpu(tensor_view(x.data(), dtype::f32, {rows, cols}));
  tensor codes = tensor::empty({rows, cols}, dtype::i8, cinch::cuda_device(0));
  tensor scales = tensor::empty({rows}, dtype::f32, cinch::cuda_device(0));
  cinch::quantize_rows(gx, codes, scales);
  std::vector<std::int8_t> got(x.size()), expect(x.size());
  std::vector<float> got_scales(static_cast<std::size_t>(rows)), expect_scales(static_cast<std::size_t>(rows));
  cinch::copy(codes, tensor_view(got.data(), dtype::i8, {rows, cols}));
  cinch::copy(scales, tensor_view(got_scales.data(), dtype::f32, {rows}));
  for (std::int64_t r = 0; r < rows; ++r)
    expect_scales[std::size_t(r)] = cinch::ref::quantize_row_i8(x.data() + r * cols, expect.data() + r * cols, cols);
  REQUIRE(got == expect);
  REQUIRE(std::memcmp(got_scales.data(), expect_scales.data(), got_scales.size() * 4) == 0);

  tensor y = tensor::empty({rows, cols}, dtype::f32, cinch::cuda_device(0));
  cinch::dequantize_rows(codes, scales, y);
  std::vector<float> got_y(x.size()), expect_y(x.size());
  cinch::copy(y, tensor_view(got_y.data(), dtype::f32, {rows, cols}));
  for (std::int64_t r = 0; r < rows; ++r)
    cinch::ref::dequantize_row_i8(expect.data() + r * cols, expect_scales[std::size_t(r)], expect_y.data() + r * cols, cols);
  REQUIRE(std::memcmp(got_y.data(), expect_y.data(), got_y.size() * 4) == 0);
}

TEST_CASE("GPU kernels follow strided outer dimensions", "[cuda]") {
  const std::int64_t rows = 8, cols = 96;
  const std::vector<float> x = values(std::size_t(rows * cols), 3);
  const tensor gx = to_gpu(tensor_view(x.data(), dtype::f32, {rows, cols}));
  const tensor_view every_other = gx.view().slice(0, 0, rows).reshape({rows / 2, 2 * cols}).slice(1, 0, cols);
  tensor out = tensor::empty({rows / 2, cols}, dtype::f16, cinch::cuda_device(0));
  cinch::convert(every_other, out);
  std::vector<std::uint16_t> got(std::size_t(rows / 2 * cols));
  cinch::copy(out, tensor_view(got.data(), dtype::f16, {rows / 2, cols}));
  for (std::int64_t r = 0; r < rows / 2; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      REQUIRE(got[std::size_t(r * cols + c)] == cinch::ref::f32_to_f16(x[std::size_t(2 * r * cols + c)]));
}
