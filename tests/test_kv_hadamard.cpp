// Walsh-Hadamard rotation: the explicit Sylvester matrix, exact small cases, the
// published properties (orthonormal, self-inverse, inner products kept), the
// randomized transform and its inverse, bit-identical results on every backend
// and CPU target, and bad input.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/kv/hadamard.hpp>
#include <cinch/ref/hadamard.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cpu_targets.hpp"
#include "error_matchers.hpp"
#include "random_data.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;

namespace {

double dot(const float* a, const float* b, std::int64_t n) {
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i) s += double(a[i]) * b[i];
  return s;
}

std::vector<float> rotated(std::vector<float> x, std::int64_t n, std::optional<std::uint64_t> seed = std::nullopt) {
  cinch::kv::hadamard(tensor_view(x.data(), dtype::f32, {std::int64_t(x.size()) / n, n}), seed);
  return x;
}

// Sylvester's H_n as +-1 entries: H_2n = [[H_n, H_n], [H_n, -H_n]].
std::vector<int> sylvester(std::int64_t n) {
  std::vector<int> h{1};
  for (std::int64_t m = 1; m < n; m *= 2) {
    std::vector<int> next(std::size_t(4 * m * m));
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < m; ++j) {
        const int v = h[std::size_t(i * m + j)];
        next[std::size_t(i * 2 * m + j)] = v;
        next[std::size_t(i * 2 * m + j + m)] = v;
        next[std::size_t((i + m) * 2 * m + j)] = v;
        next[std::size_t((i + m) * 2 * m + j + m)] = -v;
      }
    h = std::move(next);
  }
  return h;
}

}  // namespace

TEST_CASE("hadamard equals the explicit Sylvester matrix over sqrt(n) for n = 8", "[kv][hadamard]") {
  const std::int64_t n = 8;
  const std::vector<int> h = sylvester(n);
  CHECK(std::vector<int>(h.begin(), h.begin() + 8) == std::vector<int>{1, 1, 1, 1, 1, 1, 1, 1});
  CHECK(std::vector<int>(h.begin() + 8, h.begin() + 16) == std::vector<int>{1, -1, 1, -1, 1, -1, 1, -1});
  const std::vector<float> x = random_values(3 * n, 1);
  const std::vector<float> y = rotated(x, n);
  for (std::int64_t r = 0; r < 3; ++r)
    for (std::int64_t i = 0; i < n; ++i) {
      double expect = 0;
      for (std::int64_t j = 0; j < n; ++j) expect += h[std::size_t(i * n + j)] * double(x[std::size_t(r * n + j)]);
      expect /= std::sqrt(double(n));
      REQUIRE(std::fabs(y[std::size_t(r * n + i)] - expect) <= 1e-6 * (1 + std::fabs(expect)));
    }
}

TEST_CASE("hadamard on small integer rows is exact", "[kv][hadamard]") {
  CHECK(rotated({1, 2, 3, 4}, 4) == std::vector<float>{5, -1, -2, 0});  // H4 [1 2 3 4] = [10 -2 -4 0], / 2
  CHECK(rotated({7}, 1) == std::vector<float>{7});
  CHECK(rotated({3, 1}, 2) == std::vector<float>{4 * 0.70710678118654752f, 2 * 0.70710678118654752f});
  CHECK(cinch::ref::hadamard_scale(64) == 0.125f);
  CHECK(cinch::ref::hadamard_scale(128) == 0.125f * 0.70710678118654752f);
}

TEST_CASE("hadamard is orthonormal, self-inverse and keeps inner products", "[kv][hadamard]") {
  for (const std::int64_t n : {2, 16, 128, 1024}) {
    INFO("n " << n);
    const std::vector<float> q = random_values(std::size_t(n), 2), k = random_values(std::size_t(n), 3);
    const std::vector<float> hq = rotated(q, n), hk = rotated(k, n);
    const double tol = 1e-6 * std::log2(double(n)) * n;
    CHECK(std::fabs(dot(hq.data(), hq.data(), n) - dot(q.data(), q.data(), n)) <= tol);
    CHECK(std::fabs(dot(hq.data(), hk.data(), n) - dot(q.data(), k.data(), n)) <= tol);
    const std::vector<float> back = rotated(hq, n);
    for (std::int64_t i = 0; i < n; ++i) REQUIRE(std::fabs(back[std::size_t(i)] - q[std::size_t(i)]) <= 1e-5f);
    // inverse_hadamard without signs is the same transform.
    std::vector<float> inv = q;
    cinch::kv::inverse_hadamard(tensor_view(inv.data(), dtype::f32, {n}));
    CHECK(inv == hq);
  }
}

