// tokens::inputs: everything a pruning or merging method may look at. Each
// method names what it needs and throws errc::invalid_argument when a required
// field is missing; fields it does not use are ignored.
//
// All tensors are f32 on the host with a dense innermost dimension. N is the
// number of visual tokens: the rows of `features` (T * n for [T, n, D] video),
// or of the first other per-token field given. Values must be finite: NaN or
// inf in any field a method reads throws errc::invalid_argument naming the
// field and the token, since every selection compares these values.
#pragma once

#include "cinch/core/tensor_view.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

struct inputs {
  tensor_view features{};        // [N, D] or [T, n, D]: hidden states or embeddings of the visual tokens
  tensor_view keys{};            // [N, dk] or [T, n, dk]: the similarity metric (e.g. head-mean keys);
                                 // methods that compare tokens use `features` when it is empty
  tensor_view cls_attention{};   // [N] or [T, n]: [CLS] attention per token, or the mean attention each
                                 // token receives for encoders without [CLS]
  tensor_view text_attention{};  // [R, N]: attention of R text queries (e.g. the last prompt token) over
                                 // the visual tokens, head-mean (tokens::attention_rows computes it)
  tensor_view text_features{};   // [Tt, D]: text hidden states (DART text pivots, SparseVLM raters)
  tensor_view text_keys{};       // [Tt, dk]: text keys (DART's pivot norms)
  grid shape{};                  // the token layout; needed by spatial and video methods
};

}  // namespace cinch::tokens
