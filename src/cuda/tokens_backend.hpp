// Host-side entry points of the CUDA tokens kernels (src/cuda/tokens.cu).
// Plain C++: nothing here needs the CUDA headers. Matrix and output pointers
// are device memory with dense rows; the merge lists are host arrays, copied
// over by the launcher. Arithmetic is cinch/ref/tokens.hpp's, bit for bit.
#pragma once

#include <cstdint>

namespace cinch::cuda {

// out[i * ldo + j] = ref cosine of a_i (a + i * lda) and b_j (b + j * ldb).
void token_cosine(const float* a, std::int64_t lda, std::int64_t m, const float* b, std::int64_t ldb, std::int64_t n,
                  std::int64_t d, float* out, std::int64_t ldo, int device);

// Row max and its lowest index of the cosine matrix (j == i left out when exclude_diagonal).
void token_cosine_argmax(const float* a, std::int64_t lda, std::int64_t m, const float* b, std::int64_t ldb,
                         std::int64_t n, std::int64_t d, bool exclude_diagonal, float* best, std::int32_t* index,
                         int device);

// ref::argmax of each row of s [m, n] (row stride ld).
void token_row_argmax(const float* s, std::int64_t ld, std::int64_t m, std::int64_t n, float* best,
                      std::int32_t* index, int device);

// Output row r (out + r * ldo) = ref::merge_row over sources row_begin[r] ..
// row_begin[r + 1] of (offsets, weights) with divisors[r]; host arrays.
void token_merge(const float* x, const std::int64_t* row_begin, const std::int64_t* offsets, const float* weights,
                 const float* divisors, std::int64_t rows, std::int64_t d, float* out, std::int64_t ldo, int device);

}  // namespace cinch::cuda
