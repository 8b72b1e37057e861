// Highway kernels of the ggml block formats: the same bytes as
// cinch/ref/ggml.hpp (codes and f16 scales) and the same float bits
// (dequantized values, dot, axpy).
//
// Quantizing works on groups of N blocks (N = f32 lanes, at most 16). Pass 1
// reduces each block to N-lane partial extremes; a transposed reduction
// (ConcatEven/ConcatOdd) folds the N vectors into one whose lane b is block b's
// extreme, so one IEEE division gives the group's scales exactly as the
// reference's scalar division does; pass 2 writes the codes. Blocks the fast
// path would not reproduce take the reference code itself: NaN or ±inf
// anywhere, amax (or max - min) below 2^-100 (zero blocks, and 1/d overflowing;
// iq4_nl: below 1e-15), q4_0/q5_0/iq4_nl blocks whose extremes +a and -a tie
// (the first one wins), q4_1/q5_1 blocks whose minimum is ±0 (the sign of m).
// iq4_nl's two sums stay sequential, as in the reference, for the group's
// blocks side by side.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/ggml.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <bit>
#include <cstring>
#include <type_traits>
#include <utility>

#include "cinch/ref/ggml.hpp"
#include "kv/block_kernels.hpp"

HWY_BEFORE_NAMESPACE();
// Mul then Add must round twice, as the reference does: GCC otherwise fuses them
// into an FMA on AVX2/AVX-512 (-ffp-contract=fast is its default for GNU C++).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
namespace cinch::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::CappedTag<float, 16>;
using DI = hn::RebindToSigned<DF>;
using DU = hn::RebindToUnsigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;
using D8 = hn::Rebind<std::uint8_t, DF>;  // one byte per f32 lane

constexpr int N = static_cast<int>(hn::MaxLanes(DF()));
constexpr int Q = ref::ggml_block_values;
constexpr int V = Q / N;  // vectors per block
constexpr float tiny = 0x1p-100f;

template <dtype F>
constexpr std::int64_t bytes_of = info(F).block_bytes;

// ------------------------------------------------------------------ helpers

// s[0..N): per-block partial results -> one vector whose lane b is op over s[b].
template <class D, class Op>
HWY_INLINE hn::Vec<D> across_blocks(D d, hn::Vec<D>* s, Op op) {
#if HWY_TARGET != HWY_SCALAR
  for (int n = N; n > 1; n /= 2)
    for (int i = 0; i < n / 2; ++i)
      s[i] = op(hn::ConcatEven(d, s[2 * i + 1], s[2 * i]), hn::ConcatOdd(d, s[2 * i + 1], s[2 * i]));
#else
  (void)d;
  (void)op;
#endif
  return s[0];
}

// Sum of the lanes, lower half + upper half until one lane: the reference's tree.
template <class D>
HWY_INLINE float fold_lanes(D d, hn::Vec<D> v) {
#if HWY_TARGET != HWY_SCALAR
  if constexpr (hn::MaxLanes(D()) > 1) {
    const hn::Half<D> dh;
    return fold_lanes(dh, hn::Add(hn::LowerHalf(dh, v), hn::UpperHalf(dh, v)));
  }
#endif
  (void)d;
  return hn::GetLane(v);
}

// Codes in [0, 255] -> N bytes.
HWY_INLINE void store_bytes(VI codes, std::uint8_t* out) {
  hn::StoreU(hn::U8FromU32(hn::BitCast(DU(), codes)), D8(), out);
}

// x86 AVX2 and AVX-512 have F16C: nearest-even and NaN handling as the reference.
#undef CINCH_GGML_F16C
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define CINCH_GGML_F16C 1
#else
#define CINCH_GGML_F16C 0
#endif

HWY_INLINE void f32_to_f16(const float* x, std::uint16_t* y, int n) {
  int i = 0;
#if CINCH_GGML_F16C
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, x + i)), dh, reinterpret_cast<hwy::float16_t*>(y + i));
#endif
  for (; i < n; ++i) y[i] = ref::f32_to_f16(x[i]);
}

