// Highway decode attention on the packed cache (cinch/ref/attention.hpp is the spec).
//
// Tokens go in tiles of up to 64: the tile's scores for up to 4 query heads at
// once, the online-softmax update (vectorized exp), then the tile's values. Each
// chunk of Lanes(d) channels of a key or value is decoded from its codes into
// registers once and used by every query head of the group: q . k and p * v
// never see an fp32 copy of the cache. Per-channel KIVI keys are vectorized
// over the tokens of a chunk instead: score_t = sum_c (q_c s_c) code_{c,t} + sum_c q_c m_c.
//
// Results differ from the reference only by f32 rounding: the scale is folded
// into q, dot products are summed lane-wise then across lanes, block scales are
// applied per element (x = code * d) rather than per block sum, exp is Highway's
// (about 1 ulp). The tests bound the difference against the dequantized cache.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/attention.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/cache_control.h>
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "cinch/ref/attention.hpp"
#include "kv/attention_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace cinch::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int kTile = 64;   // tokens per tile; split boundaries are multiples of it
constexpr int kHeads = 4;   // query heads sharing each decoded chunk
constexpr int kMaxDim = 1024;

template <class D>
using V = hn::Vec<D>;

HWY_INLINE float load_f16(const std::uint8_t* p) noexcept { return ref::f16_to_f32(std::uint16_t(p[0] | p[1] << 8)); }
HWY_INLINE float load_f32(const std::uint8_t* p) noexcept {
  float x;
  std::memcpy(&x, p, 4);
  return x;
}

// Asks for the bytes [at, at + bytes) `ahead` bytes further on: the hardware
// prefetcher stops at page bounds, which a stream of records crosses every
// few tiles. The address is formed as an integer: it may lie past the cache.
HWY_INLINE void prefetch_ahead(const void* at, std::int64_t ahead, std::int64_t bytes) noexcept {
  const auto base = reinterpret_cast<std::uintptr_t>(at) + static_cast<std::uintptr_t>(ahead);
  for (std::int64_t off = 0; off < bytes; off += 64)
    hwy::Prefetch(reinterpret_cast<const std::uint8_t*>(base + static_cast<std::uintptr_t>(off)));
}

// Lanes(d) unsigned bytes widened to u32 lanes.
template <class D>
HWY_INLINE auto widen_bytes(D /* d */, const std::uint8_t* p) {
  const hn::Rebind<std::uint8_t, D> d8;
  return hn::PromoteTo(hn::RebindToUnsigned<D>(), hn::LoadU(d8, p));
}

// Lanes(d) fp16 values. Highway 1.0.3 emulates the conversion below AVX2 without
// inf and NaN, so there the magnitude goes into an f32 and is scaled by 2^112
// (exact for normals and subnormals), with exponent 31 mapped to inf / NaN.
template <class D>
HWY_INLINE V<D> load_f16_lanes(D d, const std::uint8_t* p) {
#if HWY_TARGET >= HWY_SSE4
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<std::uint16_t, D> d16;
  const auto b = hn::PromoteTo(du, hn::LoadU(d16, reinterpret_cast<const std::uint16_t*>(p)));
  const auto mag = hn::And(b, hn::Set(du, 0x7FFF));
  const V<D> finite = hn::Mul(hn::BitCast(d, hn::ShiftLeft<13>(mag)), hn::Set(d, 0x1p112f));
  const V<D> special = hn::BitCast(d, hn::Or(hn::Set(du, 0x7F800000u), hn::ShiftLeft<13>(hn::And(b, hn::Set(du, 0x3FF)))));
  const auto is_special = hn::RebindMask(d, hn::Eq(hn::And(mag, hn::Set(du, 0x7C00)), hn::Set(du, 0x7C00)));
  return hn::Or(hn::IfThenElse(is_special, special, finite), hn::BitCast(d, hn::ShiftLeft<16>(hn::And(b, hn::Set(du, 0x8000)))));
#else
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
#endif
}

// One fp16 value (little-endian at p) in every lane.
template <class D>
HWY_INLINE V<D> broadcast_f16(D d, const std::uint8_t* p) {
#if HWY_TARGET >= HWY_SSE4
  return hn::Set(d, load_f16(p));
#else
  const hn::Rebind<std::uint16_t, D> d16;
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(d, hn::BitCast(dh, hn::Set(d16, std::uint16_t(p[0] | p[1] << 8))));
#endif
}

#if HWY_TARGET != HWY_SCALAR
// Sums of four vectors in lanes 0..3 of the result: each step adds even and odd
// lanes of two vectors side by side (lanes(d) >= 4).
template <class D>
HWY_INLINE V<D> sum4(D d, V<D> a0, V<D> a1, V<D> a2, V<D> a3) {
  const V<D> p01 = hn::Add(hn::ConcatEven(d, a1, a0), hn::ConcatOdd(d, a1, a0));  // [a0 pairs | a1 pairs]
  const V<D> p23 = hn::Add(hn::ConcatEven(d, a3, a2), hn::ConcatOdd(d, a3, a2));
  V<D> q = hn::Add(hn::ConcatEven(d, p23, p01), hn::ConcatOdd(d, p23, p01));  // [a0 | a1 | a2 | a3] quarters
  for (std::size_t n = hn::Lanes(d); n > 4; n /= 2) q = hn::Add(hn::ConcatEven(d, q, q), hn::ConcatOdd(d, q, q));
  return q;
}
#endif

template <class D, class VI>
HWY_INLINE V<D> to_float(D d, VI v) {
  return hn::ConvertTo(d, hn::BitCast(hn::RebindToSigned<D>(), v));
}

// KIVI codes are unpacked by interleaving bytes, which the single-lane target
// lacks: there KIVI heads run the reference.
#define CINCH_KIVI_SIMD (HWY_TARGET != HWY_SCALAR)

