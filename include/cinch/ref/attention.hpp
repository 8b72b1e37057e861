// Reference decode attention on a compressed KV cache: the specification the
// SIMD and CUDA kernels follow (within the float bound their tests state).
//
// For one query head q [head_dim] and the head it reads (kv::head_view):
//   q'    = H q if the keys are rotated, else q
//   s_t   = scale * (q' . k_t)       k_t straight from the packed codes (below)
//   out   = sum_t exp(s_t - m) v_t / sum_t exp(s_t - m),  m = max_t s_t
//   out  <- H out if the values are rotated (H is its own inverse)
// computed in one pass over the tokens with a running max and sum (online
// softmax: when s_t raises the max, the sum and out are scaled by exp(m_old - s_t)),
// and values accumulated as out += p_t * v_t straight from the codes: fp32
// keys and values are never materialized. A head with no tokens gives out = 0.
// The final division is out[c] / sum. A NaN score propagates into the sum, so
// the whole output of that query head is NaN.
//
// q . k from codes, per format (x = the stored element, c = its code):
//   f32/f16/bf16  sum_c q_c * x_c
//   fp8           scale * sum_c q_c * float(code_c)
//   int8          s * sum_c q_c * code_c
//   ggml blocks   sum over blocks of ref::ggml's block dot (d * sum q_j (c_j - 8), ...)
//   KIVI values   sum over groups of ref::groups' value-group dot
//   KIVI keys     per chunk of G tokens: sum_c (q_c * s_c) * code_{c,t} + sum_c q_c * m_c
// and out += w * v likewise (w * s folded into one factor per block or group).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "cinch/kv/format.hpp"
#include "cinch/ref/convert.hpp"
#include "cinch/ref/ggml.hpp"
#include "cinch/ref/groups.hpp"
#include "cinch/ref/hadamard.hpp"

