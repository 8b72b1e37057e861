// Highway kernels of the tokens module, bit-identical to cinch/ref/tokens.hpp.
//
// Every dot product is one chain of fused multiply-adds in index order, so the
// vectors run across pairs of rows, never along k: rows are packed k-major into
// panels of one vector's width (a gather per element column, which also yields
// the sums of squares lane by lane), and a register tile of MR rows x 2 vectors
// of columns broadcasts a row's element k against two panels' element k. Each
// lane then holds one pair's chain, as the reference computes it. Targets
// without a native FMA (or with scalable vectors, whose tiles cannot be arrays)
// forward to the reference table.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/tokens.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>
#include <type_traits>
#include <limits>

#include "cinch/ref/tokens.hpp"
#include "tokens/kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace cinch::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#undef CINCH_TOKENS_SIMD
#if HWY_NATIVE_FMA && !HWY_HAVE_SCALABLE && HWY_TARGET != HWY_SCALAR
#define CINCH_TOKENS_SIMD 1
#else
#define CINCH_TOKENS_SIMD 0
#endif

#if CINCH_TOKENS_SIMD

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;

constexpr std::int64_t W = static_cast<std::int64_t>(hn::MaxLanes(DF()));
// Rows per register tile: 2 * MR accumulators fit the register file.
constexpr int MR = HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3 ? 8 : 4;
static_assert(W % MR == 0, "a tile's rows must stay inside one panel");

std::int64_t PanelWidth() { return W; }
std::int64_t PackedRows(std::int64_t n) { return (n + 2 * W - 1) / (2 * W) * (2 * W); }

void Pack(const float* x, const std::int64_t* offsets, std::int64_t n, std::int64_t d, float* packed, float* inv) {
  const DF df;
  const DI di;
  const std::int64_t total = PackedRows(n);
  auto offset_of = [&](std::int64_t i) { return offsets ? offsets[i] : i * d; };
  for (std::int64_t p0 = 0; p0 < total; p0 += W) {
    float* panel = packed + p0 * d;
    const std::int64_t valid = n - p0 < 0 ? 0 : (n - p0 < W ? n - p0 : W);
    // Lane offsets relative to the panel's lowest row, when they fit a gather's int32.
    std::int64_t low = 0, high = 0;
    if (valid == W) {
      low = high = offset_of(p0);
      for (std::int64_t r = 1; r < W; ++r) {
        const std::int64_t o = offset_of(p0 + r);
        low = o < low ? o : low;
        high = o > high ? o : high;
      }
    }
    if (valid == W && high - low <= std::numeric_limits<std::int32_t>::max() - d) {
      alignas(64) std::int32_t lane_offsets[W];
      for (std::int64_t r = 0; r < W; ++r) lane_offsets[r] = static_cast<std::int32_t>(offset_of(p0 + r) - low);
      const auto idx = hn::LoadU(di, lane_offsets);
      const float* base = x + low;
      VF ss = hn::Zero(df);
      for (std::int64_t k = 0; k < d; ++k) {
        const VF v = hn::GatherIndex(df, base + k, idx);
        hn::StoreU(v, df, panel + k * W);
        ss = hn::MulAdd(v, v, ss);
      }
      if (inv) {
        alignas(64) float sums[W];
        hn::StoreU(ss, df, sums);
        for (std::int64_t r = 0; r < W; ++r) inv[p0 + r] = ref::inv_norm_of(sums[r]);
      }
      continue;
    }
    for (std::int64_t r = 0; r < W; ++r) {
      const float* row = r < valid ? x + offset_of(p0 + r) : nullptr;
      for (std::int64_t k = 0; k < d; ++k) panel[k * W + r] = row ? row[k] : 0.0f;
      if (inv) inv[p0 + r] = row ? ref::inv_norm(row, d) : 0.0f;
    }
  }
}

// acc[r][v] = the chains of rows r < R of a panel (starting at a) against the
// two panels b0, b1 (2 * W columns).
template <int R>
HWY_INLINE void Tile(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b0, const float* HWY_RESTRICT b1,
                     std::int64_t d, VF (&acc)[R][2]) {
  const DF df;
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = hn::Zero(df);
  for (std::int64_t k = 0; k < d; ++k) {
    const VF v0 = hn::LoadU(df, b0 + k * W);
    const VF v1 = hn::LoadU(df, b1 + k * W);
    const float* ak = a + k * W;
    for (int r = 0; r < R; ++r) {
      const VF s = hn::Set(df, ak[r]);
      acc[r][0] = hn::MulAdd(s, v0, acc[r][0]);
      acc[r][1] = hn::MulAdd(s, v1, acc[r][1]);
    }
  }
}

