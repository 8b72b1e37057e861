// tokens::apply: merge rows by a plan and produce the position ids.
#include "cinch/tokens/apply.hpp"

#include <algorithm>
#include <limits>

#include "cinch/core/backend.hpp"
#include "cinch/detail/checks.hpp"
#include "dispatch.hpp"
#include "tokens/common.hpp"

#if CINCH_WITH_CUDA
#include "cuda/tokens_backend.hpp"
#endif

namespace cinch::tokens {
namespace {

using cinch::detail::fail;

// The sources of every output row, ascending, with their coefficients: the
// arguments of ref::merge_row per row.
struct merge_lists {
  std::vector<std::int64_t> row_begin;  // K + 1
  std::vector<std::int64_t> offsets;    // element offset of each source row in x
  std::vector<float> weights;
  std::vector<float> divisors;          // K
};

void check_sizes(std::string_view fn, const plan& p, std::span<const std::int64_t> sizes) {
  if (sizes.empty()) return;
  if (std::int64_t(sizes.size()) != p.source_tokens)
    fail(errc::shape_mismatch, fn, "sizes must hold ", p.source_tokens, " entries (one per source token), got ",
         sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] < 1) fail(errc::invalid_argument, fn, "sizes must be >= 1, got ", sizes[i], " at token ", i);
}

merge_lists lists_of(const plan& p, std::span<const std::int64_t> sizes, const tensor_view& x) {
  const std::int64_t n = p.source_tokens, k = p.output_tokens();
  merge_lists l;
  l.row_begin.assign(std::size_t(k + 1), 0);
  for (std::int64_t a : p.assign)
    if (a >= 0) ++l.row_begin[std::size_t(a + 1)];
  for (std::int64_t r = 0; r < k; ++r) l.row_begin[std::size_t(r + 1)] += l.row_begin[std::size_t(r)];
  const std::int64_t total = l.row_begin[std::size_t(k)];
  l.offsets.resize(std::size_t(total));
  l.weights.resize(std::size_t(total));
  l.divisors.assign(std::size_t(k), p.weights.empty() ? 0.0f : 1.0f);
  std::vector<std::int64_t> fill(l.row_begin.begin(), l.row_begin.end() - 1);
  std::vector<std::int64_t> summed(static_cast<std::size_t>(k), 0);
  const std::int64_t inner = x.rank() == 3 ? x.size(1) : n;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t a = p.assign[std::size_t(i)];
    if (a < 0) continue;
    const std::int64_t s = sizes.empty() ? 1 : sizes[std::size_t(i)];
    const std::size_t at = std::size_t(fill[std::size_t(a)]++);
    l.offsets[at] = x.rank() == 3 ? (i / inner) * x.stride(0) + (i % inner) * x.stride(1) : i * x.stride(0);
    l.weights[at] = p.weights.empty() ? float(s) : p.weights[std::size_t(i)];
    summed[std::size_t(a)] += s;
  }
  if (p.weights.empty())
    for (std::int64_t r = 0; r < k; ++r) l.divisors[std::size_t(r)] = float(summed[std::size_t(r)]);
  return l;
}

void check_hidden(std::string_view fn, const plan& p, const tensor_view& x) {
  cinch::detail::require_backend(fn, x.where());
  cinch::detail::check_dtype(fn, "x", x, dtype::f32);
  if (x.rank() != 2 && x.rank() != 3)
    fail(errc::shape_mismatch, fn, "x must be [N, D] or [T, n, D], got ", x.shape());
  const std::int64_t rows = x.rank() == 2 ? x.size(0) : x.size(0) * x.size(1);
  if (rows != p.source_tokens)
    fail(errc::shape_mismatch, fn, "x must hold the plan's ", p.source_tokens, " tokens, got shape ", x.shape());
  cinch::detail::check_rows_dense(fn, "x", x);
}

std::int64_t checked_id(std::string_view fn, std::int64_t id) {
  if (id < std::numeric_limits<std::int32_t>::min() || id > std::numeric_limits<std::int32_t>::max())
    fail(errc::invalid_argument, fn, "position ids must fit i32, got ", id);
  return id;
}

}  // namespace

std::vector<std::int64_t> merged_sizes(const plan& p, std::span<const std::int64_t> sizes) {
  constexpr std::string_view fn = "tokens::merged_sizes";
  validate(p, fn);
  check_sizes(fn, p, sizes);
  std::vector<std::int64_t> out(std::size_t(p.output_tokens()), 0);
  for (std::size_t i = 0; i < p.assign.size(); ++i)
    if (p.assign[i] >= 0) out[std::size_t(p.assign[i])] += sizes.empty() ? 1 : sizes[i];
  return out;
}

