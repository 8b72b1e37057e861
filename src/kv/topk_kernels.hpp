// Kernel table of the top-k family: the reference (cinch/ref/topk.hpp) and the
// Highway kernel (src/cpu/topk.cc), picked with detail::use_reference_kernels().
// A kernel handles one row, never allocates, and works in caller-given scratch.
#pragma once

#include <cstdint>

namespace cinch::detail {

// Lanes of slack after each scratch array: vector stores may run a vector past the end.
inline constexpr std::int64_t topk_pad = 64;
// Entries of the strided sample that guesses a candidate threshold.
inline constexpr std::int64_t topk_sample = 1024;

// int32 words of scratch a row of n scores needs.
constexpr std::int64_t topk_scratch_words(std::int64_t n) noexcept { return 2 * (n + topk_pad) + topk_sample + topk_pad; }

struct topk_kernels {
  // Indices of the best k of x[0, n) into out[0, k), ascending (cinch/ref/topk.hpp).
  // 0 <= k <= n < 2^31; scratch holds topk_scratch_words(n) words.
  void (*row)(const float* x, std::int64_t n, std::int64_t k, std::int32_t* out, std::int32_t* scratch) noexcept;
};

const topk_kernels& active_topk_kernels();

}  // namespace cinch::detail

namespace cinch::cpu {
// Highway entry point (src/cpu/topk.cc), dispatched at run time.
void top_k_row(const float* x, std::int64_t n, std::int64_t k, std::int32_t* out, std::int32_t* scratch) noexcept;
}  // namespace cinch::cpu
