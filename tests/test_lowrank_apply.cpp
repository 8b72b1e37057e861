// The fused low-rank apply: a hand-computed layer, bit equality with the scalar
// spec on the reference backend, the stated rounding bound on every CPU target
// with odd sizes, strides and tiles, agreement with the two-GEMM and dense forms,
// threads, and bad input.
#include <catch2/catch.hpp>

#include <cinch/core/backend.hpp>
#include <cinch/lowrank/apply.hpp>
#include <cinch/ref/lowrank.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "cpu_targets.hpp"
#include "error_matchers.hpp"
#include "lowrank_test_data.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
using namespace cinch::lowrank;
using namespace lowrank_test;

namespace {

// A row-major f32 matrix with padded rows (row stride cols + pad), NaN in the padding.
struct padded {
  std::int64_t rows, cols, stride;
  std::vector<float> data;
  padded(const matrix& m, std::int64_t pad)
      : rows(m.rows), cols(m.cols), stride(m.cols + pad), data(std::size_t(m.rows * (m.cols + pad)), std::nanf("")) {
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) data[std::size_t(i * stride + j)] = float(m(i, j));
  }
  tensor_view view() const { return tensor_view(data.data(), dtype::f32, {rows, cols}, {stride, 1}); }
  tensor_view view() { return tensor_view(data.data(), dtype::f32, {rows, cols}, {stride, 1}); }
  float at(std::int64_t i, std::int64_t j) const { return data[std::size_t(i * stride + j)]; }
};

}  // namespace

TEST_CASE("lowrank::apply computes a hand-computed layer exactly", "[lowrank][apply]") {
  // A [3, 2], B [2, 3]: W = A B = [[1, 2, 0], [0, 1, -1], [3, -1, 7]].
  const std::vector<float> a{1, 2, 0, 1, 3, -1}, b{1, 0, 2, 0, 1, -1}, w{1, 2, 0, 0, 1, -1, 3, -1, 7};
  const std::vector<float> x{1, 2, 3, 0, -1, 1};
  const std::vector<float> expected{5, -1, 22, -2, -2, 8};
  for (std::int64_t tile : {0, 1, 2, 64}) {
    std::vector<float> y(6, 99.0f);
    apply(view_of(a, 3, 2), view_of(b, 2, 3), view_of(x, 2, 3), view_of(y, 2, 3), {.rank_tile = tile});
    CHECK(y == expected);
    apply(view_of(a, 3, 2), view_of(b, 2, 3), view_of(x, 2, 3), view_of(y, 2, 3), {.rank_tile = tile, .accumulate = true});
    for (std::size_t i = 0; i < 6; ++i) CHECK(y[i] == 2 * expected[i]);
  }
  std::vector<float> y(6, 99.0f);
  apply_dense(view_of(w, 3, 3), view_of(x, 2, 3), view_of(y, 2, 3));
  CHECK(y == expected);
  apply_dense(view_of(w, 3, 3), view_of(x, 2, 3), view_of(y, 2, 3), true);
  for (std::size_t i = 0; i < 6; ++i) CHECK(y[i] == 2 * expected[i]);
}

TEST_CASE("lowrank::apply matches the scalar spec on the reference backend and every CPU target",
          "[lowrank][apply][targets]") {
  const std::int64_t m = 37, n = 131, r = 19;
  const padded a(gaussian(m, r, 1), 3), b(gaussian(r, n, 2), 5);
  for (std::int64_t tokens : {1, 3, 13, 70}) {
    const padded x(gaussian(tokens, n, 3), 2);
    const padded start(gaussian(tokens, m, 4), 1);
    for (std::int64_t tile : {1, 5, 19, 64, 0}) {
      for (bool accumulate : {false, true}) {
        INFO("tokens " << tokens << " tile " << tile << " accumulate " << accumulate);
        padded expected = start;
        std::vector<float> z(static_cast<std::size_t>(r));
        cinch::ref::apply_factors(tokens, m, n, r, tile == 0 ? r : tile, a.data.data(), a.stride, b.data.data(),
                                  b.stride, x.data.data(), x.stride, expected.data.data(), expected.stride, accumulate,
                                  z.data());
        // |simd - spec| <= 4 gamma(n + r) sum_j |a_ij| sum_k |b_jk x_tk|
        const double u = std::ldexp(1.0, -24), gamma = double(n + r) * u / (1 - double(n + r) * u);
        auto check = [&](const padded& y, bool exact) {
          for (std::int64_t t = 0; t < tokens; ++t)
            for (std::int64_t i = 0; i < m; ++i) {
              if (exact) {
                REQUIRE(y.at(t, i) == expected.at(t, i));
                continue;
              }
              double bound = accumulate ? u * std::abs(double(start.at(t, i))) : 0.0;
              for (std::int64_t j = 0; j < r; ++j) {
                double zj = 0;
                for (std::int64_t k = 0; k < n; ++k) zj += std::abs(double(b.at(j, k)) * x.at(t, k));
                bound += 4 * gamma * std::abs(double(a.at(i, j))) * zj;
              }
              REQUIRE(std::abs(double(y.at(t, i)) - expected.at(t, i)) <= bound);
            }
        };
        const apply_options options{.rank_tile = tile, .accumulate = accumulate};
        cinch::force_backend(cinch::backend_kind::ref);
        padded y = start;
        apply(a.view(), b.view(), x.view(), y.view(), options);
        check(y, true);
        cinch::force_backend(std::nullopt);
        for_each_cpu_target([&](const std::string&) {
          padded ys = start;
          apply(a.view(), b.view(), x.view(), ys.view(), options);
          check(ys, false);
        });
      }
    }
  }
}

