// DyCoke's temporal token merging stage (Tao et al., CVPR 2025), before the
// LLM: tokens that barely change from a reference frame are dropped (despite
// the name, TTM prunes).
//
// Frames of n tokens (inputs.shape; cosine of inputs.keys, else features, per
// position p between two frames):
//   pairs    for each frame f with f even and f + 1 < T: in frame f + 1 keep the
//            floor((1 - ratio) n) positions least similar to frame f
//   windows  for each f = 0, 4, 8, ... with f + 2 < T: in frame f + 2 keep the
//            floor((1 - ratio) n) positions least similar to frame f
// (ties toward the lower position). Frames 0, 4, 8, ... stay whole, as does a
// last unpaired frame. The count is fixed by T, n and the ratio. The
// decode-time dynamic KV pruning of DyCoke's second stage belongs to the KV
// cache, not here.
#pragma once

#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

struct dycoke_options {
  double prune_ratio = 0.7;  // K: the share of a compared frame that is dropped
};

[[nodiscard]] plan dycoke(const inputs& in, const dycoke_options& options = {});

}  // namespace cinch::tokens
