// kv::decode_attention: validation, the split of heads and tokens over threads,
// and the merge of split-K partials.
#include "cinch/kv/attention.hpp"

#include <algorithm>
#include <cmath>

#include "attention_kernels.hpp"
#include "cinch/core/tensor.hpp"
#include "cinch/core/backend.hpp"
#include "cinch/detail/checks.hpp"
#include "cinch/ref/attention.hpp"
#include "dispatch.hpp"


namespace cinch {
namespace detail {
namespace {

void ref_attend(const kv::head_view& h, std::int64_t begin, std::int64_t end, const float* q, int group, float scale,
                float* partials, std::int64_t stride) noexcept {
  const int d = h.keys.head_dim;
  for (int i = 0; i < group; ++i) {
    float* p = partials + i * stride;
    ref::attend_range(h, begin, end, q + std::int64_t(i) * d, scale, p + 2, p[0], p[1]);
  }
}

void ref_logits(const kv::stream_view& keys, std::int64_t begin, std::int64_t end, const float* q, int group, float scale,
                float* out, std::int64_t stride) noexcept {
  for (int i = 0; i < group; ++i)
    for (std::int64_t t = begin; t < end; ++t)
      out[i * stride + t - begin] = scale * ref::token_dot(keys, t, q + std::int64_t(i) * keys.head_dim);
}

constexpr attention_kernels ref_table{ref_attend, ref_logits};

}  // namespace

const attention_kernels& ref_attention_kernels() noexcept { return ref_table; }

}  // namespace detail

namespace kv {
namespace {

// Query heads handled together by one task: their rows, partials and rotated
// queries live on the task's stack (2 x 8192 floats at most).
constexpr int stack_floats = 8192;

// Token splits per head: enough tasks for every thread, at least 512 tokens per split.
int choose_splits(std::int64_t longest, int kv_heads, int capacity) {
  const int threads = cinch::threads();
  if (capacity <= 1 || kv_heads >= threads) return 1;
  const std::int64_t wanted = (2 * std::int64_t(threads) + kv_heads - 1) / kv_heads;
  const std::int64_t by_length = std::max<std::int64_t>(1, longest / 512);
  return int(std::min<std::int64_t>({wanted, by_length, capacity}));
}

// Where split `i` of `splits` starts in a head of n tokens: a multiple of 64, so
// that kernels working in tiles of 64 tokens see aligned tiles.
std::int64_t split_point(std::int64_t n, int i, int splits) noexcept {
  return i == splits ? n : n * i / splits / 64 * 64;
}

// Merges a query head's partials into its output row, rotating rotated values back (H is its own inverse).
void finish(const float* partials, int count, std::int64_t stride, int d, bool rotated, float* out) noexcept {
  ref::merge_partials(partials, count, stride, d, out);
  if (rotated) ref::fwht(out, d);
}

// Shared checks of q, out and scale for a layer of kv_heads heads of head_dim; returns the scale.
float check_query(std::string_view fn, const tensor_view& q, const tensor_view& out, int kv_heads, int d,
                  std::optional<float> scale) {
  detail::check_device(fn, "out", out, q.where());
  detail::require_backend(fn, q.where());
  detail::check_dtype(fn, "q", q, dtype::f32);
  detail::check_dtype(fn, "out", out, dtype::f32);
  if (q.rank() != 2 || q.size(1) != d || q.size(0) < 1 || q.size(0) % kv_heads != 0) {
    const std::int64_t example[] = {kv_heads, d};
    detail::fail(errc::shape_mismatch, fn, "q must be [n_heads, head_dim] with n_heads a multiple of kv_heads (e.g. ",
                 example, "), got ", q.shape());
  }
  detail::check_shape(fn, "out", out, q.shape());
  detail::check_rows_dense(fn, "q", q);
  detail::check_rows_dense(fn, "out", out);
  detail::check_output(fn, "out", out, {q});
  if (scale && !std::isfinite(*scale))
    detail::fail(errc::invalid_argument, fn, "scale must be finite, got ", std::to_string(*scale));
  return scale ? *scale : 1.0f / std::sqrt(float(d));
}

// Host attention over kv_heads heads of `parts` parts each, given by
// view_of(kvh, part): tasks of (KV head, query heads sharing it, token split)
// over OpenMP threads, each over every part, then the merge of all partials.
template <class ViewOf>
void run_host(ViewOf view_of, int kv_heads, int parts, int d, const tensor_view& q, const tensor_view& out,
              attention_workspace* ws, float s) {
  const int n_heads = int(q.size(0)), group = n_heads / kv_heads;
  const std::int64_t stride = d + 2;
  const int sub = std::max(1, std::min<int>(group, int(stack_floats / (stride * parts))));  // query heads per task
  const int subgroups = (group + sub - 1) / sub;
  std::int64_t longest = 0;
  for (int h = 0; h < kv_heads; ++h)
    for (int p = 0; p < parts; ++p) longest = std::max(longest, view_of(h, p).tokens);
  const bool fits = ws && ws->where() == cpu_device && ws->query_heads() >= n_heads && ws->head_dim() >= d;
  const int splits = choose_splits(longest, kv_heads * subgroups, fits ? ws->splits() / parts : 1);
  const bool rotated_values = view_of(0, 0).values.fmt.rotate;

  const detail::attention_kernels& k =
      detail::use_reference_kernels() ? detail::ref_attention_kernels() : detail::simd_attention_kernels();
  const auto* qp = static_cast<const float*>(q.data());
  auto* op = static_cast<float*>(out.data());
  const std::int64_t q_row = q.stride(0), out_row = out.stride(0);
  float* partials = fits ? ws->partials() : nullptr;
  const std::int64_t per_head = parts * splits * stride;  // partials of one query head

  const std::int64_t tasks = std::int64_t(kv_heads) * subgroups * splits;
  const bool parallel = tasks > 1 && longest * d * group >= 16384;
#pragma omp parallel for schedule(dynamic) if (parallel)
  for (std::int64_t task = 0; task < tasks; ++task) {
    const int split = int(task % splits), sg = int(task / splits % subgroups), kvh = int(task / splits / subgroups);
    const int first = kvh * group + sg * sub, count = std::min(sub, group - sg * sub);
    float rows[stack_floats], local[stack_floats];
    float* base = splits == 1 ? local : partials + first * per_head;
    const std::int64_t head_stride = splits == 1 ? parts * stride : per_head;
    for (int p = 0; p < parts; ++p) {
      const head_view h = view_of(kvh, p);
      for (int i = 0; i < count; ++i) {
        std::copy_n(qp + (first + i) * q_row, d, rows + i * d);
        if (h.keys.fmt.rotate) ref::fwht(rows + i * d, d);  // <H q, H k> = <q, k>
      }
      const std::int64_t begin = split_point(h.tokens, split, splits), end = split_point(h.tokens, split + 1, splits);
      k.attend(h, begin, end, rows, count, s, base + (std::int64_t(p) * splits + split) * stride, head_stride);
    }
    if (splits == 1)
      for (int i = 0; i < count; ++i) finish(local + i * head_stride, parts, stride, d, rotated_values, op + (first + i) * out_row);
  }
  if (splits > 1) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int i = 0; i < n_heads; ++i)
      finish(partials + i * per_head, parts * splits, stride, d, rotated_values, op + i * out_row);
  }
}

// Attention over one layer of a cache; workspace may be null (no split-K).
void run_cache(const cache& c, int layer, const tensor_view& q, const tensor_view& out, attention_workspace* workspace,
               std::optional<float> scale) {
  constexpr std::string_view fn = "kv::decode_attention";
  const cache_config& cfg = c.config();
  if (layer < 0 || layer >= cfg.layers)
    detail::fail(errc::invalid_argument, fn, "layer must be in [0, ", cfg.layers, "), got ", layer);
  detail::check_device(fn, "q", q, cpu_device);  // the cache lives in host memory
  const float s = check_query(fn, q, out, cfg.kv_heads, cfg.head_dim, scale);
  run_host([&](int h, int p) { return c.view(layer, h, p); }, cfg.kv_heads, c.parts(), cfg.head_dim, q, out, workspace, s);
}

}  // namespace

