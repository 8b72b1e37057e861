// The baselines every token method should beat: random pruning and average
// pooling over the token grid (which "Are We Using the Right Benchmark"
// finds hard to beat on common benchmarks).
#pragma once

#include <cstdint>

#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

// Keeps `keep` of n tokens drawn uniformly without replacement (a partial
// Fisher-Yates shuffle driven by splitmix64 of seed and step), the same plan on
// every machine. keep >= 1; keep > n keeps all.
[[nodiscard]] plan random_prune(std::int64_t n, std::int64_t keep, std::uint64_t seed = 0);

// Average pooling: each frame's height x width grid is cut into out_height x
// out_width bins with edges floor(i * height / out_height) (and likewise for
// columns), and every token merges into its bin. A bin's representative, which
// gives its position id, is its middle token (rounded toward the top left).
// 1 <= out_height <= height, 1 <= out_width <= width.
[[nodiscard]] plan pool(const grid& g, std::int64_t out_height, std::int64_t out_width);

// Pooling to exactly keep_per_frame bins per frame: the factorization
// out_height x out_width = keep_per_frame that fits the grid with the aspect
// ratio closest to the grid's (ties: fewer rows). Throws when none fits (a
// prime larger than both sides, say).
[[nodiscard]] plan pool(const grid& g, std::int64_t keep_per_frame);

}  // namespace cinch::tokens
