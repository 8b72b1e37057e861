// Eviction scorers: validation, the layer's heads as views (cache or dense
// tensors), and the per-head work spread over OpenMP threads. Window attention
// logits come from decode attention's kernels (reference or Highway, from the
// packed codes). Other key reads decode one token at a time as ref::token_axpy
// gives it; Expected Attention's quadratic form works on tiles of tokens
// transposed so that it vectorizes over the tile's tokens.
#include "cinch/kv/score.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "attention_kernels.hpp"
#include "cinch/core/backend.hpp"
#include "cinch/detail/checks.hpp"
#include "cinch/ref/attention.hpp"
#include "cinch/ref/hadamard.hpp"
#include "dispatch.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace cinch::kv {
namespace {

constexpr float inf = std::numeric_limits<float>::infinity();
constexpr int tile = 16;        // tokens per key tile
constexpr int row_block = 64;   // window queries whose attention rows are held at once

int thread_id() noexcept {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// ---------------------------------------------------------------- inputs

// The heads of one layer as views, with the storage a dense input needed.
struct layer_heads {
  std::vector<head_view> heads;
  int head_dim = 0;
  std::int64_t next_position = 0;  // one past the last original position (dense: T)
  std::int64_t longest = 0;
  std::vector<float> key_copy, value_copy;  // dense inputs not laid out as [kv_heads, T, head_dim]
};

layer_heads of_cache(std::string_view fn, const cache& c, int layer) {
  const cache_config& cfg = c.config();
  if (layer < 0 || layer >= cfg.layers)
    detail::fail(errc::invalid_argument, fn, "layer must be in [0, ", cfg.layers, "), got ", layer);
  // A mixed-precision layer is scored while its low part is empty (e.g. before
  // MiKV's demote): then part 0 holds every token.
  for (int h = 0; c.parts() == 2 && h < cfg.kv_heads; ++h)
    if (c.view(layer, h, 1).tokens != 0)
      detail::fail(errc::unsupported, fn, "c must not hold tokens in part 1 of a mixed-precision cache (eviction "
                   "scores one part), got ", c.view(layer, h, 1).tokens, " in head ", h);
  layer_heads out;
  out.head_dim = cfg.head_dim;
  for (int h = 0; h < cfg.kv_heads; ++h) {
    const head_view v = c.view(layer, h);
    out.heads.push_back(v);
    out.longest = std::max(out.longest, v.tokens);
    if (v.tokens > 0) out.next_position = std::max<std::int64_t>(out.next_position, v.positions[v.tokens - 1] + 1);
  }
  return out;
}

stream_view dense_stream(const float* data, side role, int d, std::int64_t tokens) noexcept {
  stream_view s;
  s.fmt = format{scheme::f32, 32, 0, false, 0.0f};
  s.role = role;
  s.head_dim = d;
  s.tokens = tokens;
  s.unit_bytes = 4 * std::int64_t(d);
  s.residual = data;
  return s;
}

void check_dense(std::string_view fn, std::string_view name, const tensor_view& x) {
  detail::check_device(fn, name, x, cpu_device);
  detail::check_dtype(fn, name, x, dtype::f32);
  if (x.rank() != 3 || x.size(0) < 1 || x.size(2) < 1)
    detail::fail(errc::shape_mismatch, fn, name, " must be [kv_heads, T, head_dim] with kv_heads, head_dim >= 1, got ",
                 x.shape());
}

// A dense [kv_heads, T, d] tensor whose heads are T rows of d floats each:
// the tensor itself when laid out so (any head stride), else a copy. Returns the
// first row and the head stride.
std::pair<const float*, std::int64_t> dense_rows(const tensor_view& x, std::vector<float>& copy) {
  const std::int64_t heads = x.size(0), tokens = x.size(1), d = x.size(2);
  if ((x.stride(2) == 1 || d == 1) && (x.stride(1) == d || tokens == 1))
    return {static_cast<const float*>(x.data()), x.stride(0)};
  const auto s = x.as<const float, 3>();
  copy.resize(std::size_t(x.numel()));
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t c = 0; c < d; ++c) copy[std::size_t((h * tokens + t) * d + c)] = s(h, t, c);
  return {copy.data(), tokens * d};
}

layer_heads of_dense(std::string_view fn, const tensor_view& keys, const tensor_view* values) {
  check_dense(fn, "keys", keys);
  if (values) {
    check_dense(fn, "values", *values);
    detail::check_shape(fn, "values", *values, keys.shape());
  }
  layer_heads out;
  const std::int64_t heads = keys.size(0), tokens = keys.size(1);
  if (keys.size(2) > std::numeric_limits<int>::max() / 4)
    detail::fail(errc::unsupported, fn, "head_dim must be below 2^29, got ", keys.size(2));
  const int d = int(keys.size(2));
  out.head_dim = d;
  out.next_position = tokens;
  out.longest = tokens;
  const auto [k, k_step] = dense_rows(keys, out.key_copy);
  const auto [v, v_step] = values ? dense_rows(*values, out.value_copy) : std::pair{k, k_step};
  for (std::int64_t h = 0; h < heads; ++h) {
    head_view hv;
    hv.keys = dense_stream(k + h * k_step, side::keys, d, tokens);
    hv.values = dense_stream(v + h * v_step, side::values, d, tokens);
    hv.tokens = tokens;
    out.heads.push_back(hv);
  }
  return out;
}

// Window queries [q_heads, w, head_dim] f32 for a layer's heads; returns q_heads.
int check_queries(std::string_view fn, const tensor_view& q, const layer_heads& layer) {
  const auto kv_heads = std::int64_t(layer.heads.size());
  detail::check_device(fn, "queries", q, cpu_device);
  detail::check_dtype(fn, "queries", q, dtype::f32);
  if (q.rank() != 3 || q.size(0) < 1 || q.size(1) < 1 || q.size(0) % kv_heads != 0 || q.size(2) != layer.head_dim) {
    const std::int64_t example[] = {kv_heads, 1, layer.head_dim};
    detail::fail(errc::shape_mismatch, fn,
                 "queries must be [q_heads, w, head_dim] with w >= 1 and q_heads a multiple of kv_heads (e.g. ",
                 example, "), got ", q.shape());
  }
  detail::check_rows_dense(fn, "queries", q);
  if (q.size(0) > 1 << 20) detail::fail(errc::unsupported, fn, "queries must have at most 2^20 heads, got ", q.size(0));
  return int(q.size(0));
}

// w window queries must fit in every head.
void check_window(std::string_view fn, std::int64_t w, const layer_heads& layer) {
  for (std::size_t h = 0; h < layer.heads.size(); ++h)
    if (layer.heads[h].tokens < w)
      detail::fail(errc::invalid_argument, fn, "the window of ", w,
                   " queries must not be longer than the context, got head ", h, " with ", layer.heads[h].tokens,
                   " tokens");
}

float scale_of(std::string_view fn, std::optional<float> scale, int d) {
  if (scale && !std::isfinite(*scale))
    detail::fail(errc::invalid_argument, fn, "scale must be finite, got ", std::to_string(*scale));
  return scale ? *scale : 1.0f / std::sqrt(float(d));
}

void check_at_least(std::string_view fn, std::string_view name, std::int64_t value, std::int64_t least) {
  if (value < least) detail::fail(errc::invalid_argument, fn, name, " must be >= ", least, ", got ", value);
}

// Rows [first, first + count) of query head h, dense, into dst (count x d).
void copy_queries(const tensor_view& q, int h, std::int64_t first, std::int64_t count, float* dst) noexcept {
  const std::int64_t d = q.size(2);
  const auto* base = static_cast<const float*>(q.data()) + h * q.stride(0);
  for (std::int64_t i = 0; i < count; ++i) std::copy_n(base + (first + i) * q.stride(1), d, dst + i * d);
}

// ---------------------------------------------------------------- reading tokens

// Token t of a stream in f32 (stored basis): its residual row, or decoded into row.
const float* token_row(const stream_view& s, std::int64_t t, float* row) noexcept {
  if (t >= s.packed_tokens) return s.residual + (t - s.packed_tokens) * s.head_dim;
  std::fill_n(row, s.head_dim, 0.0f);
  ref::token_axpy(s, t, 1.0f, row);
  return row;
}

// The same in the true channels: rotated streams are rotated back (H is its own inverse).
const float* true_row(const stream_view& s, std::int64_t t, float* row) noexcept {
  const float* x = token_row(s, t, row);
  if (!s.fmt.rotate) return x;
  if (x != row) std::copy_n(x, s.head_dim, row);
  ref::fwht(row, s.head_dim);
  return row;
}

// Tokens [t0, t0 + n) transposed into kt[c * tile + j], zeros for j >= n.
void load_tile(const stream_view& s, std::int64_t t0, int n, float* row, float* kt) noexcept {
  const int d = s.head_dim;
  for (int j = 0; j < tile; ++j) {
    const float* x = j < n ? token_row(s, t0 + j, row) : nullptr;
    for (int c = 0; c < d; ++c) kt[c * tile + j] = x ? x[c] : 0.0f;
  }
}

// Softmax of x[0, n) in place: exp(x - max) / sum (the sum in index order). A NaN
// makes the whole row NaN (through the sum), whatever max it finds.
void softmax(float* x, std::int64_t n) noexcept {
  float m = -inf;
#pragma omp simd reduction(max : m)
  for (std::int64_t j = 0; j < n; ++j) m = std::max(m, x[j]);
  float sum = 0.0f;
  for (std::int64_t j = 0; j < n; ++j) {
    x[j] = std::exp(x[j] - m);
    sum += x[j];
  }
  for (std::int64_t j = 0; j < n; ++j) x[j] /= sum;
}

// ---------------------------------------------------------------- window attention

// The attention rows of window queries [first, first + count) (of w; q: their
// count x d rows in the keys' basis) over a head of T tokens: row r in
// p[r * T ..], softmax over the tokens it sees (T - w + first + r + 1); entries
// past those are left undefined. The logits come from decode attention's
// kernels (straight from the packed codes).
void attention_rows(const detail::attention_kernels& k, const stream_view& keys, std::int64_t w, std::int64_t first,
                    int count, const float* q, float scale, float* p) noexcept {
  const std::int64_t T = keys.tokens, offset = T - w;  // query i sees tokens j <= offset + i
  const std::int64_t end = offset + first + count;
  // The kernel takes 4 rows per pass: ranges of 512 tokens stay in cache for all passes.
  for (std::int64_t t0 = 0; t0 < end; t0 += 512)
    k.logits(keys, t0, std::min<std::int64_t>(end, t0 + 512), q, count, scale, p + t0, T);
  for (int r = 0; r < count; ++r) softmax(p + r * T, offset + first + r + 1);
}

// What a window scorer keeps of one query head's attention rows.
enum class reduction { column_sum, column_mean, prefix_mean };

// Per query head h (of q_heads, g per KV head), over the window rows
// [w_first, w_first + w) of `queries`: column sums of the attention rows
// (column_sum), those over the number of rows seeing each token (column_mean), or
// over w for the tokens before the window (prefix_mean: T - w entries).
std::vector<std::vector<float>> window_scores(const layer_heads& layer, const tensor_view& queries,
                                              std::int64_t w_first, std::int64_t w, float scale, reduction kind) {
  const int q_heads = int(queries.size(0)), kv_heads = int(layer.heads.size()), g = q_heads / kv_heads;
  const int d = layer.head_dim;
  std::vector<std::vector<float>> out(static_cast<std::size_t>(q_heads));
  for (int h = 0; h < q_heads; ++h) {
    const std::int64_t T = layer.heads[std::size_t(h / g)].tokens;
    out[std::size_t(h)].assign(std::size_t(kind == reduction::prefix_mean ? T - w : T), 0.0f);
  }
  const int threads = std::max(1, std::min(cinch::threads(), q_heads));
  const std::int64_t rows = std::min<std::int64_t>(w, row_block);
  const std::size_t per_thread = std::size_t(rows * (layer.longest + d));  // attention rows, their queries
  std::vector<float> scratch(per_thread * std::size_t(threads));
  // The Highway logits hold up to 1024 channels.
  const detail::attention_kernels& kernels = detail::use_reference_kernels() || d > 1024
                                                 ? detail::ref_attention_kernels()
                                                 : detail::simd_attention_kernels();
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1)
  for (int h = 0; h < q_heads; ++h) {
    const head_view& hv = layer.heads[std::size_t(h / g)];
    const std::int64_t T = hv.tokens;
    float* p = scratch.data() + per_thread * std::size_t(thread_id());
    float* q = p + rows * T;
    float* acc = out[std::size_t(h)].data();
    for (std::int64_t i0 = 0; i0 < w; i0 += row_block) {
      const int count = int(std::min<std::int64_t>(row_block, w - i0));
      copy_queries(queries, h, w_first + i0, count, q);
      if (hv.keys.fmt.rotate)
        for (int r = 0; r < count; ++r) ref::fwht(q + r * d, d);  // <H q, H k> = <q, k>
      attention_rows(kernels, hv.keys, w, i0, count, q, scale, p);
      for (int r = 0; r < count; ++r) {  // rows in window order, so each column sums in order
        const std::int64_t seen = T - w + i0 + r + 1;
        const std::int64_t n = kind == reduction::prefix_mean ? T - w : seen;
        const float* pr = p + r * T;
        for (std::int64_t j = 0; j < n; ++j) acc[j] += pr[j];
      }
    }
    if (kind == reduction::column_mean)
      for (std::int64_t j = 0; j < T; ++j) acc[j] /= float(std::min(w, T - j));
    if (kind == reduction::prefix_mean)
      for (std::int64_t j = 0; j < T - w; ++j) acc[j] /= float(w);
  }
  return out;
}