#if CINCH_KIVI_SIMD
// Codes [first, first + Lanes(d)) of an array packed lowest bits first, Bits in {2, 4, 8};
// first * Bits is a multiple of 8. Reads Lanes(d) bytes (the cache pads its buffers).
template <int Bits, class D>
HWY_INLINE auto unpack_codes(D /* d */, const std::uint8_t* codes, std::int64_t first) {
  const hn::Rebind<std::uint8_t, D> d8;
  const auto v = hn::LoadU(d8, codes + first * Bits / 8);
  if constexpr (Bits == 8) {
    return hn::PromoteTo(hn::RebindToUnsigned<D>(), v);
  } else if constexpr (Bits == 4) {
    const auto lo = hn::And(v, hn::Set(d8, 15)), hi = hn::ShiftRight<4>(v);
    return hn::PromoteTo(hn::RebindToUnsigned<D>(), hn::InterleaveLower(d8, lo, hi));
  } else {
    static_assert(Bits == 2, "2-, 4- or 8-bit codes");
    const auto three = hn::Set(d8, 3);
    const auto a = hn::InterleaveLower(d8, hn::And(v, three), hn::And(hn::ShiftRight<2>(v), three));
    const auto b = hn::InterleaveLower(d8, hn::And(hn::ShiftRight<4>(v), three), hn::ShiftRight<6>(v));
    const hn::Repartition<std::uint16_t, decltype(d8)> d16;
    const auto z = hn::BitCast(d8, hn::InterleaveLower(d16, hn::BitCast(d16, a), hn::BitCast(d16, b)));
    return hn::PromoteTo(hn::RebindToUnsigned<D>(), z);
  }
}

// Codes [first, first + 2 * Lanes(d)) as two vectors, from one load where the
// packing allows (first * Bits is a multiple of 8).
template <int Bits, class D>
HWY_INLINE void unpack_pair(D d, const std::uint8_t* codes, std::int64_t first, hn::Vec<hn::RebindToUnsigned<D>>& x,
                 hn::Vec<hn::RebindToUnsigned<D>>& y) {
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<std::uint8_t, D> d8;
  if constexpr (Bits == 8) {
    x = unpack_codes<8>(d, codes, first);
    y = unpack_codes<8>(d, codes, first + std::int64_t(hn::Lanes(d)));
  } else if constexpr (Bits == 4) {
    const auto v = hn::LoadU(d8, codes + first / 2);
    const auto lo = hn::And(v, hn::Set(d8, 15)), hi = hn::ShiftRight<4>(v);
    x = hn::PromoteTo(du, hn::InterleaveLower(d8, lo, hi));
    y = hn::PromoteTo(du, hn::InterleaveUpper(d8, lo, hi));
  } else {
    const auto v = hn::LoadU(d8, codes + first / 4);
    const auto three = hn::Set(d8, 3);
    const auto a = hn::InterleaveLower(d8, hn::And(v, three), hn::And(hn::ShiftRight<2>(v), three));
    const auto b = hn::InterleaveLower(d8, hn::And(hn::ShiftRight<4>(v), three), hn::ShiftRight<6>(v));
    const hn::Repartition<std::uint16_t, decltype(d8)> d16;
    x = hn::PromoteTo(du, hn::BitCast(d8, hn::InterleaveLower(d16, hn::BitCast(d16, a), hn::BitCast(d16, b))));
    y = hn::PromoteTo(du, hn::BitCast(d8, hn::InterleaveUpper(d16, hn::BitCast(d16, a), hn::BitCast(d16, b))));
  }
}

// acc[g] += w[g * w_stride] * x and acc2[g] += w[g * w_stride] * y for the heads
// g < heads, with x, y the code pair at `first`: the inner step of every loop
// that weights raw KIVI codes (key chunks by q * scale, value groups by p * scale).
template <int Bits, class D>
HWY_INLINE void accumulate_codes(D d, const std::uint8_t* codes, std::int64_t first, const float* w,
                                 std::int64_t w_stride, int heads, V<D> (&acc)[kHeads], V<D> (&acc2)[kHeads]) {
  hn::Vec<hn::RebindToUnsigned<D>> cx, cy;
  unpack_pair<Bits>(d, codes, first, cx, cy);
  const V<D> x = to_float(d, cx), y = to_float(d, cy);
  for (int g = 0; g < kHeads; ++g)
    if (g < heads) {
      const V<D> wg = hn::Set(d, w[g * w_stride]);
      acc[g] = hn::MulAdd(wg, x, acc[g]);
      acc2[g] = hn::MulAdd(wg, y, acc2[g]);
    }
}
#endif

// ---------------------------------------------------------------- decoders
// A decoder gives channels [c, c + Lanes(d)) of one token's record, dequantized:
// prepare(d, s, rec, c) loads the scale and offset of the block or group holding
// channel c (once for every chunk of that block), decode(d, s, rec, c, a) the values.

template <class D>
struct affine {
  V<D> scale, offset;
};

struct unscaled {
  template <class D>
  HWY_INLINE static affine<D> prepare(D d, const kv::stream_view&, const std::uint8_t*, int) {
    return {hn::Zero(d), hn::Zero(d)};
  }
};

struct f32_decoder : unscaled {
  template <class D>
  HWY_INLINE static V<D> decode(D d, const kv::stream_view&, const std::uint8_t* rec, int c, const affine<D>&) {
    return hn::LoadU(d, reinterpret_cast<const float*>(rec) + c);
  }
};

struct f16_decoder : unscaled {
  template <class D>
  HWY_INLINE static V<D> decode(D d, const kv::stream_view&, const std::uint8_t* rec, int c, const affine<D>&) {
    return load_f16_lanes(d, rec + 2 * c);
  }
};