HWY_INLINE void f16_to_f32(const std::uint16_t* x, float* y, int n) {
  int i = 0;
#if CINCH_GGML_F16C
  const DF df;
  const hn::Rebind<hwy::float16_t, DF> dh;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(x + i))), df, y + i);
#endif
  for (; i < n; ++i) y[i] = ref::f16_to_f32(x[i]);
}

// The iq4_nl codebook T (from the reference) as floats and bytes, its midpoints
// (T[k] + T[k+1]) / 2, and the midpoints each step of a binary search probes.
// The codes are the number of midpoints at or below al = x/d0, which equals
// ref::iq4_nl_nearest(al) for every non-NaN float (checked exhaustively for
// |al| <= 200; here |al| <= 127 * (1 + 2^-22)).
struct iq4_nl_tables {
  HWY_ALIGN float value[16];
  HWY_ALIGN std::int8_t byte[16];
  float mid[15];
  HWY_ALIGN float probe[4][16];  // step i (s = 8 >> i) probes mid[c + s - 1]; past the end never wins
};
constexpr iq4_nl_tables iq4_nl = [] {
  iq4_nl_tables t{};
  for (int c = 0; c < 16; ++c) {
    t.value[c] = ref::iq4_nl_value(c);
    t.byte[c] = static_cast<std::int8_t>(ref::iq4_nl_value(c));
  }
  for (int k = 0; k < 15; ++k) t.mid[k] = 0.5f * (t.value[k] + t.value[k + 1]);
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < 16; ++c) t.probe[i][c] = c + (8 >> i) - 1 < 15 ? t.mid[c + (8 >> i) - 1] : 1e30f;
  return t;
}();

// ------------------------------------------------------------------ quantize

// Per-group results of pass 1: what pass 2 needs for each block.
struct group_scales {
  HWY_ALIGN float id[N];
  HWY_ALIGN float lo[N];
  HWY_ALIGN std::int32_t special[N];  // nonzero: the reference writes this block
  std::uint16_t d16[N];
  std::uint16_t m16[N];
};

// Scales d (and their inverses) of the group's lanes, and the lanes the fast path leaves to the reference.
template <class M>
HWY_INLINE void store_scales(hn::Vec<DF> d, M special, group_scales& g) {
  const DF df;
  const DI di;
  hn::StoreU(hn::Div(hn::Set(df, 1.0f), d), df, g.id);
  HWY_ALIGN float dv[N];
  hn::StoreU(d, df, dv);
  f32_to_f16(dv, g.d16, N);
  hn::StoreU(hn::VecFromMask(di, hn::RebindMask(di, special)), di, g.special);
}

// q8_0: amax as the largest |x| bit pattern, which also exposes NaN and inf.
HWY_INLINE void scales_q8_0(const float* x, int blocks, group_scales& g) {
  const DF df;
  const DI di;
  const VI magnitude = hn::Set(di, 0x7FFFFFFF);
  VI amax[N];
  for (int b = 0; b < N; ++b) {
    const float* xb = x + (b < blocks ? b : blocks - 1) * Q;  // lanes past the group repeat the last block
    VI m = hn::And(hn::BitCast(di, hn::LoadU(df, xb)), magnitude);
    for (int k = 1; k < V; ++k) m = hn::Max(m, hn::And(hn::BitCast(di, hn::LoadU(df, xb + k * N)), magnitude));
    amax[b] = m;
  }
  const VI bits = across_blocks(di, amax, [](VI a, VI b) { return hn::Max(a, b); });
  const VI tiny_bits = hn::Set(di, static_cast<std::int32_t>(ref::bits_of(tiny)));
  const auto special = hn::Or(hn::Gt(bits, hn::Set(di, 0x7F7FFFFF)), hn::Lt(bits, tiny_bits));
  store_scales(hn::Div(hn::BitCast(df, bits), hn::Set(df, 127.0f)), hn::RebindMask(df, special), g);
}

