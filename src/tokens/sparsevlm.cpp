// SparseVLM: rater selection, relevance ranking and recycling.
#include "cinch/tokens/sparsevlm.hpp"

#include <algorithm>
#include <cmath>

#include "tokens/common.hpp"

namespace cinch::tokens {

using cinch::detail::fail;

plan sparsevlm(const inputs& in, std::int64_t keep, const sparsevlm_options& options) {
  constexpr std::string_view fn = "tokens::sparsevlm";
  const std::int64_t n = detail::token_count(fn, in);
  keep = detail::checked_budget(fn, keep, n);
  if (in.text_attention.rank() == 0)
    fail(errc::invalid_argument, fn, "needs inputs.text_attention (one row per text token), got none");
  if (!(options.recycle_ratio >= 0.0 && options.recycle_ratio <= 1.0) || options.cluster_divisor < 1 ||
      options.neighbours < 1)
    fail(errc::invalid_argument, fn, "options need recycle_ratio in [0, 1], cluster_divisor >= 1 and neighbours >= 1");
  const detail::matrix attention = detail::matrix_of(fn, "text_attention", in.text_attention, -1, false);
  if (attention.cols != n)
    fail(errc::shape_mismatch, fn, "text_attention must be [Tt, ", n, "], got ", in.text_attention.shape());

  // Raters: text tokens that visual tokens attend to more than on average.
  std::vector<char> rater(static_cast<std::size_t>(attention.rows), 1);
  if (in.text_features.rank() > 0) {
    if (in.features.rank() == 0) fail(errc::invalid_argument, fn, "needs inputs.features to rate text_features");
    const detail::matrix v = detail::matrix_of(fn, "features", in.features, n);
    const detail::matrix t = detail::matrix_of(fn, "text_features", in.text_features, attention.rows, false);
    if (t.cols != v.cols)
      fail(errc::shape_mismatch, fn, "text_features must have the features' width ", v.cols, ", got ",
           in.text_features.shape());
    const auto& k = cinch::detail::active_token_kernels();
    const detail::packed pv(k, v, {}, false), pt(k, t, {}, false);
    std::vector<float> logits(static_cast<std::size_t>(n * t.rows));
    detail::dots(pv, pt, false, logits.data(), t.rows);
    std::vector<double> rho(static_cast<std::size_t>(t.rows), 0.0);
    for (std::int64_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * t.rows;
      const float top = *std::max_element(row, row + t.rows);
      double total = 0;
      for (std::int64_t c = 0; c < t.rows; ++c) total += std::exp(double(row[c] - top));
      for (std::int64_t c = 0; c < t.rows; ++c) rho[std::size_t(c)] += std::exp(double(row[c] - top)) / total;
    }
    double mean = 0;
    for (double r : rho) mean += r / double(t.rows);
    for (std::size_t c = 0; c < rho.size(); ++c) rater[c] = rho[c] > mean;
  }
  std::vector<float> relevance(static_cast<std::size_t>(n), 0.0f);
  std::int64_t raters = 0;
  for (std::int64_t r = 0; r < attention.rows; ++r) {
    if (!rater[std::size_t(r)]) continue;
    ++raters;
    for (std::int64_t j = 0; j < n; ++j) relevance[std::size_t(j)] += attention.row(r)[j];
  }
  for (float& v : relevance) v /= float(std::max<std::int64_t>(raters, 1));

  // Recycling takes c of the budget; the rest goes to the most relevant tokens.
  std::int64_t clusters = 0;
  if (options.recycle && keep < n) {
    const auto pruned = double(n - keep);
    clusters = std::int64_t(std::floor(options.recycle_ratio * pruned / double(options.cluster_divisor))) + 1;
    clusters = std::min(clusters, keep - 1);
  }
  const std::vector<std::int64_t> ranked = top_k(relevance, n);
  std::vector<std::int64_t> destination(static_cast<std::size_t>(n), -1);
  for (std::int64_t i = 0; i < keep - clusters; ++i) destination[std::size_t(ranked[std::size_t(i)])] = ranked[std::size_t(i)];
  if (clusters > 0) {
    if (in.features.rank() == 0 && in.keys.rank() == 0)
      fail(errc::invalid_argument, fn, "needs inputs.features (or keys) to recycle pruned tokens");
    const detail::matrix metric = detail::metric_of(fn, in, n);
    const std::int64_t pruned = n - (keep - clusters);
    const auto recycled = std::max(clusters, std::int64_t(std::ceil(options.recycle_ratio * double(pruned))));
    std::vector<std::int64_t> rows(ranked.begin() + (keep - clusters),
                                   ranked.begin() + (keep - clusters) + std::min(recycled, pruned));
    std::sort(rows.begin(), rows.end());
    const std::vector<std::int64_t> owner =
        detail::cluster_by_peaks(detail::density_peaks_of(metric, rows, options.neighbours), clusters);
    for (std::size_t r = 0; r < rows.size(); ++r) destination[std::size_t(rows[r])] = rows[std::size_t(owner[r])];
  }
  return from_destinations(destination);
}

}  // namespace cinch::tokens