struct bf16_decoder : unscaled {
  template <class D>
  HWY_INLINE static V<D> decode(D d, const kv::stream_view&, const std::uint8_t* rec, int c, const affine<D>&) {
    const hn::Rebind<std::uint16_t, D> d16;
    const auto wide = hn::PromoteTo(hn::RebindToUnsigned<D>(), hn::LoadU(d16, reinterpret_cast<const std::uint16_t*>(rec) + c));
    return hn::BitCast(d, hn::ShiftLeft<16>(wide));
  }
};

// fp8: the magnitude bits placed in an f32's exponent and mantissa and scaled
// by 2^(127 - bias) give every finite value exactly (subnormals too); the
// all-ones codes are NaN (e4m3) or inf/NaN (e5m2). Then times the head's scale.
template <bool E4M3>
struct fp8_decoder {
  template <class D>
  HWY_INLINE static affine<D> prepare(D d, const kv::stream_view& s, const std::uint8_t*, int) {
    return {hn::Set(d, s.scale), hn::Zero(d)};
  }
  template <class D>
  HWY_INLINE static V<D> decode(D d, const kv::stream_view&, const std::uint8_t* rec, int c, const affine<D>& a) {
    const hn::RebindToUnsigned<D> du;
    const auto b = widen_bytes(d, rec + c);
    const auto mag = hn::And(b, hn::Set(du, 0x7F));
    const auto sign = hn::ShiftLeft<24>(hn::And(b, hn::Set(du, 0x80)));
    V<D> v;
    if constexpr (E4M3) {
      v = hn::Mul(hn::BitCast(d, hn::ShiftLeft<20>(mag)), hn::Set(d, 0x1p120f));
      v = hn::IfThenElse(hn::RebindMask(d, hn::Eq(mag, hn::Set(du, 0x7F))), hn::Set(d, std::numeric_limits<float>::quiet_NaN()), v);
    } else {
      v = hn::Mul(hn::BitCast(d, hn::ShiftLeft<21>(mag)), hn::Set(d, 0x1p112f));
      const auto special = hn::BitCast(d, hn::Or(hn::Set(du, 0x7F800000u), hn::ShiftLeft<21>(hn::And(b, hn::Set(du, 3)))));
      v = hn::IfThenElse(hn::RebindMask(d, hn::Eq(hn::And(mag, hn::Set(du, 0x7C)), hn::Set(du, 0x7C))), special, v);
    }
    return hn::Mul(hn::Or(v, hn::BitCast(d, sign)), a.scale);
  }
};

struct int8_decoder {
  template <class D>
  HWY_INLINE static affine<D> prepare(D d, const kv::stream_view&, const std::uint8_t* rec, int) {
    return {hn::Set(d, load_f32(rec)), hn::Zero(d)};
  }
  template <class D>
  HWY_INLINE static V<D> decode(D d, const kv::stream_view&, const std::uint8_t* rec, int c, const affine<D>& a) {
    const hn::Rebind<std::int8_t, D> d8;
    const auto codes = hn::PromoteTo(hn::RebindToSigned<D>(), hn::LoadU(d8, reinterpret_cast<const std::int8_t*>(rec) + 4 + c));
    return hn::Mul(hn::ConvertTo(d, codes), a.scale);
  }
};

// ggml blocks: channels c.. lie in block c / 32, at j0 = c % 32 (Lanes(d) divides 16).
// q4_0 / q5_0 give (c - half) * d as fma(c, d, -half * d): one rounding of the
// same exact value, so the very bits of the reference.
template <dtype Format>
struct ggml_decoder {
  HWY_INLINE static const std::uint8_t* block_of(const std::uint8_t* rec, int c) { return rec + (c / 32) * info(Format).block_bytes; }

  template <class D>
  HWY_INLINE static affine<D> prepare(D d, const kv::stream_view&, const std::uint8_t* rec, int c) {
    const std::uint8_t* block = block_of(rec, c);
    const V<D> scale = broadcast_f16(d, block);
    if constexpr (Format == dtype::q4_0) return {scale, hn::Mul(scale, hn::Set(d, -8.0f))};
    if constexpr (Format == dtype::q5_0) return {scale, hn::Mul(scale, hn::Set(d, -16.0f))};
    if constexpr (Format == dtype::q4_1 || Format == dtype::q5_1) return {scale, broadcast_f16(d, block + 2)};
    return {scale, hn::Zero(d)};
  }

  template <class D>
  HWY_INLINE static V<D> decode(D d, const kv::stream_view&, const std::uint8_t* rec, int c, const affine<D>& a) {
    const hn::RebindToSigned<D> di;
    const hn::RebindToUnsigned<D> du;
    const std::uint8_t* block = block_of(rec, c);
    const int j0 = c % 32;
    if constexpr (Format == dtype::q8_0) {
      const hn::Rebind<std::int8_t, D> d8;
      return hn::Mul(hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, reinterpret_cast<const std::int8_t*>(block) + 2 + j0))), a.scale);
    } else {
      constexpr int qs = Format == dtype::q5_0 ? 6 : Format == dtype::q4_1 ? 4 : Format == dtype::q5_1 ? 8 : 2;
      auto codes = widen_bytes(d, block + qs + (j0 & 15));
      codes = j0 >= 16 ? hn::ShiftRight<4>(codes) : hn::And(codes, hn::Set(du, 15));
      if constexpr (Format == dtype::q5_0 || Format == dtype::q5_1) {
        std::uint32_t qh;
        std::memcpy(&qh, block + (Format == dtype::q5_0 ? 2 : 4), 4);
        const auto high = hn::And(hn::Set(du, qh) >> hn::Iota(du, std::uint32_t(j0)), hn::Set(du, 1));
        codes = hn::Or(codes, hn::ShiftLeft<4>(high));
      }
      return values(d, codes, a);
    }
  }

  // The 32 channels of a whole block with 16 lanes: low and high nibbles of the same 16 bytes.
  template <class D>
  HWY_INLINE static void decode_pair(D d, const kv::stream_view& s, const std::uint8_t* rec, int c, const affine<D>& a, V<D>& x,
                          V<D>& y) {
    if constexpr (hn::MaxLanes(D()) == 16 && Format != dtype::q8_0 && Format != dtype::q5_0 && Format != dtype::q5_1) {
      const hn::RebindToUnsigned<D> du;
      constexpr int qs = Format == dtype::q4_1 ? 4 : 2;
      const auto codes = widen_bytes(d, block_of(rec, c) + qs);
      x = values(d, hn::And(codes, hn::Set(du, 15)), a);
      y = values(d, hn::ShiftRight<4>(codes), a);
    } else {
      x = decode(d, s, rec, c, a);
      y = decode(d, s, rec, c + int(hn::Lanes(d)), a);
    }
  }

 private:
  template <class D, class VU>
  HWY_INLINE static V<D> values(D d, VU codes, const affine<D>& a) {
    if constexpr (Format == dtype::iq4_nl) {
      const hn::RebindToSigned<D> di;
      alignas(64) static constexpr std::int32_t table[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                              1,    13,   25,  38,  53,  69,  89,  113};
      return hn::Mul(hn::ConvertTo(d, hn::GatherIndex(di, table, hn::BitCast(di, codes))), a.scale);
    } else {
      return hn::MulAdd(to_float(d, codes), a.scale, a.offset);
    }
  }
};

