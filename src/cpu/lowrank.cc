// Highway kernels of the lowrank module: a packed GEMM (float and double) for the
// decompositions and the rows-against-rows dot kernel of the fused apply. They
// compute the sums of cinch/ref/lowrank.hpp in another order (lanes, blocks of k),
// so results differ from the reference by rounding only, within the bound stated there.
// The int16 GEMM of the range finder sums exactly and keeps the reference's flush
// order, so it gives the reference's bits.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/lowrank.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cmath>
#include <cstring>

#include "cinch/ref/lowrank.hpp"
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

// ------------------------------------------------------------------ int16 GEMM
// C = diag(row_scale) (A B) diag(col_scale), flushed as ref::gemm_i16 does. B is
// packed per chunk of gemm_i16_k_chunk rows into panels of NR = 2 int32 vectors of
// columns with each pair of rows interleaved, (b(2p, j), b(2p + 1, j)), so that one
// ReorderWidenMulAccumulate adds both products of a pair per column; a row of A
// supplies the matching pair (a(i, 2p), a(i, 2p + 1)) as one broadcast int32, read in
// place where A has unit column stride, else from a packed copy. The int32 sums of a
// block (ref::i16_k_block rows) go into a float tile that lives across the chunk.
// Odd K pads one zero row.
constexpr std::int64_t i16_block_pairs = ref::i16_k_block / 2;
static_assert(detail::gemm_i16_k_chunk % ref::i16_k_block == 0, "a chunk holds whole overflow blocks");
static_assert(gemm_rows <= detail::gemm_i16_max_rows, "row tile larger than the pack workspace");

template <class D32>
void pack_b_i16(D32 d32, const std::int16_t* b, std::int64_t rsb, std::int64_t csb, std::int64_t kc, std::int64_t n,
                std::int16_t* out) {
  const std::int64_t nr = 2 * static_cast<std::int64_t>(hn::Lanes(d32)), pairs = (kc + 1) / 2;
  for (std::int64_t j0 = 0; j0 < n; j0 += nr) {
    const std::int64_t w = n - j0 < nr ? n - j0 : nr;
    std::int16_t* panel = out + j0 * 2 * pairs;
    for (std::int64_t p = 0; p < pairs; ++p) {
      std::int16_t* o = panel + p * 2 * nr;
      const std::int16_t* even = b + 2 * p * rsb + j0 * csb;
      const bool has_odd = 2 * p + 1 < kc;
      for (std::int64_t j = 0; j < w; ++j) {
        o[2 * j] = even[j * csb];
        o[2 * j + 1] = has_odd ? even[rsb + j * csb] : std::int16_t(0);
      }
      for (std::int64_t j = 2 * w; j < 2 * nr; ++j) o[j] = 0;
    }
  }
}

// Rows [0, rows) of A over kc columns, each row as 2 * pairs codes (a zero pads odd kc).
inline void pack_a_i16(const std::int16_t* a, std::int64_t rsa, std::int64_t csa, std::int64_t rows, std::int64_t kc,
                       std::int16_t* out) {
  const std::int64_t padded = (kc + 1) / 2 * 2;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t k = 0; k < padded; ++k) out[r * padded + k] = k < kc ? a[r * rsa + k * csa] : std::int16_t(0);
}

// tile[r * NR + j] += the sums of pairs [0, pairs) of A rows [0, R) against one
// panel, flushed to float once per overflow block.
template <int R, class D32>
HWY_INLINE void gemm_i16_tile(D32 d32, std::int64_t pairs, const std::int16_t* HWY_RESTRICT a, std::int64_t ars,
                              const std::int16_t* HWY_RESTRICT panel, float* HWY_RESTRICT tile) {
  const hn::Repartition<std::int16_t, D32> d16;
  const hn::Repartition<float, D32> df;
  using V = hn::Vec<D32>;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d32));
  for (std::int64_t p0 = 0; p0 < pairs; p0 += i16_block_pairs) {
    const std::int64_t p1 = pairs - p0 < i16_block_pairs ? pairs : p0 + i16_block_pairs;
    // s: the sums of the panel's first vector of columns, t: of its second; *1: the
    // second halves some targets keep apart (RearrangeToOddPlusEven joins them).
    V s0[R], s1[R], t0[R], t1[R];
    for (int r = 0; r < R; ++r) s0[r] = s1[r] = t0[r] = t1[r] = hn::Zero(d32);
    for (std::int64_t p = p0; p < p1; ++p) {
      const auto b0 = hn::LoadU(d16, panel + 4 * p * lanes);
      const auto b1 = hn::LoadU(d16, panel + (4 * p + 2) * lanes);
      for (int r = 0; r < R; ++r) {
        std::int32_t pair;
        std::memcpy(&pair, a + r * ars + 2 * p, sizeof pair);
        const auto ar = hn::BitCast(d16, hn::Set(d32, pair));
        s0[r] = hn::ReorderWidenMulAccumulate(d32, ar, b0, s0[r], s1[r]);
        t0[r] = hn::ReorderWidenMulAccumulate(d32, ar, b1, t0[r], t1[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      float* o = tile + r * 2 * lanes;
      hn::StoreU(hn::Add(hn::LoadU(df, o), hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s0[r], s1[r]))), df, o);
      hn::StoreU(hn::Add(hn::LoadU(df, o + lanes), hn::ConvertTo(df, hn::RearrangeToOddPlusEven(t0[r], t1[r]))), df,
                 o + lanes);
    }
  }
}