// Per KV head: its g query heads' scores combined (mean: summed in query-head
// order, divided by g; max), then `tail` entries of +inf appended.
std::vector<head_scores> combine(const std::vector<std::vector<float>>& per_query, int kv_heads, group_reduce reduce,
                                 const std::vector<std::int64_t>& tail) {
  const int g = int(per_query.size()) / kv_heads;
  std::vector<head_scores> out(static_cast<std::size_t>(kv_heads));
  for (int h = 0; h < kv_heads; ++h) {
    head_scores& s = out[std::size_t(h)];
    s = per_query[std::size_t(h * g)];
    for (int i = 1; i < g; ++i) {
      const std::vector<float>& x = per_query[std::size_t(h * g + i)];
      for (std::size_t j = 0; j < s.size(); ++j) s[j] = reduce == group_reduce::max ? std::max(s[j], x[j]) : s[j] + x[j];
    }
    if (reduce == group_reduce::mean && g > 1)
      for (float& v : s) v /= float(g);
    s.resize(s.size() + std::size_t(tail[std::size_t(h)]), inf);
  }
  return out;
}

std::vector<head_scores> attention_scorer(std::string_view fn, const layer_heads& layer, const tensor_view& queries,
                                          const attention_options& options, reduction kind) {
  check_queries(fn, queries, layer);
  const float scale = scale_of(fn, options.scale, layer.head_dim);
  const std::int64_t w = queries.size(1);
  check_window(fn, w, layer);
  const auto per_query = window_scores(layer, queries, 0, w, scale, kind);
  return combine(per_query, int(layer.heads.size()), options.reduce, std::vector<std::int64_t>(layer.heads.size(), 0));
}