// Runs fn(row, v0, v1) for every row of a against the 2 * W columns at b_col,
// with v0, v1 the dots (or cosines) of that row.
template <class Fn>
HWY_INLINE void ForEachRow(const float* a, const float* inv_a, std::int64_t m, const float* b, const float* inv_b,
                           std::int64_t b_col, std::int64_t d, Fn fn) {
  const DF df;
  const float* b0 = b + b_col * d;
  const float* b1 = b0 + W * d;
  VF inv0 = hn::Zero(df), inv1 = hn::Zero(df);
  if (inv_a) {
    inv0 = hn::LoadU(df, inv_b + b_col);
    inv1 = hn::LoadU(df, inv_b + b_col + W);
  }
  auto emit = [&](std::int64_t row, VF v0, VF v1) {
    if (inv_a) {
      const VF ia = hn::Set(df, inv_a[row]);
      v0 = hn::Mul(hn::Mul(v0, ia), inv0);
      v1 = hn::Mul(hn::Mul(v1, ia), inv1);
    }
    fn(row, v0, v1);
  };
  std::int64_t i = 0;
  for (; i + MR <= m; i += MR) {
    VF acc[MR][2];
    Tile<MR>(a + (i / W) * W * d + i % W, b0, b1, d, acc);
    for (int r = 0; r < MR; ++r) emit(i + r, acc[r][0], acc[r][1]);
  }
  for (; i < m; ++i) {
    VF acc[1][2];
    Tile<1>(a + (i / W) * W * d + i % W, b0, b1, d, acc);
    emit(i, acc[0][0], acc[0][1]);
  }
}

void Dots(const float* a, const float* inv_a, std::int64_t m, const float* b, const float* inv_b, std::int64_t n,
          std::int64_t d, float* out, std::int64_t ldo) {
  const DF df;
  for (std::int64_t j = 0; j < n; j += 2 * W) {
    const std::int64_t cols = n - j < 2 * W ? n - j : 2 * W;
    ForEachRow(a, inv_a, m, b, inv_b, j, d, [&](std::int64_t row, VF v0, VF v1) {
      float* o = out + row * ldo + j;
      if (cols == 2 * W) {
        hn::StoreU(v0, df, o);
        hn::StoreU(v1, df, o + W);
        return;
      }
      alignas(64) float tmp[2 * W];
      hn::StoreU(v0, df, tmp);
      hn::StoreU(v1, df, tmp + W);
      std::memcpy(o, tmp, static_cast<std::size_t>(cols) * sizeof(float));
    });
  }
}

void DotsArgmax(const float* a, const float* inv_a, std::int64_t m, const float* b, const float* inv_b,
                std::int64_t n, std::int64_t d, bool skip, std::int64_t skip_offset, float* best,
                std::int64_t* index) {
  const DF df;
  const VF lowest = hn::Set(df, -std::numeric_limits<float>::infinity());
  for (std::int64_t i = 0; i < m; ++i) {
    best[i] = -std::numeric_limits<float>::infinity();
    index[i] = -1;
  }
  for (std::int64_t j = 0; j < n; j += 2 * W) {
    const std::int64_t cols = n - j < 2 * W ? n - j : 2 * W;
    ForEachRow(a, inv_a, m, b, inv_b, j, d, [&](std::int64_t row, VF v0, VF v1) {
      const std::int64_t skipped = skip ? row + skip_offset - j : -1;  // column within this tile
      if (skipped < 0 || skipped >= cols) {
        // Cheap test first: NaN and the padding columns count as -inf.
        VF m0 = hn::IfThenElse(hn::Eq(v0, v0), v0, lowest);
        VF m1 = hn::IfThenElse(hn::Eq(v1, v1), v1, lowest);
        if (cols < 2 * W) {
          m0 = hn::IfThenElse(hn::FirstN(df, static_cast<std::size_t>(cols < W ? cols : W)), m0, lowest);
          m1 = hn::IfThenElse(hn::FirstN(df, static_cast<std::size_t>(cols > W ? cols - W : 0)), m1, lowest);
        }
        const float tile_max = hn::GetLane(hn::MaxOfLanes(df, hn::Max(m0, m1)));
        if (index[row] >= 0 && !(tile_max > best[row])) return;
      }
      alignas(64) float tmp[2 * W];
      hn::StoreU(v0, df, tmp);
      hn::StoreU(v1, df, tmp + W);
      for (std::int64_t c = 0; c < cols; ++c) {
        if (c == skipped || tmp[c] != tmp[c]) continue;
        if (index[row] < 0 || tmp[c] > best[row]) {
          best[row] = tmp[c];
          index[row] = j + c;
        }
      }
    });
  }
}

