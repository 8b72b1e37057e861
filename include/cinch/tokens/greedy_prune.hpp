// GreedyPrune (arXiv 2506.13166): maximize the total saliency of the kept
// tokens subject to a diversity limit, cos(x_i, x_j) <= tau for every kept pair.
//
// Greedy, as the paper solves it: visit tokens by decreasing saliency
// (inputs.cls_attention, else the mean of inputs.text_attention; ties toward the
// lower index) and accept a token when its largest cosine (inputs.keys, else
// features) to the accepted ones is <= tau, until keep are accepted. A running
// max-similarity vector makes each acceptance one similarity row: O(keep N d).
// If fewer than keep pass the limit, the rest are filled by saliency (the
// paper's fallback was not found in code; this keeps the budget exact).
#pragma once

#include <cstdint>

#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

struct greedy_prune_options {
  float tau = 0.9f;  // the diversity limit (not from the paper, which gives none to copy)
};

[[nodiscard]] plan greedy_prune(const inputs& in, std::int64_t keep, const greedy_prune_options& options = {});

}  // namespace cinch::tokens