#if CINCH_KIVI_SIMD
// KIVI values: fp16 scales[ng], mins[ng], codes; Lanes(d) divides the group.
template <int Bits>
struct kivi_decoder {
  static constexpr int bits = Bits;
  template <class D>
  HWY_INLINE static affine<D> prepare(D d, const kv::stream_view& s, const std::uint8_t* rec, int c) {
    const int groups = s.head_dim / s.fmt.group, g = c / s.fmt.group;
    return {broadcast_f16(d, rec + 2 * g), broadcast_f16(d, rec + 2 * (groups + g))};
  }
  template <class D>
  HWY_INLINE static V<D> decode(D d, const kv::stream_view& s, const std::uint8_t* rec, int c, const affine<D>& a) {
    const auto codes = unpack_codes<Bits>(d, rec + 4 * (s.head_dim / s.fmt.group), c);
    return hn::MulAdd(to_float(d, codes), a.scale, a.offset);
  }
  // Channels [c, c + 2 * Lanes(d)) of one group.
  template <class D>
  HWY_INLINE static void decode_pair(D d, const kv::stream_view& s, const std::uint8_t* rec, int c, const affine<D>& a, V<D>& x,
                          V<D>& y) {
    hn::Vec<hn::RebindToUnsigned<D>> cx, cy;
    unpack_pair<Bits>(d, rec + 4 * (s.head_dim / s.fmt.group), c, cx, cy);
    x = hn::MulAdd(to_float(d, cx), a.scale, a.offset);
    y = hn::MulAdd(to_float(d, cy), a.scale, a.offset);
  }
};
#endif

// Channels that share one prepare(): a ggml block, a KIVI group, or the whole row.
inline int shared_run(const kv::stream_view& s) noexcept {
  if (kv::is_ggml(s.fmt.kind)) return 32;
  if (kv::is_kivi(s.fmt.kind)) return s.fmt.group;
  return s.head_dim;
}

// ---------------------------------------------------------------- per-token streams

// Channels [c, c + 2 * Lanes(d)) of a record: one decode_pair where the decoder
// has one and both chunks share their scale, else two decodes.
template <class Decoder, class D>
HWY_INLINE void decode_two(D d, const kv::stream_view& s, const std::uint8_t* rec, int c, bool shared, V<D>& x, V<D>& y) {
  const affine<D> a = Decoder::prepare(d, s, rec, c);
  if constexpr (requires { Decoder::decode_pair(d, s, rec, c, a, x, y); }) {
    if (shared) return Decoder::decode_pair(d, s, rec, c, a, x, y);
  }
  x = Decoder::decode(d, s, rec, c, a);
  y = Decoder::decode(d, s, rec, c + int(hn::Lanes(d)), shared ? a : Decoder::prepare(d, s, rec, c + int(hn::Lanes(d))));
}

// Scores of tokens [t0, t1) held as records base + (t - first) * unit:
// scores[g * kTile + t - t0] = q_g . x_t (q already scaled). Two chunks per
// step give 8 independent FMA chains; the 4 heads' sums are reduced together.
template <class Decoder, class D>
void record_scores(D d, const kv::stream_view& s, const std::uint8_t* base, std::int64_t unit, std::int64_t first,
                   std::int64_t t0, std::int64_t t1, const float* q, int heads, float* scores) {
  const int n = s.head_dim, lanes = int(hn::Lanes(d));
  const int paired = n / (2 * lanes) * (2 * lanes);
  const bool shared = shared_run(s) % (2 * lanes) == 0;
  for (std::int64_t t = t0; t < t1; ++t) {
    const std::uint8_t* rec = base + (t - first) * unit;
    prefetch_ahead(rec, kTile * unit, unit);
    V<D> acc[kHeads], acc2[kHeads];
    for (int g = 0; g < kHeads; ++g) acc[g] = acc2[g] = hn::Zero(d);
    int c = 0;
    for (; c < paired; c += 2 * lanes) {
      V<D> x, y;
      decode_two<Decoder>(d, s, rec, c, shared, x, y);
      for (int g = 0; g < kHeads; ++g)
        if (g < heads) {
          acc[g] = hn::MulAdd(hn::LoadU(d, q + g * n + c), x, acc[g]);
          acc2[g] = hn::MulAdd(hn::LoadU(d, q + g * n + c + lanes), y, acc2[g]);
        }
    }
    for (; c < n; c += lanes) {
      const V<D> x = Decoder::decode(d, s, rec, c, Decoder::prepare(d, s, rec, c));
      for (int g = 0; g < kHeads; ++g)
        if (g < heads) acc[g] = hn::MulAdd(hn::LoadU(d, q + g * n + c), x, acc[g]);
    }
    for (int g = 0; g < kHeads; ++g) acc[g] = hn::Add(acc[g], acc2[g]);
#if HWY_TARGET != HWY_SCALAR
    if constexpr (hn::MaxLanes(D()) >= 4) {
      alignas(64) float sums[hn::MaxLanes(D())];
      hn::Store(sum4(d, acc[0], acc[1], acc[2], acc[3]), d, sums);
      for (int g = 0; g < heads; ++g) scores[g * kTile + (t - t0)] = sums[g];
      continue;
    }
#endif
    for (int g = 0; g < heads; ++g) scores[g * kTile + (t - t0)] = hn::GetLane(hn::SumOfLanes(d, acc[g]));
  }
}

