// DivPrune's max-min diversity selection, incremental.
#include "cinch/tokens/divprune.hpp"

#include <cmath>

#include "tokens/common.hpp"

namespace cinch::tokens {

plan divprune(const inputs& in, std::int64_t keep) {
  constexpr std::string_view fn = "tokens::divprune";
  const std::int64_t n = detail::token_count(fn, in);
  keep = detail::checked_budget(fn, keep, n);
  const detail::matrix metric = detail::metric_of(fn, in, n);
  const auto& k = cinch::detail::active_token_kernels();
  const detail::packed all(k, metric);

  // First pick: the largest nearest-neighbour distance 1 - max_{j != i} cos_sym(i, j).
  const std::vector<float> nearest = detail::nearest(all);
  std::int64_t pick = 0;
  for (std::int64_t i = 1; i < n; ++i)
    if (1.0f - nearest[std::size_t(i)] > 1.0f - nearest[std::size_t(pick)]) pick = i;

  // Then farthest-point steps over a running min distance (-inf marks the selected).
  std::vector<float> min_distance(static_cast<std::size_t>(n), INFINITY), row(static_cast<std::size_t>(n));
  std::vector<std::int64_t> kept;
  for (;;) {
    kept.push_back(pick);
    min_distance[std::size_t(pick)] = -INFINITY;
    if (std::int64_t(kept.size()) == keep) break;
    const detail::packed one(k, metric.data, metric.offsets.data() + pick, 1, metric.cols);
    detail::dots(one, all, true, row.data(), n);
    pick = -1;
    for (std::int64_t j = 0; j < n; ++j) {
      float& m = min_distance[std::size_t(j)];
      if (m == -INFINITY) continue;
      const float d = 1.0f - row[std::size_t(j)];
      m = d < m ? d : m;
      if (pick < 0 || m > min_distance[std::size_t(pick)]) pick = j;
    }
  }
  return from_kept(n, kept);
}

}  // namespace cinch::tokens
