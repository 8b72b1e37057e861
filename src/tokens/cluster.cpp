// Shared building blocks of the clustering methods: row-pair cosines,
// density peaks (DPC-kNN) and union-find.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "tokens/common.hpp"

namespace cinch::tokens::detail {

std::vector<float> pair_cosines(const matrix& m, std::span<const std::int64_t> a_rows,
                                std::span<const std::int64_t> b_rows) {
  const auto& k = cinch::detail::active_token_kernels();
  const packed a(k, m, a_rows), b(k, m, b_rows);
  std::vector<float> out(a_rows.size());
  if (!out.empty()) k.pair_dots(a.data(), a.inv(), b.data(), b.inv(), a.rows(), m.cols, out.data());
  return out;
}

density_peaks density_peaks_of(const matrix& m, std::span<const std::int64_t> rows, std::int64_t k) {
  const auto n = std::int64_t(rows.size());
  const auto& kernels = cinch::detail::active_token_kernels();
  const packed p(kernels, m, rows, false);
  density_peaks out;
  out.distance.resize(std::size_t(n * n));
  dots(p, p, false, out.distance.data(), n);
  // ||x_i - x_j||^2 = |x_i|^2 + |x_j|^2 - 2 x_i . x_j from the Gram matrix, clamped at 0.
  std::vector<float> squares(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) squares[std::size_t(i)] = out.distance[std::size_t(i * n + i)];
  const float scale = 1.0f / float(m.cols);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      float& v = out.distance[std::size_t(i * n + j)];
      const float sq = i == j ? 0.0f : squares[std::size_t(i)] + squares[std::size_t(j)] - 2.0f * v;
      v = std::sqrt(std::max(sq, 0.0f) * scale);
    }
  const std::int64_t neighbours = std::clamp<std::int64_t>(k, 1, std::max<std::int64_t>(n - 1, 1));
  std::vector<float> density(static_cast<std::size_t>(n)), row(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t count = 0;
    for (std::int64_t j = 0; j < n; ++j)
      if (j != i) row[std::size_t(count++)] = out.distance[std::size_t(i * n + j)];
    const std::int64_t take = std::min(neighbours, count);
    std::partial_sort(row.begin(), row.begin() + take, row.begin() + count);
    double mean = 0;
    for (std::int64_t t = 0; t < take; ++t) mean += double(row[std::size_t(t)]) * double(row[std::size_t(t)]);
    density[std::size_t(i)] = float(std::exp(-(take ? mean / double(take) : 0.0)));
  }
  auto above = [&](std::int64_t j, std::int64_t i) {
    return density[std::size_t(j)] > density[std::size_t(i)] ||
           (density[std::size_t(j)] == density[std::size_t(i)] && j < i);
  };
  out.score.resize(std::size_t(n));
  for (std::int64_t i = 0; i < n; ++i) {
    float delta = INFINITY, farthest = 0.0f;
    for (std::int64_t j = 0; j < n; ++j) {
      const float dij = out.distance[std::size_t(i * n + j)];
      farthest = std::max(farthest, dij);
      if (above(j, i)) delta = std::min(delta, dij);
    }
    out.score[std::size_t(i)] = density[std::size_t(i)] * (delta == INFINITY ? farthest : delta);
  }
  return out;
}

std::vector<std::int64_t> cluster_by_peaks(const density_peaks& peaks, std::int64_t clusters) {
  const auto n = std::int64_t(peaks.score.size());
  const std::vector<std::int64_t> centres = top_k_sorted(peaks.score, clusters);
  std::vector<std::int64_t> owner(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t best = centres.front();
    for (std::int64_t c : centres)
      if (peaks.distance[std::size_t(i * n + c)] < peaks.distance[std::size_t(i * n + best)]) best = c;
    owner[std::size_t(i)] = best;
  }
  for (std::int64_t c : centres) owner[std::size_t(c)] = c;
  return owner;
}

disjoint_sets::disjoint_sets(std::int64_t n) : parent_(static_cast<std::size_t>(n)), count_(n) {
  std::iota(parent_.begin(), parent_.end(), 0);
}

std::int64_t disjoint_sets::find(std::int64_t i) noexcept {
  while (parent_[std::size_t(i)] != i) {
    parent_[std::size_t(i)] = parent_[std::size_t(parent_[std::size_t(i)])];
    i = parent_[std::size_t(i)];
  }
  return i;
}

bool disjoint_sets::unite(std::int64_t a, std::int64_t b) noexcept {
  a = find(a);
  b = find(b);
  if (a == b) return false;
  parent_[std::size_t(std::max(a, b))] = std::min(a, b);
  --count_;
  return true;
}

}  // namespace cinch::tokens::detail