// out_g += sum_t p[g * kTile + t - t0] * x_t over tokens [t0, t1); out_g at
// out + g * out_stride. Two chunks per step share the weight broadcasts.
template <class Decoder, class D>
void record_accumulate(D d, const kv::stream_view& s, const std::uint8_t* base, std::int64_t unit, std::int64_t first,
                       std::int64_t t0, std::int64_t t1, const float* p, int heads, float* out, std::int64_t out_stride) {
  const int n = s.head_dim, lanes = int(hn::Lanes(d));
  const int paired = n / (2 * lanes) * (2 * lanes);
  const bool shared = shared_run(s) % (2 * lanes) == 0;
  int c = 0;
  for (; c < paired; c += 2 * lanes) {
    V<D> acc[kHeads], acc2[kHeads];
    for (int g = 0; g < kHeads; ++g) {
      acc[g] = g < heads ? hn::LoadU(d, out + g * out_stride + c) : hn::Zero(d);
      acc2[g] = g < heads ? hn::LoadU(d, out + g * out_stride + c + lanes) : hn::Zero(d);
    }
    for (std::int64_t t = t0; t < t1; ++t) {
      if (c == 0) prefetch_ahead(base + (t - first) * unit, kTile * unit, unit);
      V<D> x, y;
      decode_two<Decoder>(d, s, base + (t - first) * unit, c, shared, x, y);
      for (int g = 0; g < kHeads; ++g)
        if (g < heads) {
          const V<D> w = hn::Set(d, p[g * kTile + (t - t0)]);
          acc[g] = hn::MulAdd(w, x, acc[g]);
          acc2[g] = hn::MulAdd(w, y, acc2[g]);
        }
    }
    for (int g = 0; g < kHeads; ++g)
      if (g < heads) {
        hn::StoreU(acc[g], d, out + g * out_stride + c);
        hn::StoreU(acc2[g], d, out + g * out_stride + c + lanes);
      }
  }
  for (; c < n; c += lanes) {
    V<D> acc[kHeads];
    for (int g = 0; g < kHeads; ++g) acc[g] = g < heads ? hn::LoadU(d, out + g * out_stride + c) : hn::Zero(d);
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::uint8_t* rec = base + (t - first) * unit;
      const V<D> x = Decoder::decode(d, s, rec, c, Decoder::prepare(d, s, rec, c));
      for (int g = 0; g < kHeads; ++g)
        if (g < heads) acc[g] = hn::MulAdd(hn::Set(d, p[g * kTile + (t - t0)]), x, acc[g]);
    }
    for (int g = 0; g < kHeads; ++g)
      if (g < heads) hn::StoreU(acc[g], d, out + g * out_stride + c);
  }
}

#if CINCH_KIVI_SIMD
// KIVI values with each group's affine folded into the weights,
//   out_g += sum_t (p_gt s_t) code_t + sum_t p_gt m_t,
// the weights formed once per group for the whole tile, vectorized over its
// tokens: the inner loop is unpack, convert and one FMA per head and chunk
// (record_accumulate dequantizes every chunk of every token first). Tokens
// [t0, t1) of the packed records; the group holds a whole number of 2 * Lanes(d).
template <int Bits, class D>
void kivi_value_accumulate(D d, const kv::stream_view& s, std::int64_t t0, std::int64_t t1, const float* p, int heads,
                           float* out, std::int64_t out_stride) {
  const int n = s.head_dim, lanes = int(hn::Lanes(d)), group = s.fmt.group, groups = n / group;
  const auto* base = reinterpret_cast<const std::uint8_t*>(s.packed) + t0 * s.unit_bytes;
  const std::int64_t unit = s.unit_bytes, count = t1 - t0;
  const std::int64_t padded = (count + lanes - 1) / lanes * lanes;  // <= kTile
  alignas(64) std::uint16_t scale_bits[kTile], min_bits[kTile];
  alignas(64) float w[kHeads * kTile];
  for (int gi = 0; gi < groups; ++gi) {
    for (std::int64_t t = 0; t < padded; ++t) {
      scale_bits[t] = min_bits[t] = 0;
      if (t < count) {
        std::memcpy(scale_bits + t, base + t * unit + 2 * gi, 2);
        std::memcpy(min_bits + t, base + t * unit + 2 * (groups + gi), 2);
      }
    }
    V<D> bias[kHeads];
    for (int g = 0; g < kHeads; ++g) bias[g] = hn::Zero(d);
    for (std::int64_t j = 0; j < padded; j += lanes) {
      const auto live = hn::FirstN(d, static_cast<std::size_t>(count - j));
      const V<D> scale = load_f16_lanes(d, reinterpret_cast<const std::uint8_t*>(scale_bits + j));
      const V<D> mn = load_f16_lanes(d, reinterpret_cast<const std::uint8_t*>(min_bits + j));
      for (int g = 0; g < kHeads; ++g)
        if (g < heads) {
          const V<D> pg = hn::IfThenElseZero(live, hn::LoadU(d, p + g * kTile + j));
          hn::Store(hn::Mul(pg, scale), d, w + g * kTile + j);
          bias[g] = hn::MulAdd(pg, mn, bias[g]);
        }
    }
    V<D> bias_sum[kHeads];
    for (int g = 0; g < kHeads; ++g) bias_sum[g] = hn::SumOfLanes(d, bias[g]);
    for (int c = gi * group; c < (gi + 1) * group; c += 2 * lanes) {
      V<D> acc[kHeads], acc2[kHeads];
      for (int g = 0; g < kHeads; ++g) {
        acc[g] = g < heads ? hn::Add(hn::LoadU(d, out + g * out_stride + c), bias_sum[g]) : hn::Zero(d);
        acc2[g] = g < heads ? hn::Add(hn::LoadU(d, out + g * out_stride + c + lanes), bias_sum[g]) : hn::Zero(d);
      }
      for (std::int64_t t = 0; t < count; ++t) {
        if (c == 0) prefetch_ahead(base + t * unit, kTile * unit, unit);  // spread over the first chunk's work
        accumulate_codes<Bits>(d, base + t * unit + 4 * groups, c, w + t, kTile, heads, acc, acc2);
      }
      for (int g = 0; g < kHeads; ++g)
        if (g < heads) {
          hn::StoreU(acc[g], d, out + g * out_stride + c);
          hn::StoreU(acc2[g], d, out + g * out_stride + c + lanes);
        }
    }
  }
}
#endif

