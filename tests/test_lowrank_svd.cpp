// Truncated SVD: the Eckart-Young optimum for the exact method, a hand-computed
// decomposition with the sign rule, the randomized method within 1 % of optimal
// on a slowly decaying spectrum, determinism, agreement of every CPU target with
// the reference, the GEMM under it against a double product, and bad input.
#include <catch2/catch.hpp>

#include <cinch/core/backend.hpp>
#include <cinch/lowrank/factors.hpp>
#include <cinch/lowrank/svd.hpp>

#include <cmath>
#include <cstring>
#include <limits>
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

// U diag(sigma) V^T in double.
matrix product_of(const svd_result& r) {
  matrix u = from_tensor(r.u);
  for (std::int64_t i = 0; i < u.rows; ++i)
    for (std::int64_t j = 0; j < u.cols; ++j) u(i, j) *= r.sigma[std::size_t(j)];
  return multiply(u, from_tensor(r.vt));
}

// max |Q^T Q - I| for the columns of q.
double orthonormality_error(const matrix& q) {
  const matrix g = multiply(transpose(q), q);
  double worst = 0;
  for (std::int64_t i = 0; i < g.rows; ++i)
    for (std::int64_t j = 0; j < g.cols; ++j) worst = std::max(worst, std::abs(g(i, j) - (i == j ? 1.0 : 0.0)));
  return worst;
}

std::vector<double> slow_decay(std::int64_t count) {
  std::vector<double> s(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = std::pow(1.0 + double(i), -0.3);
  return s;
}

}  // namespace

TEST_CASE("lowrank::truncated_svd (exact) attains the Eckart-Young optimum", "[lowrank][svd]") {
  const matrix w = gaussian(70, 50, 11);
  const std::vector<float> wf = to_f32(w);
  const tensor_view view = view_of(wf, 70, 50);
  const std::vector<double> all = singular_values(view);
  REQUIRE(all.size() == 50);
  CHECK(std::is_sorted(all.rbegin(), all.rend()));
  const matrix wd = from_tensor(view);  // the f32 values, exactly
  for (std::int64_t k : {1, 7, 25, 49, 50}) {
    INFO("rank " << k);
    const svd_result r = truncated_svd(view, k, {.method = svd_method::exact});
    CHECK(r.method == svd_method::exact);
    REQUIRE(r.u.size(0) == 70);
    REQUIRE(r.u.size(1) == k);
    REQUIRE(r.vt.size(0) == k);
    REQUIRE(r.vt.size(1) == 50);
    for (std::int64_t i = 0; i < k; ++i) CHECK(r.sigma[std::size_t(i)] == Approx(all[std::size_t(i)]).epsilon(1e-12));
    const double error = frobenius(difference(wd, product_of(r)));
    const double optimum = tail_norm(all, std::size_t(k));
    if (k < 50)
      CHECK(std::abs(error - optimum) <= 1e-6 * optimum);
    else  // full rank: only the f32 rounding of the factors remains
      CHECK(error <= 1e-6 * frobenius(wd));
    CHECK(orthonormality_error(from_tensor(r.u)) < 1e-6);
    CHECK(orthonormality_error(transpose(from_tensor(r.vt))) < 1e-6);
  }
  // A transposed (strided) view has the same singular values.
  const tensor_view t = view.permute({1, 0});
  const svd_result rt = truncated_svd(t, 7, {.method = svd_method::exact});
  for (std::size_t i = 0; i < 7; ++i) CHECK(rt.sigma[i] == Approx(all[i]).epsilon(1e-12));
  CHECK(std::abs(frobenius(difference(transpose(wd), product_of(rt))) - tail_norm(all, 7)) < 1e-6 * tail_norm(all, 7));
}

TEST_CASE("lowrank::truncated_svd of a hand-computed matrix, with the sign rule", "[lowrank][svd]") {
  // W = [[0, -3], [0, 0], [4, 0]] = 4 e3 e1^T + 3 (-e1) e2^T. The sign rule makes
  // the largest entry of each u column positive: u2 = e1, so v2 = -e2.
  const std::vector<float> w{0, -3, 0, 0, 4, 0};
  for (svd_method method : {svd_method::exact, svd_method::randomized}) {
    const svd_result r = truncated_svd(view_of(w, 3, 2), 2, {.method = method});
    REQUIRE(r.sigma.size() == 2);
    CHECK(r.sigma[0] == Approx(4.0).epsilon(1e-6));
    CHECK(r.sigma[1] == Approx(3.0).epsilon(1e-6));
    const matrix u = from_tensor(r.u), vt = from_tensor(r.vt);
    const double expected_u[3][2] = {{0, 1}, {0, 0}, {1, 0}}, expected_vt[2][2] = {{1, 0}, {0, -1}};
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 2; ++j) CHECK(u(i, j) == Approx(expected_u[i][j]).margin(1e-6));
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) CHECK(vt(i, j) == Approx(expected_vt[i][j]).margin(1e-6));
  }
}

