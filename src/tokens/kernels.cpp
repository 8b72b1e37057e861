// The reference tokens kernel table (cinch/ref/tokens.hpp, rows packed as they are).
#include "tokens/kernels.hpp"

#include <cstring>

#include "cinch/ref/tokens.hpp"
#include "dispatch.hpp"

namespace cinch::detail {
namespace {

std::int64_t ref_panel_width() noexcept { return 1; }
std::int64_t ref_packed_rows(std::int64_t n) noexcept { return n; }

void ref_pack(const float* x, const std::int64_t* offsets, std::int64_t n, std::int64_t d, float* packed,
              float* inv) noexcept {
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = x + (offsets ? offsets[i] : i * d);
    std::memcpy(packed + i * d, row, static_cast<std::size_t>(d) * sizeof(float));
    if (inv) inv[i] = ref::inv_norm(row, d);
  }
}

float score(const float* a, const float* inv_a, std::int64_t i, const float* b, const float* inv_b, std::int64_t j,
            std::int64_t d) noexcept {
  const float dot = ref::dot(a + i * d, b + j * d, d);
  return inv_a ? ref::cosine_of(dot, inv_a[i], inv_b[j]) : dot;
}

void ref_dots(const float* a, const float* inv_a, std::int64_t m, const float* b, const float* inv_b, std::int64_t n,
              std::int64_t d, float* out, std::int64_t ldo) noexcept {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) out[i * ldo + j] = score(a, inv_a, i, b, inv_b, j, d);
}

void ref_dots_argmax(const float* a, const float* inv_a, std::int64_t m, const float* b, const float* inv_b,
                     std::int64_t n, std::int64_t d, bool skip, std::int64_t skip_offset, float* best,
                     std::int64_t* index) noexcept {
  for (std::int64_t i = 0; i < m; ++i) {
    // ref::argmax over the row, one value at a time (no row buffer).
    best[i] = -INFINITY;
    index[i] = -1;
    for (std::int64_t j = 0; j < n; ++j) {
      if (skip && j == i + skip_offset) continue;
      const float v = score(a, inv_a, i, b, inv_b, j, d);
      if (v != v) continue;
      if (index[i] < 0 || v > best[i]) {
        best[i] = v;
        index[i] = j;
      }
    }
  }
}

void ref_pair_dots(const float* a, const float* inv_a, const float* b, const float* inv_b, std::int64_t n,
                   std::int64_t d, float* out) noexcept {
  for (std::int64_t i = 0; i < n; ++i) out[i] = score(a, inv_a, i, b, inv_b, i, d);
}

void ref_nearest(const float* x, const float* inv, std::int64_t n, std::int64_t d, std::int64_t begin,
                 std::int64_t end, float* row_best, float* col_best) noexcept {
  for (std::int64_t i = begin; i < end; ++i)
    for (std::int64_t j = i + 1; j < n; ++j) {
      const float c = ref::cosine_of(ref::dot(x + i * d, x + j * d, d), inv[i], inv[j]);
      row_best[i] = c > row_best[i] ? c : row_best[i];
      col_best[j] = c > col_best[j] ? c : col_best[j];
    }
}

void ref_row_argmax(const float* s, std::int64_t ld, std::int64_t m, std::int64_t n, float* best,
                    std::int64_t* index) noexcept {
  for (std::int64_t i = 0; i < m; ++i) index[i] = ref::argmax(s + i * ld, n, best[i]);
}

constexpr token_kernels ref_table{ref_panel_width, ref_packed_rows, ref_pack,       ref_dots,
                                  ref_dots_argmax, ref_pair_dots,   ref_nearest,    ref_row_argmax,
                                  ref::merge_row};

}  // namespace

const token_kernels& ref_token_kernels() noexcept { return ref_table; }

const token_kernels& active_token_kernels() {
  return use_reference_kernels() ? ref_token_kernels() : simd_token_kernels();
}

}  // namespace cinch::detail