void PairDots(const float* a, const float* inv_a, const float* b, const float* inv_b, std::int64_t n, std::int64_t d,
              float* out) {
  const DF df;
  for (std::int64_t p = 0; p < n; p += W) {
    const float* pa = a + p * d;
    const float* pb = b + p * d;
    VF acc = hn::Zero(df);
    for (std::int64_t k = 0; k < d; ++k) acc = hn::MulAdd(hn::LoadU(df, pa + k * W), hn::LoadU(df, pb + k * W), acc);
    if (inv_a) acc = hn::Mul(hn::Mul(acc, hn::LoadU(df, inv_a + p)), hn::LoadU(df, inv_b + p));
    alignas(64) float tmp[W];
    hn::Store(acc, df, tmp);
    std::memcpy(out + p, tmp, static_cast<std::size_t>(n - p < W ? n - p : W) * sizeof(float));
  }
}

// The upper triangle only: tiles of rows [i, i + R) against column tiles that
// reach past the rows; in each tile the lanes j > i give row maxima (reduced
// per row) and column maxima (reduced over the tile's rows, then into col_best).
void Nearest(const float* x, const float* inv, std::int64_t n, std::int64_t d, std::int64_t begin, std::int64_t end,
             float* row_best, float* col_best) {
  const DF df;
  const DI di;
  const VF lowest = hn::Set(df, -std::numeric_limits<float>::infinity());
  const auto lane = hn::Iota(di, 0);
  auto rows = [&](std::int64_t i, auto r_tag) {
    constexpr int R = decltype(r_tag)::value;
    for (std::int64_t j = (i / (2 * W)) * (2 * W); j < n; j += 2 * W) {
      VF acc[R][2];
      Tile<R>(x + (i / W) * W * d + i % W, x + j * d, x + (j + W) * d, d, acc);
      const VF inv0 = hn::LoadU(df, inv + j), inv1 = hn::LoadU(df, inv + j + W);
      VF col0 = lowest, col1 = lowest;
      for (int r = 0; r < R; ++r) {
        const VF ia = hn::Set(df, inv[i + r]);
        // Lanes with column > row (and < n: padded columns have inv 0 and are cut below).
        const auto row = hn::Set(di, static_cast<std::int32_t>(i + r - j));
        const auto limit = hn::Set(di, static_cast<std::int32_t>(n - j));
        const auto lane1 = hn::Add(lane, hn::Set(di, static_cast<std::int32_t>(W)));
        const auto ok0 = hn::RebindMask(df, hn::And(hn::Gt(lane, row), hn::Lt(lane, limit)));
        const auto ok1 = hn::RebindMask(df, hn::And(hn::Gt(lane1, row), hn::Lt(lane1, limit)));
        const VF v0 = hn::IfThenElse(ok0, hn::Mul(hn::Mul(acc[r][0], ia), inv0), lowest);
        const VF v1 = hn::IfThenElse(ok1, hn::Mul(hn::Mul(acc[r][1], ia), inv1), lowest);
        const float top = hn::GetLane(hn::MaxOfLanes(df, hn::Max(v0, v1)));
        row_best[i + r] = top > row_best[i + r] ? top : row_best[i + r];
        col0 = hn::Max(col0, v0);
        col1 = hn::Max(col1, v1);
      }
      hn::StoreU(hn::Max(hn::LoadU(df, col_best + j), col0), df, col_best + j);
      hn::StoreU(hn::Max(hn::LoadU(df, col_best + j + W), col1), df, col_best + j + W);
    }
  };
  std::int64_t i = begin;
  for (; i < end && i % MR; ++i) rows(i, std::integral_constant<int, 1>());
  for (; i + MR <= end; i += MR) rows(i, std::integral_constant<int, MR>());
  for (; i < end; ++i) rows(i, std::integral_constant<int, 1>());
}

