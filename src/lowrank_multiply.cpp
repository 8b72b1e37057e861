// The lowrank kernel table and the threaded matrix products built on it.
#include "lowrank_multiply.hpp"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "cinch/ref/lowrank.hpp"
#include "dispatch.hpp"
#include "lowrank_kernels.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace cinch {
namespace detail {
namespace {

void ref_gemm_f32(const gemm_args<float>& g, float*) noexcept {
  ref::gemm(g.M, g.N, g.K, g.a, g.rsa, g.csa, g.b, g.rsb, g.csb, g.c, g.rsc, g.csc, g.accumulate);
}
void ref_gemm_f64(const gemm_args<double>& g, double*) noexcept {
  ref::gemm(g.M, g.N, g.K, g.a, g.rsa, g.csa, g.b, g.rsb, g.csb, g.c, g.rsc, g.csc, g.accumulate);
}

void ref_gemm_i16(const gemm_i16_args& g, std::int16_t*) noexcept {
  ref::gemm_i16(g.M, g.N, g.K, g.a, g.rsa, g.csa, g.b, g.rsb, g.csb, g.row_scale, g.col_scale, g.c, g.rsc, g.csc);
}

constexpr lowrank_kernels ref_table{ref_gemm_f32,     ref_gemm_f64,           ref::dot_rows,
                                     ref_gemm_i16,     ref::quantize_rows_i16, ref::quantize_columns_i16};
constexpr lowrank_kernels simd_table{cpu::gemm_f32,     cpu::gemm_f64,           cpu::dot_rows,
                                     cpu::gemm_i16,     cpu::quantize_rows_i16, cpu::quantize_columns_i16};

}  // namespace

const lowrank_kernels& active_lowrank_kernels() { return use_reference_kernels() ? ref_table : simd_table; }

}  // namespace detail

namespace lowrank::detail {
namespace {

int threads_for(std::int64_t flops) {
#if defined(_OPENMP)
  return flops >= (std::int64_t(1) << 24) ? omp_get_max_threads() : 1;
#else
  (void)flops;
  return 1;
#endif
}

// Calls gemm_rows(begin, end, pack) on blocks of the m rows of C (whole register
// tiles), one block per thread when m n k is large enough, each with a packing
// workspace of pack_elems elements of P.
template <class P, class Fn>
void over_row_blocks(std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t pack_elems, Fn gemm_rows) {
  if (m == 0 || n == 0) return;
  const int threads = int(std::clamp<std::int64_t>((m + 7) / 8, 1, threads_for(m * n * k)));
  const std::int64_t chunk = ((m + threads - 1) / threads + 7) / 8 * 8;  // whole register tiles per thread
  std::vector<P> packs(std::size_t(pack_elems * threads));
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int t = 0; t < threads; ++t) {
    const std::int64_t begin = t * chunk, end = std::min(m, begin + chunk);
    if (begin < end) gemm_rows(begin, end, packs.data() + t * pack_elems);
  }
}

template <class T>
void multiply_rows(strided_matrix<T> c, strided_matrix<const T> a, strided_matrix<const T> b, bool accumulate) {
  if (c.cs != 1 && c.rows > 1 && c.cols > 1) return multiply_rows(c.t(), b.t(), a.t(), accumulate);
  const auto& kernels = cinch::detail::active_lowrank_kernels();
  auto* gemm = [&] {
    if constexpr (std::is_same_v<T, float>)
      return kernels.gemm_f32;
    else
      return kernels.gemm_f64;
  }();
  const std::int64_t n = c.cols, k = a.cols;
  over_row_blocks<T>(c.rows, n, k, cinch::detail::gemm_pack_elems(n), [&](std::int64_t begin, std::int64_t end, T* pack) {
    const cinch::detail::gemm_args<T> g{end - begin, n,         k,     a.data + begin * a.rs, a.rs, a.cs, b.data,
                                        b.rs,        b.cs,      c.data + begin * c.rs,        c.rs, c.cs, accumulate};
    gemm(g, pack);
  });
}

}  // namespace

void multiply_i16(strided_matrix<float> c, strided_matrix<const std::int16_t> a, strided_matrix<const std::int16_t> b,
                  const float* row_scale, const float* col_scale) {
  const auto gemm = cinch::detail::active_lowrank_kernels().gemm_i16;
  const std::int64_t n = c.cols, k = a.cols;
  over_row_blocks<std::int16_t>(c.rows, n, k, cinch::detail::gemm_i16_pack_elems(n),
                                [&](std::int64_t begin, std::int64_t end, std::int16_t* pack) {
                                  const cinch::detail::gemm_i16_args g{
                                      end - begin, n,    k,    a.data + begin * a.rs, a.rs,      a.cs,
                                      b.data,      b.rs, b.cs, row_scale + begin,     col_scale, c.data + begin * c.rs,
                                      c.rs,        c.cs};
                                  gemm(g, pack);
                                });
}

void multiply(strided_matrix<float> c, strided_matrix<const float> a, strided_matrix<const float> b, bool accumulate) {
  multiply_rows(c, a, b, accumulate);
}
void multiply(strided_matrix<double> c, strided_matrix<const double> a, strided_matrix<const double> b,
              bool accumulate) {
  multiply_rows(c, a, b, accumulate);
}

}  // namespace lowrank::detail
}  // namespace cinch
