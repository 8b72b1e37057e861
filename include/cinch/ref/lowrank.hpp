// Scalar reference kernels of the lowrank module: the spec that the Highway and
// CUDA kernels are measured against.
//
// Every sum runs in the element type T, over k ascending, starting from zero;
// an accumulating kernel then adds the finished sum to the old value once
// (c = c + sum). The SIMD kernels reorder these sums (blocks of k, one partial
// sum per lane), so their results differ in rounding only: for a dot product of
// length K, |simd - ref| <= 2 * gamma(K) * sum_k |a_k b_k|, gamma(K) = K u / (1 - K u),
// u the unit roundoff of T (2^-24 for float).
#pragma once

#include <cstdint>

#include "cinch/config.hpp"

namespace cinch::ref {

// Dot product of n elements at strides sa and sb, k ascending.
template <class T>
CINCH_HOST_DEVICE T dot(const T* a, std::int64_t sa, const T* b, std::int64_t sb, std::int64_t n) noexcept {
  T sum = 0;
  for (std::int64_t k = 0; k < n; ++k) sum += a[k * sa] * b[k * sb];
  return sum;
}

// C (+)= A B for an M x K matrix A and a K x N matrix B, every matrix given by a
// pointer and the strides of its rows and columns in elements: A(i, k) is
// a[i * rsa + k * csa], B(k, j) is b[k * rsb + j * csb], C(i, j) is c[i * rsc + j * csc].
// Transposes are strides: A^T is (a, csa, rsa).
template <class T>
void gemm(std::int64_t M, std::int64_t N, std::int64_t K, const T* a, std::int64_t rsa, std::int64_t csa, const T* b,
          std::int64_t rsb, std::int64_t csb, T* c, std::int64_t rsc, std::int64_t csc, bool accumulate) noexcept {
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      const T sum = dot(a + i * rsa, csa, b + j * csb, rsb, K);
      T& out = c[i * rsc + j * csc];
      out = accumulate ? out + sum : sum;
    }
}

// Rows against rows, the layout of a linear layer y = W x applied to a batch:
// out[t * ldo + i] (+)= sum_k x[t * ldx + k] * w[i * ldw + k] for `tokens` rows of
// x and `rows` rows of w, each of n contiguous elements.
inline void dot_rows(std::int64_t tokens, std::int64_t rows, std::int64_t n, const float* x, std::int64_t ldx,
                     const float* w, std::int64_t ldw, float* out, std::int64_t ldo, bool accumulate) noexcept {
  gemm<float>(tokens, rows, n, x, ldx, 1, w, 1, ldw, out, ldo, 1, accumulate);
}

// The fused low-rank apply y = A (B x) for `tokens` rows of x, the rank streamed
// in tiles of `tile` rows of B (tile >= rank: one tile, the two-GEMM form). For each
// token and tile: z_j = dot(B row j, x_t) over n, then every output adds one
// partial sum per tile, tiles ascending: y_ti = y_ti + sum_{j in tile} A_ij z_j (the
// first tile assigns unless accumulating). a: [m, r] rows lda apart, b: [r, n] rows
// ldb apart, x: [tokens, n] rows ldx apart, y: [tokens, m] rows ldy apart; z is
// scratch for min(tile, r) floats.
inline void apply_factors(std::int64_t tokens, std::int64_t m, std::int64_t n, std::int64_t r, std::int64_t tile,
                          const float* a, std::int64_t lda, const float* b, std::int64_t ldb, const float* x,
                          std::int64_t ldx, float* y, std::int64_t ldy, bool accumulate, float* z) noexcept {
  const std::int64_t step = tile < r ? tile : r;
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t j0 = 0; j0 < r; j0 += step) {
      const std::int64_t len = r - j0 < step ? r - j0 : step;
      for (std::int64_t j = 0; j < len; ++j) z[j] = dot(b + (j0 + j) * ldb, 1, x + t * ldx, 1, n);
      for (std::int64_t i = 0; i < m; ++i) {
        const float s = dot(a + i * lda + j0, 1, z, 1, len);
        float& out = y[t * ldy + i];
        out = (accumulate || j0 > 0) ? out + s : s;
      }
    }
}

}  // namespace cinch::ref
