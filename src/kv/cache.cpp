// kv::cache: validation, packing of appended tokens, residual windows, views.
#include "cinch/kv/cache.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>

#include "cinch/detail/checks.hpp"
#include "cinch/ref/attention.hpp"
#include "cinch/ref/fp8.hpp"
#include "cinch/ref/ggml.hpp"
#include "cinch/ref/groups.hpp"
#include "cinch/ref/hadamard.hpp"
#include "cinch/ref/quantize.hpp"

namespace cinch::kv {
namespace {

constexpr int max_head_dim = 1024;  // attention keeps a few head_dim rows per query head on the stack
constexpr std::int64_t packed_slack = 16;

const char* name_of(side role) { return role == side::keys ? "keys" : "values"; }

void check_format(const format& f, side role, int head_dim) {
  constexpr std::string_view fn = "kv::cache";
  const char* what = name_of(role);
  if (static_cast<int>(f.kind) > static_cast<int>(scheme::kivi8))
    detail::fail(errc::invalid_argument, fn, what, " format must be a kv::scheme, got value ", static_cast<int>(f.kind));
  if (f.residual < 0)
    detail::fail(errc::invalid_argument, fn, what, " residual must be >= 0, got ", f.residual);
  if (is_ggml(f.kind) && head_dim % 32 != 0)
    detail::fail(errc::unsupported, fn, what, " format ", to_string(f.kind),
                 " stores blocks of 32 channels: head_dim must be a multiple of 32, got ", head_dim);
  if (is_fp8(f.kind) && !(f.fp8_scale >= 0.0f && f.fp8_scale < 3.4e38f))
    detail::fail(errc::invalid_argument, fn, what, " fp8_scale must be finite and >= 0 (0: calibrate), got ",
                 std::to_string(f.fp8_scale));
  if (is_kivi(f.kind)) {
    const int per_byte = 8 / kivi_bits(f.kind);
    if (f.group < 1 || f.group % per_byte != 0)
      detail::fail(errc::invalid_argument, fn, what, " group of ", to_string(f.kind), " must be a positive multiple of ",
                   per_byte, " (whole bytes of codes), got ", f.group);
    if (f.residual % f.group != 0)
      detail::fail(errc::invalid_argument, fn, what, " residual must be a multiple of group (", f.group, "), got ",
                   f.residual);
    if (role == side::keys && f.residual == 0)
      detail::fail(errc::invalid_argument, fn,
                   "keys residual of a KIVI format must hold at least one group of tokens (per-channel groups), got 0");
    if (role == side::values && head_dim % f.group != 0)
      detail::fail(errc::unsupported, fn, "values format ", to_string(f.kind), " groups ", f.group,
                   " channels: head_dim must be a multiple of it, got ", head_dim);
  }
  if (f.rotate && !ref::is_power_of_two(head_dim))
    detail::fail(errc::unsupported, fn, what, " rotation needs a power-of-two head_dim, got ", head_dim);
}

// Bytes of one packed unit: a token record, or a chunk of `group` tokens for KIVI keys.
std::int64_t unit_bytes(const format& f, side role, int head_dim) {
  const std::int64_t d = head_dim;
  if (is_kivi(f.kind)) {  // fp16 scales and mins, then codes; padded to 4 bytes
    const std::int64_t bits = kivi_bits(f.kind);
    const std::int64_t bytes = role == side::keys ? 4 * d + d * f.group * bits / 8 : 4 * (d / f.group) + d * bits / 8;
    return (bytes + 3) / 4 * 4;
  }
  switch (f.kind) {
    case scheme::f32: return 4 * std::int64_t(head_dim);
    case scheme::f16:
    case scheme::bf16: return 2 * std::int64_t(head_dim);
    case scheme::fp8_e4m3:
    case scheme::fp8_e5m2: return head_dim;
    case scheme::int8: return 4 + std::int64_t(head_dim);
    default: {
      const dtype_info i = info(ggml_dtype(f.kind));
      return std::int64_t(head_dim) / i.block_elems * i.block_bytes;
    }
  }
}

template <dtype Format>
void encode_blocks(const float* x, int n, std::byte* rec) {
  ref::quantize_row_blocks<Format>(x, reinterpret_cast<std::uint8_t*>(rec), n);
}

template <class T>
void encode_fp8(const float* x, int n, float scale, std::byte* rec) {
  ref::quantize_scaled_row(x, scale, reinterpret_cast<T*>(rec), n);
}

// Packs one token x [head_dim] into its record (per-token formats).
void encode_record(const format& f, const float* x, int n, float fp8_scale, std::byte* rec) {
  switch (f.kind) {
    case scheme::f32: std::memcpy(rec, x, 4 * std::size_t(n)); return;
    case scheme::f16:
    case scheme::bf16:
      for (int c = 0; c < n; ++c) {
        const std::uint16_t b = f.kind == scheme::f16 ? ref::f32_to_f16(x[c]) : ref::f32_to_bf16(x[c]);
        std::memcpy(rec + 2 * c, &b, 2);
      }
      return;
    case scheme::fp8_e4m3: return encode_fp8<f8_e4m3_bits>(x, n, fp8_scale, rec);
    case scheme::fp8_e5m2: return encode_fp8<f8_e5m2_bits>(x, n, fp8_scale, rec);
    case scheme::int8: {
      const float scale = ref::quantize_row_i8(x, reinterpret_cast<std::int8_t*>(rec + 4), n);
      std::memcpy(rec, &scale, 4);
      return;
    }
    case scheme::q8_0: return encode_blocks<dtype::q8_0>(x, n, rec);
    case scheme::q4_0: return encode_blocks<dtype::q4_0>(x, n, rec);
    case scheme::q4_1: return encode_blocks<dtype::q4_1>(x, n, rec);
    case scheme::q5_0: return encode_blocks<dtype::q5_0>(x, n, rec);
    case scheme::q5_1: return encode_blocks<dtype::q5_1>(x, n, rec);
    case scheme::iq4_nl: return encode_blocks<dtype::iq4_nl>(x, n, rec);
    case scheme::kivi4:
    case scheme::kivi2:
    case scheme::kivi8: {
      const int groups = n / f.group;
      auto* halves = reinterpret_cast<std::uint16_t*>(rec);
      ref::quantize_per_token_row(x, n, f.group, kivi_bits(f.kind), reinterpret_cast<std::uint8_t*>(rec + 4 * groups),
                                  halves, halves + groups);
      return;
    }
  }
}

}  // namespace

cache::cache(const cache_config& config, std::optional<mixed_precision> low) : config_(config), low_(low) {
  constexpr std::string_view fn = "kv::cache";
  if (config.layers < 1) detail::fail(errc::invalid_argument, fn, "layers must be >= 1, got ", config.layers);
  if (config.kv_heads < 1) detail::fail(errc::invalid_argument, fn, "kv_heads must be >= 1, got ", config.kv_heads);
  if (config.head_dim < 1 || config.head_dim > max_head_dim)
    detail::fail(config.head_dim < 1 ? errc::invalid_argument : errc::unsupported, fn, "head_dim must be in [1, ",
                 max_head_dim, "], got ", config.head_dim);
  check_format(config.keys, side::keys, config.head_dim);
  check_format(config.values, side::values, config.head_dim);
  if (low) {
    check_format(low->keys, side::keys, config.head_dim);
    check_format(low->values, side::values, config.head_dim);
    if (low->keys.rotate != config.keys.rotate || low->values.rotate != config.values.rotate)
      detail::fail(errc::invalid_argument, fn, "low-precision keys and values must rotate as keys and values do");
  }

  heads_.assign(std::size_t(config.layers) * std::size_t(config.kv_heads), empty_head());
}

cache::head cache::empty_head() const {
  head h;
  const std::size_t d = std::size_t(config_.head_dim);
  for (int p = 0; p < parts(); ++p)
    for (auto [s, f, role] : {std::tuple{&h.parts[p].keys, p ? low_->keys : config_.keys, side::keys},
                              std::tuple{&h.parts[p].values, p ? low_->values : config_.values, side::values}}) {
      s->fmt = f;
      s->role = role;
      s->scale = f.fp8_scale;
      // Per-channel keys flush a full window at once; sliding windows keep room for a second one.
      const bool flushes = role == side::keys && is_kivi(f.kind);
      s->residual.resize(std::size_t(f.residual) * d * (flushes ? 1 : 2));
    }
  return h;
}

cache::head& cache::at(const char* function, int layer, int head_index) {
  return const_cast<head&>(std::as_const(*this).at(function, layer, head_index));
}

const cache::head& cache::at(const char* function, int layer, int head_index) const {
  if (layer < 0 || layer >= config_.layers)
    detail::fail(errc::invalid_argument, function, "layer must be in [0, ", config_.layers, "), got ", layer);
  if (head_index < 0 || head_index >= config_.kv_heads)
    detail::fail(errc::invalid_argument, function, "head must be in [0, ", config_.kv_heads, "), got ", head_index);
  return heads_[std::size_t(layer) * std::size_t(config_.kv_heads) + std::size_t(head_index)];
}

const cache::part& cache::part_of(const char* function, int layer, int head_index, int part_index) const {
  const head& h = at(function, layer, head_index);
  if (part_index < 0 || part_index >= parts())
    detail::fail(errc::invalid_argument, function, "part must be in [0, ", parts(), "), got ", part_index);
  return h.parts[part_index];
}

// Room for one more packed unit at the end of the used bytes; the buffer keeps
// packed_slack zero bytes after them for the vector loads of the kernels.
std::byte* cache::grow(stream& s, std::int64_t unit) {
  s.packed.resize(std::size_t(s.packed_bytes + unit + packed_slack));
  std::byte* at = s.packed.data() + s.packed_bytes;
  s.packed_bytes += unit;
  return at;
}

void cache::pack_token(stream& s, const float* x) {
  encode_record(s.fmt, x, config_.head_dim, s.scale, grow(s, unit_bytes(s.fmt, s.role, config_.head_dim)));
  ++s.packed_tokens;
}

// A full window of KIVI keys becomes residual / group chunks (per-channel groups).
void cache::flush_keys(stream& s) {
  const format& f = s.fmt;
  const std::int64_t d = config_.head_dim, unit = unit_bytes(f, side::keys, config_.head_dim);
  const int bits = kivi_bits(f.kind);
  for (std::int64_t first = 0; first < s.residual_tokens; first += f.group) {
    std::byte* chunk = grow(s, unit);
    auto* halves = reinterpret_cast<std::uint16_t*>(chunk);
    ref::quantize_per_channel_chunk(s.residual.data() + first * d, d, d, f.group, bits,
                                    reinterpret_cast<std::uint8_t*>(chunk + 4 * d), std::int64_t(f.group) * bits / 8,
                                    halves, halves + d);
  }
  s.packed_tokens += s.residual_tokens;
  s.residual_tokens = 0;
}

// One token x [head_dim] into a stream: rotated if so, through the residual window.
void cache::push(stream& s, const float* x) {
  float rotated[max_head_dim];
  if (s.fmt.rotate) {
    std::copy(x, x + config_.head_dim, rotated);
    ref::fwht(rotated, config_.head_dim);
    x = rotated;
  }
  push_stored(s, x);
}

// One token already in the stored (rotated if so) domain through the residual window.
void cache::push_stored(stream& s, const float* x) {
  const format& f = s.fmt;
  const std::int64_t d = config_.head_dim;
  if (f.residual == 0) return pack_token(s, x);
  const std::int64_t rows = std::int64_t(s.residual.size()) / d;
  if (s.residual_begin + s.residual_tokens == rows) {  // the window reached the end of its room: move it to the front
    std::copy(s.residual.begin() + s.residual_begin * d, s.residual.begin() + (s.residual_begin + s.residual_tokens) * d,
              s.residual.begin());
    s.residual_begin = 0;
  }
  std::copy(x, x + d, s.residual.begin() + (s.residual_begin + s.residual_tokens) * d);
  ++s.residual_tokens;
  if (s.role == side::keys && is_kivi(f.kind)) {
    if (s.residual_tokens == f.residual) flush_keys(s);
  } else if (s.residual_tokens > f.residual) {  // the oldest token leaves the window
    pack_token(s, s.residual.data() + s.residual_begin * d);
    ++s.residual_begin;
    --s.residual_tokens;
  }
}

// vLLM's calibration on the first append: scale = max|x| / constant over what is
// stored (rotated if so). Only finite values count, so one inf or NaN does not
// ruin the scale of the whole head: it saturates or stays NaN in its own element.
void cache::calibrate(stream& s, const float* x, std::int64_t row_stride, std::int64_t count, bool stored) const {
  const int d = config_.head_dim;
  float amax = 0.0f, rotated[max_head_dim];
  for (std::int64_t t = 0; t < count; ++t) {
    const float* row = x + t * row_stride;
    if (s.fmt.rotate && !stored) {
      std::copy(row, row + d, rotated);
      ref::fwht(rotated, d);
      row = rotated;
    }
    for (int c = 0; c < d; ++c)
      if (std::isfinite(row[c])) amax = std::max(amax, std::fabs(row[c]));
  }
  s.scale = ref::fp8_scale_from_absmax(amax, s.role == side::keys ? ref::fp8_key_scale_constant
                                                                  : ref::fp8_value_scale_constant);
}

void cache::append_rows(head& h, const rows& k, const rows& v, std::int64_t count,
                        std::span<const std::int32_t> positions, std::span<const std::uint8_t> salient) {
  for (int p = 0; p < parts(); ++p)  // fp8 parts calibrate on everything this call appends
    for (auto [s, r] : {std::pair{&h.parts[p].keys, &k}, std::pair{&h.parts[p].values, &v}})
      if (is_fp8(s->fmt.kind) && s->scale == 0.0f) calibrate(*s, r->data, r->stride, count, false);
  for (std::int64_t t = 0; t < count; ++t) {
    part& p = h.parts[salient.empty() || salient[std::size_t(t)] ? 0 : 1];
    push(p.keys, k.data + t * k.stride);
    push(p.values, v.data + t * v.stride);
    const std::int32_t position = positions.empty() ? h.next_position : positions[std::size_t(t)];
    p.positions.push_back(position);
    h.next_position = position + 1;
  }
}

namespace {

void check_rows(const char* fn, const tensor_view& k, const tensor_view& v, std::span<const std::int64_t> expected,
                const char* expected_text) {
  for (auto [x, name] : {std::pair{&k, "k"}, std::pair{&v, "v"}}) {
    detail::check_device(fn, name, *x, cpu_device);
    detail::check_dtype(fn, name, *x, dtype::f32);
  }
  if (!std::equal(k.shape().begin(), k.shape().end(), expected.begin(), expected.end()))
    detail::fail(errc::shape_mismatch, fn, "k must have shape ", expected_text, " = ", expected, ", got ", k.shape());
  detail::check_shape(fn, "v", v, k.shape());
  detail::check_rows_dense(fn, "k", k);
  detail::check_rows_dense(fn, "v", v);
}

}  // namespace

void cache::check_append(const char* fn, std::int64_t tokens, std::span<const std::int32_t> positions,
                         std::span<const std::uint8_t> salient) const {
  if (!positions.empty() && std::int64_t(positions.size()) != tokens)
    detail::fail(errc::shape_mismatch, fn, "positions must hold one entry per token (", tokens, "), got ",
                 positions.size());
  if (!salient.empty() && parts() == 1)
    detail::fail(errc::invalid_argument, fn,
                 "salient flags need a mixed-precision cache (kv::mixed_precision formats), got ", salient.size());
  if (!salient.empty() && std::int64_t(salient.size()) != tokens)
    detail::fail(errc::shape_mismatch, fn, "salient must hold one flag per token (", tokens, "), got ", salient.size());
}

void cache::append(int layer, int head_index, const tensor_view& k, const tensor_view& v,
                   std::span<const std::int32_t> positions, std::span<const std::uint8_t> salient) {
  constexpr const char* fn = "kv::cache::append";
  head& h = at(fn, layer, head_index);
  const std::int64_t d = config_.head_dim;
  const std::int64_t tokens = k.rank() == 2 ? k.size(0) : 1;
  const std::int64_t shape2[] = {tokens, d};
  const bool one = k.rank() == 1;
  check_rows(fn, k, v, one ? std::span<const std::int64_t>(shape2 + 1, 1) : std::span<const std::int64_t>(shape2),
             one ? "[head_dim]" : "[tokens, head_dim]");
  check_append(fn, tokens, positions, salient);
  const rows kr{static_cast<const float*>(k.data()), one ? d : k.stride(0)};
  const rows vr{static_cast<const float*>(v.data()), one ? d : v.stride(0)};
  append_rows(h, kr, vr, tokens, positions, salient);
}

void cache::append(int layer, const tensor_view& k, const tensor_view& v, std::span<const std::int32_t> positions,
                   std::span<const std::uint8_t> salient) {
  constexpr const char* fn = "kv::cache::append";
  at(fn, layer, 0);
  const std::int64_t d = config_.head_dim, heads = config_.kv_heads;
  const bool one = k.rank() == 2;
  const std::int64_t tokens = k.rank() == 3 ? k.size(1) : 1;
  const std::int64_t shape3[] = {heads, tokens, d}, shape2[] = {heads, d};
  check_rows(fn, k, v, one ? std::span<const std::int64_t>(shape2) : std::span<const std::int64_t>(shape3),
             one ? "[kv_heads, head_dim]" : "[kv_heads, tokens, head_dim]");
  check_append(fn, tokens, positions, salient);
  const std::int64_t ks = one ? d : k.stride(1), vs = one ? d : v.stride(1);
  const auto* kp = static_cast<const float*>(k.data());
  const auto* vp = static_cast<const float*>(v.data());
  const bool parallel = heads > 1 && tokens * d >= 4096;
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t i = 0; i < heads; ++i)
    append_rows(heads_[std::size_t(layer * heads + i)], rows{kp + i * k.stride(0), ks}, rows{vp + i * v.stride(0), vs},
                tokens, positions, salient);
}