// ---------------------------------------------------------------- SnapKV

// 1-D pooling with an odd kernel, stride 1, same padding (avg counts the padding as zeros).
void pool(std::vector<float>& x, int kernel, pooling kind, std::vector<float>& tmp) {
  const auto n = std::int64_t(x.size());
  const int r = kernel / 2;
  tmp.resize(x.size());
  for (std::int64_t j = 0; j < n; ++j) {
    const std::int64_t lo = std::max<std::int64_t>(0, j - r), hi = std::min(n, j + r + 1);
    float v = kind == pooling::max ? -inf : 0.0f;
    for (std::int64_t k = lo; k < hi; ++k) v = kind == pooling::max ? std::max(v, x[std::size_t(k)]) : v + x[std::size_t(k)];
    tmp[std::size_t(j)] = kind == pooling::max ? v : v / float(kernel);
  }
  x.swap(tmp);
}

std::vector<head_scores> snapkv(std::string_view fn, const layer_heads& layer, const tensor_view& queries,
                                const snapkv_options& options) {
  check_queries(fn, queries, layer);
  const float scale = scale_of(fn, options.attention.scale, layer.head_dim);
  check_at_least(fn, "options.window", options.window, 1);
  if (options.kernel < 1 || options.kernel % 2 == 0)
    detail::fail(errc::invalid_argument, fn, "options.kernel must be odd and >= 1, got ", options.kernel);
  if (options.window > queries.size(1))
    detail::fail(errc::shape_mismatch, fn, "queries must hold at least options.window (", options.window,
                 ") rows, got ", queries.size(1));
  const std::int64_t w = options.window;
  check_window(fn, w, layer);
  auto per_query = window_scores(layer, queries, queries.size(1) - w, w, scale, reduction::prefix_mean);
  std::vector<float> tmp;
  for (auto& x : per_query) pool(x, options.kernel, options.pool, tmp);
  return combine(per_query, int(layer.heads.size()), options.attention.reduce,
                 std::vector<std::int64_t>(layer.heads.size(), w));
}

