// The int16 range finder of the randomized SVD: hand-computed codes (ties to even),
// the quantization bound, the GEMM's exact int32 blocks at the extreme codes, the
// GEMM against a double product, bit-identical SIMD kernels on every CPU target
// (odd sizes and strides), and the SVD with it within 1 % of optimal.
#include <catch2/catch.hpp>

#include <cinch/core/backend.hpp>
#include <cinch/lowrank/svd.hpp>
#include <cinch/ref/lowrank.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "../src/lowrank_kernels.hpp"  // the kernel table the range finder uses
#include "cpu_targets.hpp"
#include "error_matchers.hpp"
#include "lowrank_test_data.hpp"

using namespace cinch::lowrank;
using namespace lowrank_test;
using cinch::ref::i16_range;

namespace {

constexpr double u32 = 0x1p-24;  // unit roundoff of float

std::vector<float> uniform(std::size_t count, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<std::int16_t> codes(std::size_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-i16_range, i16_range);
  std::vector<std::int16_t> v(count);
  for (auto& x : v) x = std::int16_t(dist(rng));
  return v;
}

// Runs the ref GEMM and the SIMD GEMM on every target: bit-identical.
void check_gemm_targets(const cinch::detail::gemm_i16_args& g, std::int64_t c_elems) {
  std::vector<float> expected(std::size_t(c_elems), 7.0f);
  cinch::detail::gemm_i16_args r = g;
  r.c = expected.data();
  cinch::ref::gemm_i16(r.M, r.N, r.K, r.a, r.rsa, r.csa, r.b, r.rsb, r.csb, r.row_scale, r.col_scale, r.c, r.rsc,
                       r.csc);
  std::vector<std::int16_t> pack(std::size_t(cinch::detail::gemm_i16_pack_elems(g.N)));
  for_each_cpu_target([&](const std::string&) {
    std::vector<float> got(std::size_t(c_elems), 7.0f);
    cinch::detail::gemm_i16_args s = g;
    s.c = got.data();
    cinch::cpu::gemm_i16(s, pack.data());
    REQUIRE(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)) == 0);
  });
}

}  // namespace

TEST_CASE("ref::quantize_rows_i16 rounds to nearest, ties to even, on a hand-computed row", "[lowrank][int16]") {
  // amax = 2896: inv = 1 and scale = 1 exactly, so the codes are the rounded values.
  const std::vector<float> x{2896.0f, 0.5f, 1.5f, 2.5f, -2.5f, -0.4f, 1000.49f, -2896.0f};
  std::vector<std::int16_t> q(x.size());
  float scale = -1;
  cinch::ref::quantize_rows_i16(1, std::int64_t(x.size()), x.data(), 0, q.data(), 0, &scale);
  CHECK(scale == 1.0f);
  CHECK(q == std::vector<std::int16_t>{2896, 0, 2, 2, -2, 0, 1000, -2896});
  // amax = 4: inv = 724, codes 724 x.
  const std::vector<float> y{1.0f, -2.0f, 0.5f, 4.0f};
  cinch::ref::quantize_rows_i16(1, 4, y.data(), 0, q.data(), 0, &scale);
  CHECK(scale == 4.0f / 2896.0f);
  CHECK(std::vector<std::int16_t>(q.begin(), q.begin() + 4) == std::vector<std::int16_t>{724, -1448, 362, 2896});
  // An all-zero row: scale 0, zero codes.
  const std::vector<float> zeros(5, 0.0f);
  cinch::ref::quantize_rows_i16(1, 5, zeros.data(), 0, q.data(), 0, &scale);
  CHECK(scale == 0.0f);
  CHECK(std::vector<std::int16_t>(q.begin(), q.begin() + 5) == std::vector<std::int16_t>(5, 0));
}