namespace cinch::ref {
namespace attention_detail {

CINCH_HOST_DEVICE inline const std::uint8_t* bytes(const std::byte* p) noexcept {
  return reinterpret_cast<const std::uint8_t*>(p);
}
CINCH_HOST_DEVICE inline const std::uint16_t* halves(const std::byte* p) noexcept {
  return reinterpret_cast<const std::uint16_t*>(p);
}

template <dtype Format>
CINCH_HOST_DEVICE float ggml_dot(const std::byte* rec, const float* q, int n) noexcept {
  float sum = 0.0f;
  for (int i = 0; i < n / ggml_block_values; ++i)
    sum = sum + dot_block<Format>(q + i * ggml_block_values, bytes(rec) + i * info(Format).block_bytes);
  return sum;
}

template <dtype Format>
CINCH_HOST_DEVICE void ggml_axpy(const std::byte* rec, float w, float* acc, int n) noexcept {
  for (int i = 0; i < n / ggml_block_values; ++i)
    axpy_block<Format>(w, bytes(rec) + i * info(Format).block_bytes, acc + i * ggml_block_values);
}

// A KIVI value record: scales[ng], mins[ng], codes.
struct value_record {
  const std::uint16_t* scales;
  const std::uint16_t* mins;
  const std::uint8_t* codes;
};
CINCH_HOST_DEVICE inline value_record value_record_of(const kv::stream_view& s, const std::byte* rec) noexcept {
  const int groups = s.head_dim / s.fmt.group;
  return {halves(rec), halves(rec) + groups, bytes(rec) + 4 * groups};
}

// A KIVI key chunk: scales[head_dim], mins[head_dim], codes [head_dim][group] along tokens.
struct key_chunk {
  const std::uint16_t* scales;
  const std::uint16_t* mins;
  const std::uint8_t* codes;
  std::int64_t channel_stride;  // bytes of one channel's codes
};
CINCH_HOST_DEVICE inline key_chunk key_chunk_of(const kv::stream_view& s, std::int64_t chunk) noexcept {
  const std::byte* p = s.packed + chunk * s.unit_bytes;
  return {halves(p), halves(p) + s.head_dim, bytes(p) + 4 * s.head_dim,
          std::int64_t(s.fmt.group) * kv::kivi_bits(s.fmt.kind) / 8};
}

}  // namespace attention_detail

// q . x for the packed record of one token of a per-token stream.
CINCH_HOST_DEVICE inline float record_dot(const kv::stream_view& s, const std::byte* rec, const float* q) noexcept {
  namespace ad = attention_detail;
  const int n = s.head_dim;
  float sum = 0.0f;
  switch (s.fmt.kind) {
    case kv::scheme::f32: {
      for (int c = 0; c < n; ++c) {
        float x;
        std::memcpy(&x, rec + 4 * c, 4);
        sum += q[c] * x;
      }
      return sum;
    }
    case kv::scheme::f16:
    case kv::scheme::bf16: {
      const bool half = s.fmt.kind == kv::scheme::f16;
      for (int c = 0; c < n; ++c) {
        const std::uint16_t b = ad::halves(rec)[c];
        sum += q[c] * (half ? f16_to_f32(b) : bf16_to_f32(b));
      }
      return sum;
    }
    case kv::scheme::fp8_e4m3:
      for (int c = 0; c < n; ++c) sum += q[c] * e4m3_to_f32(ad::bytes(rec)[c]);
      return s.scale * sum;
    case kv::scheme::fp8_e5m2:
      for (int c = 0; c < n; ++c) sum += q[c] * e5m2_to_f32(ad::bytes(rec)[c]);
      return s.scale * sum;
    case kv::scheme::int8: {
      float scale;
      std::memcpy(&scale, rec, 4);
      for (int c = 0; c < n; ++c) sum += q[c] * float(static_cast<std::int8_t>(rec[4 + c]));
      return scale * sum;
    }
    case kv::scheme::q8_0: return ad::ggml_dot<dtype::q8_0>(rec, q, n);
    case kv::scheme::q4_0: return ad::ggml_dot<dtype::q4_0>(rec, q, n);
    case kv::scheme::q4_1: return ad::ggml_dot<dtype::q4_1>(rec, q, n);
    case kv::scheme::q5_0: return ad::ggml_dot<dtype::q5_0>(rec, q, n);
    case kv::scheme::q5_1: return ad::ggml_dot<dtype::q5_1>(rec, q, n);
    case kv::scheme::iq4_nl: return ad::ggml_dot<dtype::iq4_nl>(rec, q, n);
    case kv::scheme::kivi4:
    case kv::scheme::kivi2:
    case kv::scheme::kivi8: {
      const ad::value_record r = ad::value_record_of(s, rec);
      return per_token_dot(q, r.codes, r.scales, r.mins, n, s.fmt.group, kv::kivi_bits(s.fmt.kind));
    }
  }
  return std::numeric_limits<float>::quiet_NaN();
}

// acc += w * x for the packed record of one token of a per-token stream.
CINCH_HOST_DEVICE inline void record_axpy(const kv::stream_view& s, const std::byte* rec, float w, float* acc) noexcept {
  namespace ad = attention_detail;
  const int n = s.head_dim;
  switch (s.fmt.kind) {
    case kv::scheme::f32:
      for (int c = 0; c < n; ++c) {
        float x;
        std::memcpy(&x, rec + 4 * c, 4);
        acc[c] += w * x;
      }
      return;
    case kv::scheme::f16:
    case kv::scheme::bf16: {
      const bool half = s.fmt.kind == kv::scheme::f16;
      for (int c = 0; c < n; ++c) {
        const std::uint16_t b = ad::halves(rec)[c];
        acc[c] += w * (half ? f16_to_f32(b) : bf16_to_f32(b));
      }
      return;
    }
    case kv::scheme::fp8_e4m3:
      for (int c = 0; c < n; ++c) acc[c] += (w * s.scale) * e4m3_to_f32(ad::bytes(rec)[c]);
      return;
    case kv::scheme::fp8_e5m2:
      for (int c = 0; c < n; ++c) acc[c] += (w * s.scale) * e5m2_to_f32(ad::bytes(rec)[c]);
      return;
    case kv::scheme::int8: {
      float scale;
      std::memcpy(&scale, rec, 4);
      for (int c = 0; c < n; ++c) acc[c] += (w * scale) * float(static_cast<std::int8_t>(rec[4 + c]));
      return;
    }
    case kv::scheme::q8_0: return ad::ggml_axpy<dtype::q8_0>(rec, w, acc, n);
    case kv::scheme::q4_0: return ad::ggml_axpy<dtype::q4_0>(rec, w, acc, n);
    case kv::scheme::q4_1: return ad::ggml_axpy<dtype::q4_1>(rec, w, acc, n);
    case kv::scheme::q5_0: return ad::ggml_axpy<dtype::q5_0>(rec, w, acc, n);
    case kv::scheme::q5_1: return ad::ggml_axpy<dtype::q5_1>(rec, w, acc, n);
    case kv::scheme::iq4_nl: return ad::ggml_axpy<dtype::iq4_nl>(rec, w, acc, n);
    case kv::scheme::kivi4:
    case kv::scheme::kivi2:
    case kv::scheme::kivi8: {
      const ad::value_record r = ad::value_record_of(s, rec);
      per_token_accumulate(w, r.codes, r.scales, r.mins, n, s.fmt.group, kv::kivi_bits(s.fmt.kind), acc);
      return;
    }
  }
}

// q . x_t for any token t < s.tokens (packed or residual).
CINCH_HOST_DEVICE inline float token_dot(const kv::stream_view& s, std::int64_t t, const float* q) noexcept {
  namespace ad = attention_detail;
  if (t >= s.packed_tokens) {
    const float* x = s.residual + (t - s.packed_tokens) * s.head_dim;
    float sum = 0.0f;
    for (int c = 0; c < s.head_dim; ++c) sum += q[c] * x[c];
    return sum;
  }
  if (s.per_channel()) {
    const ad::key_chunk k = ad::key_chunk_of(s, t / s.fmt.group);
    return per_channel_dot(q, k.codes, k.channel_stride, k.scales, s.head_dim, kv::kivi_bits(s.fmt.kind),
                           t % s.fmt.group, per_channel_bias(q, k.mins, s.head_dim));
  }
  return record_dot(s, s.packed + t * s.unit_bytes, q);
}

// acc += w * x_t for any token t < s.tokens.
CINCH_HOST_DEVICE inline void token_axpy(const kv::stream_view& s, std::int64_t t, float w, float* acc) noexcept {
  namespace ad = attention_detail;
  if (t >= s.packed_tokens) {
    const float* x = s.residual + (t - s.packed_tokens) * s.head_dim;
    for (int c = 0; c < s.head_dim; ++c) acc[c] += w * x[c];
    return;
  }
  if (s.per_channel()) {
    const ad::key_chunk k = ad::key_chunk_of(s, t / s.fmt.group);
    for (int c = 0; c < s.head_dim; ++c)
      acc[c] += w * per_channel_value(k.codes, k.channel_stride, k.scales, k.mins, kv::kivi_bits(s.fmt.kind),
                                      t % s.fmt.group, c);
    return;
  }
  record_axpy(s, s.packed + t * s.unit_bytes, w, acc);
}

// Element c of token t, dequantized as token_axpy(s, t, 1, .) gives it (one at
// a time: for kernels that spread a row's channels over threads).
CINCH_HOST_DEVICE inline float token_element(const kv::stream_view& s, std::int64_t t, int c) noexcept {
  namespace ad = attention_detail;
  if (t >= s.packed_tokens) return s.residual[(t - s.packed_tokens) * s.head_dim + c];
  if (s.per_channel()) {
    const ad::key_chunk k = ad::key_chunk_of(s, t / s.fmt.group);
    return per_channel_value(k.codes, k.channel_stride, k.scales, k.mins, kv::kivi_bits(s.fmt.kind), t % s.fmt.group, c);
  }
  const std::byte* rec = s.packed + t * s.unit_bytes;
  const std::uint8_t* block = ad::bytes(rec) + c / ggml_block_values * info(kv::ggml_dtype(s.fmt.kind)).block_bytes;
  const int j = c % ggml_block_values;
  switch (s.fmt.kind) {
    case kv::scheme::f32: {
      float x;
      std::memcpy(&x, rec + 4 * c, 4);
      return x;
    }
    case kv::scheme::f16: return f16_to_f32(ad::halves(rec)[c]);
    case kv::scheme::bf16: return bf16_to_f32(ad::halves(rec)[c]);
    case kv::scheme::fp8_e4m3: return s.scale * e4m3_to_f32(ad::bytes(rec)[c]);
    case kv::scheme::fp8_e5m2: return s.scale * e5m2_to_f32(ad::bytes(rec)[c]);
    case kv::scheme::int8: {
      float scale;
      std::memcpy(&scale, rec, 4);
      return scale * float(static_cast<std::int8_t>(rec[4 + c]));
    }
    case kv::scheme::q8_0: return ggml_detail::value(ggml_detail::decode<dtype::q8_0>(block), j);
    case kv::scheme::q4_0: return ggml_detail::value(ggml_detail::decode<dtype::q4_0>(block), j);
    case kv::scheme::q4_1: return ggml_detail::value(ggml_detail::decode<dtype::q4_1>(block), j);
    case kv::scheme::q5_0: return ggml_detail::value(ggml_detail::decode<dtype::q5_0>(block), j);
    case kv::scheme::q5_1: return ggml_detail::value(ggml_detail::decode<dtype::q5_1>(block), j);
    case kv::scheme::iq4_nl: return ggml_detail::value(ggml_detail::decode<dtype::iq4_nl>(block), j);
    case kv::scheme::kivi4:
    case kv::scheme::kivi2:
    case kv::scheme::kivi8: {
      const ad::value_record r = ad::value_record_of(s, rec);
      return per_token_value(r.codes, r.scales, r.mins, s.fmt.group, kv::kivi_bits(s.fmt.kind), c);
    }
  }
  return std::numeric_limits<float>::quiet_NaN();
}

// The online-softmax pass over tokens [begin, end) of a head for one query
// head (q already in the keys' basis): m = running max of the scores, sum =
// sum_t exp(s_t - m), acc[head_dim] = sum_t exp(s_t - m) v_t, not normalized.
// Starts from m = -inf, sum = 0, acc = 0; an empty range leaves them so.
inline void attend_range(const kv::head_view& h, std::int64_t begin, std::int64_t end, const float* q, float scale,
                         float* acc, float& m, float& sum) noexcept {
  const int n = h.keys.head_dim;
  m = -std::numeric_limits<float>::infinity();
  sum = 0.0f;
  for (int c = 0; c < n; ++c) acc[c] = 0.0f;
  for (std::int64_t t = begin; t < end; ++t) {
    const float st = scale * token_dot(h.keys, t, q);
    if (st > m) {
      const float shrink = std::exp(m - st);
      sum *= shrink;
      for (int c = 0; c < n; ++c) acc[c] *= shrink;
      m = st;
    }
    const float p = std::exp(st - m);
    sum += p;
    token_axpy(h.values, t, p, acc);
  }
}

// Merges partial results of disjoint token ranges (as attend_range leaves
// them, count of them, each of stride floats: m, sum, acc[head_dim]) into
// out[c] = acc[c] / sum; ranges with sum = 0 hold no tokens. out = 0 if none do.
CINCH_HOST_DEVICE inline void merge_partials(const float* partials, int count, std::int64_t stride, int head_dim,
                                             float* out) noexcept {
  float m = -std::numeric_limits<float>::infinity();
  bool any = false;
  for (int i = 0; i < count; ++i) {
    const float* p = partials + i * stride;
    if (p[1] == 0.0f) continue;
    m = any && !(p[0] > m) ? m : p[0];
    any = true;
  }
  float sum = 0.0f;
  for (int c = 0; c < head_dim; ++c) out[c] = 0.0f;
  if (!any) return;
  for (int i = 0; i < count; ++i) {
    const float* p = partials + i * stride;
    if (p[1] == 0.0f) continue;
    const float w = std::exp(p[0] - m);
    sum += w * p[1];
    for (int c = 0; c < head_dim; ++c) out[c] += w * p[2 + c];
  }
  for (int c = 0; c < head_dim; ++c) out[c] /= sum;
}

// All of it for one query head: out [head_dim]; work: 2 * head_dim + 2 floats of scratch.
inline void decode_attention_head(const kv::head_view& h, const float* q, float scale, float* out, float* work) noexcept {
  const int n = h.keys.head_dim;
  float* q_rotated = work;
  float* partial = work + n;
  for (int c = 0; c < n; ++c) q_rotated[c] = q[c];
  if (h.keys.fmt.rotate) fwht(q_rotated, n);
  attend_range(h, 0, h.tokens, q_rotated, scale, partial + 2, partial[0], partial[1]);
  merge_partials(partial, 1, n + 2, n, out);
  if (h.values.fmt.rotate) fwht(out, n);
}

}  // namespace cinch::ref