// ---------------------------------------------------------------- TOVA

std::vector<head_scores> tova(std::string_view fn, const layer_heads& layer, const tensor_view& queries,
                              const tova_options& options) {
  const int q_heads = check_queries(fn, queries, layer);
  const float scale = scale_of(fn, options.scale, layer.head_dim);
  for (std::size_t h = 1; h < layer.heads.size(); ++h)
    if (layer.heads[h].tokens != layer.heads[0].tokens)
      detail::fail(errc::shape_mismatch, fn, "every head must hold the same number of tokens (TOVA scores all heads "
                   "alike), got ", layer.heads[0].tokens, " in head 0 and ", layer.heads[h].tokens, " in head ", h);
  check_window(fn, 1, layer);
  const auto rows = window_scores(layer, queries, queries.size(1) - 1, 1, scale, reduction::column_sum);
  head_scores mean = rows[0];  // summed in query-head order, divided by q_heads
  for (int h = 1; h < q_heads; ++h)
    for (std::size_t j = 0; j < mean.size(); ++j) mean[j] += rows[std::size_t(h)][j];
  for (float& v : mean) v /= float(q_heads);
  return std::vector<head_scores>(layer.heads.size(), mean);
}

// ---------------------------------------------------------------- key statistics

// f(head, its scores, a row of scratch) for every KV head, in parallel.
template <class PerHead>
std::vector<head_scores> per_head(const layer_heads& layer, std::size_t scratch_floats, PerHead f) {
  const int kv_heads = int(layer.heads.size());
  std::vector<head_scores> out(static_cast<std::size_t>(kv_heads));
  for (int h = 0; h < kv_heads; ++h) out[std::size_t(h)].resize(std::size_t(layer.heads[std::size_t(h)].tokens));
  const int threads = std::max(1, std::min(cinch::threads(), kv_heads));
  std::vector<float> scratch(scratch_floats * std::size_t(threads));
  const bool parallel = threads > 1 && layer.longest * layer.head_dim >= 16384;
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (parallel)
  for (int h = 0; h < kv_heads; ++h)
    f(layer.heads[std::size_t(h)], out[std::size_t(h)].data(), scratch.data() + scratch_floats * std::size_t(thread_id()));
  return out;
}

float norm(const float* x, int d) noexcept {
  float sum = 0.0f;
  for (int c = 0; c < d; ++c) sum += x[c] * x[c];
  return std::sqrt(sum);
}

std::vector<head_scores> knorm(const layer_heads& layer) {
  const int d = layer.head_dim;
  return per_head(layer, std::size_t(d), [d](const head_view& hv, float* s, float* row) noexcept {
    for (std::int64_t t = 0; t < hv.tokens; ++t) s[t] = -norm(token_row(hv.keys, t, row), d);  // H keeps norms
  });
}