// q4_0/q5_0/iq4_nl (Divisor = -8, -16, -127: d = M / Divisor) and q4_1/q5_1
// (Divisor = 15, 31: d = (max - min) / Divisor) from the blocks' max and min.
template <bool Symmetric, int Divisor>
HWY_INLINE void scales_extremes(const float* x, int blocks, group_scales& g) {
  const DF df;
  VF hi[N], lo[N];
  VF total = hn::Zero(df);  // NaN if a value is NaN or ±inf (or if finite values overflow it)
  for (int b = 0; b < N; ++b) {
    const float* xb = x + (b < blocks ? b : blocks - 1) * Q;
    VF v = hn::LoadU(df, xb);
    VF h = v, l = v, s = v;
    for (int k = 1; k < V; ++k) {
      v = hn::LoadU(df, xb + k * N);
      h = hn::Max(h, v);
      l = hn::Min(l, v);
      s = hn::Add(s, v);
    }
    hi[b] = h;
    lo[b] = l;
    total = hn::Add(total, s);
  }
  const VF max = across_blocks(df, hi, [](VF a, VF b) { return hn::Max(a, b); });
  const VF min = across_blocks(df, lo, [](VF a, VF b) { return hn::Min(a, b); });
  // The smallest amax (or max - min) that keeps 1/d finite and d normal; iq4_nl's
  // reference has its own zero-block threshold.
  const VF floor = hn::Set(df, Divisor == -127 ? 1e-15f : tiny);
  if constexpr (Symmetric) {
    // M = the extreme of larger magnitude; on a tie (+a and -a) the first in
    // index order wins, which only the reference tracks.
    const VF neg_min = hn::Neg(min);
    const VF m = hn::IfThenElse(hn::Gt(max, neg_min), max, min);
    const auto special = hn::Or(hn::Eq(max, neg_min), hn::Not(hn::Ge(hn::Max(max, neg_min), floor)));
    store_scales(hn::Div(m, hn::Set(df, static_cast<float>(Divisor))), special, g);
  } else {
    const VF range = hn::Sub(max, min);
    auto special = hn::Or(hn::Not(hn::IsFinite(range)), hn::Lt(range, floor));
    special = hn::Or(special, hn::Eq(min, hn::Zero(df)));  // -0 or +0: which one is first
    store_scales(hn::Div(range, hn::Set(df, static_cast<float>(Divisor))), special, g);
    hn::StoreU(min, df, g.lo);
    f32_to_f16(g.lo, g.m16, N);
  }
  if (!hn::AllTrue(df, hn::IsFinite(total))) {
    for (int b = 0; b < blocks; ++b)
      for (int j = 0; j < Q; ++j)
        if ((ref::bits_of(x[b * Q + j]) & 0x7F800000u) == 0x7F800000u) g.special[b] = 1;
  }
}

// Truncating f32 -> i32 of values known to be in range: on x86 without the
// overflow fix-up of Highway's ConvertTo (four more instructions per vector).
HWY_INLINE VI trunc_in_range(VF v) {
#if HWY_TARGET == HWY_AVX3
  return VI{_mm512_cvttps_epi32(v.raw)};
#elif HWY_TARGET == HWY_AVX2
  return VI{_mm256_cvttps_epi32(v.raw)};
#elif HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3
  return VI{_mm_cvttps_epi32(v.raw)};
#else
  return hn::ConvertTo(DI(), v);
#endif
}

// Round half away from zero: trunc(p + copysign(0.5 - 2^-25, p)) equals roundf(p)
// for every float |p| <= 128 (checked exhaustively); here |p| <= 127 * (1 + 2^-22).
HWY_INLINE VI round_q8(VF p) {
  const DF df;
  return trunc_in_range(hn::Add(p, hn::CopySign(hn::Set(df, 0.49999997f), p)));
}

// The little-endian f16 scale at the start of a block (Highway's targets are little-endian).
HWY_INLINE void store_scale(std::uint8_t* at, std::uint16_t bits) {
  static_assert(std::endian::native == std::endian::little);
  std::memcpy(at, &bits, sizeof bits);
}