TEST_CASE("int16 codes dequantize within half a step, identically on every CPU target", "[lowrank][int16][targets]") {
  // 7 rows of 45 values (odd tails), rows 53 floats apart; codes rows 50 apart.
  const std::int64_t rows = 7, cols = 45, ldx = 53, ldq = 50;
  std::vector<float> x = uniform(std::size_t(rows * ldx), 5, 3.0f);
  for (std::int64_t j = 0; j < cols; ++j) x[std::size_t(2 * ldx + j)] = 0.0f;  // a zero row
  x[std::size_t(4 * ldx + 9)] = -40.0f;                                           // an outlier
  std::vector<float> weight = uniform(std::size_t(rows), 6, 2.0f);
  auto dequantization_bound_holds = [&](const std::vector<std::int16_t>& q, const std::vector<float>& scale,
                                        bool per_row, const float* w) {
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) {
        const double v = w ? double(w[i] * x[std::size_t(i * ldx + j)]) : double(x[std::size_t(i * ldx + j)]);
        const double s = per_row ? scale[std::size_t(i)] : scale[std::size_t(j)];
        const double amax = s * i16_range;
        // Half a step, plus the rounding of v * inv, of inv and of scale (3 u of amax).
        if (std::abs(q[std::size_t(i * ldq + j)] * s - v) > 0.5 * s + 3 * u32 * amax) return false;
      }
    return true;
  };
  std::vector<std::int16_t> q_ref(std::size_t(rows * ldq), 99), q(q_ref.size());
  std::vector<float> s_ref(static_cast<std::size_t>(cols)), s(s_ref.size());
  cinch::ref::quantize_rows_i16(rows, cols, x.data(), ldx, q_ref.data(), ldq, s_ref.data());
  CHECK(dequantization_bound_holds(q_ref, s_ref, true, nullptr));
  CHECK(s_ref[2] == 0.0f);
  CHECK(s_ref[4] == 40.0f / i16_range);
  for_each_cpu_target([&](const std::string&) {
    q.assign(q.size(), 99);
    cinch::cpu::quantize_rows_i16(rows, cols, x.data(), ldx, q.data(), ldq, s.data());
    REQUIRE(q == q_ref);
    REQUIRE(std::memcmp(s.data(), s_ref.data(), std::size_t(rows) * sizeof(float)) == 0);
  });
  for (const float* w : {static_cast<const float*>(nullptr), static_cast<const float*>(weight.data())}) {
    INFO((w ? "weighted" : "unweighted") << " columns");
    q_ref.assign(q_ref.size(), 99);
    cinch::ref::quantize_columns_i16(rows, cols, x.data(), ldx, w, q_ref.data(), ldq, s_ref.data());
    CHECK(dequantization_bound_holds(q_ref, s_ref, false, w));
    CHECK(q_ref[std::size_t(ldq - 1)] == 99);  // the padding between rows is not written
    for_each_cpu_target([&](const std::string&) {
      q.assign(q.size(), 99);
      cinch::cpu::quantize_columns_i16(rows, cols, x.data(), ldx, w, q.data(), ldq, s.data());
      REQUIRE(q == q_ref);
      REQUIRE(std::memcmp(s.data(), s_ref.data(), std::size_t(cols) * sizeof(float)) == 0);
    });
  }
}

TEST_CASE("ref::gemm_i16 sums blocks of 256 exactly at the extreme codes", "[lowrank][int16]") {
  // Every product is 2896^2; a block of 256 sums to 2 147 024 896, just under 2^31.
  // Summing 257 of them in int32 would wrap: the result would be negative.
  for (const std::int64_t k : {256, 257, 512, 1025}) {
    INFO("K = " << k);
    const std::vector<std::int16_t> a(static_cast<std::size_t>(k), std::int16_t(i16_range));
    const std::vector<std::int16_t> b(static_cast<std::size_t>(k), std::int16_t(-i16_range));
    const float one = 1.0f;
    float c = 0;
    cinch::ref::gemm_i16(1, 1, k, a.data(), k, 1, b.data(), 1, 1, &one, &one, &c, 1, 1);
    const double exact = -double(k) * i16_range * i16_range;
    CHECK(std::abs(c - exact) <= 3 * u32 * std::abs(exact));
    check_gemm_targets({1, 1, k, a.data(), k, 1, b.data(), 1, 1, &one, &one, nullptr, 1, 1}, 1);
  }
}