std::vector<head_scores> keydiff(const layer_heads& layer) {
  const int d = layer.head_dim;
  return per_head(layer, std::size_t(3 * d), [d](const head_view& hv, float* s, float* scratch) noexcept {
    // Cosines and the normalized mean are unchanged by the rotation H: stored rows serve.
    float* row = scratch;
    float* anchor = scratch + d;
    float* part = scratch + 2 * d;  // sums of up to 256 tokens in f32, then added to the anchor
    std::fill_n(anchor, d, 0.0f);
    for (std::int64_t t0 = 0; t0 < hv.tokens; t0 += 256) {
      std::fill_n(part, d, 0.0f);
      for (std::int64_t t = t0; t < std::min(hv.tokens, t0 + 256); ++t) {
        const float* x = token_row(hv.keys, t, row);
        const float inv = 1.0f / std::max(norm(x, d), 1e-12f);
        for (int c = 0; c < d; ++c) part[c] += x[c] * inv;
      }
      for (int c = 0; c < d; ++c) anchor[c] += part[c];
    }
    for (int c = 0; c < d; ++c) anchor[c] /= float(hv.tokens);
    const float anchor_norm = norm(anchor, d);
    for (std::int64_t t = 0; t < hv.tokens; ++t) {
      const float* x = token_row(hv.keys, t, row);
      float dot = 0.0f;
      for (int c = 0; c < d; ++c) dot += x[c] * anchor[c];
      s[t] = -(dot / std::max(norm(x, d) * anchor_norm, 1e-8f));
    }
  });
}

std::vector<head_scores> streaming_llm(const layer_heads& layer, const streaming_llm_options& options) {
  std::vector<head_scores> out;
  for (const head_view& hv : layer.heads) {
    head_scores s(std::size_t(hv.tokens));
    for (std::int64_t t = 0; t < hv.tokens; ++t) s[std::size_t(t)] = t < options.sinks ? inf : -float(hv.tokens - 1 - t);
    out.push_back(std::move(s));
  }
  return out;
}

// ---------------------------------------------------------------- LagKV

// s[i] for the lag tokens x (lag x d rows) against the next partition ref: per
// channel z = (x - min_ref) / (max_ref - min_ref) (0 for an empty range), the
// unbiased standard deviation of z over channels, softmax over the partition.
// range: 3 d floats of scratch.
void lag_scores(const float* x, const float* ref, int lag, int d, float* range, float* s) noexcept {
  float* lo = range;
  float* hi = range + d;
  std::copy_n(ref, d, lo);
  std::copy_n(ref, d, hi);
  for (int i = 1; i < lag; ++i)
    for (int c = 0; c < d; ++c) {
      lo[c] = std::min(lo[c], ref[i * d + c]);
      hi[c] = std::max(hi[c], ref[i * d + c]);
    }
  float* z = range + 2 * d;
  for (int i = 0; i < lag; ++i) {
    float mean = 0.0f;
    for (int c = 0; c < d; ++c) {
      z[c] = hi[c] > lo[c] ? (x[i * d + c] - lo[c]) / (hi[c] - lo[c]) : 0.0f;
      mean += z[c];
    }
    mean /= float(d);
    float var = 0.0f;
    for (int c = 0; c < d; ++c) var += (z[c] - mean) * (z[c] - mean);
    s[i] = std::sqrt(var / float(d - 1));
  }
  softmax(s, lag);
}

// lag rows of a stream from token t0, in true channels, into dst.
void read_rows(const stream_view& s, std::int64_t t0, int lag, float* dst) noexcept {
  const int d = s.head_dim;
  for (int i = 0; i < lag; ++i) {
    float* row = dst + std::int64_t(i) * d;
    const float* x = true_row(s, t0 + i, row);
    if (x != row) std::copy_n(x, d, row);
  }
}

std::vector<head_scores> lagkv(std::string_view fn, const layer_heads& layer, const lagkv_options& options) {
  check_at_least(fn, "options.sinks", options.sinks, 0);
  check_at_least(fn, "options.lag", options.lag, 1);
  if (options.lag > 1 << 20) detail::fail(errc::invalid_argument, fn, "options.lag must be <= 2^20, got ", options.lag);
  if (layer.head_dim < 2)
    detail::fail(errc::unsupported, fn, "head_dim must be >= 2 (a standard deviation over channels), got ",
                 layer.head_dim);
  const int d = layer.head_dim, lag = options.lag;
  const std::int64_t sinks = options.sinks;
  const std::size_t scratch = std::size_t(2 * std::int64_t(lag) * d + 3 * d + 2 * lag);
  return per_head(layer, scratch, [&](const head_view& hv, float* s, float* work) noexcept {
    const std::int64_t T = hv.tokens;
    for (std::int64_t t = 0; t < std::min(T, sinks); ++t) s[t] = inf;
    if (T < sinks + 2 * std::int64_t(lag)) {  // too short to score: recency after the sinks
      for (std::int64_t t = sinks; t < T; ++t) s[t] = float(t - sinks) / float(T - sinks);
      return;
    }
    float* x = work;
    float* ref = x + std::int64_t(lag) * d;
    float* range = ref + std::int64_t(lag) * d;
    float* ks = range + 3 * d;
    float* vs = ks + lag;
    const std::int64_t partitions = (T - sinks) / lag;  // full ones; the last is only a reference
    for (std::int64_t p = 0; p + 1 < partitions; ++p) {
      const std::int64_t t0 = sinks + p * lag;
      read_rows(hv.keys, t0, lag, x);
      read_rows(hv.keys, t0 + lag, lag, ref);
      lag_scores(x, ref, lag, d, range, ks);
      read_rows(hv.values, t0, lag, x);
      read_rows(hv.values, t0 + lag, lag, ref);
      lag_scores(x, ref, lag, d, range, vs);
      for (int i = 0; i < lag; ++i) ks[i] = (ks[i] + vs[i]) / 2.0f;
      for (int i = 0; i < lag; ++i) {
        if (!options.rank) {
          s[t0 + i] = ks[i];
          continue;
        }
        int rank = 0;  // tokens of the partition ranking below i
        for (int j = 0; j < lag; ++j) rank += ks[j] < ks[i] || (ks[j] == ks[i] && j < i);
        s[t0 + i] = float(rank) / float(lag);
      }
    }
    for (std::int64_t t = sinks + (partitions - 1) * lag; t < T; ++t) s[t] = inf;
  });
}

