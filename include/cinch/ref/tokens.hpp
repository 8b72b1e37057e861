// Reference kernels of the tokens module: the exact specification that the
// Highway and CUDA kernels reproduce bit for bit.
//
//   dot(a, b)      s = 0; for k = 0 .. d-1: s = fma(a[k], b[k], s)
//                  one fused multiply-add per element, in index order (a single
//                  chain, so any backend can vectorize across pairs, not along k)
//   inv_norm(x)    ss = dot(x, x); ss > 0 && finite ? 1 / sqrt(ss) : 0
//                  (a correctly rounded square root, then a division); a zero row
//                  is similar to nothing: its cosine with every row is 0
//   cosine(i, j)   (dot(x_i, y_j) * inv_norm(x_i)) * inv_norm(y_j)
//                  two roundings, in that order; the metric is never normalized
//                  in place, so the same dot product serves raw and cosine scores
//   pairs          pair_cosine(i) = cosine(x_i, y_i), row by row
//   symmetric      cos_sym(i, j) = cosine with the lower index's norm first,
//                  (dot(x_lo, x_hi) * inv_lo) * inv_hi, so that cos_sym(i, j) and
//                  cos_sym(j, i) are one value and a Gram matrix can be computed
//                  by halves; nearest(i) = max over j != i of cos_sym(i, j)
//   argmax         the largest value, the lowest index among equal ones; NaN
//                  never wins (a row of NaN only has index -1)
//   merge          acc = 0; for each source s in the order given:
//                  acc = fma(w_s, x_s, acc); out = acc / divisor
//                  except one source of weight 1 and divisor 1, which is copied
//                  (a gather keeps every bit, -0 included)
#pragma once

#include <cmath>
#include <cstdint>

#include "cinch/config.hpp"

namespace cinch::ref {

// a * b + c with one rounding, on the host and on the GPU alike.
CINCH_HOST_DEVICE inline float fused_multiply_add(float a, float b, float c) noexcept {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

CINCH_HOST_DEVICE inline float dot(const float* a, const float* b, std::int64_t d) noexcept {
  float s = 0.0f;
  for (std::int64_t k = 0; k < d; ++k) s = fused_multiply_add(a[k], b[k], s);
  return s;
}

// Inverse of the L2 norm from the sum of squares dot(x, x).
CINCH_HOST_DEVICE inline float inv_norm_of(float sum_of_squares) noexcept {
  if (!(sum_of_squares > 0.0f && sum_of_squares <= 3.40282347e38f)) return 0.0f;  // zero, inf or NaN
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(1.0f, __fsqrt_rn(sum_of_squares));
#else
  return 1.0f / std::sqrt(sum_of_squares);
#endif
}

CINCH_HOST_DEVICE inline float inv_norm(const float* x, std::int64_t d) noexcept { return inv_norm_of(dot(x, x, d)); }

CINCH_HOST_DEVICE inline float cosine_of(float dot_product, float inv_a, float inv_b) noexcept {
  return (dot_product * inv_a) * inv_b;
}

// out[i * ldo + j] = cosine(a_i, b_j), rows a_i = a + i * lda, b_j = b + j * ldb.
inline void cosine_matrix(const float* a, std::int64_t lda, std::int64_t m, const float* b, std::int64_t ldb,
                          std::int64_t n, std::int64_t d, float* out, std::int64_t ldo) noexcept {
  for (std::int64_t i = 0; i < m; ++i) {
    const float ia = inv_norm(a + i * lda, d);
    for (std::int64_t j = 0; j < n; ++j)
      out[i * ldo + j] = cosine_of(dot(a + i * lda, b + j * ldb, d), ia, inv_norm(b + j * ldb, d));
  }
}

// best[i] = max over j != i of cos_sym(x_i, x_j) (-inf when n = 1), rows x + i * ld.
inline void nearest(const float* x, std::int64_t ld, std::int64_t n, std::int64_t d, float* best) noexcept {
  for (std::int64_t i = 0; i < n; ++i) best[i] = -INFINITY;
  for (std::int64_t i = 0; i < n; ++i) {
    const float ii = inv_norm(x + i * ld, d);
    for (std::int64_t j = i + 1; j < n; ++j) {
      const float c = cosine_of(dot(x + i * ld, x + j * ld, d), ii, inv_norm(x + j * ld, d));
      best[i] = c > best[i] ? c : best[i];
      best[j] = c > best[j] ? c : best[j];
    }
  }
}

// Argmax of v[0..n) (NaN never wins; index -1 if every value is NaN or n = 0).
// Columns j == skip are left out.
CINCH_HOST_DEVICE inline std::int64_t argmax(const float* v, std::int64_t n, float& best,
                                             std::int64_t skip = -1) noexcept {
  std::int64_t index = -1;
  best = -INFINITY;
  for (std::int64_t j = 0; j < n; ++j) {
    if (j == skip || v[j] != v[j]) continue;
    if (index < 0 || v[j] > best) {
      best = v[j];
      index = j;
    }
  }
  return index;
}

// True when merge_row is a plain copy of its one source.
CINCH_HOST_DEVICE inline bool merge_is_copy(std::int64_t count, const float* weights, float divisor) noexcept {
  return count == 1 && weights[0] == 1.0f && divisor == 1.0f;
}

// out = (sum_s w_s * x_s) / divisor, source s at x + offsets[s], one fma per
// source in the given order.
inline void merge_row(const float* x, const std::int64_t* offsets, const float* weights, std::int64_t count,
                      float divisor, std::int64_t d, float* out) noexcept {
  const bool copy = merge_is_copy(count, weights, divisor);
  for (std::int64_t c = 0; c < d; ++c) {
    if (copy) {
      out[c] = x[offsets[0] + c];
      continue;
    }
    float acc = 0.0f;
    for (std::int64_t s = 0; s < count; ++s) acc = fused_multiply_add(weights[s], x[offsets[s] + c], acc);
    out[c] = acc / divisor;
  }
}

}  // namespace cinch::ref