void RowArgmax(const float* s, std::int64_t ld, std::int64_t m, std::int64_t n, float* best, std::int64_t* index) {
  const DF df;
  const VF lowest = hn::Set(df, -std::numeric_limits<float>::infinity());
  for (std::int64_t i = 0; i < m; ++i) {
    const float* v = s + i * ld;
    VF vmax = lowest;
    std::int64_t j = 0;
    for (; j + W <= n; j += W) {
      const VF x = hn::LoadU(df, v + j);
      vmax = hn::Max(vmax, hn::IfThenElse(hn::Eq(x, x), x, lowest));
    }
    float top = hn::GetLane(hn::MaxOfLanes(df, vmax));
    for (; j < n; ++j) top = v[j] > top ? v[j] : top;
    // The first value equal to the maximum (NaN equals nothing; all NaN: -1).
    index[i] = -1;
    best[i] = -std::numeric_limits<float>::infinity();
    const VF vtop = hn::Set(df, top);
    for (j = 0; j + W <= n; j += W) {
      const intptr_t first = hn::FindFirstTrue(df, hn::Eq(hn::LoadU(df, v + j), vtop));
      if (first >= 0) {
        index[i] = j + first;
        break;
      }
    }
    for (; index[i] < 0 && j < n; ++j)
      if (v[j] == top) index[i] = j;
    if (index[i] >= 0) best[i] = top;
  }
}

void MergeRow(const float* x, const std::int64_t* offsets, const float* weights, std::int64_t count, float divisor,
              std::int64_t d, float* out) {
  const DF df;
  if (ref::merge_is_copy(count, weights, divisor)) {
    std::memcpy(out, x + offsets[0], static_cast<std::size_t>(d) * sizeof(float));
    return;
  }
  const VF div = hn::Set(df, divisor);
  std::int64_t c = 0;
  for (; c + 4 * W <= d; c += 4 * W) {
    VF acc0 = hn::Zero(df), acc1 = hn::Zero(df), acc2 = hn::Zero(df), acc3 = hn::Zero(df);
    for (std::int64_t s = 0; s < count; ++s) {
      const VF w = hn::Set(df, weights[s]);
      const float* row = x + offsets[s] + c;
      acc0 = hn::MulAdd(w, hn::LoadU(df, row), acc0);
      acc1 = hn::MulAdd(w, hn::LoadU(df, row + W), acc1);
      acc2 = hn::MulAdd(w, hn::LoadU(df, row + 2 * W), acc2);
      acc3 = hn::MulAdd(w, hn::LoadU(df, row + 3 * W), acc3);
    }
    hn::StoreU(hn::Div(acc0, div), df, out + c);
    hn::StoreU(hn::Div(acc1, div), df, out + c + W);
    hn::StoreU(hn::Div(acc2, div), df, out + c + 2 * W);
    hn::StoreU(hn::Div(acc3, div), df, out + c + 3 * W);
  }
  for (; c + W <= d; c += W) {
    VF acc = hn::Zero(df);
    for (std::int64_t s = 0; s < count; ++s)
      acc = hn::MulAdd(hn::Set(df, weights[s]), hn::LoadU(df, x + offsets[s] + c), acc);
    hn::StoreU(hn::Div(acc, div), df, out + c);
  }
  for (; c < d; ++c) {
    float acc = 0.0f;
    for (std::int64_t s = 0; s < count; ++s) acc = ref::fused_multiply_add(weights[s], x[offsets[s] + c], acc);
    out[c] = acc / divisor;
  }
}

#else  // no native FMA: the reference, whose std::fma is exact everywhere