std::int64_t cache::tokens(int layer, int head_index) const {
  const head& h = at("kv::cache::tokens", layer, head_index);
  return std::int64_t(h.parts[0].positions.size() + h.parts[1].positions.size());
}

std::span<const std::int32_t> cache::positions(int layer, int head_index, int part_index) const {
  return part_of("kv::cache::positions", layer, head_index, part_index).positions;
}

std::int64_t cache::bytes(int layer, int head_index) const {
  const head& h = at("kv::cache::bytes", layer, head_index);
  const std::int64_t row = 4 * std::int64_t(config_.head_dim);
  std::int64_t n = 0;
  for (const part& p : h.parts)
    for (const stream* s : {&p.keys, &p.values}) n += s->packed_bytes + s->residual_tokens * row;
  return n;
}

std::int64_t cache::bytes() const {
  std::int64_t n = 0;
  for (int l = 0; l < config_.layers; ++l)
    for (int h = 0; h < config_.kv_heads; ++h) n += bytes(l, h);
  return n;
}

void cache::reserve(std::int64_t tokens) {
  if (tokens < 0) detail::fail(errc::invalid_argument, "kv::cache::reserve", "tokens must be >= 0, got ", tokens);
  for (head& h : heads_)
    for (int p = 0; p < parts(); ++p) {
      for (stream* s : {&h.parts[p].keys, &h.parts[p].values}) {
        const std::int64_t per = s->role == side::keys && is_kivi(s->fmt.kind) ? s->fmt.group : 1;
        s->packed.reserve(std::size_t((tokens + per - 1) / per * unit_bytes(s->fmt, s->role, config_.head_dim) + packed_slack));
      }
      h.parts[p].positions.reserve(std::size_t(tokens));
    }
}