// The 32 int8 codes of a q8_0 block -> 32 bytes.
HWY_INLINE void store_q8_codes(const VI* c, std::uint8_t* out) {
#if HWY_TARGET == HWY_AVX3
  // packs: per 128-bit lane, 4 codes of c[0] then 4 of c[1]; gather those dwords in order.
  const __m512i w = _mm512_packs_epi32(c[0].raw, c[1].raw);
  const __m512i b = _mm512_packs_epi16(w, w);
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_castsi512_si256(_mm512_permutexvar_epi32(order, b)));
#elif HWY_TARGET == HWY_AVX2
  const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(c[0].raw, c[1].raw), _mm256_packs_epi32(c[2].raw, c[3].raw));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permutevar8x32_epi32(b, order));
#else
  const VI low_byte = hn::Set(DI(), 0xFF);  // two's complement bytes
  for (int k = 0; k < V; ++k) store_bytes(hn::And(c[k], low_byte), out + k * N);
#endif
}

// Nibble bytes: code j in bits 0-3, code j + 16 in bits 4-7 (codes already < 16).
HWY_INLINE void store_nibbles(const VI* c, std::uint8_t* qs) {
  for (int k = 0; k < V / 2; ++k) store_bytes(hn::Or(c[k], hn::ShiftLeft<4>(c[k + V / 2])), qs + k * N);
}

// Bit 4 of each of the 32 codes, as ggml's qh (bit j = code j).
HWY_INLINE std::uint32_t high_bits(const VI* c) {
  const DI di;
  std::uint32_t qh = 0;
  for (int k = 0; k < V; ++k) {
    std::uint8_t bits[8] = {};
    hn::StoreMaskBits(di, hn::Gt(c[k], hn::Set(di, 15)), bits);
    qh |= (std::uint32_t(bits[0]) | std::uint32_t(bits[1]) << 8) << (k * N);
  }
  return qh;
}

#if HWY_TARGET != HWY_SCALAR
#if HWY_TARGET == HWY_AVX3
// 16 lanes hold all of T: a branchless binary search over the midpoints
// (c += s where al >= mid[c + s - 1], s = 8, 4, 2, 1) and T[c] are lane lookups.
HWY_INLINE VI iq4_nl_codes(VF al) {
  const DF df;
  const DI di;
  VI c = hn::Zero(di);
  for (int i = 0; i < 4; ++i) {
    const VF probe = hn::TableLookupLanes(hn::Load(df, iq4_nl.probe[i]), hn::IndicesFromVec(df, c));
    c = hn::Add(c, hn::IfThenElseZero(hn::RebindMask(di, hn::Ge(al, probe)), hn::Set(di, 8 >> i)));
  }
  return c;
}

HWY_INLINE VF iq4_nl_levels(VI c) {
  const DF df;
  return hn::TableLookupLanes(hn::Load(df, iq4_nl.value), hn::IndicesFromVec(df, c));
}
#else
HWY_INLINE VI iq4_nl_codes(VF al) {
  const DF df;
  const DI di;
  VI c = hn::Zero(di);
  for (float m : iq4_nl.mid) c = hn::Sub(c, hn::VecFromMask(di, hn::RebindMask(di, hn::Ge(al, hn::Set(df, m)))));
  return c;
}

// T[c] as floats: a byte table lookup of each code.
HWY_INLINE VF iq4_nl_levels(VI c) {
  const DI di;
  const hn::Repartition<std::int8_t, DI> d8;
  const VI looked_up = hn::BitCast(di, hn::TableLookupBytes(hn::LoadDup128(d8, iq4_nl.byte), hn::BitCast(d8, c)));
  return hn::ConvertTo(DF(), hn::ShiftRight<24>(hn::ShiftLeft<24>(looked_up)));  // the low byte, sign-extended
}
#endif

