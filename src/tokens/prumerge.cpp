// PruMerge / PruMerge+: IQR outliers of [CLS] attention, then a weighted merge.
#include "cinch/tokens/prumerge.hpp"

#include <algorithm>
#include <cmath>

#include "tokens/common.hpp"

namespace cinch::tokens {

using cinch::detail::fail;

namespace {

// Quantile q of v by linear interpolation between order statistics.
float quantile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const double at = q * double(v.size() - 1);
  const auto lo = std::size_t(at);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return float(double(v[lo]) + (at - double(lo)) * (double(v[hi]) - double(v[lo])));
}

}  // namespace

plan prumerge(const inputs& in, const prumerge_options& options) {
  constexpr std::string_view fn = "tokens::prumerge";
  const std::int64_t n = detail::token_count(fn, in);
  if (in.cls_attention.rank() == 0) fail(errc::invalid_argument, fn, "needs inputs.cls_attention, got none");
  if (options.keep < 0) fail(errc::invalid_argument, fn, "options.keep must be >= 0 (0: adaptive), got ", options.keep);
  const std::vector<float> a = detail::vector_of(fn, "cls_attention", in.cls_attention, n);
  const detail::matrix metric = detail::metric_of(fn, in, n);

  const float q1 = quantile(a, 0.25), q3 = quantile(a, 0.75);
  const float fence = q3 + 1.5f * (q3 - q1);
  std::int64_t outliers = 0;
  for (float v : a) outliers += v > fence;
  outliers = std::max<std::int64_t>(outliers, 1);
  const std::int64_t keep = options.keep > 0 ? std::min(options.keep, n) : n;

  std::vector<char> kept(static_cast<std::size_t>(n), 0);
  std::int64_t count = 0;
  auto take = [&](std::int64_t t) {
    if (count < keep && !kept[std::size_t(t)]) kept[std::size_t(t)] = 1, ++count;
  };
  const std::vector<std::int64_t> ranked = top_k(a, n);
  const std::int64_t first = options.keep > 0 && !options.plus ? keep : outliers;
  for (std::int64_t i = 0; i < first && i < n; ++i) take(ranked[std::size_t(i)]);
  if (options.plus) {
    const auto rho = double(outliers) / double(n);
    std::int64_t step = std::max<std::int64_t>(1, std::int64_t(std::floor(1.0 / rho)) / 3);
    if (options.keep > 0 && count < keep) step = std::max<std::int64_t>(1, n / (keep - count));
    for (std::int64_t t = 0; t < n - 1; t += step) take(t);
    for (std::int64_t i = 0; i < n && options.keep > 0; ++i) take(ranked[std::size_t(i)]);
  }

  std::vector<std::int64_t> keep_rows, other_rows;
  for (std::int64_t i = 0; i < n; ++i) (kept[std::size_t(i)] ? keep_rows : other_rows).push_back(i);
  std::vector<std::int64_t> destination(static_cast<std::size_t>(n));
  std::vector<float> weights(static_cast<std::size_t>(n), 1.0f);
  for (std::int64_t t : keep_rows) destination[std::size_t(t)] = t;
  if (!other_rows.empty()) {
    const auto& k = cinch::detail::active_token_kernels();
    const detail::packed pk(k, metric, keep_rows), po(k, metric, other_rows);
    std::vector<float> best(other_rows.size());
    std::vector<std::int64_t> nearest(other_rows.size());
    detail::dots_argmax(po, pk, true, false, best.data(), nearest.data());
    for (std::size_t o = 0; o < other_rows.size(); ++o) {
      destination[std::size_t(other_rows[o])] = keep_rows[std::size_t(nearest[o])];
      weights[std::size_t(other_rows[o])] = a[std::size_t(other_rows[o])];
    }
  }
  plan p = from_destinations(destination);
  p.weights = std::move(weights);
  return p;
}

}  // namespace cinch::tokens