stream_view cache::view_of(const stream& s, std::int64_t tokens) const {
  stream_view out;
  out.fmt = s.fmt;
  out.role = s.role;
  out.head_dim = config_.head_dim;
  out.tokens = tokens;
  out.packed_tokens = s.packed_tokens;
  out.unit_tokens = out.per_channel() ? out.fmt.group : 1;
  out.unit_bytes = unit_bytes(out.fmt, s.role, config_.head_dim);
  out.packed = s.packed.data();
  out.residual = s.residual.data() + s.residual_begin * config_.head_dim;
  out.scale = is_fp8(out.fmt.kind) ? s.scale : 1.0f;
  return out;
}

head_view cache::view(int layer, int head_index, int part_index) const {
  const part& p = part_of("kv::cache::view", layer, head_index, part_index);
  const auto tokens = std::int64_t(p.positions.size());
  return {view_of(p.keys, tokens), view_of(p.values, tokens), p.positions.data(), tokens};
}

void cache::retain(int layer, int head_index, std::span<const std::int32_t> keep) {
  constexpr const char* fn = "kv::cache::retain";
  head& h = at(fn, layer, head_index);
  const std::int64_t n = tokens(layer, head_index);
  for (std::size_t i = 0; i < keep.size(); ++i)
    if (keep[i] < 0 || keep[i] >= n || (i > 0 && keep[i] <= keep[i - 1]))
      detail::fail(errc::invalid_argument, fn, "keep must hold strictly ascending token indices in [0, ", n,
                   "), got ", keep[i], " at entry ", i);
  if (std::int64_t(keep.size()) == n) return;
  const auto first = std::int32_t(h.parts[0].positions.size());
  const auto split = std::size_t(std::lower_bound(keep.begin(), keep.end(), first) - keep.begin());
  for (int p = 0; p < parts(); ++p) {
    part& pt = h.parts[p];
    std::span<const std::int32_t> mine = p == 0 ? keep.first(split) : keep.subspan(split);
    // Part 1's indices count from the end of part 0: make them local.
    std::vector<std::int32_t> local;
    if (p == 1) {
      local.assign(mine.begin(), mine.end());
      for (std::int32_t& i : local) i -= first;
      mine = local;
    }
    if (mine.size() == pt.positions.size()) continue;
    retain_stream(pt.keys, mine);
    retain_stream(pt.values, mine);
    for (std::size_t i = 0; i < mine.size(); ++i) pt.positions[i] = pt.positions[std::size_t(mine[i])];
    pt.positions.resize(mine.size());
  }
}