// ---------------------------------------------------------------- Expected Attention

// x <- R x for the mean RoPE rotation R: per channel pair (a, b) with mean cosine
// C and sine S of its frequency, (x_a, x_b) <- (C x_a - S x_b, S x_a + C x_b).
void rotate_mean(float* x, std::int64_t stride, int d, rope_pairing pairing, const std::vector<double>& cs) noexcept {
  for (int i = 0; i < d / 2; ++i) {
    const int a = pairing == rope_pairing::half_split ? i : 2 * i;
    const int b = pairing == rope_pairing::half_split ? i + d / 2 : 2 * i + 1;
    const double xa = x[a * stride], xb = x[b * stride], c = cs[std::size_t(2 * i)], s = cs[std::size_t(2 * i + 1)];
    x[a * stride] = float(c * xa - s * xb);
    x[b * stride] = float(s * xa + c * xb);
  }
}

// Mean and covariance (over the rows, divided by n) of n rows x of d, into mu
// [d] and sigma [d x d]; centered: d floats, sums: d + d * d doubles of scratch.
void moments(const float* x, std::int64_t n, int d, bool covariance, float* mu, float* sigma, float* centered,
             double* sums) noexcept {
  double* sum = sums;
  double* total = sums + d;
  std::fill_n(sum, d, 0.0);
  for (std::int64_t r = 0; r < n; ++r)
    for (int c = 0; c < d; ++c) sum[c] += x[r * d + c];
  for (int c = 0; c < d; ++c) mu[c] = float(sum[c] / double(n));
  if (!covariance) return;
  // upper triangle in f32 over blocks of 256 rows, totals in f64
  std::fill_n(total, std::int64_t(d) * d, 0.0);
  std::fill_n(sigma, std::int64_t(d) * d, 0.0f);
  for (std::int64_t r0 = 0; r0 < n; r0 += 256) {
    for (std::int64_t r = r0; r < std::min(n, r0 + 256); ++r) {
      for (int c = 0; c < d; ++c) centered[c] = x[r * d + c] - mu[c];
      for (int a = 0; a < d; ++a) {
        const float xa = centered[a];
        float* out = sigma + std::int64_t(a) * d;
        for (int b = a; b < d; ++b) out[b] += xa * centered[b];
      }
    }
    for (int a = 0; a < d; ++a)
      for (int b = a; b < d; ++b) {
        total[a * d + b] += sigma[a * d + b];
        sigma[a * d + b] = 0.0f;
      }
  }
  for (int a = 0; a < d; ++a)
    for (int b = a; b < d; ++b) sigma[a * d + b] = sigma[b * d + a] = float(total[a * d + b] / double(n));
}

// e[t] = scale * mu . k_t + scale^2 / 2 * k_t^T sigma k_t for tokens t in [first, T),
// mu and sigma in the keys' basis; sigma null: the mean term only.
void exponents(const stream_view& keys, std::int64_t first, const float* mu, const float* sigma, float scale,
               float* e, float* scratch) noexcept {
  const int d = keys.head_dim;
  float* kt = scratch;
  float* row = kt + tile * d;
  for (std::int64_t t0 = first; t0 < keys.tokens; t0 += tile) {
    const int n = int(std::min<std::int64_t>(tile, keys.tokens - t0));
    load_tile(keys, t0, n, row, kt);
    float lin[tile] = {}, quad[tile] = {};
    for (int c = 0; c < d; ++c)
#pragma omp simd
      for (int j = 0; j < tile; ++j) lin[j] += mu[c] * kt[c * tile + j];
    if (sigma)  // k^T sigma k = sum_a k_a (sigma_aa k_a + 2 sum_{b > a} sigma_ab k_b): sigma is symmetric
      for (int a = 0; a < d; ++a) {
        float u[tile] = {};
        const float* sa = sigma + std::int64_t(a) * d;
        for (int b = a + 1; b < d; ++b)
#pragma omp simd
          for (int j = 0; j < tile; ++j) u[j] += sa[b] * kt[b * tile + j];
#pragma omp simd
        for (int j = 0; j < tile; ++j) quad[j] += kt[a * tile + j] * (sa[a] * kt[a * tile + j] + 2.0f * u[j]);
      }
    for (int j = 0; j < n; ++j) e[t0 + j] = scale * lin[j] + scale * scale * quad[j] / 2.0f;
  }
}