// iq4_nl (the reference's ntry = -1 path): codes from d0 = M / -127, then
// d = sum (w T x) / sum (w T^2) with w = x^2, both sums in index order as in the
// reference, here run for the group's blocks side by side.
HWY_INLINE void quantize_iq4_nl_group(const float* x, std::uint8_t* out, int blocks) {
  const DF df;
  group_scales g;
  scales_extremes<true, -127>(x, blocks, g);
  HWY_ALIGN float qx[N][Q], q2[N][Q];
  for (int b = 0; b < blocks; ++b) {
    const float* xb = x + b * Q;
    std::uint8_t* ob = out + b * bytes_of<dtype::iq4_nl>;
    if (g.special[b]) {
      ref::quantize_block<dtype::iq4_nl>(xb, ob);
      continue;
    }
    const VF id = hn::Set(df, g.id[b]);
    VI c[V];
    for (int k = 0; k < V; ++k) {
      const VF v = hn::LoadU(df, xb + k * N);
      c[k] = iq4_nl_codes(hn::Mul(id, v));
      const VF q = iq4_nl_levels(c[k]);
      const VF wq = hn::Mul(hn::Mul(v, v), q);
      hn::Store(hn::Mul(wq, v), df, qx[b] + k * N);
      hn::Store(hn::Mul(wq, q), df, q2[b] + k * N);
    }
    store_nibbles(c, ob + 2);
  }
  float sum_qx[N] = {}, sum_q2[N] = {};
  for (int j = 0; j < Q; ++j)
    for (int b = 0; b < blocks; ++b) {
      sum_qx[b] = sum_qx[b] + qx[b][j];
      sum_q2[b] = sum_q2[b] + q2[b][j];
    }
  for (int b = 0; b < blocks; ++b)
    if (!g.special[b])
      ref::ggml_detail::store_u16(out + b * bytes_of<dtype::iq4_nl>,
                                  ref::f32_to_f16(sum_q2[b] > 0.0f ? sum_qx[b] / sum_q2[b] : 0.0f));
}
#endif

template <dtype F>
HWY_INLINE void quantize_group(const float* x, std::uint8_t* out, int blocks) {
  if constexpr (F == dtype::iq4_nl) {
#if HWY_TARGET == HWY_SCALAR
    for (int b = 0; b < blocks; ++b) ref::quantize_block<F>(x + b * Q, out + b * bytes_of<F>);
#else
    quantize_iq4_nl_group(x, out, blocks);
#endif
  } else {
    constexpr bool q8 = F == dtype::q8_0;
    constexpr bool symmetric = F == dtype::q4_0 || F == dtype::q5_0;
    constexpr int bits = F == dtype::q5_0 || F == dtype::q5_1 ? 5 : 4;
    const DF df;
    const DI di;
    group_scales g;
    if constexpr (q8)
      scales_q8_0(x, blocks, g);
    else
      scales_extremes<symmetric, symmetric ? -(1 << (bits - 1)) : (1 << bits) - 1>(x, blocks, g);

    const VF offset = hn::Set(df, symmetric ? static_cast<float>(1 << (bits - 1)) + 0.5f : 0.5f);
    const VI top = hn::Set(di, (1 << bits) - 1);
    for (int b = 0; b < blocks; ++b) {
      const float* xb = x + b * Q;
      std::uint8_t* ob = out + b * bytes_of<F>;
      if (g.special[b]) {
        ref::quantize_block<F>(xb, ob);
        continue;
      }
      const VF id = hn::Set(df, g.id[b]);
      store_scale(ob, g.d16[b]);
      VI c[V];
      if constexpr (q8) {
        for (int k = 0; k < V; ++k) c[k] = round_q8(hn::Mul(hn::LoadU(df, xb + k * N), id));
        store_q8_codes(c, ob + 2);
      } else {
        for (int k = 0; k < V; ++k) {
          VF v = hn::LoadU(df, xb + k * N);
          if constexpr (!symmetric) v = hn::Sub(v, hn::Set(df, g.lo[b]));
          c[k] = hn::Min(trunc_in_range(hn::Add(hn::Mul(v, id), offset)), top);
        }
        constexpr int qs = (symmetric ? 2 : 4) + (bits == 5 ? 4 : 0);
        if constexpr (!symmetric) store_scale(ob + 2, g.m16[b]);
        if constexpr (bits == 5) {
          ref::ggml_detail::store_u32(ob + qs - 4, high_bits(c));
          for (int k = 0; k < V; ++k) c[k] = hn::And(c[k], hn::Set(di, 15));
        }
        store_nibbles(c, ob + qs);
      }
    }
  }
}