// Calls fn(decoder) with the decoder of a per-token format.
template <class D, class Fn>
void with_decoder(kv::scheme kind, Fn&& fn) {
  switch (kind) {
    case kv::scheme::f32: return fn(f32_decoder{});
    case kv::scheme::f16: return fn(f16_decoder{});
    case kv::scheme::bf16: return fn(bf16_decoder{});
    case kv::scheme::fp8_e4m3: return fn(fp8_decoder<true>{});
    case kv::scheme::fp8_e5m2: return fn(fp8_decoder<false>{});
    case kv::scheme::int8: return fn(int8_decoder{});
    case kv::scheme::q8_0: return fn(ggml_decoder<dtype::q8_0>{});
    case kv::scheme::q4_0: return fn(ggml_decoder<dtype::q4_0>{});
    case kv::scheme::q4_1: return fn(ggml_decoder<dtype::q4_1>{});
    case kv::scheme::q5_0: return fn(ggml_decoder<dtype::q5_0>{});
    case kv::scheme::q5_1: return fn(ggml_decoder<dtype::q5_1>{});
    case kv::scheme::iq4_nl: return fn(ggml_decoder<dtype::iq4_nl>{});
    case kv::scheme::kivi4:
    case kv::scheme::kivi2:
    case kv::scheme::kivi8:
#if CINCH_KIVI_SIMD
      if constexpr (hn::MaxLanes(D()) >= 2) {
        if (kind == kv::scheme::kivi4) return fn(kivi_decoder<4>{});
        if (kind == kv::scheme::kivi8) return fn(kivi_decoder<8>{});
        return fn(kivi_decoder<2>{});
      }
#endif
      return;
  }
}

// ---------------------------------------------------------------- per-channel keys
#if CINCH_KIVI_SIMD

// Scores of tokens [t0, t1) inside one chunk of KIVI keys; t0 - chunk start and
// t1 - t0 are multiples of Lanes(d).
template <int Bits, class D>
void chunk_scores(D d, const kv::stream_view& s, std::int64_t t0, std::int64_t t1, const float* q, int heads,
                  float* scores) {
  const int n = s.head_dim, lanes = int(hn::Lanes(d));
  const ref::attention_detail::key_chunk k = ref::attention_detail::key_chunk_of(s, t0 / s.fmt.group);
  const std::int64_t offset = t0 % s.fmt.group;
  // q_c * s_c per head, and the bias sum_c q_c m_c shared by the chunk's tokens.
  alignas(64) float qs[kHeads * kMaxDim];
  float bias[kHeads] = {};
  for (int g = 0; g < heads; ++g) {
    V<D> b = hn::Zero(d);
    for (int c = 0; c < n; c += lanes) {
      const V<D> scale = load_f16_lanes(d, reinterpret_cast<const std::uint8_t*>(k.scales + c));
      const V<D> mn = load_f16_lanes(d, reinterpret_cast<const std::uint8_t*>(k.mins + c));
      const V<D> qv = hn::LoadU(d, q + g * n + c);
      hn::Store(hn::Mul(qv, scale), d, qs + g * n + c);
      b = hn::MulAdd(qv, mn, b);
    }
    bias[g] = hn::GetLane(hn::SumOfLanes(d, b));
  }
  std::int64_t t = t0;
  for (; t + 2 * lanes <= t1; t += 2 * lanes) {  // two token vectors share each channel's weights
    V<D> acc[kHeads], acc2[kHeads];
    for (int g = 0; g < kHeads; ++g) acc[g] = acc2[g] = hn::Set(d, bias[g]);
    for (int c = 0; c < n; ++c) {
      if (t == t0 && c % 2 == 0)  // the chunk two ahead, a line per two channels
        prefetch_ahead(reinterpret_cast<const std::uint8_t*>(k.scales) + c * s.unit_bytes / n, 2 * s.unit_bytes, 1);
      accumulate_codes<Bits>(d, k.codes + c * k.channel_stride, offset + (t - t0), qs + c, n, heads, acc, acc2);
    }
    for (int g = 0; g < kHeads; ++g)
      if (g < heads) {
        hn::StoreU(acc[g], d, scores + g * kTile + (t - t0));
        hn::StoreU(acc2[g], d, scores + g * kTile + (t - t0) + lanes);
      }
  }
  for (; t < t1; t += lanes) {
    V<D> acc[kHeads];
    for (int g = 0; g < kHeads; ++g) acc[g] = hn::Set(d, bias[g]);
    for (int c = 0; c < n; ++c) {
      const V<D> x = to_float(d, unpack_codes<Bits>(d, k.codes + c * k.channel_stride, offset + (t - t0)));
      for (int g = 0; g < kHeads; ++g)
        if (g < heads) acc[g] = hn::MulAdd(hn::Set(d, qs[g * n + c]), x, acc[g]);
    }
    for (int g = 0; g < kHeads; ++g)
      if (g < heads) hn::StoreU(acc[g], d, scores + g * kTile + (t - t0));
  }
}
#endif