TEST_CASE("lowrank::truncated_svd (randomized, defaults) is within 1 % of optimal on a slow spectrum",
          "[lowrank][svd]") {
  const std::int64_t m = 600, n = 500;
  const std::vector<double> sigma = slow_decay(n);
  const matrix w = with_spectrum(m, n, sigma, 3);
  const std::vector<float> wf = to_f32(w);
  const matrix wd = from_tensor(view_of(wf, m, n));
  for (std::int64_t k : {50, 120}) {
    INFO("rank " << k);
    const svd_result r = truncated_svd(view_of(wf, m, n), k);
    CHECK(r.method == svd_method::randomized);
    const double ratio = frobenius(difference(wd, product_of(r))) / tail_norm(sigma, std::size_t(k));
    INFO("error / optimum = " << ratio);
    CHECK(ratio >= 1.0 - 1e-6);
    CHECK(ratio <= 1.01);
    CHECK(orthonormality_error(from_tensor(r.u)) < 1e-5);
    CHECK(orthonormality_error(transpose(from_tensor(r.vt))) < 1e-5);
  }
  // Without power iterations the same sketch is far from optimal: the iterations are what buys the accuracy.
  const svd_result crude = truncated_svd(view_of(wf, m, n), 50, {.power_iterations = 0});
  CHECK(frobenius(difference(wd, product_of(crude))) / tail_norm(sigma, 50) > 1.03);
}

TEST_CASE("lowrank::truncated_svd (randomized) is deterministic and sign-stable", "[lowrank][svd]") {
  std::vector<double> sigma = slow_decay(300);
  sigma[0] = 12, sigma[1] = 9, sigma[2] = 6;  // well separated leading directions
  const matrix w = with_spectrum(320, 300, sigma, 9);
  const std::vector<float> wf = to_f32(w);
  const tensor_view view = view_of(wf, 320, 300);
  const svd_options options{.method = svd_method::randomized, .seed = 1};
  const svd_result a = truncated_svd(view, 20, options), b = truncated_svd(view, 20, options);
  CHECK(std::memcmp(a.u.data(), b.u.data(), std::size_t(a.u.nbytes())) == 0);
  CHECK(std::memcmp(a.vt.data(), b.vt.data(), std::size_t(a.vt.nbytes())) == 0);
  CHECK(a.sigma == b.sigma);

  const svd_result exact = truncated_svd(view, 20, {.method = svd_method::exact});
  for (std::uint64_t seed : {2u, 3u}) {
    const svd_result r = truncated_svd(view, 20, {.method = svd_method::randomized, .seed = seed});
    const matrix u = from_tensor(r.u), ue = from_tensor(exact.u);
    for (std::int64_t j = 0; j < 3; ++j) {
      double dot = 0;
      for (std::int64_t i = 0; i < u.rows; ++i) dot += u(i, j) * ue(i, j);
      CHECK(dot > 0.999);
    }
  }
}

TEST_CASE("lowrank::truncated_svd agrees on every CPU target and the reference", "[lowrank][svd][targets]") {
  // Odd extents exercise the tile edges of the GEMM; k + p = 8 columns.
  const matrix w = gaussian(37, 301, 21);
  const std::vector<float> wf = to_f32(w);
  const tensor_view view = view_of(wf, 37, 301);
  const svd_options options{.method = svd_method::randomized, .oversampling = 3, .power_iterations = 2};
  cinch::force_backend(cinch::backend_kind::ref);
  const svd_result reference = truncated_svd(view, 5, options);
  cinch::force_backend(std::nullopt);
  const matrix expected = product_of(reference);
  for_each_cpu_target([&](const std::string&) {
    const svd_result r = truncated_svd(view, 5, options);
    for (std::size_t i = 0; i < 5; ++i) CHECK(r.sigma[i] == Approx(reference.sigma[i]).epsilon(1e-4));
    CHECK(frobenius(difference(product_of(r), expected)) <= 1e-4 * frobenius(expected));
  });
}