template <dtype F, class T>
HWY_INLINE void quantize_row(const T* x, std::uint8_t* out, std::int64_t n) {
  const std::int64_t blocks = n / Q;
  for (std::int64_t b = 0; b < blocks; b += N) {
    const int group = static_cast<int>(blocks - b < N ? blocks - b : N);
    if constexpr (std::is_same_v<T, float>) {
      quantize_group<F>(x + b * Q, out + b * bytes_of<F>, group);
    } else {
      HWY_ALIGN float values[N * Q];
      f16_to_f32(reinterpret_cast<const std::uint16_t*>(x + b * Q), values, group * Q);
      quantize_group<F>(values, out + b * bytes_of<F>, group);
    }
  }
}

// ------------------------------------------------------------------ decode

// A block's levels as floats (c, c - 8, c - 16 or T[c]) and its d, m: value j is
// level_j * d (+ m), the reference's ggml_detail::levels.
template <dtype F>
struct levels {
  VF level[V];
  float d;
  float m;
  static constexpr bool has_min = F == dtype::q4_1 || F == dtype::q5_1;
};

// Nibble codes of 32 values: lanes of the low nibbles for values [0, 16), high for [16, 32).
HWY_INLINE void unpack_nibbles(const std::uint8_t* qs, VI* c) {
  const DI di;
  for (int k = 0; k < V / 2; ++k) {
    const VI b = hn::PromoteTo(di, hn::LoadU(D8(), qs + k * N));
    c[k] = hn::And(b, hn::Set(di, 15));
    c[k + V / 2] = hn::ShiftRight<4>(b);
  }
}

// Adds 16 to the codes whose qh bit is set.
HWY_INLINE void add_high_bits(std::uint32_t qh, VI* c) {
  const DI di;
  for (int k = 0; k < V; ++k) {
    std::uint8_t bits[8] = {};
    const std::uint32_t chunk = qh >> (k * N);
    bits[0] = static_cast<std::uint8_t>(chunk);
    bits[1] = static_cast<std::uint8_t>(chunk >> 8);
    c[k] = hn::Or(c[k], hn::IfThenElseZero(hn::LoadMaskBits(di, bits), hn::Set(di, 16)));
  }
}

template <dtype F>
HWY_INLINE levels<F> decode(const std::uint8_t* block) {
  const DF df;
  const DI di;
  levels<F> out;
  out.d = ref::f16_to_f32(ref::ggml_detail::load_u16(block));
  out.m = levels<F>::has_min ? ref::f16_to_f32(ref::ggml_detail::load_u16(block + 2)) : 0.0f;
  if constexpr (F == dtype::q8_0) {
    const hn::Rebind<std::int8_t, DF> d8;
    for (int k = 0; k < V; ++k)
      out.level[k] = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, reinterpret_cast<const std::int8_t*>(block + 2 + k * N))));
  } else if constexpr (F == dtype::iq4_nl) {
#if HWY_TARGET == HWY_SCALAR
    for (int k = 0; k < Q / 2; ++k) {
      out.level[k] = hn::Set(df, ref::iq4_nl_value(block[2 + k] & 15));
      out.level[k + Q / 2] = hn::Set(df, ref::iq4_nl_value(block[2 + k] >> 4));
    }
#else
    // T[c] with a 16-byte table lookup of each nibble.
    const hn::Rebind<std::int8_t, DF> d8;
    const auto t = hn::Load(hn::Full128<std::int8_t>(), iq4_nl.byte);
    for (int k = 0; k < V / 2; ++k) {
      const auto b = hn::LoadU(D8(), block + 2 + k * N);
      const auto lo = hn::BitCast(d8, hn::And(b, hn::Set(D8(), 15)));
      const auto hi = hn::BitCast(d8, hn::ShiftRight<4>(b));
      out.level[k] = hn::ConvertTo(df, hn::PromoteTo(di, hn::TableLookupBytes(t, lo)));
      out.level[k + V / 2] = hn::ConvertTo(df, hn::PromoteTo(di, hn::TableLookupBytes(t, hi)));
    }
#endif
  } else {
    constexpr int qs = F == dtype::q4_0 ? 2 : F == dtype::q4_1 ? 4 : F == dtype::q5_0 ? 6 : 8;
    constexpr int bias = F == dtype::q4_0 ? 8 : F == dtype::q5_0 ? 16 : 0;
    VI c[V];
    unpack_nibbles(block + qs, c);
    if constexpr (F == dtype::q5_0 || F == dtype::q5_1) add_high_bits(ref::ggml_detail::load_u32(block + qs - 4), c);
    for (int k = 0; k < V; ++k) out.level[k] = hn::ConvertTo(df, hn::Sub(c[k], hn::Set(di, bias)));
  }
  return out;
}

