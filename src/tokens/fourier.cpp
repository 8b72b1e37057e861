// The DCT low-pass over the token grid, as two small matrix products.
#include "cinch/tokens/fourier.hpp"

#include <cmath>
#include <numbers>

#include "cinch/detail/checks.hpp"
#include "cinch/tokens/baselines.hpp"
#include "tokens/common.hpp"

namespace cinch::tokens {

using cinch::detail::fail;

namespace {

// L = sqrt(h / n) C_h^T [C_n]_h: h x n, row-major, in double.
std::vector<double> lowpass(std::int64_t h, std::int64_t n) {
  auto dct = [](std::int64_t size, std::int64_t k, std::int64_t i) {
    const double s = k == 0 ? std::sqrt(1.0 / double(size)) : std::sqrt(2.0 / double(size));
    return s * std::cos(std::numbers::pi * (double(i) + 0.5) * double(k) / double(size));
  };
  std::vector<double> l(static_cast<std::size_t>(h * n), 0.0);
  const double scale = std::sqrt(double(h) / double(n));
  for (std::int64_t m = 0; m < h; ++m)
    for (std::int64_t i = 0; i < n; ++i) {
      double v = 0;
      for (std::int64_t k = 0; k < h; ++k) v += dct(h, k, m) * dct(n, k, i);
      l[std::size_t(m * n + i)] = scale * v;
    }
  return l;
}

}  // namespace

plan fourier_plan(const grid& g, std::int64_t out_height, std::int64_t out_width) {
  return pool(g, out_height, out_width);
}

void fourier_features(const tensor_view& x, const grid& g, std::int64_t out_height, std::int64_t out_width,
                      const tensor_view& out) {
  constexpr std::string_view fn = "tokens::fourier_features";
  detail::checked_grid(fn, g, g.tokens());
  if (out_height < 1 || out_height > g.height || out_width < 1 || out_width > g.width)
    fail(errc::invalid_argument, fn, "output grid must be between 1 x 1 and ", g.height, " x ", g.width, ", got ",
         out_height, " x ", out_width);
  const detail::matrix m = detail::matrix_of(fn, "x", x, g.tokens());
  const std::int64_t d = m.cols, cells = out_height * out_width;
  cinch::detail::check_device(fn, "out", out, cpu_device);
  cinch::detail::check_dtype(fn, "out", out, dtype::f32);
  const std::int64_t shape[] = {g.frames * cells, d};
  cinch::detail::check_shape(fn, "out", out, shape);
  cinch::detail::check_rows_dense(fn, "out", out);
  cinch::detail::check_output(fn, "out", out, {x});

  const std::vector<double> lh = lowpass(out_height, g.height), lw = lowpass(out_width, g.width);
  auto* o = static_cast<float*>(out.data());
  std::vector<double> rows(static_cast<std::size_t>(out_height * g.width * d));  // Lh X, per frame
  std::vector<double> acc(static_cast<std::size_t>(d));
  for (std::int64_t f = 0; f < g.frames; ++f) {
    std::fill(rows.begin(), rows.end(), 0.0);
    for (std::int64_t i = 0; i < out_height; ++i)
      for (std::int64_t y = 0; y < g.height; ++y) {
        const double w = lh[std::size_t(i * g.height + y)];
        for (std::int64_t xq = 0; xq < g.width; ++xq) {
          const float* src = m.row((f * g.height + y) * g.width + xq);
          double* dst = rows.data() + (i * g.width + xq) * d;
          for (std::int64_t c = 0; c < d; ++c) dst[c] += w * double(src[c]);
        }
      }
    for (std::int64_t i = 0; i < out_height; ++i)
      for (std::int64_t j = 0; j < out_width; ++j) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (std::int64_t xq = 0; xq < g.width; ++xq) {
          const double w = lw[std::size_t(j * g.width + xq)];
          const double* src = rows.data() + (i * g.width + xq) * d;
          for (std::int64_t c = 0; c < d; ++c) acc[std::size_t(c)] += w * src[c];
        }
        float* dst = o + (f * cells + i * out_width + j) * out.stride(0);
        for (std::int64_t c = 0; c < d; ++c) dst[c] = float(acc[std::size_t(c)]);
      }
  }
}

}  // namespace cinch::tokens
