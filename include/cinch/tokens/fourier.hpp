// Fourier-VLM style compression (arXiv 2508.06038): a low-pass of the token
// grid in the 2-D DCT domain, per channel and per frame.
//
// For an H x W grid of D-channel tokens: the orthonormal DCT-II over rows and
// columns, keep the h x w lowest frequencies, and the orthonormal inverse
// DCT at size h x w, scaled by sqrt(h w / (H W)) so a constant grid stays that
// constant (the paper's normalization was not available to copy). It is
// linear and separable: out = Lh X Lw^T with Lh = sqrt(h/H) C_h^T [C_H]_h (C_n
// the orthonormal n-point DCT-II matrix, [.]_h its first h rows), computed
// directly in O(h W H + h w W) per channel.
//
// The result is not a selection or a merge, so it comes in two parts:
// fourier_plan gives the plan of positions and sizes (each output cell stands
// for the block of tokens it low-passes, represented by the block's middle
// token, like tokens::pool), and fourier_features computes the features that
// replace apply's pooled rows. The paper notes the model needs fine-tuning for
// this input.
#pragma once

#include <cstdint>

#include "cinch/core/tensor_view.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

[[nodiscard]] plan fourier_plan(const grid& g, std::int64_t out_height, std::int64_t out_width);

// x: f32 [N, D] or [T, n, D] host, N = g.tokens(); out: f32 [T * out_height *
// out_width, D] host, frame-major, rows in raster order (the plan's order).
void fourier_features(const tensor_view& x, const grid& g, std::int64_t out_height, std::int64_t out_width,
                      const tensor_view& out);

}  // namespace cinch::tokens
