// The lowrank kernel table: the reference (cinch/ref/lowrank.hpp) and the Highway
// kernels (src/cpu/lowrank.cc) behind one signature, picked with
// detail::use_reference_kernels(). Kernels are single-threaded and never
// allocate; the callers split rows over threads and own the workspaces.
#pragma once

#include <cstdint>

namespace cinch::detail {

// C (+)= A B with every matrix given by pointer and (row, column) strides in
// elements, as ref::gemm takes them. `pack` is a workspace of gemm_pack_elems(N)
// elements that the SIMD kernel packs blocks of B into (the ref kernel ignores it).
template <class T>
struct gemm_args {
  std::int64_t M, N, K;
  const T* a;
  std::int64_t rsa, csa;
  const T* b;
  std::int64_t rsb, csb;
  T* c;
  std::int64_t rsc, csc;
  bool accumulate;
};

// Rows of B packed per block of k, and the widest panel of columns any target uses.
inline constexpr std::int64_t gemm_k_block = 256;
inline constexpr std::int64_t gemm_max_panel = 128;
constexpr std::int64_t gemm_pack_elems(std::int64_t n) { return gemm_k_block * (n + gemm_max_panel); }

// C = diag(row_scale) (A B) diag(col_scale) on int16 codes: ref::gemm_i16. `pack` is
// a workspace of gemm_i16_pack_elems(N) codes: the SIMD kernel packs
// gemm_i16_k_chunk rows of B and one row tile of A at a time (the ref kernel ignores it).
struct gemm_i16_args {
  std::int64_t M, N, K;
  const std::int16_t* a;
  std::int64_t rsa, csa;
  const std::int16_t* b;
  std::int64_t rsb, csb;
  const float* row_scale;
  const float* col_scale;
  float* c;
  std::int64_t rsc, csc;
};

// Four overflow blocks (ref::i16_k_block) of B at a time: C is read and written
// once per chunk, and the chunk (under 600 KiB at N = 276) stays in L2; 512 rows
// measured no faster.
inline constexpr std::int64_t gemm_i16_k_chunk = 1024;
inline constexpr std::int64_t gemm_i16_max_rows = 8;
constexpr std::int64_t gemm_i16_pack_elems(std::int64_t n) {
  return gemm_i16_k_chunk * (n + gemm_max_panel + gemm_i16_max_rows);
}

struct lowrank_kernels {
  void (*gemm_f32)(const gemm_args<float>& g, float* pack) noexcept;
  void (*gemm_f64)(const gemm_args<double>& g, double* pack) noexcept;
  // out[t * ldo + i] (+)= dot(x row t, w row i) over n: ref::dot_rows.
  void (*dot_rows)(std::int64_t tokens, std::int64_t rows, std::int64_t n, const float* x, std::int64_t ldx,
                   const float* w, std::int64_t ldw, float* out, std::int64_t ldo, bool accumulate) noexcept;
  void (*gemm_i16)(const gemm_i16_args& g, std::int16_t* pack) noexcept;
  // int16 codes with one scale per row / per column: ref::quantize_rows_i16, ref::quantize_columns_i16.
  void (*quantize_rows_i16)(std::int64_t rows, std::int64_t cols, const float* x, std::int64_t ldx, std::int16_t* q,
                            std::int64_t ldq, float* scale) noexcept;
  void (*quantize_columns_i16)(std::int64_t rows, std::int64_t cols, const float* x, std::int64_t ldx,
                               const float* weight, std::int16_t* q, std::int64_t ldq, float* scale) noexcept;
};

const lowrank_kernels& active_lowrank_kernels();

}  // namespace cinch::detail

namespace cinch::cpu {
// Entry points of the Highway kernels (src/cpu/lowrank.cc), dispatched at run time.
void gemm_f32(const detail::gemm_args<float>& g, float* pack) noexcept;
void gemm_f64(const detail::gemm_args<double>& g, double* pack) noexcept;
void dot_rows(std::int64_t tokens, std::int64_t rows, std::int64_t n, const float* x, std::int64_t ldx, const float* w,
              std::int64_t ldw, float* out, std::int64_t ldo, bool accumulate) noexcept;
void gemm_i16(const detail::gemm_i16_args& g, std::int16_t* pack) noexcept;
void quantize_rows_i16(std::int64_t rows, std::int64_t cols, const float* x, std::int64_t ldx, std::int16_t* q,
                       std::int64_t ldq, float* scale) noexcept;
void quantize_columns_i16(std::int64_t rows, std::int64_t cols, const float* x, std::int64_t ldx, const float* weight,
                          std::int16_t* q, std::int64_t ldq, float* scale) noexcept;
}  // namespace cinch::cpu