attention_workspace::attention_workspace(int query_heads, int head_dim, int splits, device where)
    : query_heads_(query_heads), head_dim_(head_dim), splits_(splits > 0 ? splits : 4 * cinch::threads()) {
  constexpr std::string_view fn = "kv::attention_workspace";
  if (query_heads < 1) detail::fail(errc::invalid_argument, fn, "query_heads must be >= 1, got ", query_heads);
  if (head_dim < 1) detail::fail(errc::invalid_argument, fn, "head_dim must be >= 1, got ", head_dim);
  detail::require_backend(fn, where);
  // Partials and, on a GPU, room for the head views (two parts per query head at most).
  const std::int64_t views = where == cpu_device ? 0 : 2 * std::int64_t(query_heads) * std::int64_t(sizeof(head_view)) / 4 + 4;
  const std::int64_t floats = std::int64_t(query_heads) * splits_ * (head_dim + 2) + views;
  storage_ = tensor::empty({floats}, dtype::f32, where);
}

void decode_attention(const cache& c, int layer, const tensor_view& q, const tensor_view& out,
                      std::optional<float> scale) {
  run_cache(c, layer, q, out, nullptr, scale);
}

void decode_attention(const cache& c, int layer, const tensor_view& q, const tensor_view& out,
                      attention_workspace& workspace, std::optional<float> scale) {
  run_cache(c, layer, q, out, &workspace, scale);
}

