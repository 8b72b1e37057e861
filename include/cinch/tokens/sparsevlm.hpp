// SparseVLM (Zhang et al., ICML 2025): text-guided pruning inside the LLM,
// with the pruned tokens partly recycled into cluster tokens.
//
//   raters     P = softmax over text of V T^T (visual features x text features),
//              rho_t = mean over visual tokens of P[:, t]; the raters are the text
//              tokens with rho_t > mean(rho) (every text row when
//              inputs.text_features is absent)
//   relevance  R_j = mean over raters of inputs.text_attention[t, j] (the head-mean
//              attention rows of the text tokens at the pruning layer, one per
//              text token)
//   keep       the top keep - c tokens by R (ties toward the lower index)
//   recycle    of the pruned tokens, the top ceil(0.3 x pruned) by R are clustered
//              with density peaks (DPC-kNN on keys, else features; k = 5) into
//              c = floor(0.3 x (N - keep) / 10) + 1 clusters, each a plain mean,
//              represented by its centre; the others are dropped
// keep is exact: kept + cluster tokens = keep. The paper adapts the per-layer
// budget by the rank of the attention matrix; LightCompress (and this) takes a
// fixed count per call (e.g. 66/30/17 at layers 2/6/15 for 64 tokens): call it
// once per pruning layer with that layer's attention rows.
#pragma once

#include <cstdint>

#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

struct sparsevlm_options {
  bool recycle = true;
  double recycle_ratio = 0.3;         // share of the pruned tokens that are clustered
  std::int64_t cluster_divisor = 10;  // clusters = floor(recycled / divisor) + 1
  std::int64_t neighbours = 5;        // DPC-kNN k
};

[[nodiscard]] plan sparsevlm(const inputs& in, std::int64_t keep, const sparsevlm_options& options = {});

}  // namespace cinch::tokens
