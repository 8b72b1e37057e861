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

struct lowrank_kernels {
  void (*gemm_f32)(const gemm_args<float>& g, float* pack) noexcept;
  void (*gemm_f64)(const gemm_args<double>& g, double* pack) noexcept;
  // out[t * ldo + i] (+)= dot(x row t, w row i) over n: ref::dot_rows.
  void (*dot_rows)(std::int64_t tokens, std::int64_t rows, std::int64_t n, const float* x, std::int64_t ldx,
                   const float* w, std::int64_t ldw, float* out, std::int64_t ldo, bool accumulate) noexcept;
};

const lowrank_kernels& active_lowrank_kernels();

}  // namespace cinch::detail

namespace cinch::cpu {
// Entry points of the Highway kernels (src/cpu/lowrank.cc), dispatched at run time.
void gemm_f32(const detail::gemm_args<float>& g, float* pack) noexcept;
void gemm_f64(const detail::gemm_args<double>& g, double* pack) noexcept;
void dot_rows(std::int64_t tokens, std::int64_t rows, std::int64_t n, const float* x, std::int64_t ldx, const float* w,
              std::int64_t ldw, float* out, std::int64_t ldo, bool accumulate) noexcept;
}  // namespace cinch::cpu