const detail::token_kernels& Ref() { return detail::ref_token_kernels(); }
std::int64_t PanelWidth() { return Ref().panel_width(); }
std::int64_t PackedRows(std::int64_t n) { return Ref().packed_rows(n); }
void Pack(const float* x, const std::int64_t* offsets, std::int64_t n, std::int64_t d, float* packed, float* inv) {
  Ref().pack(x, offsets, n, d, packed, inv);
}
void Dots(const float* a, const float* inv_a, std::int64_t m, const float* b, const float* inv_b, std::int64_t n,
          std::int64_t d, float* out, std::int64_t ldo) {
  Ref().dots(a, inv_a, m, b, inv_b, n, d, out, ldo);
}
void DotsArgmax(const float* a, const float* inv_a, std::int64_t m, const float* b, const float* inv_b,
                std::int64_t n, std::int64_t d, bool skip, std::int64_t skip_offset, float* best,
                std::int64_t* index) {
  Ref().dots_argmax(a, inv_a, m, b, inv_b, n, d, skip, skip_offset, best, index);
}
void PairDots(const float* a, const float* inv_a, const float* b, const float* inv_b, std::int64_t n, std::int64_t d,
              float* out) {
  Ref().pair_dots(a, inv_a, b, inv_b, n, d, out);
}
void Nearest(const float* x, const float* inv, std::int64_t n, std::int64_t d, std::int64_t begin, std::int64_t end,
             float* row_best, float* col_best) {
  Ref().nearest(x, inv, n, d, begin, end, row_best, col_best);
}
void RowArgmax(const float* s, std::int64_t ld, std::int64_t m, std::int64_t n, float* best, std::int64_t* index) {
  Ref().row_argmax(s, ld, m, n, best, index);
}
void MergeRow(const float* x, const std::int64_t* offsets, const float* weights, std::int64_t count, float divisor,
              std::int64_t d, float* out) {
  Ref().merge_row(x, offsets, weights, count, divisor, d, out);
}

#endif

}  // namespace HWY_NAMESPACE
}  // namespace cinch::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cinch {
namespace cpu {

HWY_EXPORT(PanelWidth);
HWY_EXPORT(PackedRows);
HWY_EXPORT(Pack);
HWY_EXPORT(Dots);
HWY_EXPORT(DotsArgmax);
HWY_EXPORT(PairDots);
HWY_EXPORT(Nearest);
HWY_EXPORT(RowArgmax);
HWY_EXPORT(MergeRow);

namespace {

std::int64_t panel_width() noexcept { return HWY_DYNAMIC_DISPATCH(PanelWidth)(); }
std::int64_t packed_rows(std::int64_t n) noexcept { return HWY_DYNAMIC_DISPATCH(PackedRows)(n); }
void pack(const float* x, const std::int64_t* offsets, std::int64_t n, std::int64_t d, float* packed,
          float* inv) noexcept {
  HWY_DYNAMIC_DISPATCH(Pack)(x, offsets, n, d, packed, inv);
}
void dots(const float* a, const float* inv_a, std::int64_t m, const float* b, const float* inv_b, std::int64_t n,
          std::int64_t d, float* out, std::int64_t ldo) noexcept {
  HWY_DYNAMIC_DISPATCH(Dots)(a, inv_a, m, b, inv_b, n, d, out, ldo);
}
void dots_argmax(const float* a, const float* inv_a, std::int64_t m, const float* b, const float* inv_b,
                 std::int64_t n, std::int64_t d, bool skip, std::int64_t skip_offset, float* best,
                 std::int64_t* index) noexcept {
  HWY_DYNAMIC_DISPATCH(DotsArgmax)(a, inv_a, m, b, inv_b, n, d, skip, skip_offset, best, index);
}
void pair_dots(const float* a, const float* inv_a, const float* b, const float* inv_b, std::int64_t n, std::int64_t d,
               float* out) noexcept {
  HWY_DYNAMIC_DISPATCH(PairDots)(a, inv_a, b, inv_b, n, d, out);
}
void nearest(const float* x, const float* inv, std::int64_t n, std::int64_t d, std::int64_t begin, std::int64_t end,
             float* row_best, float* col_best) noexcept {
  HWY_DYNAMIC_DISPATCH(Nearest)(x, inv, n, d, begin, end, row_best, col_best);
}
void row_argmax(const float* s, std::int64_t ld, std::int64_t m, std::int64_t n, float* best,
                std::int64_t* index) noexcept {
  HWY_DYNAMIC_DISPATCH(RowArgmax)(s, ld, m, n, best, index);
}
void merge_row(const float* x, const std::int64_t* offsets, const float* weights, std::int64_t count, float divisor,
               std::int64_t d, float* out) noexcept {
  HWY_DYNAMIC_DISPATCH(MergeRow)(x, offsets, weights, count, divisor, d, out);
}

constexpr detail::token_kernels simd_table{panel_width, packed_rows, pack,    dots,       dots_argmax,
                                           pair_dots,   nearest,     row_argmax, merge_row};

}  // namespace
}  // namespace cpu

namespace detail {
const token_kernels& simd_token_kernels() noexcept { return cpu::simd_table; }
}  // namespace detail
}  // namespace cinch
#endif