// Kept indices are ascending, so every move goes toward the front (in place).
void cache::retain_stream(stream& s, std::span<const std::int32_t> keep) {
  const std::int64_t d = config_.head_dim;
  const stream_view v = view_of(s, s.packed_tokens + s.residual_tokens);
  if (v.per_channel()) {
    std::vector<float> rows(keep.size() * std::size_t(d), 0.0f);
    for (std::size_t i = 0; i < keep.size(); ++i) ref::token_axpy(v, keep[i], 1.0f, rows.data() + i * std::size_t(d));
    s.packed_bytes = s.packed_tokens = s.residual_begin = s.residual_tokens = 0;
    s.packed.assign(std::size_t(packed_slack), std::byte{0});
    for (std::size_t i = 0; i < keep.size(); ++i) push_stored(s, rows.data() + i * std::size_t(d));
    return;
  }
  std::int64_t packed = 0, residual = 0;
  float* window = s.residual.data() + s.residual_begin * d;
  for (const std::int32_t t : keep) {
    if (t < s.packed_tokens) {
      std::memmove(s.packed.data() + packed * v.unit_bytes, s.packed.data() + t * v.unit_bytes,
                   std::size_t(v.unit_bytes));
      ++packed;
    } else {
      std::memmove(window + residual * d, window + (t - s.packed_tokens) * d, std::size_t(d) * sizeof(float));
      ++residual;
    }
  }
  s.packed_tokens = packed;
  s.packed_bytes = packed * v.unit_bytes;
  s.residual_tokens = residual;
  s.packed.resize(std::size_t(s.packed_bytes + packed_slack));
  std::fill(s.packed.begin() + s.packed_bytes, s.packed.end(), std::byte{0});
}

