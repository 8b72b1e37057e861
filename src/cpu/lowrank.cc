// Highway kernels of the lowrank module: a packed GEMM (float and double) for the
// decompositions and the rows-against-rows dot kernel of the fused apply. They
// compute the sums of cinch/ref/lowrank.hpp in another order (lanes, blocks of k),
// so results differ from the reference by rounding only, within the bound stated there.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/lowrank.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "lowrank_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace cinch::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Targets with 32 vector registers hold larger register tiles.
constexpr bool many_registers = HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3;

// ------------------------------------------------------------------ GEMM
// C (+)= A B: A is read in place (one broadcast element per row and k), B is
// packed per block of gemm_k_block rows into panels of NR = 2 vectors of columns,
// and an MR x NR tile of C stays in registers across the block.
constexpr int gemm_rows = many_registers ? 8 : 6;

template <class D, class T = hn::TFromD<D>>
void pack_b(D d, const T* b, std::int64_t rsb, std::int64_t csb, std::int64_t kc, std::int64_t n, T* out) {
  const std::int64_t nr = 2 * static_cast<std::int64_t>(hn::Lanes(d));
  for (std::int64_t j0 = 0; j0 < n; j0 += nr) {
    const std::int64_t w = n - j0 < nr ? n - j0 : nr;
    T* panel = out + j0 * kc;
    for (std::int64_t k = 0; k < kc; ++k) {
      T* o = panel + k * nr;
      const T* src = b + k * rsb + j0 * csb;
      if (csb == 1) {
        std::memcpy(o, src, static_cast<std::size_t>(w) * sizeof(T));
      } else {
        for (std::int64_t j = 0; j < w; ++j) o[j] = src[j * csb];
      }
      for (std::int64_t j = w; j < nr; ++j) o[j] = T(0);
    }
  }
}

// Rows [0, R) of C against one packed panel: w valid columns of the panel.
template <int R, class D, class T = hn::TFromD<D>>
HWY_INLINE void gemm_tile(D d, std::int64_t kc, const T* HWY_RESTRICT a, std::int64_t rsa, std::int64_t csa,
                          const T* HWY_RESTRICT panel, T* c, std::int64_t rsc, std::int64_t csc, std::int64_t w,
                          bool accumulate) {
  using V = hn::Vec<D>;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  V c0[R], c1[R];
  for (int i = 0; i < R; ++i) c0[i] = c1[i] = hn::Zero(d);
  for (std::int64_t k = 0; k < kc; ++k) {
    const V b0 = hn::LoadU(d, panel + 2 * k * lanes);
    const V b1 = hn::LoadU(d, panel + (2 * k + 1) * lanes);
    const T* ak = a + k * csa;
    for (int i = 0; i < R; ++i) {
      const V ai = hn::Set(d, ak[i * rsa]);
      c0[i] = hn::MulAdd(ai, b0, c0[i]);
      c1[i] = hn::MulAdd(ai, b1, c1[i]);
    }
  }
  HWY_ALIGN T tile[2 * HWY_MAX_BYTES / sizeof(T)];
  for (int i = 0; i < R; ++i) {
    T* ci = c + i * rsc;
    if (csc == 1 && w == 2 * lanes) {
      if (accumulate) {
        c0[i] = hn::Add(hn::LoadU(d, ci), c0[i]);
        c1[i] = hn::Add(hn::LoadU(d, ci + lanes), c1[i]);
      }
      hn::StoreU(c0[i], d, ci);
      hn::StoreU(c1[i], d, ci + lanes);
    } else {
      hn::Store(c0[i], d, tile);
      hn::Store(c1[i], d, tile + lanes);
      for (std::int64_t j = 0; j < w; ++j) ci[j * csc] = accumulate ? ci[j * csc] + tile[j] : tile[j];
    }
  }
}