std::vector<head_scores> expected_attention(std::string_view fn, const layer_heads& layer, const tensor_view& queries,
                                            const expected_attention_options& o) {
  const int q_heads = check_queries(fn, queries, layer);
  const int d = layer.head_dim, kv_heads = int(layer.heads.size()), g = q_heads / kv_heads;
  const float scale = scale_of(fn, o.attention.scale, d);
  check_at_least(fn, "options.sinks", o.sinks, 0);
  check_at_least(fn, "options.n_future", o.n_future, 1);
  if (!(o.rope_theta > 0.0) || !std::isfinite(o.rope_theta))
    detail::fail(errc::invalid_argument, fn, "options.rope_theta must be finite and > 0, got ", std::to_string(o.rope_theta));
  if (!(o.epsilon >= 0.0f) || !std::isfinite(o.epsilon))
    detail::fail(errc::invalid_argument, fn, "options.epsilon must be finite and >= 0, got ", std::to_string(o.epsilon));
  if (d % 2 != 0) detail::fail(errc::unsupported, fn, "head_dim must be even (RoPE pairs channels), got ", d);
  const std::int64_t n = queries.size(1) - o.sinks;  // statistics skip the sink rows
  if (n < 1)
    detail::fail(errc::shape_mismatch, fn, "queries must hold more rows than options.sinks (", o.sinks, "), got ",
                 queries.size(1));
  const std::int64_t next = o.next_position.value_or(layer.next_position);
  check_at_least(fn, "options.next_position", next, 0);
  const bool rotated = !layer.heads.empty() && layer.heads[0].keys.fmt.rotate;

  // mean cosine and sine of each pair's angle over the future positions
  std::vector<double> cs(static_cast<std::size_t>(d));
  for (int i = 0; i < d / 2; ++i) {
    const double omega = std::pow(o.rope_theta, -2.0 * i / d);
    double c = 0.0, s = 0.0;
    for (std::int64_t p = next; p < next + o.n_future; ++p) {
      c += std::cos(double(p) * omega);
      s += std::sin(double(p) * omega);
    }
    cs[std::size_t(2 * i)] = c / o.n_future;
    cs[std::size_t(2 * i + 1)] = s / o.n_future;
  }

  std::vector<std::vector<float>> per_query(static_cast<std::size_t>(q_heads));
  for (int h = 0; h < q_heads; ++h) per_query[std::size_t(h)].assign(std::size_t(layer.heads[std::size_t(h / g)].tokens), 0.0f);
  const int threads = std::max(1, std::min(cinch::threads(), q_heads));
  // per thread: the statistics' rows, sigma, mu, a tile with its row buffer (or a centered row)
  const std::size_t per_thread = std::size_t((n + d + 1 + tile + 1) * d);
  const std::size_t per_thread_sums = std::size_t(d + std::int64_t(d) * d);
  std::vector<float> scratch(per_thread * std::size_t(threads));
  std::vector<double> sums(per_thread_sums * std::size_t(threads));
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1)
  for (int h = 0; h < q_heads; ++h) {
    const head_view& hv = layer.heads[std::size_t(h / g)];
    float* x = scratch.data() + per_thread * std::size_t(thread_id());
    float* sigma = x + n * d;
    float* mu = sigma + std::int64_t(d) * d;
    float* work = mu + d;  // tile + row, or a centered row
    copy_queries(queries, h, o.sinks, n, x);
    moments(x, n, d, o.use_covariance, mu, sigma, work, sums.data() + per_thread_sums * std::size_t(thread_id()));
    rotate_mean(mu, 1, d, o.pairing, cs);
    if (o.use_covariance) {
      for (int c = 0; c < d; ++c) rotate_mean(sigma + c, d, d, o.pairing, cs);  // R sigma: every column
      for (int r = 0; r < d; ++r) rotate_mean(sigma + std::int64_t(r) * d, 1, d, o.pairing, cs);  // (R sigma) R^T
    }
    if (rotated) {  // into the keys' basis: H mu, H sigma H (H symmetric)
      ref::fwht(mu, d);
      if (o.use_covariance) {
        for (int r = 0; r < d; ++r) ref::fwht(sigma + std::int64_t(r) * d, d);
        for (int a = 0; a < d; ++a)  // transpose, then the rows again
          for (int b = a + 1; b < d; ++b) std::swap(sigma[a * d + b], sigma[b * d + a]);
        for (int r = 0; r < d; ++r) ref::fwht(sigma + std::int64_t(r) * d, d);
      }
    }
    float* e = per_query[std::size_t(h)].data();
    const std::int64_t first = std::min<std::int64_t>(o.sinks, hv.tokens);
    exponents(hv.keys, first, mu, o.use_covariance ? sigma : nullptr, scale, e, work);
    softmax(e + first, hv.tokens - first);
  }

  std::vector<head_scores> out = combine(per_query, kv_heads, o.attention.reduce, std::vector<std::int64_t>(std::size_t(kv_heads), 0));
  for (int h = 0; h < kv_heads; ++h) {
    const head_view& hv = layer.heads[std::size_t(h)];
    float* s = out[std::size_t(h)].data();
    std::vector<float> row(static_cast<std::size_t>(d));
    for (std::int64_t t = 0; t < hv.tokens; ++t) {
      if (t < o.sinks) {
        s[t] = inf;
        continue;
      }
      if (o.use_vnorm) s[t] = (s[t] + o.epsilon) * norm(token_row(hv.values, t, row.data()), d);  // H keeps norms
    }
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- public entry points

std::vector<head_scores> streaming_llm_scores(const cache& c, int layer, const streaming_llm_options& options) {
  constexpr std::string_view fn = "kv::streaming_llm_scores";
  check_at_least(fn, "options.sinks", options.sinks, 0);
  return streaming_llm(of_cache(fn, c, layer), options);
}
std::vector<head_scores> streaming_llm_scores(const tensor_view& keys, const streaming_llm_options& options) {
  constexpr std::string_view fn = "kv::streaming_llm_scores";
  check_at_least(fn, "options.sinks", options.sinks, 0);
  check_dense(fn, "keys", keys);
  std::vector<head_view> heads(std::size_t(keys.size(0)));
  for (head_view& h : heads) h.tokens = keys.size(1);  // only the lengths matter
  layer_heads layer;
  layer.heads = std::move(heads);
  return streaming_llm(layer, options);
}

std::vector<head_scores> h2o_scores(const cache& c, int layer, const tensor_view& queries,
                                    const attention_options& options) {
  constexpr std::string_view fn = "kv::h2o_scores";
  return attention_scorer(fn, of_cache(fn, c, layer), queries, options, reduction::column_sum);
}
std::vector<head_scores> h2o_scores(const tensor_view& keys, const tensor_view& queries,
                                    const attention_options& options) {
  constexpr std::string_view fn = "kv::h2o_scores";
  return attention_scorer(fn, of_dense(fn, keys, nullptr), queries, options, reduction::column_sum);
}

void h2o_accumulate(head_scores& total, std::span<const float> step) {
  if (step.size() < total.size())
    detail::fail(errc::shape_mismatch, "kv::h2o_accumulate", "step must score at least the ", total.size(),
                 " tokens of total, got ", step.size());
  total.resize(step.size(), 0.0f);
  for (std::size_t j = 0; j < step.size(); ++j) total[j] += step[j];
}

std::vector<head_scores> observed_attention_scores(const cache& c, int layer, const tensor_view& queries,
                                                   const attention_options& options) {
  constexpr std::string_view fn = "kv::observed_attention_scores";
  return attention_scorer(fn, of_cache(fn, c, layer), queries, options, reduction::column_mean);
}
std::vector<head_scores> observed_attention_scores(const tensor_view& keys, const tensor_view& queries,
                                                   const attention_options& options) {
  constexpr std::string_view fn = "kv::observed_attention_scores";
  return attention_scorer(fn, of_dense(fn, keys, nullptr), queries, options, reduction::column_mean);
}

std::vector<head_scores> snapkv_scores(const cache& c, int layer, const tensor_view& queries,
                                       const snapkv_options& options) {
  constexpr std::string_view fn = "kv::snapkv_scores";
  return snapkv(fn, of_cache(fn, c, layer), queries, options);
}
std::vector<head_scores> snapkv_scores(const tensor_view& keys, const tensor_view& queries,
                                       const snapkv_options& options) {
  constexpr std::string_view fn = "kv::snapkv_scores";
  return snapkv(fn, of_dense(fn, keys, nullptr), queries, options);
}

std::vector<head_scores> tova_scores(const cache& c, int layer, const tensor_view& queries, const tova_options& options) {
  constexpr std::string_view fn = "kv::tova_scores";
  return tova(fn, of_cache(fn, c, layer), queries, options);
}
std::vector<head_scores> tova_scores(const tensor_view& keys, const tensor_view& queries, const tova_options& options) {
  constexpr std::string_view fn = "kv::tova_scores";
  return tova(fn, of_dense(fn, keys, nullptr), queries, options);
}

std::vector<head_scores> knorm_scores(const cache& c, int layer) {
  return knorm(of_cache("kv::knorm_scores", c, layer));
}
std::vector<head_scores> knorm_scores(const tensor_view& keys) {
  return knorm(of_dense("kv::knorm_scores", keys, nullptr));
}

std::vector<head_scores> keydiff_scores(const cache& c, int layer) {
  return keydiff(of_cache("kv::keydiff_scores", c, layer));
}
std::vector<head_scores> keydiff_scores(const tensor_view& keys) {
  return keydiff(of_dense("kv::keydiff_scores", keys, nullptr));
}

std::vector<head_scores> lagkv_scores(const cache& c, int layer, const lagkv_options& options) {
  constexpr std::string_view fn = "kv::lagkv_scores";
  return lagkv(fn, of_cache(fn, c, layer), options);
}
std::vector<head_scores> lagkv_scores(const tensor_view& keys, const tensor_view& values, const lagkv_options& options) {
  constexpr std::string_view fn = "kv::lagkv_scores";
  return lagkv(fn, of_dense(fn, keys, &values), options);
}

std::vector<head_scores> expected_attention_scores(const cache& c, int layer, const tensor_view& queries,
                                                   const expected_attention_options& options) {
  constexpr std::string_view fn = "kv::expected_attention_scores";
  return expected_attention(fn, of_cache(fn, c, layer), queries, options);
}
std::vector<head_scores> expected_attention_scores(const tensor_view& keys, const tensor_view& values,
                                                   const tensor_view& queries,
                                                   const expected_attention_options& options) {
  constexpr std::string_view fn = "kv::expected_attention_scores";
  return expected_attention(fn, of_dense(fn, keys, &values), queries, options);
}

}  // namespace cinch::kv
