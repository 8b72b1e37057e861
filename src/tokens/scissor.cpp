// LLaVA-Scissor: union-find over thresholded cosine graphs, spatial then temporal.
#include "cinch/tokens/scissor.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tokens/common.hpp"

namespace cinch::tokens {

using cinch::detail::fail;

namespace {

struct components {
  std::vector<std::int64_t> root;    // per item: its component's root (lowest member)
  std::vector<std::int64_t> degree;  // per item: links above the threshold
};

// Components of the items whose cosine matrix is s (n x n) at threshold tau.
components link(const std::vector<float>& s, std::int64_t n, float tau) {
  detail::disjoint_sets sets(n);
  components c{std::vector<std::int64_t>(static_cast<std::size_t>(n)), std::vector<std::int64_t>(static_cast<std::size_t>(n), 0)};
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i + 1; j < n; ++j)
      if (s[std::size_t(i * n + j)] > tau) {
        sets.unite(i, j);
        ++c.degree[std::size_t(i)];
        ++c.degree[std::size_t(j)];
      }
  for (std::int64_t i = 0; i < n; ++i) c.root[std::size_t(i)] = sets.find(i);
  return c;
}

// Joins the most similar pairs first until `keep` sets remain.
std::vector<std::int64_t> join_to(const std::vector<float>& s, std::int64_t n, std::int64_t keep) {
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i + 1; j < n; ++j) pairs.emplace_back(i, j);
  std::stable_sort(pairs.begin(), pairs.end(), [&](const auto& a, const auto& b) {
    return s[std::size_t(a.first * n + a.second)] > s[std::size_t(b.first * n + b.second)];
  });
  detail::disjoint_sets sets(n);
  for (const auto& [i, j] : pairs) {
    if (sets.count() <= keep) break;
    sets.unite(i, j);
  }
  std::vector<std::int64_t> root(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) root[std::size_t(i)] = sets.find(i);
  return root;
}

std::vector<float> cosine_matrix(const detail::matrix& m, std::span<const std::int64_t> rows) {
  const auto& k = cinch::detail::active_token_kernels();
  const detail::packed p(k, m, rows);
  std::vector<float> s(rows.size() * rows.size());
  detail::dots(p, p, true, s.data(), std::int64_t(rows.size()));
  return s;
}

}  // namespace

plan scissor(const inputs& in, const scissor_options& options) {
  constexpr std::string_view fn = "tokens::scissor";
  const std::int64_t n = detail::token_count(fn, in);
  if (!std::isfinite(options.tau)) fail(errc::invalid_argument, fn, "options.tau must be finite");
  if (options.keep < 0) fail(errc::invalid_argument, fn, "options.keep must be >= 0 (0: adaptive), got ", options.keep);
  const grid g = detail::checked_grid(fn, in.shape, n, false);
  const std::int64_t frames = g.empty() ? 1 : g.frames, per_frame = n / frames;
  const detail::matrix metric = detail::metric_of(fn, in, n);

  // Spatial: components per frame; each component's representative is its highest-degree token.
  std::vector<std::int64_t> group(static_cast<std::size_t>(n));  // token -> spatial component id
  std::vector<std::int64_t> representative;
  std::vector<std::int64_t> degree(static_cast<std::size_t>(n));
  std::vector<float> means;  // component mean vectors, metric width
  const std::int64_t d = metric.cols;
  for (std::int64_t f = 0; f < frames; ++f) {
    std::vector<std::int64_t> rows(static_cast<std::size_t>(per_frame));
    std::iota(rows.begin(), rows.end(), f * per_frame);
    const components c = link(cosine_matrix(metric, rows), per_frame, options.tau);
    std::vector<std::int64_t> id(static_cast<std::size_t>(per_frame), -1);
    for (std::int64_t i = 0; i < per_frame; ++i) {
      const auto root = std::size_t(c.root[std::size_t(i)]);
      if (id[root] < 0) {
        id[root] = std::int64_t(representative.size());
        representative.push_back(rows[std::size_t(i)]);
      }
      const std::int64_t t = rows[std::size_t(i)], comp = id[root];
      group[std::size_t(t)] = comp;
      degree[std::size_t(t)] = c.degree[std::size_t(i)];
      if (degree[std::size_t(t)] > degree[std::size_t(representative[std::size_t(comp)])]) representative[std::size_t(comp)] = t;
    }
  }
  const auto count = std::int64_t(representative.size());
  std::vector<std::int64_t> size(static_cast<std::size_t>(count), 0);
  means.assign(std::size_t(count * d), 0.0f);
  for (std::int64_t t = 0; t < n; ++t) {
    const std::int64_t comp = group[std::size_t(t)];
    ++size[std::size_t(comp)];
    for (std::int64_t c = 0; c < d; ++c) means[std::size_t(comp * d + c)] += metric.row(t)[c];
  }
  for (std::int64_t comp = 0; comp < count; ++comp)
    for (std::int64_t c = 0; c < d; ++c) means[std::size_t(comp * d + c)] /= float(size[std::size_t(comp)]);

  // Temporal: the components of all frames, linked by their means.
  detail::matrix mean_rows{means.data(), count, d, {}};
  mean_rows.offsets.resize(std::size_t(count));
  for (std::int64_t comp = 0; comp < count; ++comp) mean_rows.offsets[std::size_t(comp)] = comp * d;
  std::vector<std::int64_t> all(static_cast<std::size_t>(count));
  std::iota(all.begin(), all.end(), 0);
  const std::vector<float> s = cosine_matrix(mean_rows, all);
  std::vector<std::int64_t> root;
  std::vector<std::int64_t> temporal_degree(static_cast<std::size_t>(count), 0);
  if (options.keep > 0) {
    root = join_to(s, count, options.keep);
  } else {
    const components c = link(s, count, options.tau);
    root = c.root;
    temporal_degree = c.degree;
  }
  // A final group's representative: its component with the highest temporal degree
  // (then the higher spatial degree of that component's representative, then the lower index).
  std::vector<std::int64_t> lead(static_cast<std::size_t>(count), -1);
  for (std::int64_t comp = 0; comp < count; ++comp) {
    std::int64_t& l = lead[std::size_t(root[std::size_t(comp)])];
    auto rank = [&](std::int64_t x) {
      return std::make_pair(temporal_degree[std::size_t(x)], degree[std::size_t(representative[std::size_t(x)])]);
    };
    if (l < 0 || rank(comp) > rank(l)) l = comp;
  }
  std::vector<std::int64_t> destination(static_cast<std::size_t>(n));
  for (std::int64_t t = 0; t < n; ++t)
    destination[std::size_t(t)] =
        representative[std::size_t(lead[std::size_t(root[std::size_t(group[std::size_t(t)])])])];
  return from_destinations(destination);
}

}  // namespace cinch::tokens
