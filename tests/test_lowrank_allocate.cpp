// Rank allocation: hand-computed budgets, ties, weights, exhaustive optimality
// when all layers share m + n, maximality of the greedy choice, and bad input.
#include <catch2/catch.hpp>

#include <cinch/lowrank/allocate.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "error_matchers.hpp"

using cinch::errc;
using namespace cinch::lowrank;

namespace {

double kept_energy(const std::vector<layer_spectrum>& layers, const std::vector<std::int64_t>& ranks) {
  double e = 0;
  for (std::size_t l = 0; l < layers.size(); ++l)
    for (std::int64_t i = 0; i < ranks[l]; ++i) e += layers[l].weight * layers[l].sigma[std::size_t(i)] * layers[l].sigma[std::size_t(i)];
  return e;
}

std::int64_t cost(const std::vector<layer_spectrum>& layers, const std::vector<std::int64_t>& ranks) {
  std::int64_t c = 0;
  for (std::size_t l = 0; l < layers.size(); ++l) c += ranks[l] * (layers[l].rows + layers[l].cols);
  return c;
}

}  // namespace

TEST_CASE("lowrank::allocate_ranks spends the budget on the largest marginal loss", "[lowrank][allocate]") {
  const std::vector<layer_spectrum> two{{2, 2, {10, 1}}, {2, 2, {5, 4}}};  // 4 parameters per rank
  CHECK(allocate_ranks(two, 8) == std::vector<std::int64_t>{1, 1});
  CHECK(allocate_ranks(two, 11) == std::vector<std::int64_t>{1, 1});
  CHECK(allocate_ranks(two, 12) == std::vector<std::int64_t>{1, 2});  // 4^2 beats 1^2
  CHECK(allocate_ranks(two, 16) == std::vector<std::int64_t>{2, 2});
  CHECK(allocate_ranks(two, 1000) == std::vector<std::int64_t>{2, 2});  // capped by the spectra
  // Ties go to the lower layer index.
  const std::vector<layer_spectrum> same{{3, 3, {2, 1, 1}}, {3, 3, {2, 1, 1}}};
  CHECK(allocate_ranks(same, 18) == std::vector<std::int64_t>{2, 1});
  // Gain per parameter: 9 / 8 for the 4 x 4 layer beats 4 / 4 for the 2 x 2 one.
  const std::vector<layer_spectrum> mixed{{4, 4, {3, 3, 3, 3}}, {2, 2, {2, 2}}};
  CHECK(allocate_ranks(mixed, 20) == std::vector<std::int64_t>{2, 1});
  // When the big layer no longer fits, the small one still takes what is left.
  CHECK(allocate_ranks(mixed, 23) == std::vector<std::int64_t>{2, 1});
  CHECK(allocate_ranks(mixed, 24) == std::vector<std::int64_t>{2, 2});
  // A weight of 0 makes a layer's error free: it keeps rank 1.
  const std::vector<layer_spectrum> weighted{{2, 2, {10, 9}, 0.0}, {2, 2, {1, 0.5}}};
  CHECK(allocate_ranks(weighted, 12) == std::vector<std::int64_t>{1, 2});
  // keep_ratio: of 2 x 16 dense parameters, 0.75 buys 3 ranks of 8 and 1.0 buys 4
  // (equal gains: the lower layer first).
  const std::vector<layer_spectrum> flat{{4, 4, {1, 1, 1, 1}}, {4, 4, {1, 1, 1, 1}}};
  CHECK(allocate_ranks(flat, keep_ratio{0.75}) == std::vector<std::int64_t>{2, 1});
  CHECK(allocate_ranks(flat, keep_ratio{1.0}) == std::vector<std::int64_t>{3, 1});
}

