// HoliTom's global temporal merging (Shao et al., NeurIPS 2025): tokens that
// stay put over a window of frames become one token.
//
// Frames of n tokens (inputs.shape), cosine of inputs.keys, else features:
//   static    s_t[p] = cos(x_t[p], x_t+1[p]); in a window of frames [s, e] the
//             positions with s_t[p] > tau for every t in [s, e) are static
//   windows   the segmentation of the frames into consecutive windows of at most
//             max_window frames that maximizes the sum over windows of
//             |static| x (length - 1), the tokens it removes (dynamic programming,
//             O(T^2 n); ties: the shorter last window)
//   merge     a window's static positions become one token each, the plain mean
//             over the window, represented by the window's first frame
// The count adapts to the video (HoliTom then prunes the dynamic tokens per
// frame by attention to meet its retain ratio; follow with a pruning plan and
// tokens::compose for that). Its in-LLM merge stage needs the LLM's attention.
#pragma once

#include <cstdint>

#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

struct holitom_options {
  float tau = 0.8f;  // T (0.65 at retain ratio 0.10 in the reference's configs)
  std::int64_t max_window = 1024;
};

[[nodiscard]] plan holitom(const inputs& in, const holitom_options& options = {});

}  // namespace cinch::tokens