void merge(const plan& p, const tensor_view& x, const tensor_view& out, std::span<const std::int64_t> sizes) {
  constexpr std::string_view fn = "tokens::merge";
  validate(p, fn);
  check_hidden(fn, p, x);
  check_sizes(fn, p, sizes);
  cinch::detail::check_device(fn, "out", out, x.where());
  cinch::detail::check_dtype(fn, "out", out, dtype::f32);
  const std::int64_t d = x.size(-1), k = p.output_tokens();
  const std::int64_t shape[] = {k, d};
  cinch::detail::check_shape(fn, "out", out, shape);
  cinch::detail::check_rows_dense(fn, "out", out);
  cinch::detail::check_output(fn, "out", out, {x});
  if (out.numel() == 0) return;

  const merge_lists l = lists_of(p, sizes, x);
  const auto* xp = static_cast<const float*>(x.data());
  auto* op = static_cast<float*>(out.data());
#if CINCH_WITH_CUDA
  if (x.where().kind == device_kind::cuda) {
    cuda::token_merge(xp, l.row_begin.data(), l.offsets.data(), l.weights.data(), l.divisors.data(), k, d, op,
                      out.stride(0), x.where().index);
    return;
  }
#endif
  const auto& kernels = cinch::detail::active_token_kernels();
  detail::parallel_chunks(k, 1, double(p.source_tokens) * double(d), [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      const std::int64_t first = l.row_begin[std::size_t(r)], count = l.row_begin[std::size_t(r + 1)] - first;
      kernels.merge_row(xp, l.offsets.data() + first, l.weights.data() + first, count, l.divisors[std::size_t(r)], d,
                        op + r * out.stride(0));
    }
  });
}

std::int64_t position_ids(const plan& p, const position_options& o, const tensor_view& out) {
  constexpr std::string_view fn = "tokens::position_ids";
  validate(p, fn);
  const std::int64_t k = p.output_tokens(), n = p.source_tokens;
  const int rows = o.layout == position_layout::sequence  ? 1
                   : o.layout == position_layout::grid_2d ? 2
                   : o.layout == position_layout::mrope   ? 3
                                                          : 0;
  if (rows == 0) fail(errc::invalid_argument, fn, "options.layout must be sequence, grid_2d or mrope, got none");
  if (o.compact && o.layout != position_layout::sequence)
    fail(errc::invalid_argument, fn, "options.compact applies to the sequence layout only");
  if (rows > 1) detail::checked_grid(fn, o.shape, n);
  if (o.temporal_stride < 0)
    fail(errc::invalid_argument, fn, "options.temporal_stride must be >= 0, got ", o.temporal_stride);
  cinch::detail::check_dtype(fn, "out", out, dtype::i32);
  const std::int64_t shape1[] = {k}, shape2[] = {rows, k};
  cinch::detail::check_shape(fn, "out", out, rows == 1 ? std::span<const std::int64_t>(shape1)
                                                       : std::span<const std::int64_t>(shape2));
  cinch::detail::check_output(fn, "out", out, {});

  std::vector<std::int32_t> ids(static_cast<std::size_t>(rows * k));
  std::int64_t next = 0;
  if (rows == 1) {
    for (std::int64_t r = 0; r < k; ++r)
      ids[std::size_t(r)] = std::int32_t(checked_id(fn, o.offset + (o.compact ? r : p.kept[std::size_t(r)])));
    next = checked_id(fn, o.offset + (o.compact ? k : n));
  } else {
    const grid& g = o.shape;
    for (std::int64_t r = 0; r < k; ++r) {
      const std::int64_t t = p.kept[std::size_t(r)], in_frame = t % g.per_frame();
      const std::int64_t y = in_frame / g.width, x = in_frame % g.width, f = t / g.per_frame();
      const std::int64_t row_ids[3] = {o.offset + f * o.temporal_stride, o.offset + y, o.offset + x};
      for (int c = 0; c < rows; ++c)
        ids[std::size_t(c * k + r)] = std::int32_t(checked_id(fn, row_ids[rows == 3 ? c : c + 1]));
    }
    const std::int64_t largest =
        std::max({rows == 3 ? (g.frames - 1) * o.temporal_stride : 0, g.height - 1, g.width - 1});
    next = checked_id(fn, o.offset + largest + 1);
  }
  if (k > 0) {
    const tensor_view host(ids.data(), dtype::i32, rows == 1 ? std::span<const std::int64_t>(shape1)
                                                             : std::span<const std::int64_t>(shape2));
    cinch::copy(host, out);
  }
  return next;
}

applied apply(const plan& p, const tensor_view& x, const apply_options& options) {
  constexpr std::string_view fn = "tokens::apply";
  validate(p, fn);
  check_hidden(fn, p, x);
  applied a;
  a.hidden = tensor::empty({p.output_tokens(), x.size(-1)}, dtype::f32, x.where());
  merge(p, x, a.hidden, options.sizes);
  a.sizes = merged_sizes(p, options.sizes);
  const position_options& o = options.positions;
  if (o.layout != position_layout::none) {
    const std::int64_t rows = o.layout == position_layout::sequence ? 0 : o.layout == position_layout::grid_2d ? 2 : 3;
    a.positions = rows == 0 ? tensor::empty({p.output_tokens()}, dtype::i32, x.where())
                            : tensor::empty({rows, p.output_tokens()}, dtype::i32, x.where());
    a.next_position = position_ids(p, o, a.positions);
  }
  return a;
}

}  // namespace cinch::tokens
