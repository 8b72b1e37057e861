// Highway fast Walsh-Hadamard transform, bit-identical to cinch/ref/hadamard.hpp:
// the same butterfly stages in the same order (h = 1, 2, 4, ...), each output an
// add or subtract of the same two values. Stages with h below the lane count run
// inside a vector: lane j meets lane j ^ h (a table lookup) and computes
// partner + x (lower lane: x[j + h] + x[j]) or partner + (-x) (upper lane:
// x[j - h] - x[j]), both exactly the reference's a + b and a - b. Wider stages pair
// whole vectors, two stages per pass. The 1/sqrt(n) scale is fused into the last
// pass; sign flips are XORs of the sign bit, exact like the reference's.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/hadamard.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "cinch/ref/hadamard.hpp"
#include "kv/group_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace cinch::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET != HWY_SCALAR

using DF = hn::ScalableTag<float>;
using DU = hn::RebindToUnsigned<DF>;
using VF = hn::Vec<DF>;

constexpr int max_stages = 4;  // log2 of the most lanes (16)
static_assert(HWY_MAX_BYTES / sizeof(float) <= 16, "in-vector stage tables cover 16 lanes");

// For stage s (h = 2^s): lane j ^ h, and the sign bit of lanes j with j & h.
alignas(64) constexpr std::int32_t partner_lane[max_stages][16] = {
    {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14},
    {2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13},
    {4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11},
    {8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7}};
constexpr std::uint32_t neg = 0x80000000u;
alignas(64) constexpr std::uint32_t negate_lane[max_stages][16] = {
    {0, neg, 0, neg, 0, neg, 0, neg, 0, neg, 0, neg, 0, neg, 0, neg},
    {0, 0, neg, neg, 0, 0, neg, neg, 0, 0, neg, neg, 0, 0, neg, neg},
    {0, 0, 0, 0, neg, neg, neg, neg, 0, 0, 0, 0, neg, neg, neg, neg},
    {0, 0, 0, 0, 0, 0, 0, 0, neg, neg, neg, neg, neg, neg, neg, neg}};

void fwht_row(float* x, std::int64_t n, const std::uint32_t* sign_bits, bool signs_after) {
  const DF df;
  const DU du;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(df));
  if (n < lanes) {
    ref::hadamard_row(x, n, sign_bits, signs_after);
    return;
  }
  const VF scale = hn::Set(df, ref::hadamard_scale(n));
  const bool before = sign_bits && !signs_after, after = sign_bits && signs_after;
  // The last pass scales and applies trailing signs before storing.
  auto finish = [&](VF v, std::int64_t i) {
    v = hn::Mul(v, scale);
    if (after) v = hn::Xor(v, hn::BitCast(df, hn::LoadU(du, sign_bits + i)));
    hn::StoreU(v, df, x + i);
  };

  // In-vector stages h = 1 .. lanes / 2: partner lane j ^ h, sign bit where j & h.
  decltype(hn::SetTableIndices(df, partner_lane[0])) partner[max_stages];
  VF negate[max_stages];
  int stages = 0;
  for (std::int64_t h = 1; h < lanes; h *= 2, ++stages) {
    partner[stages] = hn::SetTableIndices(df, partner_lane[stages]);
    negate[stages] = hn::BitCast(df, hn::Load(du, negate_lane[stages]));
  }
  for (std::int64_t i = 0; i < n; i += lanes) {
    VF v = hn::LoadU(df, x + i);
    if (before) v = hn::Xor(v, hn::BitCast(df, hn::LoadU(du, sign_bits + i)));
    for (int s = 0; s < stages; ++s) v = hn::Add(hn::TableLookupLanes(v, partner[s]), hn::Xor(v, negate[s]));
    if (n == lanes)
      finish(v, i);
    else
      hn::StoreU(v, df, x + i);
  }

  // Across vectors: stages h and 2h together while both remain, then a last single one.
  std::int64_t h = lanes;
  for (; 4 * h <= n; h *= 4) {
    const bool last = 4 * h == n;
    for (std::int64_t i = 0; i < n; i += 4 * h)
      for (std::int64_t j = i; j < i + h; j += lanes) {
        const VF a = hn::LoadU(df, x + j), b = hn::LoadU(df, x + j + h);
        const VF c = hn::LoadU(df, x + j + 2 * h), d = hn::LoadU(df, x + j + 3 * h);
        const VF ab = hn::Add(a, b), a_b = hn::Sub(a, b), cd = hn::Add(c, d), c_d = hn::Sub(c, d);
        const VF r0 = hn::Add(ab, cd), r2 = hn::Sub(ab, cd), r1 = hn::Add(a_b, c_d), r3 = hn::Sub(a_b, c_d);
        if (last) {
          finish(r0, j), finish(r1, j + h), finish(r2, j + 2 * h), finish(r3, j + 3 * h);
        } else {
          hn::StoreU(r0, df, x + j), hn::StoreU(r1, df, x + j + h);
          hn::StoreU(r2, df, x + j + 2 * h), hn::StoreU(r3, df, x + j + 3 * h);
        }
      }
  }
  if (2 * h == n)
    for (std::int64_t j = 0; j < h; j += lanes) {
      const VF a = hn::LoadU(df, x + j), b = hn::LoadU(df, x + j + h);
      finish(hn::Add(a, b), j);
      finish(hn::Sub(a, b), j + h);
    }
}

#endif  // HWY_TARGET != HWY_SCALAR

void hadamard(float* x, std::int64_t n, const std::uint32_t* sign_bits, bool signs_after) {
#if HWY_TARGET == HWY_SCALAR
  ref::hadamard_row(x, n, sign_bits, signs_after);
#else
  fwht_row(x, n, sign_bits, signs_after);
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace cinch::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cinch::cpu {

HWY_EXPORT(hadamard);

void hadamard_row(float* x, std::int64_t n, const std::uint32_t* sign_bits, bool signs_after) noexcept {
  HWY_DYNAMIC_DISPATCH(hadamard)(x, n, sign_bits, signs_after);
}

}  // namespace cinch::cpu
#endif