void cache::demote(int layer, int head_index, std::span<const std::int32_t> keep) {
  constexpr const char* fn = "kv::cache::demote";
  head& h = at(fn, layer, head_index);
  if (parts() == 1)
    detail::fail(errc::invalid_argument, fn, "demotion moves tokens to part 1: it needs a mixed-precision cache");
  part &high = h.parts[0], &low = h.parts[1];
  const auto n = std::int64_t(high.positions.size());
  for (std::size_t i = 0; i < keep.size(); ++i)
    if (keep[i] < 0 || keep[i] >= n || (i > 0 && keep[i] <= keep[i - 1]))
      detail::fail(errc::invalid_argument, fn, "keep must hold strictly ascending indices of part 0's tokens in [0, ",
                   n, "), got ", keep[i], " at entry ", i);
  const std::int64_t moved = n - std::int64_t(keep.size()), d = config_.head_dim;
  if (moved == 0) return;
  // The demoted tokens as stored (rotated if so: both parts rotate alike), oldest first.
  std::vector<float> k(std::size_t(moved * d), 0.0f), v(k.size(), 0.0f);
  std::vector<std::int32_t> positions;
  positions.reserve(std::size_t(moved));
  const head_view hv = view(layer, head_index, 0);
  for (std::int64_t t = 0, next = 0, row = 0; t < n; ++t) {
    if (next < std::int64_t(keep.size()) && keep[std::size_t(next)] == t) {
      ++next;
      continue;
    }
    ref::token_axpy(hv.keys, t, 1.0f, k.data() + row * d);
    ref::token_axpy(hv.values, t, 1.0f, v.data() + row * d);
    positions.push_back(high.positions[std::size_t(t)]);
    ++row;
  }
  for (auto [s, x] : {std::pair{&low.keys, &k}, std::pair{&low.values, &v}}) {
    if (is_fp8(s->fmt.kind) && s->scale == 0.0f) calibrate(*s, x->data(), d, moved, true);
    for (std::int64_t t = 0; t < moved; ++t) push_stored(*s, x->data() + t * d);
  }
  low.positions.insert(low.positions.end(), positions.begin(), positions.end());
  retain_stream(high.keys, keep);
  retain_stream(high.values, keep);
  for (std::size_t i = 0; i < keep.size(); ++i) high.positions[i] = high.positions[std::size_t(keep[i])];
  high.positions.resize(keep.size());
}

