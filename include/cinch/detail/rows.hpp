// A tensor seen as rows of its dense innermost dimension. Kernels work on
// contiguous rows; this maps a row number back to the engine's real layout.
#pragma once

#include <cstdint>

#include "cinch/config.hpp"
#include "cinch/core/tensor_view.hpp"

namespace cinch::detail {

struct row_layout {
  std::int64_t rows = 1;
  std::int64_t cols = 1;
  int outer_rank = 0;
  std::int64_t outer_shape[max_rank] = {};
  std::int64_t outer_strides[max_rank] = {};

  // Element offset of the first element of row r.
  CINCH_HOST_DEVICE std::int64_t row_offset(std::int64_t r) const noexcept {
    std::int64_t offset = 0;
    for (int d = outer_rank - 1; d >= 0; --d) {
      offset += (r % outer_shape[d]) * outer_strides[d];
      r /= outer_shape[d];
    }
    return offset;
  }
};

// Rows of the innermost dimension (inner_dims = 1) or single elements (inner_dims = 0,
// for per-row outputs such as scales). The caller has checked the innermost stride.
inline row_layout rows_of(const tensor_view& v, int inner_dims = 1) {
  row_layout out;
  const int outer = v.rank() - (v.rank() > 0 ? inner_dims : 0);
  out.cols = outer < v.rank() ? v.size(-1) : 1;
  out.outer_rank = outer;
  for (int d = 0; d < outer; ++d) {
    out.outer_shape[d] = v.size(d);
    out.outer_strides[d] = v.stride(d);
    out.rows *= v.size(d);
  }
  return out;
}

}  // namespace cinch::detail