// ---------------------------------------------------------------- one tile

template <class D>
void tile_scores(D d, const kv::stream_view& s, std::int64_t t0, std::int64_t t1, const float* q, int heads,
                 float* scores) {
  if (t0 >= s.packed_tokens) {
    record_scores<f32_decoder>(d, s, reinterpret_cast<const std::uint8_t*>(s.residual), 4 * std::int64_t(s.head_dim),
                               s.packed_tokens, t0, t1, q, heads, scores);
  } else if (s.per_channel()) {
#if CINCH_KIVI_SIMD
    if constexpr (hn::MaxLanes(D()) >= 2) {
      if (s.fmt.kind == kv::scheme::kivi4)
        chunk_scores<4>(d, s, t0, t1, q, heads, scores);
      else if (s.fmt.kind == kv::scheme::kivi8)
        chunk_scores<8>(d, s, t0, t1, q, heads, scores);
      else
        chunk_scores<2>(d, s, t0, t1, q, heads, scores);
    }
#endif
  } else {
    with_decoder<D>(s.fmt.kind, [&](auto decoder) {
      record_scores<decltype(decoder)>(d, s, reinterpret_cast<const std::uint8_t*>(s.packed), s.unit_bytes, 0, t0, t1,
                                       q, heads, scores);
    });
  }
}

template <class D>
void tile_accumulate(D d, const kv::stream_view& s, std::int64_t t0, std::int64_t t1, const float* p, int heads,
                     float* out, std::int64_t out_stride) {
  const std::int64_t split = std::clamp(s.packed_tokens, t0, t1);
  if (split > t0)
    with_decoder<D>(s.fmt.kind, [&](auto decoder) {
#if CINCH_KIVI_SIMD
      if constexpr (requires { decltype(decoder)::bits; }) {
        if (s.fmt.group % (2 * int(hn::Lanes(d))) == 0)
          return kivi_value_accumulate<decltype(decoder)::bits>(d, s, t0, split, p, heads, out, out_stride);
      }
#endif
      record_accumulate<decltype(decoder)>(d, s, reinterpret_cast<const std::uint8_t*>(s.packed), s.unit_bytes, 0, t0,
                                           split, p + 0, heads, out, out_stride);
    });
  if (t1 > split)
    record_accumulate<f32_decoder>(d, s, reinterpret_cast<const std::uint8_t*>(s.residual), 4 * std::int64_t(s.head_dim),
                                   s.packed_tokens, split, t1, p + (split - t0), heads, out, out_stride);
}

// Online-softmax update of one head by a tile of `count` scores (padded to kTile):
// scores become the weights p = exp(s - m_new); sum and out are rescaled.
template <class D>
void softmax_tile(D d, float* scores, int count, float& m, float& sum, float* out, int n) {
  const int lanes = int(hn::Lanes(d));
  for (int t = count; t < kTile; ++t) scores[t] = -std::numeric_limits<float>::infinity();
  const int padded = (count + lanes - 1) / lanes * lanes;
  V<D> vmax = hn::Set(d, -std::numeric_limits<float>::infinity());
  for (int t = 0; t < padded; t += lanes) vmax = hn::Max(vmax, hn::LoadU(d, scores + t));
  const float tile_max = hn::GetLane(hn::MaxOfLanes(d, vmax));
  const float m_new = tile_max > m ? tile_max : m;
  const V<D> vm = hn::Set(d, m_new);
  V<D> vsum = hn::Zero(d);
  for (int t = 0; t < padded; t += lanes) {
    const V<D> x = hn::Sub(hn::LoadU(d, scores + t), vm);
    const V<D> p = hn::IfThenElse(hn::IsNaN(x), x, hn::Exp(d, x));  // Exp maps NaN to 0: keep it NaN
    hn::StoreU(p, d, scores + t);
    vsum = hn::Add(vsum, p);
  }
  const float tile_sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  if (m_new != m) {
    const float shrink = std::exp(m - m_new);
    sum *= shrink;
    const V<D> vs = hn::Set(d, shrink);
    for (int c = 0; c < n; c += lanes) hn::StoreU(hn::Mul(hn::LoadU(d, out + c), vs), d, out + c);
    m = m_new;
  }
  sum += tile_sum;
}

// End of the tile starting at t0: at most kTile tokens, within one key chunk and
// one side of the keys' packed / residual boundary.
inline std::int64_t tile_end(const kv::stream_view& keys, std::int64_t t0, std::int64_t end) noexcept {
  std::int64_t t1 = std::min(end, t0 + kTile);
  if (t0 < keys.packed_tokens) {
    t1 = std::min(t1, keys.packed_tokens);
    if (keys.per_channel()) t1 = std::min(t1, (t0 / keys.fmt.group + 1) * keys.fmt.group);
  }
  return t1;
}