void cache::shrink_to_fit() {
  for (head& h : heads_)
    for (part& p : h.parts) {
      for (stream* s : {&p.keys, &p.values}) s->packed.shrink_to_fit();
      p.positions.shrink_to_fit();
    }
}

void cache::set_fp8_scales(int layer, int head_index, float key_scale, float value_scale) {
  constexpr const char* fn = "kv::cache::set_fp8_scales";
  head& h = at(fn, layer, head_index);
  const std::int64_t held = tokens(layer, head_index);
  if (held != 0)
    detail::fail(errc::invalid_argument, fn, "scales must be set before the head's first append, got a head holding ",
                 held, " tokens");
  for (float s : {key_scale, value_scale})
    if (!(s > 0.0f && s < 3.4e38f))
      detail::fail(errc::invalid_argument, fn, "scales must be finite and > 0, got ", std::to_string(s));
  for (part& p : h.parts) {
    p.keys.scale = key_scale;
    p.values.scale = value_scale;
  }
}

void cache::dequantize(int layer, int head_index, const tensor_view& k, const tensor_view& v, int part_index) const {
  constexpr const char* fn = "kv::cache::dequantize";
  const head_view hv = view(layer, head_index, part_index);
  const std::int64_t shape[] = {hv.tokens, config_.head_dim};
  for (auto [x, name] : {std::pair{&k, "k"}, std::pair{&v, "v"}}) {
    detail::check_device(fn, name, *x, cpu_device);
    detail::check_dtype(fn, name, *x, dtype::f32);
    detail::check_shape(fn, name, *x, shape);
    detail::check_rows_dense(fn, name, *x);
  }
  detail::check_output(fn, "k", k, {});
  detail::check_output(fn, "v", v, {k});
  for (auto [x, s] : {std::pair{&k, &hv.keys}, std::pair{&v, &hv.values}})
    for (std::int64_t t = 0; t < hv.tokens; ++t) {
      float* row = static_cast<float*>(x->data()) + t * x->stride(0);
      std::fill(row, row + config_.head_dim, 0.0f);
      ref::token_axpy(*s, t, 1.0f, row);
      if (s->fmt.rotate) ref::fwht(row, config_.head_dim);
    }
}

}  // namespace cinch::kv
