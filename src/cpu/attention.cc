// Highway decode attention (placeholder until the SIMD kernels land).
#include "kv/attention_kernels.hpp"

namespace cinch::detail {
const attention_kernels& simd_attention_kernels() noexcept { return ref_attention_kernels(); }
}  // namespace cinch::detail