TEST_CASE("lowrank::allocate_ranks is optimal when layers share m + n", "[lowrank][allocate]") {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> value(0.0, 10.0);
  const std::int64_t shapes[][2] = {{6, 10}, {8, 8}, {4, 12}};
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<layer_spectrum> layers;
    for (const auto& s : shapes) {
      layer_spectrum l{s[0], s[1], {}, trial % 2 ? value(rng) : 1.0};
      for (std::int64_t i = 0; i < std::min(s[0], s[1]); ++i) l.sigma.push_back(value(rng));
      std::sort(l.sigma.rbegin(), l.sigma.rend());
      layers.push_back(l);
    }
    const std::int64_t budget = 48 + 16 * std::int64_t(rng() % 14);
    const std::vector<std::int64_t> got = allocate_ranks(layers, budget);
    CHECK(cost(layers, got) <= budget);
    double best = 0;
    std::vector<std::int64_t> r(3);
    std::function<void(std::size_t)> search = [&](std::size_t l) {
      if (l == 3) {
        if (cost(layers, r) <= budget) best = std::max(best, kept_energy(layers, r));
        return;
      }
      for (r[l] = 1; r[l] <= std::int64_t(layers[l].sigma.size()); ++r[l]) search(l + 1);
    };
    search(0);
    CHECK(kept_energy(layers, got) == Approx(best).epsilon(1e-12));
  }
}

TEST_CASE("lowrank::allocate_ranks leaves no affordable rank unspent", "[lowrank][allocate]") {
  std::mt19937 rng(8);
  std::uniform_int_distribution<std::int64_t> extent(2, 40);
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<layer_spectrum> layers;
    std::int64_t dense = 0;
    for (int l = 0; l < 5; ++l) {
      layer_spectrum s{extent(rng), extent(rng), {}};
      double v = 10;
      for (std::int64_t i = 0; i < std::min(s.rows, s.cols); ++i) s.sigma.push_back(v *= 0.9);
      dense += s.rows * s.cols;
      layers.push_back(s);
    }
    const std::int64_t budget = cost(layers, std::vector<std::int64_t>(5, 1)) + std::int64_t(rng() % std::uint64_t(dense));
    const std::vector<std::int64_t> got = allocate_ranks(layers, budget);
    const std::int64_t left = budget - cost(layers, got);
    REQUIRE(left >= 0);
    for (std::size_t l = 0; l < 5; ++l)
      if (got[l] < std::int64_t(layers[l].sigma.size())) CHECK(layers[l].rows + layers[l].cols > left);
  }
}

TEST_CASE("lowrank::allocate_ranks rejects bad input", "[lowrank][allocate][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  require_error([] { (void)allocate_ranks(std::vector<layer_spectrum>{}, 10); }, errc::invalid_argument,
                {"lowrank::allocate_ranks", "layers must not be empty"});
  auto one = [](layer_spectrum l) { return std::vector<layer_spectrum>{{2, 2, {1, 1}}, l}; };
  require_error([&] { (void)allocate_ranks(one({0, 2, {1}}), 100); }, errc::invalid_argument,
                {"layer 1 must have rows and cols >= 1, got 0 x 2"});
  require_error([&] { (void)allocate_ranks(one({2, 3, {}}), 100); }, errc::invalid_argument,
                {"layer 1 must have 1 to min(m, n) = 2 singular values, got 0"});
  require_error([&] { (void)allocate_ranks(one({2, 3, {3, 2, 1}}), 100); }, errc::invalid_argument,
                {"min(m, n) = 2 singular values, got 3"});
  require_error([&] { (void)allocate_ranks(one({2, 3, {1, 2}}), 100); }, errc::invalid_argument,
                {"layer 1 singular values must be finite, >= 0 and descending", "at 1"});
  require_error([&] { (void)allocate_ranks(one({2, 3, {nan}}), 100); }, errc::invalid_argument, {"at 0"});
  require_error([&] { (void)allocate_ranks(one({2, 3, {-1}}), 100); }, errc::invalid_argument, {"at 0"});
  require_error([&] { (void)allocate_ranks(one({2, 3, {1}, -2}), 100); }, errc::invalid_argument,
                {"layer 1 weight must be finite and >= 0"});
  require_error([&] { (void)allocate_ranks(one({2, 3, {1}}), 8); }, errc::invalid_argument,
                {"parameter_budget must cover rank 1 in every layer (9 parameters), got 8"});
  require_error([&] { (void)allocate_ranks(one({2, 3, {1}}), keep_ratio{0}); }, errc::invalid_argument,
                {"keep_ratio must be in (0, 1], got 0"});
}