void decode_attention(std::span<const head_view> heads, const tensor_view& q, const tensor_view& out,
                      attention_workspace& workspace, std::optional<float> scale, int parts) {
  constexpr std::string_view fn = "kv::decode_attention";
  if (parts < 1 || parts > 2) detail::fail(errc::invalid_argument, fn, "parts must be 1 or 2, got ", parts);
  if (heads.empty() || heads.size() % std::size_t(parts) != 0)
    detail::fail(errc::invalid_argument, fn, "heads must hold kv_heads x parts (", parts, ") head views, got ",
                 heads.size());
  const int d = heads[0].keys.head_dim;
  for (std::size_t h = 0; h < heads.size(); ++h) {
    const head_view& v = heads[h];
    for (const stream_view* st : {&v.keys, &v.values})
      if (st->head_dim != d || st->tokens != v.tokens || st->packed_tokens < 0 || st->packed_tokens > v.tokens ||
          (st->packed_tokens > 0 && !st->packed) || (st->packed_tokens < v.tokens && !st->residual))
        detail::fail(errc::invalid_argument, fn, "heads[", h,
                     "] must describe its storage as kv::cache::view does (head_dim ", d,
                     ", 0 <= packed_tokens <= tokens, storage for both segments)");
    if (v.keys.fmt.rotate != heads[0].keys.fmt.rotate || v.values.fmt.rotate != heads[0].values.fmt.rotate)
      detail::fail(errc::invalid_argument, fn, "heads[", h, "] must rotate keys and values as heads[0] does");
  }
  if (d < 1 || d > stack_floats / 8) detail::fail(errc::unsupported, fn, "head_dim must be in [1, 1024], got ", d);
  const int kv_heads = int(heads.size()) / parts;
  const float s = check_query(fn, q, out, kv_heads, d, scale);
  if (workspace.where() != q.where())
    detail::fail(errc::invalid_argument, fn, "workspace must be on ", to_string(q.where()), " like q, got ",
                 to_string(workspace.where()));
#if CINCH_WITH_CUDA
  if (q.where().kind == device_kind::cuda) {
    if (workspace.query_heads() < q.size(0) || workspace.head_dim() < d)
      detail::fail(errc::invalid_argument, fn, "workspace must be made for at least ", q.size(0), " query heads of ", d,
                   " channels on the GPU, got ", workspace.query_heads(), " of ", workspace.head_dim());
    cuda::decode_attention(heads.data(), kv_heads, parts, static_cast<const float*>(q.data()), q.stride(0),
                           static_cast<float*>(out.data()), out.stride(0), int(q.size(0)), s,
                           std::max(1, workspace.splits() / parts), workspace.partials(), q.where().index);
    return;
  }
#endif
  run_host([&](int h, int p) { return heads[std::size_t(h * parts + p)]; }, kv_heads, parts, d, q, out, &workspace, s);
}