template <int R, class D, class T = hn::TFromD<D>>
HWY_INLINE void gemm_row_panel(D d, std::int64_t kc, std::int64_t n, const T* a, std::int64_t rsa, std::int64_t csa,
                               const T* pack, T* c, std::int64_t rsc, std::int64_t csc, bool accumulate) {
  const std::int64_t nr = 2 * static_cast<std::int64_t>(hn::Lanes(d));
  for (std::int64_t j0 = 0; j0 < n; j0 += nr)
    gemm_tile<R>(d, kc, a, rsa, csa, pack + j0 * kc, c + j0 * csc, rsc, csc, n - j0 < nr ? n - j0 : nr, accumulate);
}

// Rows [i0, M) of C, fewer than gemm_rows.
template <int R, class D, class T = hn::TFromD<D>>
HWY_INLINE void gemm_row_tail(D d, int rows, std::int64_t kc, std::int64_t n, const T* a, std::int64_t rsa,
                              std::int64_t csa, const T* pack, T* c, std::int64_t rsc, std::int64_t csc,
                              bool accumulate) {
  if constexpr (R > 0) {
    if (rows == R) return gemm_row_panel<R>(d, kc, n, a, rsa, csa, pack, c, rsc, csc, accumulate);
    gemm_row_tail<R - 1>(d, rows, kc, n, a, rsa, csa, pack, c, rsc, csc, accumulate);
  }
}

template <class T>
void gemm(const detail::gemm_args<T>& g, T* pack) {
  const hn::ScalableTag<T> d;
  static_assert(2 * HWY_MAX_BYTES / sizeof(T) <= detail::gemm_max_panel, "panel wider than the pack workspace");
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) {
    if (!g.accumulate)
      for (std::int64_t i = 0; i < g.M; ++i)
        for (std::int64_t j = 0; j < g.N; ++j) g.c[i * g.rsc + j * g.csc] = T(0);
    return;
  }
  for (std::int64_t p = 0; p < g.K; p += detail::gemm_k_block) {
    const std::int64_t kc = g.K - p < detail::gemm_k_block ? g.K - p : detail::gemm_k_block;
    pack_b(d, g.b + p * g.rsb, g.rsb, g.csb, kc, g.N, pack);
    const bool accumulate = g.accumulate || p > 0;
    std::int64_t i = 0;
    for (; i + gemm_rows <= g.M; i += gemm_rows)
      gemm_row_panel<gemm_rows>(d, kc, g.N, g.a + i * g.rsa + p * g.csa, g.rsa, g.csa, pack, g.c + i * g.rsc, g.rsc,
                                g.csc, accumulate);
    if (i < g.M)
      gemm_row_tail<gemm_rows - 1>(d, int(g.M - i), kc, g.N, g.a + i * g.rsa + p * g.csa, g.rsa, g.csa, pack,
                                   g.c + i * g.rsc, g.rsc, g.csc, accumulate);
  }
}

void gemm_f32(const detail::gemm_args<float>& g, float* pack) { gemm(g, pack); }
void gemm_f64(const detail::gemm_args<double>& g, double* pack) { gemm(g, pack); }

// ------------------------------------------------------------------ rows against rows
// T tokens x M rows of dot products share their loads: each step loads T + M
// vectors for T * M multiply-adds. k runs in blocks so the rows stay in cache.
constexpr int dot_tokens = many_registers ? 4 : 2;
constexpr int dot_rows_per_tile = 4;
constexpr std::int64_t dot_k_block = 1024;
constexpr std::int64_t dot_row_block = 64;

template <int T, int M>
HWY_INLINE void dot_tile(const float* HWY_RESTRICT x, std::int64_t ldx, const float* HWY_RESTRICT w,
                         std::int64_t ldw, float* out, std::int64_t ldo, std::int64_t n, bool accumulate) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  V acc[T][M];
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < M; ++i) acc[t][i] = hn::Zero(d);
  std::int64_t k = 0;
  for (; k + lanes <= n; k += lanes) {
    V xv[T], wv[M];
    for (int t = 0; t < T; ++t) xv[t] = hn::LoadU(d, x + t * ldx + k);
    for (int i = 0; i < M; ++i) wv[i] = hn::LoadU(d, w + i * ldw + k);
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < M; ++i) acc[t][i] = hn::MulAdd(xv[t], wv[i], acc[t][i]);
  }
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < M; ++i) {
      float sum = hn::GetLane(hn::SumOfLanes(d, acc[t][i]));
      for (std::int64_t kk = k; kk < n; ++kk) sum += x[t * ldx + kk] * w[i * ldw + kk];
      float& o = out[t * ldo + i];
      o = accumulate ? o + sum : sum;
    }
}

