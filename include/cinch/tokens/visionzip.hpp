// VisionZip, "Longer is Better but Not Necessary in Vision Language Models"
// (Yang et al., CVPR 2025), after the vision tower and before the projector.
//
//   dominant    the keep - C tokens with the highest inputs.cls_attention
//               ([CLS] attention summed over heads, or, for encoders without
//               [CLS], the mean attention each token receives)
//   contextual  of the M remaining tokens in original order, C targets at
//               indices 0, s, 2s, ... with s = max(1, floor(M / C)); every other
//               remaining token joins its most similar target (cosine of
//               inputs.keys, else features; ties toward the lower target)
//   merge       contextual token = target + mean of its members, the reference's
//               own formula (not a mean that includes the target; a target
//               without members stays as it is), carried in plan.weights
// Defaults: C = round(keep * 5 / 32), i.e. VisionZip's 54 + 10, 108 + 20 and
// 162 + 30 for 64, 128 and 192 tokens. Differences from the reference: the
// patches only are counted (it counts [CLS] as one dominant token and passes
// it on; LightCompress drops it, as here), and the output is in original
// order (the reference emits dominant tokens in score order, then contextual).
#pragma once

#include <cstdint>

#include "cinch/tokens/inputs.hpp"
#include "cinch/tokens/plan.hpp"

namespace cinch::tokens {

struct visionzip_options {
  std::int64_t contextual = -1;  // C; -1: round(keep * 5 / 32). 0 <= C < keep.
};

[[nodiscard]] plan visionzip(const inputs& in, std::int64_t keep, const visionzip_options& options = {});

}  // namespace cinch::tokens
