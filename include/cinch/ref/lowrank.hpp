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

#include <cmath>
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

// ------------------------------------------------------------------ int16 products
// The range finder of the randomized SVD can multiply in int16 with exact int32
// sums (madd + add: twice the f32 FMA rate of an AVX-512 core in a register-only
// loop, 1.35 to 1.4x in the GEMM; docs/lowrank.md). Operands are codes in
// [-i16_range, i16_range] and every int32 sum runs over at most i16_k_block
// products, so no sum, partial or final, can overflow:
//   i16_k_block * i16_range^2 = 256 * 2896^2 = 2 147 024 896 <= 2^31 - 1 = 2 147 483 647.
inline constexpr std::int64_t i16_k_block = 256;
inline constexpr int i16_range = 2896;

// The code of v for the reciprocal step inv = i16_range / amax: v * inv (one float
// multiply) rounded to nearest, ties to even, clamped to [-i16_range, i16_range].
inline std::int16_t i16_code(float v, float inv) noexcept {
  const float r = std::nearbyint(v * inv);  // the default rounding mode: to nearest, ties to even
  const float limit = float(i16_range);
  return static_cast<std::int16_t>(r < -limit ? -limit : (r > limit ? limit : r));
}

// Symmetric quantization with one scale per row: for row i, amax = max_j |x_ij|,
// scale[i] = amax / i16_range (float division), inv = i16_range / amax (float
// division), q_ij = i16_code(x_ij, inv); amax = 0 gives scale 0 and zero codes.
// So x_ij ~ q_ij scale[i] within scale[i] / 2 and the rounding of inv and scale.
inline void quantize_rows_i16(std::int64_t rows, std::int64_t cols, const float* x, std::int64_t ldx, std::int16_t* q,
                              std::int64_t ldq, float* scale) noexcept {
  for (std::int64_t i = 0; i < rows; ++i) {
    float amax = 0;
    for (std::int64_t j = 0; j < cols; ++j) amax = std::fabs(x[i * ldx + j]) > amax ? std::fabs(x[i * ldx + j]) : amax;
    const float inv = amax > 0 ? float(i16_range) / amax : 0.0f;
    scale[i] = amax / float(i16_range);
    for (std::int64_t j = 0; j < cols; ++j) q[i * ldq + j] = i16_code(x[i * ldx + j], inv);
  }
}

// The same with one scale per column, of the values v_ij = weight[i] * x_ij (one
// float multiply; weight == nullptr: v_ij = x_ij): amax_j = max_i |v_ij|,
// scale[j] = amax_j / i16_range, q_ij = i16_code(v_ij, i16_range / amax_j).
// Both passes run along the rows of the row-major x.
inline void quantize_columns_i16(std::int64_t rows, std::int64_t cols, const float* x, std::int64_t ldx,
                                 const float* weight, std::int16_t* q, std::int64_t ldq, float* scale) noexcept {
  for (std::int64_t j = 0; j < cols; ++j) scale[j] = 0;  // amax until the end of the first pass
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      const float v = std::fabs(weight ? weight[i] * x[i * ldx + j] : x[i * ldx + j]);
      scale[j] = v > scale[j] ? v : scale[j];
    }
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      const float inv = scale[j] > 0 ? float(i16_range) / scale[j] : 0.0f;
      q[i * ldq + j] = i16_code(weight ? weight[i] * x[i * ldx + j] : x[i * ldx + j], inv);
    }
  for (std::int64_t j = 0; j < cols; ++j) scale[j] /= float(i16_range);
}

// C = diag(row_scale) (A B) diag(col_scale) for int16 codes A: M x K, B: K x N
// (strides as in gemm, |codes| <= i16_range). For each C(i, j): k runs in blocks
// of i16_k_block from k = 0; a block's sum of products is exact in int32; a float
// accumulator starts at 0 and adds each block's sum converted to float (to nearest,
// ties to even), blocks ascending: acc = acc + float(sum); then
// C(i, j) = acc * (row_scale[i] * col_scale[j]). The order of the products within a
// block does not matter (integer sums are exact), so every backend that keeps this
// flush order gives the same bits.
inline void gemm_i16(std::int64_t M, std::int64_t N, std::int64_t K, const std::int16_t* a, std::int64_t rsa,
                     std::int64_t csa, const std::int16_t* b, std::int64_t rsb, std::int64_t csb,
                     const float* row_scale, const float* col_scale, float* c, std::int64_t rsc,
                     std::int64_t csc) noexcept {
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t j = 0; j < N; ++j) {
      float acc = 0;
      for (std::int64_t k0 = 0; k0 < K; k0 += i16_k_block) {
        const std::int64_t k1 = K - k0 < i16_k_block ? K : k0 + i16_k_block;
        std::int32_t sum = 0;
        for (std::int64_t k = k0; k < k1; ++k) sum += std::int32_t(a[i * rsa + k * csa]) * b[k * rsb + j * csb];
        acc = acc + static_cast<float>(sum);
      }
      c[i * rsc + j * csc] = acc * (row_scale[i] * col_scale[j]);
    }
}

}  // namespace cinch::ref