TEST_CASE("lowrank::apply agrees with the two-GEMM and dense forms, with any thread count", "[lowrank][apply]") {
  const std::int64_t m = 300, n = 280, r = 70, tokens = 9;
  const matrix am = gaussian(m, r, 5), bm = gaussian(r, n, 6), xm = gaussian(tokens, n, 7);
  const std::vector<float> a = to_f32(am), b = to_f32(bm), x = to_f32(xm);
  const factors f{cinch::tensor::adopt(view_of(a, m, r), nullptr), cinch::tensor::adopt(view_of(b, r, n), nullptr)};
  const cinch::tensor w = reconstruct(f);
  std::vector<float> fused(std::size_t(tokens * m)), two(fused.size()), dense(fused.size());
  apply(f, view_of(x, tokens, n), view_of(fused, tokens, m));
  apply(f, view_of(x, tokens, n), view_of(two, tokens, m), {.rank_tile = 0});
  apply_dense(w, view_of(x, tokens, n), view_of(dense, tokens, m));
  const matrix exact = multiply(xm, transpose(multiply(am, bm)));
  double scale = 0;
  for (double v : exact.v) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < fused.size(); ++i) {
    REQUIRE(std::abs(fused[i] - exact.v[i]) <= 1e-5 * scale);
    REQUIRE(std::abs(two[i] - exact.v[i]) <= 1e-5 * scale);
    REQUIRE(std::abs(dense[i] - exact.v[i]) <= 1e-5 * scale);
  }
  // Rows are split over threads without changing any element's arithmetic.
  const int threads = cinch::threads();
  for (int count : {1, 2, 3}) {
    cinch::set_threads(count);
    std::vector<float> again(fused.size()), dense_again(fused.size());
    apply(f, view_of(x, tokens, n), view_of(again, tokens, m));
    apply_dense(w, view_of(x, tokens, n), view_of(dense_again, tokens, m));
    CHECK(again == fused);
    CHECK(dense_again == dense);
  }
  cinch::set_threads(threads);
}

TEST_CASE("lowrank::apply rejects bad input", "[lowrank][apply][errors]") {
  std::vector<float> a(6 * 2, 1.0f), b(2 * 5, 1.0f), x(3 * 5, 1.0f), y(3 * 6, 0.0f);
  const tensor_view av = view_of(a, 6, 2), bv = view_of(b, 2, 5), xv = view_of(x, 3, 5), yv = view_of(y, 3, 6);
  apply(av, bv, xv, yv);  // fine
  require_error([&] { apply(av, view_of(b, 1, 10), xv, yv); }, errc::shape_mismatch,
                {"lowrank::apply", "a [m, r] and b [r, n] must share a rank r >= 1, got a [6, 2] and b [1, 10]"});
  require_error([&] { apply(av, bv, view_of(x, 5, 3), yv); }, errc::shape_mismatch,
                {"x must be [tokens, 5] (b's columns), got [5, 3]"});
  require_error([&] { apply(av, bv, xv, view_of(y, 6, 3)); }, errc::shape_mismatch, {"y must have shape [3, 6], got [6, 3]"});
  require_error([&] { apply(av, bv, xv, tensor_view(y.data(), dtype::f32, {3, 6, 1})); }, errc::shape_mismatch,
                {"y must be a matrix, got rank 3"});
  require_error([&] { apply(av, bv, xv, yv, {.rank_tile = -1}); }, errc::invalid_argument,
                {"apply_options::rank_tile must be >= 0, got -1"});
  std::vector<float> overlap(3 * 6);
  require_error([&] { apply(av, bv, view_of(overlap, 3, 5), view_of(overlap, 3, 6)); }, errc::invalid_argument,
                {"y must not overlap an input"});
  require_error([&] { apply(av, bv, xv, yv.as_read_only()); }, errc::invalid_argument, {"y must be writable"});
  std::vector<float> xt(5 * 3, 1.0f);
  require_error([&] { apply(av, bv, view_of(xt, 5, 3).permute({1, 0}), yv); }, errc::unsupported,
                {"x must have a dense innermost dimension"});
  std::vector<std::uint16_t> half(12);
  require_error([&] { apply(tensor_view(half.data(), dtype::f16, {6, 2}), bv, xv, yv); }, errc::invalid_argument,
                {"a must have dtype f32, got f16"});
  const tensor_view on_gpu(y.data(), dtype::f32, {3, 6}, cinch::device{cinch::device_kind::cuda, 0});
  require_error([&] { apply(av, bv, xv, on_gpu); }, errc::invalid_argument, {"y must be on cpu"});
  require_error([&] { apply_dense(view_of(a, 6, 2), xv, yv); }, errc::shape_mismatch,
                {"lowrank::apply_dense", "x must be [tokens, 2] (w's columns), got [3, 5]"});
}