TEST_CASE("lowrank::reconstruct multiplies within the rounding bound on every CPU target", "[lowrank][targets]") {
  struct shape {
    std::int64_t m, k, n;
  };
  for (const shape s : {shape{45, 19, 33}, shape{13, 600, 70}, shape{1, 1, 1}, shape{9, 257, 1}}) {
    INFO(s.m << " x " << s.k << " x " << s.n);
    // a is a transposed view of a k x m buffer; b has padded rows.
    const matrix a = gaussian(s.m, s.k, 31), b = gaussian(s.k, s.n, 32);
    std::vector<float> at(std::size_t(s.k * s.m)), bp(std::size_t(s.k * (s.n + 3)), std::nanf(""));
    for (std::int64_t i = 0; i < s.m; ++i)
      for (std::int64_t j = 0; j < s.k; ++j) at[std::size_t(j * s.m + i)] = float(a(i, j));
    for (std::int64_t i = 0; i < s.k; ++i)
      for (std::int64_t j = 0; j < s.n; ++j) bp[std::size_t(i * (s.n + 3) + j)] = float(b(i, j));
    const tensor_view av = view_of(at, s.k, s.m).permute({1, 0});
    const tensor_view bv(bp.data(), dtype::f32, {s.k, s.n}, {s.n + 3, 1});
    const matrix af = from_tensor(av), bf = from_tensor(bv);
    const matrix exact = multiply(af, bf);
    matrix magnitude(s.m, s.n);
    for (std::int64_t i = 0; i < s.m; ++i)
      for (std::int64_t k = 0; k < s.k; ++k)
        for (std::int64_t j = 0; j < s.n; ++j) magnitude(i, j) += std::abs(af(i, k) * bf(k, j));
    const double u = std::ldexp(1.0, -24), gamma = double(s.k) * u / (1 - double(s.k) * u);
    auto check = [&](const cinch::tensor& c) {
      const matrix got = from_tensor(c);
      for (std::int64_t i = 0; i < s.m; ++i)
        for (std::int64_t j = 0; j < s.n; ++j) REQUIRE(std::abs(got(i, j) - exact(i, j)) <= 2 * gamma * magnitude(i, j));
    };
    cinch::force_backend(cinch::backend_kind::ref);
    check(reconstruct(av, bv));
    cinch::force_backend(std::nullopt);
    for_each_cpu_target([&](const std::string&) { check(reconstruct(av, bv)); });
  }
}

TEST_CASE("lowrank::truncated_svd rejects bad input", "[lowrank][svd][errors]") {
  std::vector<float> w(6 * 4, 1.0f);
  const tensor_view view = view_of(w, 6, 4);
  for (std::int64_t k : {0, -1, 5})
    require_error([&] { (void)truncated_svd(view, k); }, errc::invalid_argument,
                  {"lowrank::truncated_svd", "rank must be in [1, min(m, n) = 4] for a 6 x 4 matrix, got"});
  require_error([&] { (void)truncated_svd(view, 2, {.oversampling = -1}); }, errc::invalid_argument,
                {"oversampling must be >= 0, got -1"});
  require_error([&] { (void)truncated_svd(view, 2, {.power_iterations = -2}); }, errc::invalid_argument,
                {"power_iterations must be >= 0, got -2"});
  std::vector<float> bad = w;
  bad[9] = std::numeric_limits<float>::quiet_NaN();
  require_error([&] { (void)truncated_svd(view_of(bad, 6, 4), 2); }, errc::invalid_argument,
                {"lowrank::truncated_svd", "w must be finite, got NaN at [2, 1]"});
  bad[9] = -std::numeric_limits<float>::infinity();
  require_error([&] { (void)singular_values(view_of(bad, 6, 4)); }, errc::invalid_argument,
                {"lowrank::singular_values", "w must be finite, got inf at [2, 1]"});
  std::vector<std::uint16_t> half(24);
  require_error([&] { (void)truncated_svd(tensor_view(half.data(), dtype::f16, {6, 4}), 2); }, errc::invalid_argument,
                {"w must have dtype f32, got f16"});
  require_error([&] { (void)truncated_svd(tensor_view(w.data(), dtype::f32, {2, 3, 4}), 2); }, errc::shape_mismatch,
                {"w must be a matrix [rows, cols], got rank 3 [2, 3, 4]"});
  require_error([&] { (void)truncated_svd(tensor_view(w.data(), dtype::f32, {0, 4}), 1); }, errc::invalid_argument,
                {"w must not be empty, got [0, 4]"});
  require_error([&] { (void)reconstruct(view_of(w, 6, 4), view_of(w, 3, 4)); }, errc::shape_mismatch,
                {"lowrank::reconstruct", "a's columns must equal b's rows, got a [6, 4] and b [3, 4]"});
}