template <dtype F>
HWY_INLINE VF value(const levels<F>& b, int k) {
  const DF df;
  const VF scaled = hn::Mul(b.level[k], hn::Set(df, b.d));
  if constexpr (levels<F>::has_min) return hn::Add(scaled, hn::Set(df, b.m));
  return scaled;
}

// ------------------------------------------------------------------ dequantize, dot, axpy

template <dtype F, class T>
HWY_INLINE void dequantize_row(const std::uint8_t* blocks, T* y, std::int64_t n) {
  const DF df;
  for (std::int64_t i = 0; i < n / Q; ++i) {
    const levels<F> b = decode<F>(blocks + i * bytes_of<F>);
    if constexpr (std::is_same_v<T, float>) {
      for (int k = 0; k < V; ++k) hn::StoreU(value(b, k), df, y + i * Q + k * N);
    } else {
      HWY_ALIGN float values[Q];
      for (int k = 0; k < V; ++k) hn::StoreU(value(b, k), df, values + k * N);
      f32_to_f16(values, reinterpret_cast<std::uint16_t*>(y + i * Q), Q);
    }
  }
}

// The reference's tree: vector k + vector k + V/2 while there are several, then halves of one.
HWY_INLINE float tree_sum(VF* s) {
  for (int h = V / 2; h >= 1; h /= 2)
    for (int k = 0; k < h; ++k) s[k] = hn::Add(s[k], s[k + h]);
  return fold_lanes(DF(), s[0]);
}

template <dtype F>
HWY_INLINE float dot_block(const float* q, const std::uint8_t* block) {
  const DF df;
  const levels<F> b = decode<F>(block);
  VF s[V];
  for (int k = 0; k < V; ++k) s[k] = hn::Mul(hn::LoadU(df, q + k * N), b.level[k]);
  const float dot = b.d * tree_sum(s);
  if constexpr (!levels<F>::has_min) return dot;
  for (int k = 0; k < V; ++k) s[k] = hn::LoadU(df, q + k * N);
  return dot + b.m * tree_sum(s);
}

template <dtype F>
HWY_INLINE float dot_row(const float* q, const std::uint8_t* blocks, std::int64_t n) {
  float sum = 0.0f;
  for (std::int64_t i = 0; i < n / Q; ++i) sum = sum + dot_block<F>(q + i * Q, blocks + i * bytes_of<F>);
  return sum;
}

template <dtype F>
HWY_INLINE void axpy_row(float w, const std::uint8_t* blocks, float* y, std::int64_t n) {
  const DF df;
  const VF vw = hn::Set(df, w);
  for (std::int64_t i = 0; i < n / Q; ++i) {
    const levels<F> b = decode<F>(blocks + i * bytes_of<F>);
    for (int k = 0; k < V; ++k) {
      float* yk = y + i * Q + k * N;
      hn::StoreU(hn::Add(hn::LoadU(df, yk), hn::Mul(vw, value(b, k))), df, yk);
    }
  }
}

