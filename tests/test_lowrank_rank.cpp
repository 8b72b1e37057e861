// Rank arithmetic: SVD-LLM's rank table for LLaMA shapes, the defining
// inequality r (m + n) <= keep m n < (r + 1)(m + n), and bad ratios.
#include <catch2/catch.hpp>

#include <cinch/lowrank/rank.hpp>

#include <cmath>
#include <limits>
#include <random>

#include "error_matchers.hpp"

using cinch::errc;
using namespace cinch::lowrank;

TEST_CASE("lowrank::rank_for reproduces the published ranks of LLaMA shapes", "[lowrank][rank]") {
  struct row {
    std::int64_t m, n, break_even, r20, r40, r60, r80;
  };
  // floor(m n (1 - remove) / (m + n)), as in SVD-LLM; break-even floor(m n / (m + n))
  // (14336 x 4096: 3185.8, which tables that round print as 3186).
  const row table[] = {{4096, 4096, 2048, 1638, 1228, 819, 409},
                       {11008, 4096, 2985, 2388, 1791, 1194, 597},
                       {1024, 4096, 819, 655, 491, 327, 163},
                       {14336, 4096, 3185, 2548, 1911, 1274, 637}};
  for (const row& r : table) {
    INFO(r.m << " x " << r.n);
    CHECK(break_even_rank(r.m, r.n) == r.break_even);
    CHECK(rank_for(r.m, r.n, keep_ratio{1.0}) == r.break_even);
    CHECK(rank_for(r.m, r.n, remove_ratio{0.2}) == r.r20);
    CHECK(rank_for(r.m, r.n, remove_ratio{0.4}) == r.r40);
    CHECK(rank_for(r.m, r.n, remove_ratio{0.6}) == r.r60);
    CHECK(rank_for(r.m, r.n, remove_ratio{0.8}) == r.r80);
    CHECK(rank_for(r.m, r.n, keep_ratio{0.2}) == r.r80);
  }
}

TEST_CASE("lowrank::rank_for is the largest rank within the budget", "[lowrank][rank]") {
  CHECK(rank_for(10, 10, keep_ratio{0.5}) == 2);   // 50 parameters, 20 per rank
  CHECK(rank_for(100, 100, keep_ratio{0.1}) == 5);  // 1000 / 200
  // 1 - 0.9 is 0.09999999999999998 in double: still exactly 5 ranks' worth.
  CHECK(rank_for(100, 100, remove_ratio{0.9}) == 5);
  CHECK(rank_for(2, 1000, keep_ratio{1.0}) == 1);
  CHECK(factor_parameters(4096, 4096, 512) == 4194304);

  std::mt19937 rng(5);
  std::uniform_int_distribution<std::int64_t> extent(1, 5000);
  std::uniform_real_distribution<double> ratio(0.01, 1.0);
  for (int i = 0; i < 2000; ++i) {
    const std::int64_t m = extent(rng), n = extent(rng);
    const double keep = ratio(rng);
    const double budget = keep * double(m) * double(n);
    if (budget < double(m + n)) continue;
    const std::int64_t r = rank_for(m, n, keep_ratio{keep});
    INFO(m << " x " << n << " keep " << keep << " -> " << r);
    CHECK(double(factor_parameters(m, n, r)) <= budget * (1 + 1e-12));
    CHECK(double(factor_parameters(m, n, r + 1)) > budget);
    CHECK(r < std::min(m, n));
  }
}

TEST_CASE("lowrank::rank_for rejects ratios outside their range", "[lowrank][rank][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double bad : {0.0, -0.1, 1.5, nan})
    require_error([&] { (void)rank_for(64, 64, keep_ratio{bad}); }, errc::invalid_argument,
                  {"lowrank::rank_for", "keep_ratio must be in (0, 1]"});
  for (double bad : {1.0, -0.1, nan})
    require_error([&] { (void)rank_for(64, 64, remove_ratio{bad}); }, errc::invalid_argument,
                  {"lowrank::rank_for", "remove_ratio must be in [0, 1)"});
  require_error([] { (void)rank_for(0, 64, keep_ratio{0.5}); }, errc::invalid_argument,
                {"lowrank::rank_for", "m and n must be >= 1, got 0 x 64"});
  require_error([] { (void)rank_for(64, 64, keep_ratio{0.01}); }, errc::invalid_argument,
                {"keep_ratio 0.01 of a 64 x 64 matrix leaves no room for rank 1", "needs keep_ratio >= 0.03125"});
  require_error([] { (void)rank_for(1, 1000, keep_ratio{1.0}); }, errc::invalid_argument, {"leaves no room for rank 1"});
}