TEST_CASE("int16 GEMM: the double product within the flush bound, bit-identical on every CPU target",
          "[lowrank][int16][targets]") {
  struct shape {
    std::int64_t m, n, k;
  };
  // K crosses the 256-row overflow blocks and the 1024-row chunks, odd K pads a pair.
  for (const shape sh : {shape{13, 37, 1501}, shape{9, 70, 600}, shape{1, 1, 1}, shape{17, 5, 2048},
                         shape{3, 129, 33}, shape{4, 6, 0}}) {
    INFO(sh.m << " x " << sh.n << " x " << sh.k);
    const std::int64_t lda = sh.k + 3, ldb = sh.n + 5, ldc = sh.n + 2;
    const std::vector<std::int16_t> a = codes(std::size_t(sh.m * lda), 11), b = codes(std::size_t(sh.k * ldb), 12);
    std::vector<std::int16_t> at(std::size_t(sh.k * sh.m));  // the same A stored transposed
    for (std::int64_t i = 0; i < sh.m; ++i)
      for (std::int64_t k = 0; k < sh.k; ++k) at[std::size_t(k * sh.m + i)] = a[std::size_t(i * lda + k)];
    std::vector<float> rs = uniform(std::size_t(sh.m), 13, 1e-3f), cs = uniform(std::size_t(sh.n), 14, 1e-2f);
    std::vector<float> c(std::size_t(sh.m * ldc));
    cinch::ref::gemm_i16(sh.m, sh.n, sh.k, a.data(), lda, 1, b.data(), ldb, 1, rs.data(), cs.data(), c.data(), ldc, 1);
    // Blocks are exact; each of the nb flushes and the two scale products round once.
    const double nb = double((sh.k + 255) / 256);
    for (std::int64_t i = 0; i < sh.m; ++i)
      for (std::int64_t j = 0; j < sh.n; ++j) {
        double exact = 0, magnitude = 0;
        for (std::int64_t k = 0; k < sh.k; ++k) {
          const double p = double(a[std::size_t(i * lda + k)]) * b[std::size_t(k * ldb + j)];
          exact += p;
          magnitude += std::abs(p);
        }
        const double scale = double(rs[std::size_t(i)]) * cs[std::size_t(j)];
        REQUIRE(std::abs(c[std::size_t(i * ldc + j)] - exact * scale) <= (2 * nb + 3) * u32 * magnitude * std::abs(scale));
      }
    const std::int64_t c_elems = sh.m * ldc;
    check_gemm_targets({sh.m, sh.n, sh.k, a.data(), lda, 1, b.data(), ldb, 1, rs.data(), cs.data(), nullptr, ldc, 1},
                       c_elems);
    // A read through a transposed layout (packed), C written with a column stride.
    check_gemm_targets({sh.m, sh.n, sh.k, at.data(), 1, sh.m, b.data(), ldb, 1, rs.data(), cs.data(), nullptr, 1, sh.m},
                       sh.n * sh.m);
    // B read with a column stride: B^T stored row-major.
    std::vector<std::int16_t> bt(std::size_t(sh.n * sh.k));
    for (std::int64_t k = 0; k < sh.k; ++k)
      for (std::int64_t j = 0; j < sh.n; ++j) bt[std::size_t(j * sh.k + k)] = b[std::size_t(k * ldb + j)];
    check_gemm_targets({sh.m, sh.n, sh.k, a.data(), lda, 1, bt.data(), 1, sh.k, rs.data(), cs.data(), nullptr, ldc, 1},
                       c_elems);
  }
}

TEST_CASE("lowrank::truncated_svd with the int16 range finder is within 1 % of optimal", "[lowrank][svd][int16]") {
  const std::int64_t m = 600, n = 500;
  std::vector<double> sigma(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < sigma.size(); ++i) sigma[i] = std::pow(1.0 + double(i), -0.3);
  const matrix w = with_spectrum(m, n, sigma, 3);
  const std::vector<float> wf = to_f32(w);
  const matrix wd = from_tensor(view_of(wf, m, n));
  auto ratio_of = [&](const svd_result& r, std::int64_t k) {
    matrix us = from_tensor(r.u);
    for (std::int64_t i = 0; i < us.rows; ++i)
      for (std::int64_t j = 0; j < us.cols; ++j) us(i, j) *= r.sigma[std::size_t(j)];
    return frobenius(difference(wd, multiply(us, from_tensor(r.vt)))) / tail_norm(sigma, std::size_t(k));
  };
  CHECK(svd_options{}.power_precision == svd_precision::int16);
  for (std::int64_t k : {50, 120}) {
    INFO("rank " << k);
    const double int16 = ratio_of(truncated_svd(view_of(wf, m, n), k, {.power_precision = svd_precision::int16}), k);
    const double f32 = ratio_of(truncated_svd(view_of(wf, m, n), k, {.power_precision = svd_precision::f32}), k);
    INFO("error / optimum: int16 " << int16 << ", f32 " << f32);
    CHECK(int16 >= 1.0 - 1e-6);
    CHECK(int16 <= 1.01);
    // The codes' noise (about 1e-4 of each product) does not move the subspace found.
    CHECK(std::abs(int16 - f32) <= 1e-4);
  }
  // A strided (transposed) view quantizes its rows through a copy: the same result as the dense transpose.
  std::vector<float> dense_t(wf.size());
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) dense_t[std::size_t(j * m + i)] = wf[std::size_t(i * n + j)];
  const svd_result strided = truncated_svd(view_of(wf, m, n).permute({1, 0}), 50);
  const svd_result dense = truncated_svd(view_of(dense_t, n, m), 50);
  CHECK(strided.sigma == dense.sigma);
}

TEST_CASE("lowrank::truncated_svd rejects an unknown power_precision", "[lowrank][svd][int16][errors]") {
  std::vector<float> w(6 * 4, 1.0f);
  require_error([&] { (void)truncated_svd(view_of(w, 6, 4), 2, {.power_precision = svd_precision(7)}); },
                cinch::errc::invalid_argument,
                {"lowrank::truncated_svd", "svd_options::power_precision must be int16 or f32, got 7"});
}
