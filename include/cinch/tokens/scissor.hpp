// LLaVA-Scissor (Sun et al., 2025): semantic connected components, first
// within each frame, then across frames.
//
//   spatial   per frame, tokens i, j are linked when cos(x_i, x_j) > tau (cosine
//             of inputs.keys, else features); each connected component (found
//             exactly with union-find, not from sampled seeds) becomes one token
//   temporal  the components of all frames are linked the same way, by the
//             cosine of their mean vectors, and joined again
//   output    each final group is the plain mean of its original tokens
//             (sizes track them), represented by its highest-degree token
//             (the reference orders components so; ties toward the lower index)
// The count adapts to the content (higher tau: more tokens). With keep >= 1 the
// temporal stage instead joins the most similar pairs of components first
// (Kruskal, ties toward lower indices) until exactly keep remain; single-linkage
// clustering is what thresholded components compute, so this picks the
// threshold that yields keep. If the spatial stage already leaves fewer, the
// plan has fewer. Difference from the reference: its final refinement (every
// original token re-assigned to its nearest component and averaged in) is
// left out, so each token counts once and sizes sum to N.
// Video needs inputs.shape (frames x height x width); without it the tokens
// are one frame.
#pragma once

#include <cstdint>

#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

struct scissor_options {
  float tau = 0.9f;       // link threshold (README default; the code falls back to 0.95)
  std::int64_t keep = 0;  // 0: adaptive; >= 1: exactly this many after the temporal stage
};

[[nodiscard]] plan scissor(const inputs& in, const scissor_options& options = {});

}  // namespace cinch::tokens