template <int R, class D32>
HWY_INLINE void gemm_i16_tile_rows(D32 d32, int rows, std::int64_t pairs, const std::int16_t* a, std::int64_t ars,
                                   const std::int16_t* panel, float* tile) {
  if constexpr (R > 0) {
    if (rows == R) return gemm_i16_tile<R>(d32, pairs, a, ars, panel, tile);
    gemm_i16_tile_rows<R - 1>(d32, rows, pairs, a, ars, panel, tile);
  }
}

void gemm_i16(const detail::gemm_i16_args& g, std::int16_t* pack) {
#if HWY_TARGET == HWY_SCALAR
  // One lane cannot hold a pair of codes.
  (void)pack;
  ref::gemm_i16(g.M, g.N, g.K, g.a, g.rsa, g.csa, g.b, g.rsb, g.csb, g.row_scale, g.col_scale, g.c, g.rsc, g.csc);
#else
  const hn::ScalableTag<std::int32_t> d32;
  const std::int64_t nr = 2 * static_cast<std::int64_t>(hn::Lanes(d32));
  static_assert(2 * HWY_MAX_BYTES / sizeof(std::int32_t) <= detail::gemm_max_panel, "panel wider than the workspace");
  if (g.M == 0 || g.N == 0) return;
  if (g.K == 0) {
    for (std::int64_t i = 0; i < g.M; ++i)
      for (std::int64_t j = 0; j < g.N; ++j) g.c[i * g.rsc + j * g.csc] = 0.0f * (g.row_scale[i] * g.col_scale[j]);
    return;
  }
  std::int16_t* b_pack = pack;
  std::int16_t* a_pack = pack + detail::gemm_i16_k_chunk * (g.N + detail::gemm_max_panel);
  HWY_ALIGN float tile[detail::gemm_i16_max_rows * detail::gemm_max_panel];
  for (std::int64_t k0 = 0; k0 < g.K; k0 += detail::gemm_i16_k_chunk) {
    const std::int64_t kc = g.K - k0 < detail::gemm_i16_k_chunk ? g.K - k0 : detail::gemm_i16_k_chunk;
    const std::int64_t pairs = (kc + 1) / 2;
    const bool first = k0 == 0, last = k0 + kc == g.K;
    pack_b_i16(d32, g.b + k0 * g.rsb, g.rsb, g.csb, kc, g.N, b_pack);
    for (std::int64_t i0 = 0; i0 < g.M; i0 += gemm_rows) {
      const int rows = int(g.M - i0 < gemm_rows ? g.M - i0 : gemm_rows);
      const std::int16_t* a = g.a + i0 * g.rsa + k0 * g.csa;
      std::int64_t ars = g.rsa;
      if (g.csa != 1 || kc % 2 != 0) {
        pack_a_i16(a, g.rsa, g.csa, rows, kc, a_pack);
        a = a_pack;
        ars = 2 * pairs;
      }
      for (std::int64_t j0 = 0; j0 < g.N; j0 += nr) {
        const std::int64_t w = g.N - j0 < nr ? g.N - j0 : nr;
        for (int r = 0; r < rows; ++r)
          for (std::int64_t j = 0; j < nr; ++j)
            tile[r * nr + j] = first || j >= w ? 0.0f : g.c[(i0 + r) * g.rsc + (j0 + j) * g.csc];
        gemm_i16_tile_rows<gemm_rows>(d32, rows, pairs, a, ars, b_pack + j0 * 2 * pairs, tile);
        for (int r = 0; r < rows; ++r) {
          float* c = g.c + (i0 + r) * g.rsc + j0 * g.csc;
          const float row_scale = g.row_scale[i0 + r];
          for (std::int64_t j = 0; j < w; ++j)
            c[j * g.csc] = last ? tile[r * nr + j] * (row_scale * g.col_scale[j0 + j]) : tile[r * nr + j];
        }
      }
    }
  }
#endif
}

// ------------------------------------------------------------------ int16 codes
// ref::quantize_rows_i16 / quantize_columns_i16 with the same float operations:
// |v| and max are exact, the reciprocal a correctly rounded division, NearestInt
// rounds to nearest with ties to even like nearbyint, and the clamp commutes with
// it (the rounded value is an integer of magnitude below 2^24).
template <class DF>
HWY_INLINE void store_codes(DF df, hn::Vec<DF> v, hn::Vec<DF> inv, std::int16_t* q) {
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<std::int16_t, DF> d16;
  const auto limit = hn::Set(di, ref::i16_range);
  const auto code = hn::Min(hn::Max(hn::NearestInt(hn::Mul(v, inv)), hn::Neg(limit)), limit);
  hn::StoreU(hn::DemoteTo(d16, code), d16, q);
  (void)df;
}