void attention_logits(const cache& c, int layer, const tensor_view& q, const tensor_view& out,
                      std::optional<float> scale) {
  constexpr std::string_view fn = "kv::attention_logits";
  const cache_config& cfg = c.config();
  if (layer < 0 || layer >= cfg.layers)
    detail::fail(errc::invalid_argument, fn, "layer must be in [0, ", cfg.layers, "), got ", layer);
  detail::check_device(fn, "q", q, cpu_device);
  detail::check_device(fn, "out", out, cpu_device);
  detail::check_dtype(fn, "q", q, dtype::f32);
  detail::check_dtype(fn, "out", out, dtype::f32);
  const int d = cfg.head_dim, kv_heads = cfg.kv_heads;
  if (q.rank() != 2 || q.size(1) != d || q.size(0) < 1 || q.size(0) % kv_heads != 0)
    detail::fail(errc::shape_mismatch, fn, "q must be [n_heads, head_dim = ", d, "] with n_heads a multiple of ",
                 kv_heads, ", got ", q.shape());
  std::int64_t longest = 0;
  for (int h = 0; h < kv_heads; ++h) longest = std::max(longest, c.tokens(layer, h));
  const std::int64_t expected[] = {q.size(0), longest};
  detail::check_shape(fn, "out", out, expected);
  detail::check_rows_dense(fn, "q", q);
  detail::check_rows_dense(fn, "out", out);
  detail::check_output(fn, "out", out, {q});
  if (scale && !std::isfinite(*scale))
    detail::fail(errc::invalid_argument, fn, "scale must be finite, got ", std::to_string(*scale));
  const float s = scale ? *scale : 1.0f / std::sqrt(float(d));

  const detail::attention_kernels& k =
      detail::use_reference_kernels() ? detail::ref_attention_kernels() : detail::simd_attention_kernels();
  const int n_heads = int(q.size(0)), group = n_heads / kv_heads;
  const auto* qp = static_cast<const float*>(q.data());
  auto* op = static_cast<float*>(out.data());
  const std::int64_t q_row = q.stride(0), out_row = out.stride(0);
  // Tasks of (KV head, up to 8 query heads of its group, part, 1024-token range of
  // the part: multiples of the kernels' 64-token tiles).
  constexpr int sub = 8;
  constexpr std::int64_t range = 1024;
  const int subgroups = (group + sub - 1) / sub, parts = c.parts();
  const std::int64_t ranges = std::max<std::int64_t>(1, (longest + range - 1) / range);
  const std::int64_t tasks = std::int64_t(kv_heads) * subgroups * parts * ranges;
#pragma omp parallel for schedule(dynamic) if (tasks > 1 && longest * d * group >= 16384)
  for (std::int64_t task = 0; task < tasks; ++task) {
    const std::int64_t r = task % ranges;
    const int p = int(task / ranges % parts), sg = int(task / ranges / parts % subgroups);
    const int kvh = int(task / ranges / parts / subgroups);
    const int first = kvh * group + sg * sub, count = std::min(sub, group - sg * sub);
    const head_view h = c.view(layer, kvh, p);
    const std::int64_t begin = std::min(r * range, h.tokens), end = std::min((r + 1) * range, h.tokens);
    if (end == begin) continue;
    float rows[sub * 1024];
    for (int i = 0; i < count; ++i) {
      std::copy_n(qp + (first + i) * q_row, d, rows + i * d);
      if (h.keys.fmt.rotate) ref::fwht(rows + i * d, d);  // <H q, H k> = <q, k>
    }
    const std::int64_t offset = p == 0 ? 0 : c.view(layer, kvh, 0).tokens;  // part 1 follows part 0
    k.logits(h.keys, begin, end, rows, count, s, op + first * out_row + offset + begin, out_row);
  }
  // Past the end of a shorter head: -inf, which softmax turns into 0.
  for (int i = 0; i < n_heads; ++i)
    std::fill(op + i * out_row + c.tokens(layer, i / group), op + i * out_row + longest, -INFINITY);
}

}  // namespace kv
}  // namespace cinch