// Tokens [t0, t0 + T) against rows [0, rows) of one row block.
template <int T>
HWY_INLINE void dot_token_tile(const float* x, std::int64_t ldx, const float* w, std::int64_t ldw, float* out,
                               std::int64_t ldo, std::int64_t rows, std::int64_t n, bool accumulate) {
  std::int64_t i = 0;
  for (; i + dot_rows_per_tile <= rows; i += dot_rows_per_tile)
    dot_tile<T, dot_rows_per_tile>(x, ldx, w + i * ldw, ldw, out + i, ldo, n, accumulate);
  for (; i < rows; ++i) dot_tile<T, 1>(x, ldx, w + i * ldw, ldw, out + i, ldo, n, accumulate);
}

template <int T>
HWY_INLINE void dot_token_tail(int tokens, const float* x, std::int64_t ldx, const float* w, std::int64_t ldw,
                               float* out, std::int64_t ldo, std::int64_t rows, std::int64_t n, bool accumulate) {
  if constexpr (T > 0) {
    if (tokens == T) return dot_token_tile<T>(x, ldx, w, ldw, out, ldo, rows, n, accumulate);
    dot_token_tail<T - 1>(tokens, x, ldx, w, ldw, out, ldo, rows, n, accumulate);
  }
}

void dot_rows(std::int64_t tokens, std::int64_t rows, std::int64_t n, const float* x, std::int64_t ldx,
              const float* w, std::int64_t ldw, float* out, std::int64_t ldo, bool accumulate) {
  if (n == 0) {
    if (!accumulate)
      for (std::int64_t t = 0; t < tokens; ++t)
        for (std::int64_t i = 0; i < rows; ++i) out[t * ldo + i] = 0.0f;
    return;
  }
  for (std::int64_t k0 = 0; k0 < n; k0 += dot_k_block) {
    const std::int64_t kn = n - k0 < dot_k_block ? n - k0 : dot_k_block;
    const bool acc = accumulate || k0 > 0;
    for (std::int64_t i0 = 0; i0 < rows; i0 += dot_row_block) {
      const std::int64_t rn = rows - i0 < dot_row_block ? rows - i0 : dot_row_block;
      const float* wb = w + i0 * ldw + k0;
      std::int64_t t = 0;
      for (; t + dot_tokens <= tokens; t += dot_tokens)
        dot_token_tile<dot_tokens>(x + t * ldx + k0, ldx, wb, ldw, out + t * ldo + i0, ldo, rn, kn, acc);
      if (t < tokens)
        dot_token_tail<dot_tokens - 1>(int(tokens - t), x + t * ldx + k0, ldx, wb, ldw, out + t * ldo + i0, ldo, rn,
                                       kn, acc);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace cinch::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cinch::cpu {

HWY_EXPORT(gemm_f32);
HWY_EXPORT(gemm_f64);
HWY_EXPORT(dot_rows);

void gemm_f32(const detail::gemm_args<float>& g, float* pack) noexcept { HWY_DYNAMIC_DISPATCH(gemm_f32)(g, pack); }
void gemm_f64(const detail::gemm_args<double>& g, double* pack) noexcept { HWY_DYNAMIC_DISPATCH(gemm_f64)(g, pack); }
void dot_rows(std::int64_t tokens, std::int64_t rows, std::int64_t n, const float* x, std::int64_t ldx, const float* w,
              std::int64_t ldw, float* out, std::int64_t ldo, bool accumulate) noexcept {
  HWY_DYNAMIC_DISPATCH(dot_rows)(tokens, rows, n, x, ldx, w, ldw, out, ldo, accumulate);
}

}  // namespace cinch::cpu
#endif
