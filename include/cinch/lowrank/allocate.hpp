// Rank allocation across layers under one parameter budget.
//
// Truncating singular value sigma_i of a layer costs sigma_i^2 of squared error
// and saves m + n parameters. For SVD-LLM's whitened singular values that error is
// the layer's exact output error (lowrank::whitened_singular_values), so spending
// the budget on the largest weight * sigma_i^2 / (m + n) first minimizes the summed
// squared output error. With plain singular values it minimizes the summed
// ||W - A B||_F^2. Scale each layer with `weight` (e.g. 1 / ||W||_F^2 for relative
// errors) when layers' errors are not comparable.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cinch/lowrank/rank.hpp"

namespace cinch::lowrank {

struct layer_spectrum {
  std::int64_t rows = 0;       // m
  std::int64_t cols = 0;       // n
  std::vector<double> sigma;   // singular values, descending: all min(m, n) or the leading ones
  double weight = 1.0;         // multiplies the layer's squared error
};

// Ranks r_l in [1, sigma_l.size()] with sum_l r_l (m_l + n_l) <= parameter_budget,
// chosen greedily by weight * sigma^2 / (m + n), ties to the lower layer index. The
// result is optimal when all layers share m + n (then it is a sort), and otherwise
// the greedy knapsack choice. Throws errc::invalid_argument for no layers, extents
// below 1, an empty, unsorted, negative or non-finite spectrum (or one longer than
// min(m, n)), a negative or non-finite weight, or a budget below rank 1 everywhere.
[[nodiscard]] std::vector<std::int64_t> allocate_ranks(std::span<const layer_spectrum> layers,
                                                       std::int64_t parameter_budget);
// The budget as a fraction of all layers' dense parameters: floor(keep * sum m n).
[[nodiscard]] std::vector<std::int64_t> allocate_ranks(std::span<const layer_spectrum> layers, keep_ratio keep);

}  // namespace cinch::lowrank
