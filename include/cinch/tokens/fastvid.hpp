// FastVID (Shen et al., NeurIPS 2025): dynamic temporal segments, then per
// frame salient tokens kept and density-peak anchors that the rest merge into.
//
// Frames of n tokens (inputs.shape), features [T, n, D], per-token saliency
// inputs.cls_attention (the SigLIP MAP head's attention; required), cosine of
// inputs.keys, else features:
//   segments  frame vectors g_t = the mean of the frame's metric rows (a stand-in
//             for the MAP head's pooled vector, which inputs do not carry); cut
//             between t and t + 1 at the segments - 1 lowest cos(g_t, g_t+1)
//             (ties toward the earlier t) and wherever it is below tau
//   salient   per frame R = max(1, floor(retention n)); the top R - floor(d R)
//             tokens by saliency are kept as they are
//   anchors   per segment, the contextual budget floor(d R) x frames goes to
//             anchor frames every p frames counted from the segment's end (the
//             nearer the end, the larger share of a remainder); in each anchor
//             frame the non-salient tokens with the highest density-peak score
//             (DPC-kNN, k neighbours) become anchors
//   merge     every other non-salient token of the segment joins its most
//             similar anchor; an anchor with m members becomes
//             w anchor + (1 - w) mean(members), w = max(alpha, 1 / (m + 1))
// The count is exact: T x R (when the segment has enough candidates).
#pragma once

#include <cstdint>

#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

struct fastvid_options {
  double retention = 0.10;
  std::int64_t segments = 8;      // c: at most c - 1 cuts by rank
  float tau = 0.9f;               // and a cut wherever consecutive frames differ more
  double contextual_share = 0.4;  // d
  std::int64_t anchor_period = 4; // p
  float alpha = 0.6f;
  std::int64_t neighbours = 4;    // DPC-kNN k
};

[[nodiscard]] plan fastvid(const inputs& in, const fastvid_options& options = {});

}  // namespace cinch::tokens