TEST_CASE("randomized hadamard: signs from the seed, inverse restores the input", "[kv][hadamard]") {
  const std::int64_t n = 256;
  const std::vector<float> x = random_values(std::size_t(2 * n), 4);
  const std::uint64_t seed = 0x5EED;
  const std::vector<float> y = rotated(x, n, seed);
  // Forward = H D x / sqrt(n): flip the signs by hand, then the plain transform.
  std::vector<float> signed_x = x;
  int negatives = 0;
  for (std::int64_t r = 0; r < 2; ++r)
    for (std::int64_t i = 0; i < n; ++i) {
      const bool negative = cinch::ref::hadamard_sign_bit(seed, i) != 0;
      negatives += r == 0 && negative;
      if (negative) signed_x[std::size_t(r * n + i)] = -signed_x[std::size_t(r * n + i)];
    }
  CHECK(y == rotated(signed_x, n));
  CHECK(negatives > n / 4);
  CHECK(negatives < 3 * n / 4);
  CHECK(y != rotated(x, n, seed + 1));
  CHECK(std::fabs(dot(y.data(), y.data(), n) - dot(x.data(), x.data(), n)) <= 1e-4);
  std::vector<float> back = y;
  cinch::kv::inverse_hadamard(tensor_view(back.data(), dtype::f32, {2, n}), seed);
  for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(std::fabs(back[i] - x[i]) <= 1e-5f);
  // The sign sequence is splitmix64's: output 0 for seed 0 is 0xE220A8397B1DCDAF (top bit set).
  CHECK(cinch::ref::splitmix64_mix(0x9E3779B97F4A7C15ull) == 0xE220A8397B1DCDAFull);
  CHECK(cinch::ref::hadamard_sign_bit(0, 0) == 0x80000000u);
}

TEST_CASE("hadamard is bit-identical on every backend and CPU target", "[kv][hadamard][agreement]") {
  for (const std::int64_t n : {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 8192}) {
    for (const bool with_seed : {false, true}) {
      for (const bool inverse : {false, true}) {
        // Three rows with a gap between them (row stride n + 3).
        const std::int64_t rows = 3, stride = n + 3;
        const std::vector<float> x = random_values(std::size_t(rows * stride), unsigned(n));
        auto run = [&] {
          std::vector<float> y = x;
          const tensor_view v(y.data(), dtype::f32, {rows, n}, {stride, 1});
          const std::optional<std::uint64_t> seed = with_seed ? std::optional<std::uint64_t>(99) : std::nullopt;
          inverse ? cinch::kv::inverse_hadamard(v, seed) : cinch::kv::hadamard(v, seed);
          return y;
        };
        cinch::force_backend(cinch::backend_kind::ref);
        const std::vector<float> expect = run();
        cinch::force_backend(std::nullopt);
        for (std::int64_t r = 0; r < rows; ++r)  // the gaps stay untouched
          for (std::int64_t i = n; i < stride; ++i) REQUIRE(expect[std::size_t(r * stride + i)] == x[std::size_t(r * stride + i)]);
        for_each_cpu_target([&](const std::string& target) {
          INFO(target << " n " << n << " seed " << with_seed << " inverse " << inverse);
          const std::vector<float> y = run();
          REQUIRE(std::memcmp(y.data(), expect.data(), y.size() * sizeof(float)) == 0);
        });
      }
    }
  }
}

TEST_CASE("hadamard rejects bad input", "[kv][hadamard][errors]") {
  std::vector<float> x(24, 1.0f);
  require_error([&] { cinch::kv::hadamard(tensor_view(x.data(), dtype::f32, {2, 12})); }, errc::invalid_argument,
                {"kv::hadamard", "power of two", "got 12", "[2, 12]"});
  require_error([&] { cinch::kv::inverse_hadamard(tensor_view(x.data(), dtype::f32, {3, 0})); }, errc::invalid_argument,
                {"kv::inverse_hadamard", "power of two", "got 0"});
  require_error([&] { cinch::kv::hadamard(tensor_view(x.data(), dtype::f16, {2, 8})); }, errc::invalid_argument,
                {"x", "f32", "got f16"});
  require_error([&] { cinch::kv::hadamard(tensor_view(x.data(), dtype::f32, {})); }, errc::shape_mismatch, {"rank 0"});
  require_error([&] { cinch::kv::hadamard(tensor_view(static_cast<const float*>(x.data()), dtype::f32, {2, 8})); },
                errc::invalid_argument, {"x", "writable"});
  require_error([&] { cinch::kv::hadamard(tensor_view(x.data(), dtype::f32, {2, 8}, {0, 1})); }, errc::invalid_argument,
                {"x", "alias itself"});
  require_error([&] { cinch::kv::hadamard(tensor_view(x.data(), dtype::f32, {4, 4}, {1, 4})); }, errc::unsupported,
                {"x", "stride 1"});
}
