// The tokens kernel table: the reference (cinch/ref/tokens.hpp) and the
// Highway kernels (src/cpu/tokens.cc) behind one set of signatures, picked
// with detail::use_reference_kernels(). Kernels never allocate; the operations
// in src/tokens/*.cpp own the buffers and spread the work over threads.
//
// Similarity works on packed rows: `pack` copies n rows into panels of
// `panel_width()` rows stored k-major (panel p holds rows p*W .. p*W+W-1, element
// k of its row r at panel + k * W + r; rows past n are zero, up to
// packed_rows(n)), and writes each row's inverse norm (0 past n). The reference
// packs with W = 1: the rows as they are.
#pragma once

#include <cstdint>

namespace cinch::detail {

struct token_kernels {
  std::int64_t (*panel_width)() noexcept;
  // Rows `pack` writes for n rows: n rounded up to the kernels' tile width.
  std::int64_t (*packed_rows)(std::int64_t n) noexcept;
  // Row i starts at x + offsets[i] (x + i * d if offsets is null); inv may be null.
  void (*pack)(const float* x, const std::int64_t* offsets, std::int64_t n, std::int64_t d, float* packed,
               float* inv) noexcept;
  // out[i * ldo + j] = dot(a_i, b_j), or cosine when inv_a and inv_b are given.
  // a: m packed rows (the call's first row on a panel boundary), b: n packed rows.
  void (*dots)(const float* a, const float* inv_a, std::int64_t m, const float* b, const float* inv_b,
               std::int64_t n, std::int64_t d, float* out, std::int64_t ldo) noexcept;
  // best[i] = max over j of dot (or cosine), index[i] = the lowest j attaining it
  // (ref::argmax); column j == i + skip_offset is left out when skip is set.
  void (*dots_argmax)(const float* a, const float* inv_a, std::int64_t m, const float* b, const float* inv_b,
                      std::int64_t n, std::int64_t d, bool skip, std::int64_t skip_offset, float* best,
                      std::int64_t* index) noexcept;
  // out[i] = dot(a_i, b_i), or cosine when inv_a and inv_b are given, for n
  // rows packed alike.
  void (*pair_dots)(const float* a, const float* inv_a, const float* b, const float* inv_b, std::int64_t n,
                    std::int64_t d, float* out) noexcept;
  // Rows [begin, end) of ref::nearest over the n packed rows: for i in the range
  // and every j > i, row_best[i] and col_best[j] take the max of cos_sym(i, j).
  // row_best holds n values, col_best packed_rows(n) (callers give each thread
  // its own and combine with max, exactly); nearest(i) = max(row_best[i], col_best[i]).
  void (*nearest)(const float* x, const float* inv, std::int64_t n, std::int64_t d, std::int64_t begin,
                  std::int64_t end, float* row_best, float* col_best) noexcept;
  // ref::argmax of each of m rows of n values.
  void (*row_argmax)(const float* s, std::int64_t ld, std::int64_t m, std::int64_t n, float* best,
                     std::int64_t* index) noexcept;
  // ref::merge_row: source s at x + offsets[s].
  void (*merge_row)(const float* x, const std::int64_t* offsets, const float* weights, std::int64_t count,
                    float divisor, std::int64_t d, float* out) noexcept;
};

const token_kernels& ref_token_kernels() noexcept;
const token_kernels& simd_token_kernels() noexcept;
const token_kernels& active_token_kernels();

}  // namespace cinch::detail
