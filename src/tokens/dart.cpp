// DART: pivots by key norm, then per-pivot duplicates removed.
#include "cinch/tokens/dart.hpp"

#include <algorithm>
#include <cmath>

#include "tokens/common.hpp"

namespace cinch::tokens {

using cinch::detail::fail;

namespace {

// L1 norm of each row, summed in column order.
std::vector<float> l1_norms(const detail::matrix& m) {
  std::vector<float> out(static_cast<std::size_t>(m.rows), 0.0f);
  for (std::int64_t i = 0; i < m.rows; ++i)
    for (std::int64_t c = 0; c < m.cols; ++c) out[std::size_t(i)] += std::fabs(m.row(i)[c]);
  return out;
}

}  // namespace

plan dart(const inputs& in, std::int64_t keep, const dart_options& options) {
  constexpr std::string_view fn = "tokens::dart";
  const std::int64_t n = detail::token_count(fn, in);
  keep = detail::checked_budget(fn, keep, n);
  if (options.image_pivots < 0 || options.text_pivots < 0)
    fail(errc::invalid_argument, fn, "pivot counts must be >= 0, got ", options.image_pivots, " image and ",
         options.text_pivots, " text");
  if (in.features.rank() == 0) fail(errc::invalid_argument, fn, "needs inputs.features, got none");
  const detail::matrix features = detail::matrix_of(fn, "features", in.features, n);
  const detail::matrix pivot_metric = in.keys.rank() > 0 ? detail::matrix_of(fn, "keys", in.keys, n) : features;

  const std::vector<std::int64_t> image_pivots = top_k(l1_norms(pivot_metric), std::min(options.image_pivots, keep));
  detail::matrix text;
  std::vector<std::int64_t> text_pivots;
  if (in.text_features.rank() > 0 && options.text_pivots > 0) {
    text = detail::matrix_of(fn, "text_features", in.text_features, -1, false);
    if (text.cols != features.cols)
      fail(errc::shape_mismatch, fn, "text_features must have the features' width ", features.cols, ", got ",
           in.text_features.shape());
    const detail::matrix text_metric =
        in.text_keys.rank() > 0 ? detail::matrix_of(fn, "text_keys", in.text_keys, text.rows, false) : text;
    text_pivots = top_k(l1_norms(text_metric), options.text_pivots);
  }
  const std::int64_t pivots = std::int64_t(image_pivots.size() + text_pivots.size());
  const std::int64_t rest = keep - std::int64_t(image_pivots.size());
  if (rest > 0 && pivots == 0)
    fail(errc::invalid_argument, fn, "needs at least one pivot to choose ", rest, " tokens, got none");

  std::vector<char> chosen(static_cast<std::size_t>(n), 0);
  for (std::int64_t t : image_pivots) chosen[std::size_t(t)] = 1;
  const auto& k = cinch::detail::active_token_kernels();
  const detail::packed all(k, features);
  std::vector<float> row(static_cast<std::size_t>(n));
  for (std::int64_t p = 0; p < pivots && rest > 0; ++p) {
    const std::int64_t quota = rest / pivots + (p < rest % pivots ? 1 : 0);
    const bool image = p < std::int64_t(image_pivots.size());
    const detail::matrix& source = image ? features : text;
    const std::int64_t token = image ? image_pivots[std::size_t(p)] : text_pivots[std::size_t(p) - image_pivots.size()];
    const detail::packed pivot(k, source.data, source.offsets.data() + token, 1, source.cols);
    detail::dots(pivot, all, true, row.data(), n);
    // The quota least similar candidates: top_k of the negated cosines, chosen ones excluded.
    std::vector<float> score(static_cast<std::size_t>(n));
    for (std::int64_t j = 0; j < n; ++j) score[std::size_t(j)] = chosen[std::size_t(j)] ? NAN : -row[std::size_t(j)];
    for (std::int64_t j : top_k(score, quota))
      if (!chosen[std::size_t(j)]) chosen[std::size_t(j)] = 1;
  }
  std::vector<std::int64_t> kept;
  for (std::int64_t i = 0; i < n; ++i)
    if (chosen[std::size_t(i)]) kept.push_back(i);
  return from_kept(n, kept);
}

}  // namespace cinch::tokens