template <class D>
void attend_with(D d, const kv::head_view& h, std::int64_t begin, std::int64_t end, const float* q, int group,
                 float scale, float* partials, std::int64_t stride) {
  const int n = h.keys.head_dim, lanes = int(hn::Lanes(d));
  alignas(64) float qs[kHeads * kMaxDim];
  alignas(64) float scores[kHeads * kTile];
  for (int g0 = 0; g0 < group; g0 += kHeads) {
    const int heads = std::min(kHeads, group - g0);
    float m[kHeads], sum[kHeads];
    for (int g = 0; g < heads; ++g) {
      m[g] = -std::numeric_limits<float>::infinity();
      sum[g] = 0.0f;
      float* out = partials + (g0 + g) * stride + 2;
      for (int c = 0; c < n; c += lanes) {
        hn::Store(hn::Mul(hn::LoadU(d, q + (g0 + g) * n + c), hn::Set(d, scale)), d, qs + g * n + c);
        hn::StoreU(hn::Zero(d), d, out + c);
      }
    }
    for (std::int64_t t0 = begin, t1; t0 < end; t0 = t1) {
      t1 = tile_end(h.keys, t0, end);
      tile_scores(d, h.keys, t0, t1, qs, heads, scores);
      for (int g = 0; g < heads; ++g)
        softmax_tile(d, scores + g * kTile, int(t1 - t0), m[g], sum[g], partials + (g0 + g) * stride + 2, n);
      tile_accumulate(d, h.values, t0, t1, scores, heads, partials + g0 * stride + 2, stride);
    }
    for (int g = 0; g < heads; ++g) {
      partials[(g0 + g) * stride] = m[g];
      partials[(g0 + g) * stride + 1] = sum[g];
    }
  }
}


// Calls fn(d) with the widest float tag (full, 8, 4, 2 or 1 lanes) whose lanes
// divide `runs`, the length of every run decoded at once; false when only one
// lane fits and KIVI codes (which need 2+) are involved.
template <class Fn>
bool with_widest(int runs, bool kivi, Fn&& fn) {
  const hn::ScalableTag<float> full;
  const int widest = int(hn::Lanes(full));
  if (runs % widest == 0 && widest <= 16 && (widest >= 2 || !kivi)) return fn(full), true;
#if HWY_TARGET != HWY_SCALAR
  if (runs % 8 == 0 && widest >= 8) return fn(hn::CappedTag<float, 8>()), true;
  if (runs % 4 == 0 && widest >= 4) return fn(hn::CappedTag<float, 4>()), true;
  if (runs % 2 == 0 && widest >= 2) return fn(hn::CappedTag<float, 2>()), true;
#endif
  if (!kivi) return fn(hn::CappedTag<float, 1>()), true;
  return false;
}

void attend(const kv::head_view& h, std::int64_t begin, std::int64_t end, const float* q, int group, float scale,
            float* partials, std::int64_t stride) {
  const int n = h.keys.head_dim;
  int runs = n;
  // Runs decoded at once: head_dim, ggml's 16-code halves, KIVI groups (channels, or tokens for keys).
  for (const kv::stream_view* s : {&h.keys, &h.values}) runs = std::gcd(runs, std::gcd(16, shared_run(*s)));
  const bool kivi = kv::is_kivi(h.keys.fmt.kind) || kv::is_kivi(h.values.fmt.kind);
  if (with_widest(runs, kivi, [&](auto d) { attend_with(d, h, begin, end, q, group, scale, partials, stride); })) return;
  // Odd head sizes on KIVI formats: the reference.
  for (int i = 0; i < group; ++i) {
    float* p = partials + i * stride;
    ref::attend_range(h, begin, end, q + std::int64_t(i) * n, scale, p + 2, p[0], p[1]);
  }
}

template <class D>
void logits_with(D d, const kv::stream_view& keys, std::int64_t begin, std::int64_t end, const float* q, int group,
                 float scale, float* out, std::int64_t stride) {
  const int n = keys.head_dim, lanes = int(hn::Lanes(d));
  alignas(64) float qs[kHeads * kMaxDim];
  alignas(64) float scores[kHeads * kTile];
  for (int g0 = 0; g0 < group; g0 += kHeads) {
    const int heads = std::min(kHeads, group - g0);
    for (int g = 0; g < heads; ++g)
      for (int c = 0; c < n; c += lanes)
        hn::Store(hn::Mul(hn::LoadU(d, q + (g0 + g) * n + c), hn::Set(d, scale)), d, qs + g * n + c);
    for (std::int64_t t0 = begin, t1; t0 < end; t0 = t1) {
      t1 = tile_end(keys, t0, end);
      tile_scores(d, keys, t0, t1, qs, heads, scores);
      for (int g = 0; g < heads; ++g) std::copy_n(scores + g * kTile, t1 - t0, out + (g0 + g) * stride + (t0 - begin));
    }
  }
}

void logits(const kv::stream_view& keys, std::int64_t begin, std::int64_t end, const float* q, int group, float scale,
            float* out, std::int64_t stride) {
  const int n = keys.head_dim;
  const int runs = std::gcd(n, std::gcd(16, shared_run(keys)));
  if (with_widest(runs, keys.per_channel(),
                  [&](auto d) { logits_with(d, keys, begin, end, q, group, scale, out, stride); }))
    return;
  for (int i = 0; i < group; ++i)
    for (std::int64_t t = begin; t < end; ++t)
      out[i * stride + t - begin] = scale * ref::token_dot(keys, t, q + std::int64_t(i) * n);
}

}  // namespace HWY_NAMESPACE
}  // namespace cinch::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cinch {
namespace cpu {
HWY_EXPORT(attend);
HWY_EXPORT(logits);
}  // namespace cpu

namespace detail {
namespace {

void simd_attend(const kv::head_view& h, std::int64_t begin, std::int64_t end, const float* q, int group, float scale,
                 float* partials, std::int64_t stride) noexcept {
  HWY_DYNAMIC_DISPATCH(cpu::attend)(h, begin, end, q, group, scale, partials, stride);
}

void simd_logits(const kv::stream_view& keys, std::int64_t begin, std::int64_t end, const float* q, int group,
                 float scale, float* out, std::int64_t stride) noexcept {
  HWY_DYNAMIC_DISPATCH(cpu::logits)(keys, begin, end, q, group, scale, out, stride);
}

constexpr attention_kernels simd_table{simd_attend, simd_logits};

}  // namespace

const attention_kernels& simd_attention_kernels() noexcept { return simd_table; }

}  // namespace detail
}  // namespace cinch
#endif