void quantize_rows_i16(std::int64_t rows, std::int64_t cols, const float* x, std::int64_t ldx, std::int16_t* q,
                       std::int64_t ldq, float* scale) {
  const hn::ScalableTag<float> df;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(df));
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* xi = x + i * ldx;
    std::int16_t* qi = q + i * ldq;
    auto vmax = hn::Zero(df);
    std::int64_t j = 0;
    for (; j + lanes <= cols; j += lanes) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xi + j)));
    float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    for (; j < cols; ++j) amax = std::fabs(xi[j]) > amax ? std::fabs(xi[j]) : amax;
    const float inv = amax > 0 ? float(ref::i16_range) / amax : 0.0f;
    scale[i] = amax / float(ref::i16_range);
    const auto vinv = hn::Set(df, inv);
    for (j = 0; j + lanes <= cols; j += lanes) store_codes(df, hn::LoadU(df, xi + j), vinv, qi + j);
    for (; j < cols; ++j) qi[j] = ref::i16_code(xi[j], inv);
  }
}

void quantize_columns_i16(std::int64_t rows, std::int64_t cols, const float* x, std::int64_t ldx, const float* weight,
                          std::int16_t* q, std::int64_t ldq, float* scale) {
  const hn::ScalableTag<float> df;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(df));
  const std::int64_t body = cols / lanes * lanes;
  for (std::int64_t j = 0; j < cols; ++j) scale[j] = 0;  // amax until the end of the first pass
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* xi = x + i * ldx;
    const auto w = hn::Set(df, weight ? weight[i] : 1.0f);
    for (std::int64_t j = 0; j < body; j += lanes) {
      const auto v = weight ? hn::Mul(w, hn::LoadU(df, xi + j)) : hn::LoadU(df, xi + j);
      hn::StoreU(hn::Max(hn::LoadU(df, scale + j), hn::Abs(v)), df, scale + j);
    }
    for (std::int64_t j = body; j < cols; ++j) {
      const float v = std::fabs(weight ? weight[i] * xi[j] : xi[j]);
      scale[j] = v > scale[j] ? v : scale[j];
    }
  }
  const auto range = hn::Set(df, float(ref::i16_range));
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* xi = x + i * ldx;
    std::int16_t* qi = q + i * ldq;
    const auto w = hn::Set(df, weight ? weight[i] : 1.0f);
    for (std::int64_t j = 0; j < body; j += lanes) {
      const auto amax = hn::LoadU(df, scale + j);
      const auto inv = hn::IfThenElseZero(hn::Gt(amax, hn::Zero(df)), hn::Div(range, amax));
      store_codes(df, weight ? hn::Mul(w, hn::LoadU(df, xi + j)) : hn::LoadU(df, xi + j), inv, qi + j);
    }
    for (std::int64_t j = body; j < cols; ++j) {
      const float inv = scale[j] > 0 ? float(ref::i16_range) / scale[j] : 0.0f;
      qi[j] = ref::i16_code(weight ? weight[i] * xi[j] : xi[j], inv);
    }
  }
  for (std::int64_t j = 0; j < cols; ++j) scale[j] /= float(ref::i16_range);
}

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
HWY_EXPORT(gemm_i16);
HWY_EXPORT(quantize_rows_i16);
HWY_EXPORT(quantize_columns_i16);

void gemm_f32(const detail::gemm_args<float>& g, float* pack) noexcept { HWY_DYNAMIC_DISPATCH(gemm_f32)(g, pack); }
void gemm_f64(const detail::gemm_args<double>& g, double* pack) noexcept { HWY_DYNAMIC_DISPATCH(gemm_f64)(g, pack); }
void dot_rows(std::int64_t tokens, std::int64_t rows, std::int64_t n, const float* x, std::int64_t ldx, const float* w,
              std::int64_t ldw, float* out, std::int64_t ldo, bool accumulate) noexcept {
  HWY_DYNAMIC_DISPATCH(dot_rows)(tokens, rows, n, x, ldx, w, ldw, out, ldo, accumulate);
}
void gemm_i16(const detail::gemm_i16_args& g, std::int16_t* pack) noexcept { HWY_DYNAMIC_DISPATCH(gemm_i16)(g, pack); }
void quantize_rows_i16(std::int64_t rows, std::int64_t cols, const float* x, std::int64_t ldx, std::int16_t* q,
                       std::int64_t ldq, float* scale) noexcept {
  HWY_DYNAMIC_DISPATCH(quantize_rows_i16)(rows, cols, x, ldx, q, ldq, scale);
}
void quantize_columns_i16(std::int64_t rows, std::int64_t cols, const float* x, std::int64_t ldx, const float* weight,
                          std::int16_t* q, std::int64_t ldq, float* scale) noexcept {
  HWY_DYNAMIC_DISPATCH(quantize_columns_i16)(rows, cols, x, ldx, weight, q, ldq, scale);
}

}  // namespace cinch::cpu
#endif
