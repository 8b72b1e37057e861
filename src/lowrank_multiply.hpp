// Matrix products of the lowrank module on its GEMM kernel (src/cpu/lowrank.cc),
// with any strides and the rows of C spread over threads. No Eigen here, so the
// compiled operations that only multiply stay out of Eigen's compile time.
#pragma once

#include <cstdint>
#include <type_traits>

namespace cinch::lowrank::detail {

// A matrix as pointer + extents + strides in elements; t() is the transpose, free.
template <class T>
struct strided_matrix {
  T* data;
  std::int64_t rows, cols, rs, cs;
  [[nodiscard]] strided_matrix t() const { return {data, cols, rows, cs, rs}; }
  operator strided_matrix<const T>() const  // NOLINT: a writable matrix is readable
    requires(!std::is_const_v<T>)
  {
    return {data, rows, cols, rs, cs};
  }
};

// C (+)= A B. C needs unit column stride (row-major) or unit row stride (then
// C^T = B^T A^T runs). The left operand is read in place and the right one is
// packed block by block: put the large matrix on the left.
void multiply(strided_matrix<float> c, strided_matrix<const float> a, strided_matrix<const float> b,
              bool accumulate = false);
void multiply(strided_matrix<double> c, strided_matrix<const double> a, strided_matrix<const double> b,
              bool accumulate = false);

// C = diag(row_scale) (A B) diag(col_scale) on int16 codes (ref::gemm_i16: |codes|
// <= ref::i16_range, exact int32 sums), rows of C over threads. A with unit column
// stride is read in place; B is packed.
void multiply_i16(strided_matrix<float> c, strided_matrix<const std::int16_t> a, strided_matrix<const std::int16_t> b,
                  const float* row_scale, const float* col_scale);

}  // namespace cinch::lowrank::detail