// ------------------------------------------------------------------ exported (one switch per row)

template <class Body>
HWY_INLINE void with_format(int format, Body body) {
  switch (format) {
    case 0: return body.template operator()<dtype::q8_0>();
    case 1: return body.template operator()<dtype::q4_0>();
    case 2: return body.template operator()<dtype::q4_1>();
    case 3: return body.template operator()<dtype::q5_0>();
    case 4: return body.template operator()<dtype::q5_1>();
    default: return body.template operator()<dtype::iq4_nl>();
  }
}

void ggml_quantize_row(int format, bool f16_input, const void* x, std::uint8_t* blocks, std::int64_t n) {
  with_format(format, [&]<dtype F>() {
    if (f16_input)
      quantize_row<F>(static_cast<const f16_bits*>(x), blocks, n);
    else
      quantize_row<F>(static_cast<const float*>(x), blocks, n);
  });
}

void ggml_dequantize_row(int format, bool f16_output, const std::uint8_t* blocks, void* y, std::int64_t n) {
  with_format(format, [&]<dtype F>() {
    if (f16_output)
      dequantize_row<F>(blocks, static_cast<f16_bits*>(y), n);
    else
      dequantize_row<F>(blocks, static_cast<float*>(y), n);
  });
}

float ggml_dot_row(int format, const float* q, const std::uint8_t* blocks, std::int64_t n) {
  float out = 0.0f;
  with_format(format, [&]<dtype F>() { out = dot_row<F>(q, blocks, n); });
  return out;
}

void ggml_axpy_row(int format, float w, const std::uint8_t* blocks, float* y, std::int64_t n) {
  with_format(format, [&]<dtype F>() { axpy_row<F>(w, blocks, y, n); });
}

}  // namespace HWY_NAMESPACE
}  // namespace cinch::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cinch::cpu {

HWY_EXPORT(ggml_quantize_row);
HWY_EXPORT(ggml_dequantize_row);
HWY_EXPORT(ggml_dot_row);
HWY_EXPORT(ggml_axpy_row);

namespace {

template <int Format, bool F16>
void quantize_entry(const void* x, std::uint8_t* blocks, std::int64_t n) noexcept {
  HWY_DYNAMIC_DISPATCH(ggml_quantize_row)(Format, F16, x, blocks, n);
}
template <int Format, bool F16>
void dequantize_entry(const std::uint8_t* blocks, void* y, std::int64_t n) noexcept {
  HWY_DYNAMIC_DISPATCH(ggml_dequantize_row)(Format, F16, blocks, y, n);
}
template <int Format>
float dot_entry(const float* q, const std::uint8_t* blocks, std::int64_t n) noexcept {
  return HWY_DYNAMIC_DISPATCH(ggml_dot_row)(Format, q, blocks, n);
}
template <int Format>
void axpy_entry(float w, const std::uint8_t* blocks, float* y, std::int64_t n) noexcept {
  HWY_DYNAMIC_DISPATCH(ggml_axpy_row)(Format, w, blocks, y, n);
}

template <int... Formats>
constexpr kv::detail::block_kernels make_simd_table(std::integer_sequence<int, Formats...>) {
  return {{quantize_entry<Formats, false>...},  {quantize_entry<Formats, true>...},
          {dequantize_entry<Formats, false>...}, {dequantize_entry<Formats, true>...},
          {dot_entry<Formats>...},               {axpy_entry<Formats>...}};
}

constexpr kv::detail::block_kernels simd_table =
    make_simd_table(std::make_integer_sequence<int, kv::detail::block_format_count>());

}  // namespace
}  // namespace cinch::cpu

namespace cinch::kv::detail {
const block_kernels& simd_block_kernels() noexcept { return cpu::simd_table; }
}  // namespace cinch::kv::detail
#endif
