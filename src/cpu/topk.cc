// Highway top-k selection, index for index the reference (cinch/ref/topk.hpp).
// Keys are the reference's rank keys with the top bit flipped, so signed lane
// comparisons order them (NaN -> INT32_MIN). Per row:
//  1. a sample of up to 1024 keys at a fixed stride gives a floor key that a bit
//     more than k scores reach: the sample's key at rank k s / n plus four
//     standard deviations plus 4 (about 1.8 k candidates for k = n / 32);
//  2. one pass computes keys and compresses the keys and indices of those >= the
//     floor into scratch, without branches; if fewer than k pass, the pass is
//     repeated with no floor. Any candidate set holding at least k entries
//     contains the best k, so the guess only affects speed;
//  3. the reference's threshold t (largest t with #{key >= t} >= k) is found bit by
//     bit over the candidates with vector counts, stopping early when a count is
//     exactly k (then t is the least key counted);
//  4. candidates with key > t and the first k - #{key > t} with key == t are
//     written in index order.
// Compress on 4- and 8-lane targets uses a static table: Highway 1.0.3's own
// copies its table onto the stack at every call there.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/topk.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>

#include "cinch/ref/topk.hpp"
#include "kv/topk_kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace cinch::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DI = hn::ScalableTag<std::int32_t>;

HWY_INLINE std::int32_t signed_key(float x) { return static_cast<std::int32_t>(ref::rank_key(x) ^ 0x80000000u); }

// signed_key of N floats at x.
HWY_INLINE hn::Vec<DI> signed_keys(DI di, const float* x) {
  const hn::RebindToFloat<DI> df;
  const auto bits = hn::BitCast(di, hn::LoadU(df, x));
  const auto lowest = hn::Set(di, INT32_MIN);
  const auto no_neg_zero = hn::IfThenZeroElse(hn::Eq(bits, lowest), bits);  // -0.0 -> +0.0
  // Negative: bits ^ 0x7FFFFFFF (= ~bits ^ 0x80000000); non-negative: bits.
  const auto ordered = hn::Xor(no_neg_zero, hn::And(hn::BroadcastSignBit(no_neg_zero), hn::Set(di, INT32_MAX)));
  const auto is_nan = hn::Gt(hn::And(bits, hn::Set(di, INT32_MAX)), hn::Set(di, 0x7F800000));
  return hn::IfThenElse(is_nan, lowest, ordered);
}

// Lane indices of the set lanes of each mask of 4 or 8 lanes, in lane order.
// Built once at first use (not constexpr: GCC's UBSan-instrumented constant
// evaluation of the 256 x 8 table exceeds its operation limit).
template <std::size_t Lanes>
struct compress_table {
  alignas(32) std::int32_t lanes[std::size_t(1) << Lanes][Lanes] = {};
  compress_table() {
    for (std::size_t bits = 0; bits < (std::size_t(1) << Lanes); ++bits) {
      std::size_t out = 0;
      for (std::size_t lane = 0; lane < Lanes; ++lane)
        if (bits >> lane & 1) lanes[bits][out++] = static_cast<std::int32_t>(lane);
    }
  }
};

// The set lanes of `keep` moved to the front, in lane order.
HWY_INLINE hn::Vec<DI> compress(DI di, hn::Vec<DI> v, hn::Mask<DI> keep) {
  constexpr std::size_t lanes = hn::MaxLanes(DI());
  if constexpr (lanes == 4 || lanes == 8) {
    static const compress_table<lanes> table;
    std::uint8_t bits[8] = {};
    hn::StoreMaskBits(di, keep, bits);
    return hn::TableLookupLanes(v, hn::IndicesFromVec(di, hn::Load(di, table.lanes[bits[0]])));
  } else {
    return hn::Compress(v, keep);
  }
}

// #{a[i] >= c}, a padded with INT32_MIN to whole vectors (m_padded of them), c > INT32_MIN.
HWY_INLINE std::int64_t count_at_least(const std::int32_t* a, std::int64_t m_padded, std::int32_t c) {
  const DI di;
  const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(di));
  const auto below = hn::Set(di, c - 1);
  auto acc0 = hn::Zero(di), acc1 = hn::Zero(di);
  std::int64_t i = 0;
  for (; i + 2 * N <= m_padded; i += 2 * N) {  // two chains: compare latency hides behind the other
    acc0 = hn::Sub(acc0, hn::VecFromMask(di, hn::Gt(hn::LoadU(di, a + i), below)));
    acc1 = hn::Sub(acc1, hn::VecFromMask(di, hn::Gt(hn::LoadU(di, a + i + N), below)));
  }
  if (i < m_padded) acc0 = hn::Sub(acc0, hn::VecFromMask(di, hn::Gt(hn::LoadU(di, a + i), below)));
  return hn::GetLane(hn::SumOfLanes(di, hn::Add(acc0, acc1)));
}

// The least a[i] >= c (one exists).
HWY_INLINE std::int32_t least_at_least(const std::int32_t* a, std::int64_t m_padded, std::int32_t c) {
  const DI di;
  const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(di));
  const auto below = hn::Set(di, c - 1), none = hn::Set(di, INT32_MAX);
  auto acc = none;
  for (std::int64_t i = 0; i < m_padded; i += N) {
    const auto v = hn::LoadU(di, a + i);
    acc = hn::Min(acc, hn::IfThenElse(hn::Gt(v, below), v, none));
  }
  return hn::GetLane(hn::MinOfLanes(di, acc));
}

