// GreedyPrune: saliency order under a cosine limit, with a running max similarity.
#include "cinch/tokens/greedy_prune.hpp"

#include <cmath>

#include "tokens/common.hpp"

namespace cinch::tokens {

using cinch::detail::fail;

plan greedy_prune(const inputs& in, std::int64_t keep, const greedy_prune_options& options) {
  constexpr std::string_view fn = "tokens::greedy_prune";
  const std::int64_t n = detail::token_count(fn, in);
  keep = detail::checked_budget(fn, keep, n);
  if (!std::isfinite(options.tau)) fail(errc::invalid_argument, fn, "options.tau must be finite");
  const std::vector<float> saliency = detail::scores_of(fn, in, n);
  const detail::matrix metric = detail::metric_of(fn, in, n);
  const auto& k = cinch::detail::active_token_kernels();
  const detail::packed all(k, metric);

  std::vector<float> closest(static_cast<std::size_t>(n), -INFINITY), row(static_cast<std::size_t>(n));
  std::vector<char> taken(static_cast<std::size_t>(n), 0);
  std::vector<std::int64_t> kept;
  const std::vector<std::int64_t> order = top_k(saliency, n);
  for (std::int64_t t : order) {
    if (std::int64_t(kept.size()) == keep) break;
    if (closest[std::size_t(t)] > options.tau) continue;
    kept.push_back(t);
    taken[std::size_t(t)] = 1;
    const detail::packed one(k, metric.data, metric.offsets.data() + t, 1, metric.cols);
    detail::dots(one, all, true, row.data(), n);
    for (std::int64_t j = 0; j < n; ++j) closest[std::size_t(j)] = std::max(closest[std::size_t(j)], row[std::size_t(j)]);
  }
  for (std::int64_t t : order) {
    if (std::int64_t(kept.size()) == keep) break;
    if (!taken[std::size_t(t)]) kept.push_back(t);
  }
  return from_kept(n, kept);
}

}  // namespace cinch::tokens
