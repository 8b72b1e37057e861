// tokens::plan: what a pruning or merging method decided, apart from the data
// it is applied to (tokens::apply does that). Every method returns one.
//
// A plan maps N source tokens to K output tokens. Output row k stands at source
// token kept[k] (its representative: the kept token itself, or the destination
// that others merged into), and kept is ascending, so the output keeps the
// original order. Every source token goes to one output row or is dropped:
//   assign[i]  the output row of source i, or -1 (pruned)
//   sizes[k]   how many source tokens output row k stands for
// so sum(sizes) + dropped() == N, and sum(sizes) == N when nothing is dropped
// (every merging method). A representative always belongs to its own row:
// assign[kept[k]] == k.
//
// How an output row is formed (tokens::apply):
//   weights empty  the size-weighted mean of its sources, sum s_i x_i / sum s_i,
//                  with s_i the sizes the sources already carry (1 by default);
//                  chaining plans this way averages every original token once
//   weights set    N coefficients: the row is sum w_i x_i over its sources, for
//                  methods whose merge is not a mean (VisionZip's contextual
//                  tokens, FastVID's anchors, PruMerge's attention weighting)
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace cinch::tokens {

// Visual tokens as frames x height x width, row-major: token (f, y, x) has index
// (f * height + y) * width + x. One image is frames = 1. A default grid (all 0)
// means "no layout given".
struct grid {
  std::int64_t frames = 1;
  std::int64_t height = 0;
  std::int64_t width = 0;

  [[nodiscard]] constexpr std::int64_t per_frame() const noexcept { return height * width; }
  [[nodiscard]] constexpr std::int64_t tokens() const noexcept { return frames * height * width; }
  [[nodiscard]] constexpr bool empty() const noexcept { return height == 0 && width == 0; }
};

struct plan {
  std::int64_t source_tokens = 0;
  std::vector<std::int64_t> kept;
  std::vector<std::int64_t> assign;
  std::vector<std::int64_t> sizes;
  std::vector<float> weights;

  [[nodiscard]] std::int64_t output_tokens() const noexcept { return std::int64_t(kept.size()); }
  [[nodiscard]] std::int64_t dropped() const noexcept {
    std::int64_t n = 0;
    for (std::int64_t a : assign) n += a < 0;
    return n;
  }
};

// Throws errc::invalid_argument (naming `function`) unless p satisfies every
// invariant above: sizes that match assign, ascending representatives that
// belong to their own rows, finite weights.
void validate(const plan& p, std::string_view function = "tokens::validate");

// A pruning plan: the listed tokens (any order, no repeats) are kept, the rest dropped.
[[nodiscard]] plan from_kept(std::int64_t n, std::span<const std::int64_t> kept);

// A merging plan from destinations: destination[i] is the token that i merges
// into (destination[r] == r for a representative) or -1 to drop i.
// Destinations must be representatives themselves (no chains).
[[nodiscard]] plan from_destinations(std::span<const std::int64_t> destination);

// The plan that applies `first`, then `second` to first's output: a plan over
// first's sources (of size 1 each). With neither holding weights, the result
// holds none either and averages every original token once, which is how ToMe
// tracks sizes across layers; otherwise the coefficients multiply through, so
// that apply(compose(a, b), x) equals, up to rounding, apply(b, apply(a, x))
// with a's output sizes passed along.
[[nodiscard]] plan compose(const plan& first, const plan& second);

// The identity plan over n tokens (every token kept).
[[nodiscard]] plan identity(std::int64_t n);

}  // namespace cinch::tokens
