// Reference top-k selection: the exact specification that the SIMD and CUDA
// backends reproduce index for index.
//
// Ranking: every score maps to an unsigned 32-bit rank key whose integer order is
// the ranking (rank_key below):
//   x >= +0.0 : bits(x) | 0x80000000      (above every negative number)
//   x <  -0.0 : ~bits(x)                  (a larger magnitude gives a smaller key)
//   -0.0      : the key of +0.0           (the two zeros tie)
//   NaN       : 0                         (any sign or payload; below -inf, whose key is 0x007FFFFF)
// Element i ranks above element j when key(i) > key(j), or the keys are equal and
// i < j: ties go to the lower index, NaNs tie with each other.
//
// Selection of the best k of n (1 <= k <= n): the threshold t is the key of the
// k-th best element, i.e. the largest t with #{i : key(i) >= t} >= k. The result
// is every i with key(i) > t and, in index order, the first k - #{key > t} of
// those with key(i) == t, written in ascending index order. No sort, no floating
// point arithmetic: every backend finds the same t and the same indices.
#pragma once

#include <cstdint>

#include "cinch/config.hpp"
#include "cinch/ref/convert.hpp"

namespace cinch::ref {

CINCH_HOST_DEVICE inline std::uint32_t rank_key(float x) noexcept {
  std::uint32_t u = bits_of(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0;  // NaN
  if (u == 0x80000000u) u = 0;                     // -0.0 ranks as +0.0
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Appends to out, in index order, every i in [0, n) with key(i) > t and the first
// `ties` of those with key(i) == t; returns the new end of out.
CINCH_HOST_DEVICE inline std::int32_t* emit_selected(const float* x, std::int64_t first, std::int64_t n,
                                                     std::uint32_t t, std::int64_t& ties,
                                                     std::int32_t* out) noexcept {
  for (std::int64_t i = first; i < n; ++i) {
    const std::uint32_t key = rank_key(x[i]);
    if (key > t || (key == t && ties > 0)) {
      if (key == t) --ties;
      *out++ = static_cast<std::int32_t>(i);
    }
  }
  return out;
}

// Indices of the best k of x[0, n) into out[0, k), ascending. 0 <= k <= n.
// The threshold is found one bit at a time from the top, each bit by a count.
inline void top_k_row(const float* x, std::int64_t n, std::int64_t k, std::int32_t* out) noexcept {
  if (k <= 0) return;
  std::uint32_t t = 0;
  for (int bit = 31; bit >= 0; --bit) {
    const std::uint32_t candidate = t | (std::uint32_t(1) << bit);
    std::int64_t at_least = 0;
    for (std::int64_t i = 0; i < n; ++i) at_least += rank_key(x[i]) >= candidate;
    if (at_least >= k) t = candidate;
  }
  std::int64_t above = 0;
  for (std::int64_t i = 0; i < n; ++i) above += rank_key(x[i]) > t;
  std::int64_t ties = k - above;
  emit_selected(x, 0, n, t, ties, out);
}

}  // namespace cinch::ref
