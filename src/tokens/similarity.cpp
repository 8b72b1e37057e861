// The public shared kernels: validation, then the host table or the CUDA launchers.
#include "cinch/tokens/similarity.hpp"

#include <algorithm>
#include <numeric>

#include "cinch/detail/checks.hpp"
#include "dispatch.hpp"
#include "tokens/common.hpp"

#if CINCH_WITH_CUDA
#include "cuda/tokens_backend.hpp"
#endif

namespace cinch::tokens {
namespace {

using cinch::detail::fail;

void check_matrix(std::string_view fn, std::string_view name, const tensor_view& v, device where) {
  cinch::detail::check_device(fn, name, v, where);
  cinch::detail::check_dtype(fn, name, v, dtype::f32);
  if (v.rank() != 2) fail(errc::shape_mismatch, fn, name, " must be rank 2, got ", v.shape());
  cinch::detail::check_rows_dense(fn, name, v);
}

void check_pair(std::string_view fn, const tensor_view& a, const tensor_view& b) {
  cinch::detail::require_backend(fn, a.where());
  check_matrix(fn, "a", a, a.where());
  check_matrix(fn, "b", b, a.where());
  if (b.size(1) != a.size(1))
    fail(errc::shape_mismatch, fn, "b must have a's row length ", a.size(1), ", got shape ", b.shape());
}

void check_argmax_outputs(std::string_view fn, const tensor_view& best, const tensor_view& index, std::int64_t m,
                          device where, std::initializer_list<tensor_view> inputs) {
  const std::int64_t shape[] = {m};
  cinch::detail::check_device(fn, "best", best, where);
  cinch::detail::check_device(fn, "index", index, where);
  cinch::detail::check_dtype(fn, "best", best, dtype::f32);
  cinch::detail::check_dtype(fn, "index", index, dtype::i32);
  cinch::detail::check_shape(fn, "best", best, shape);
  cinch::detail::check_shape(fn, "index", index, shape);
  cinch::detail::check_output(fn, "best", best, inputs);
  cinch::detail::check_output(fn, "index", index, inputs);
  if (cinch::detail::overlaps(best, index)) fail(errc::invalid_argument, fn, "best must not overlap index");
}

detail::matrix host_rows(const tensor_view& v) {
  detail::matrix m;
  m.data = static_cast<const float*>(v.data());
  m.rows = v.size(0);
  m.cols = v.size(1);
  m.offsets.resize(std::size_t(m.rows));
  for (std::int64_t i = 0; i < m.rows; ++i) m.offsets[std::size_t(i)] = i * v.stride(0);
  return m;
}

}  // namespace

void cosine_similarity(const tensor_view& a, const tensor_view& b, const tensor_view& out) {
  constexpr std::string_view fn = "tokens::cosine_similarity";
  check_pair(fn, a, b);
  check_matrix(fn, "out", out, a.where());
  const std::int64_t shape[] = {a.size(0), b.size(0)};
  cinch::detail::check_shape(fn, "out", out, shape);
  cinch::detail::check_output(fn, "out", out, {a, b});
  if (out.numel() == 0) return;
#if CINCH_WITH_CUDA
  if (a.where().kind == device_kind::cuda) {
    cuda::token_cosine(static_cast<const float*>(a.data()), a.stride(0), a.size(0),
                       static_cast<const float*>(b.data()), b.stride(0), b.size(0), a.size(1),
                       static_cast<float*>(out.data()), out.stride(0), a.where().index);
    return;
  }
#endif
  const auto& k = cinch::detail::active_token_kernels();
  const detail::packed pa(k, host_rows(a)), pb(k, host_rows(b));
  detail::dots(pa, pb, true, static_cast<float*>(out.data()), out.stride(0));
}

void cosine_argmax(const tensor_view& a, const tensor_view& b, const tensor_view& best, const tensor_view& index,
                   bool exclude_diagonal) {
  constexpr std::string_view fn = "tokens::cosine_argmax";
  check_pair(fn, a, b);
  check_argmax_outputs(fn, best, index, a.size(0), a.where(), {a, b});
  if (a.size(0) == 0) return;
  auto* best_out = static_cast<float*>(best.data());
  auto* index_out = static_cast<std::int32_t*>(index.data());
#if CINCH_WITH_CUDA
  if (a.where().kind == device_kind::cuda) {
    if (best.stride(0) != 1 || index.stride(0) != 1)
      fail(errc::unsupported, fn, "best and index on a CUDA device must be contiguous");
    cuda::token_cosine_argmax(static_cast<const float*>(a.data()), a.stride(0), a.size(0),
                              static_cast<const float*>(b.data()), b.stride(0), b.size(0), a.size(1),
                              exclude_diagonal, best_out, index_out, a.where().index);
    return;
  }
#endif
  const auto& k = cinch::detail::active_token_kernels();
  const detail::packed pa(k, host_rows(a)), pb(k, host_rows(b));
  std::vector<float> values(std::size_t(a.size(0)));
  std::vector<std::int64_t> at(std::size_t(a.size(0)));
  detail::dots_argmax(pa, pb, true, exclude_diagonal, values.data(), at.data());
  for (std::int64_t i = 0; i < a.size(0); ++i) {
    best_out[i * best.stride(0)] = values[std::size_t(i)];
    index_out[i * index.stride(0)] = static_cast<std::int32_t>(at[std::size_t(i)]);
  }
}

void row_argmax(const tensor_view& s, const tensor_view& best, const tensor_view& index) {
  constexpr std::string_view fn = "tokens::row_argmax";
  cinch::detail::require_backend(fn, s.where());
  check_matrix(fn, "s", s, s.where());
  check_argmax_outputs(fn, best, index, s.size(0), s.where(), {s});
  const std::int64_t m = s.size(0), n = s.size(1);
  if (m == 0) return;
  auto* best_out = static_cast<float*>(best.data());
  auto* index_out = static_cast<std::int32_t*>(index.data());
  const auto* sp = static_cast<const float*>(s.data());
#if CINCH_WITH_CUDA
  if (s.where().kind == device_kind::cuda) {
    if (best.stride(0) != 1 || index.stride(0) != 1)
      fail(errc::unsupported, fn, "best and index on a CUDA device must be contiguous");
    cuda::token_row_argmax(sp, s.stride(0), m, n, best_out, index_out, s.where().index);
    return;
  }
#endif
  const auto& k = cinch::detail::active_token_kernels();
  std::vector<float> values(static_cast<std::size_t>(m));
  std::vector<std::int64_t> at(static_cast<std::size_t>(m));
  detail::parallel_chunks(m, 1, double(m) * double(n), [&](std::int64_t begin, std::int64_t end) {
    k.row_argmax(sp + begin * s.stride(0), s.stride(0), end - begin, n, values.data() + begin, at.data() + begin);
  });
  for (std::int64_t i = 0; i < m; ++i) {
    best_out[i * best.stride(0)] = values[std::size_t(i)];
    index_out[i * index.stride(0)] = static_cast<std::int32_t>(at[std::size_t(i)]);
  }
}

std::vector<std::int64_t> top_k(std::span<const float> scores, std::int64_t k) {
  const std::int64_t n = std::int64_t(scores.size());
  k = std::clamp<std::int64_t>(k, 0, n);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  // Largest first, NaN last, ties toward the lower index: a strict total order.
  auto before = [&](std::int64_t x, std::int64_t y) {
    const float a = scores[std::size_t(x)], b = scores[std::size_t(y)];
    const bool a_nan = a != a, b_nan = b != b;
    if (a_nan != b_nan) return b_nan;
    if (!a_nan && a != b) return a > b;
    return x < y;
  };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
  order.resize(std::size_t(k));
  return order;
}

}  // namespace cinch::tokens