// The reference's threshold over a[0, m_padded) (as a signed key): the largest t
// with #{a[i] >= t} >= k, 1 <= k <= #real entries.
HWY_INLINE std::int32_t threshold(const std::int32_t* a, std::int64_t m_padded, std::int64_t k) {
  std::uint32_t t = 0;
  for (int bit = 31; bit >= 0; --bit) {
    const std::uint32_t candidate = t | (std::uint32_t(1) << bit);
    const auto c = static_cast<std::int32_t>(candidate ^ 0x80000000u);
    const std::int64_t at_least = count_at_least(a, m_padded, c);
    if (at_least < k) continue;
    if (at_least == k) return least_at_least(a, m_padded, c);
    t = candidate;
  }
  return static_cast<std::int32_t>(t ^ 0x80000000u);
}

// Pads a[m, ...) with INT32_MIN to whole vectors; returns the padded length.
HWY_INLINE std::int64_t pad_keys(std::int32_t* a, std::int64_t m) {
  const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(DI()));
  const std::int64_t padded = (m + N - 1) / N * N;
  for (std::int64_t i = m; i < padded; ++i) a[i] = INT32_MIN;
  return padded;
}

// Keys and indices of every x[i] whose key is >= floor, in index order; returns their count.
HWY_INLINE std::int64_t gather(const float* x, std::int64_t n, std::int32_t floor, std::int32_t* keys,
                               std::int32_t* idx) {
  const DI di;
  const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(di));
  const auto floor_v = hn::Set(di, floor), step = hn::Set(di, static_cast<std::int32_t>(N));
  auto iv = hn::Iota(di, 0);
  std::int64_t m = 0, i = 0;
  for (; i + N <= n; i += N, iv = hn::Add(iv, step)) {
    const auto kv = signed_keys(di, x + i);
    const auto keep = hn::Not(hn::Lt(kv, floor_v));
    hn::StoreU(compress(di, kv, keep), di, keys + m);  // no branch: whether a vector keeps any is unpredictable
    hn::StoreU(compress(di, iv, keep), di, idx + m);
    m += static_cast<std::int64_t>(hn::CountTrue(di, keep));
  }
  for (; i < n; ++i) {
    const std::int32_t key = signed_key(x[i]);
    if (key >= floor) {
      keys[m] = key;
      idx[m++] = static_cast<std::int32_t>(i);
    }
  }
  return m;
}

// Writes candidates with key > t and the first `ties` with key == t, in order:
// compacted to the front of idx (a write never passes the reads), then copied out.
HWY_INLINE void emit(const std::int32_t* keys, std::int32_t* idx, std::int64_t m, std::int32_t t, std::int64_t ties,
                     std::int64_t k, std::int32_t* out) {
  const DI di;
  const std::int64_t N = static_cast<std::int64_t>(hn::Lanes(di));
  const auto tv = hn::Set(di, t);
  std::int64_t w = 0, i = 0;
  const auto keep_above = [&](std::int64_t at) {
    const auto above = hn::Gt(hn::LoadU(di, keys + at), tv);
    hn::StoreU(compress(di, hn::LoadU(di, idx + at), above), di, idx + w);
    w += static_cast<std::int64_t>(hn::CountTrue(di, above));
  };
  for (; i + N <= m; i += N) {
    if (ties > 0 && !hn::AllFalse(di, hn::Eq(hn::LoadU(di, keys + i), tv))) break;  // ties one by one below
    keep_above(i);
  }
  for (; i < m && ties > 0; ++i)
    if (keys[i] > t || (keys[i] == t && ties-- > 0)) idx[w++] = idx[i];
  for (; i + N <= m; i += N) keep_above(i);
  for (; i < m; ++i)
    if (keys[i] > t) idx[w++] = idx[i];
  std::copy(idx, idx + k, out);
}

void select_row(const float* x, std::int64_t n, std::int64_t k, std::int32_t* out, std::int32_t* scratch) {
  static_assert(HWY_MAX_BYTES / 4 <= detail::topk_pad, "scratch slack must hold a vector");
  if (k <= 0) return;
  if (k == n) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<std::int32_t>(i);
    return;
  }
  std::int32_t* keys = scratch;
  std::int32_t* idx = keys + n + detail::topk_pad;
  std::int32_t* sample = idx + n + detail::topk_pad;

  std::int32_t floor = INT32_MIN;
  const std::int64_t s = n / 8 < detail::topk_sample ? n / 8 : detail::topk_sample;
  if (s >= 32) {
    const std::int64_t step = n / s;
    for (std::int64_t j = 0; j < s; ++j) sample[j] = signed_key(x[j * step]);
    const double expected = double(k) * double(s) / double(n);
    const auto rank = static_cast<std::int64_t>(std::ceil(expected + 4.0 * std::sqrt(expected) + 4.0));
    if (rank <= s) floor = threshold(sample, pad_keys(sample, s), rank);
  }
  std::int64_t m = gather(x, n, floor, keys, idx);
  if (m < k) m = gather(x, n, INT32_MIN, keys, idx);
  const std::int32_t t = threshold(keys, pad_keys(keys, m), k);
  const std::int64_t above = count_at_least(keys, pad_keys(keys, m), t + 1);  // keys <= +inf's 0x7F800000
  emit(keys, idx, m, t, k - above, k, out);
}

}  // namespace HWY_NAMESPACE
}  // namespace cinch::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cinch::cpu {

HWY_EXPORT(select_row);

void top_k_row(const float* x, std::int64_t n, std::int64_t k, std::int32_t* out, std::int32_t* scratch) noexcept {
  HWY_DYNAMIC_DISPATCH(select_row)(x, n, k, out, scratch);
}

}  // namespace cinch::cpu
#endif