TEST_CASE("lowrank::relative_error is the Eckart-Young value for truncated factors", "[lowrank][svd]") {
  // A 150 x 90 matrix with sigma_i = 0.93^i: 150 rows is three row tiles, the last one partial.
  std::vector<double> sigma(90);
  for (std::size_t i = 0; i < sigma.size(); ++i) sigma[i] = std::pow(0.93, double(i));
  const std::vector<float> wf = to_f32(with_spectrum(150, 90, sigma, 21));
  const tensor_view w = view_of(wf, 150, 90);
  const std::vector<double> actual = singular_values(w);  // of the f32 entries
  const double norm = tail_norm(actual, 0);
  for (std::int64_t k : {1, 10, 45, 89}) {
    INFO("rank " << k);
    const svd_result r = truncated_svd(w, k, {.method = svd_method::exact});
    // A = U diag(sigma), B = V^T.
    cinch::tensor a = cinch::tensor::empty({150, k}, dtype::f32);
    for (std::int64_t i = 0; i < 150; ++i)
      for (std::int64_t j = 0; j < k; ++j)
        a.data<float>()[i * k + j] = float(double(r.u.data<const float>()[i * k + j]) * r.sigma[std::size_t(j)]);
    const double error = relative_error(w, a, r.vt);
    const double optimum = tail_norm(actual, std::size_t(k)) / norm;
    CHECK(std::abs(error - optimum) <= 1e-6 * optimum);
    CHECK(error == Approx(tail_norm(sigma, std::size_t(k)) / tail_norm(sigma, 0)).epsilon(1e-5));
    // The same through strided views (a transposed copy read back transposed).
    cinch::tensor at = cinch::tensor::empty({k, 150}, dtype::f32);
    for (std::int64_t i = 0; i < 150; ++i)
      for (std::int64_t j = 0; j < k; ++j) at.data<float>()[j * 150 + i] = a.data<const float>()[i * k + j];
    CHECK(relative_error(w, at.view().permute({1, 0}), r.vt) == Approx(error).epsilon(1e-12));
  }
  // Exact factors of a rank-1 matrix: only the f32 rounding of W = u v^T remains; zero factors: 1.
  const std::vector<float> u{1, 2, 3}, v{0.5f, -1, 4, 2};
  std::vector<float> outer(12);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) outer[std::size_t(i * 4 + j)] = u[std::size_t(i)] * v[std::size_t(j)];
  CHECK(relative_error(view_of(outer, 3, 4), view_of(u, 3, 1), view_of(v, 1, 4)) == 0.0);
  const std::vector<float> zeros(12, 0.0f);
  CHECK(relative_error(view_of(outer, 3, 4), view_of(zeros, 3, 1), view_of(zeros, 1, 4)) == 1.0);
  CHECK(relative_error(view_of(zeros, 3, 4), view_of(zeros, 3, 1), view_of(zeros, 1, 4)) == 0.0);
  CHECK(std::isinf(relative_error(view_of(zeros, 3, 4), view_of(u, 3, 1), view_of(v, 1, 4))));

  require_error([&] { (void)relative_error(view_of(outer, 4, 3), view_of(u, 3, 1), view_of(v, 1, 4)); },
                errc::shape_mismatch, {"lowrank::relative_error", "w must have shape [3, 4]", "got [4, 3]"});
  require_error([&] { (void)relative_error(view_of(outer, 3, 4), view_of(u, 3, 1), view_of(v, 2, 2)); },
                errc::shape_mismatch, {"lowrank::relative_error", "a's columns must equal b's rows"});
  std::vector<std::uint16_t> half(12);
  require_error([&] { (void)relative_error(tensor_view(half.data(), dtype::f16, {3, 4}), view_of(u, 3, 1), view_of(v, 1, 4)); },
                errc::invalid_argument, {"lowrank::relative_error", "w"});
}
