// lowrank::apply and apply_dense: validation, the rank-tile streaming over token
// chunks, and the split of rows over threads.
#include <algorithm>
#include <vector>

#include "cinch/detail/checks.hpp"
#include "cinch/lowrank/apply.hpp"
#include "dispatch.hpp"
#include "lowrank_kernels.hpp"

#if CINCH_WITH_CUDA
#include "cuda/lowrank_backend.hpp"
#endif

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace cinch::lowrank {
namespace {

// The z tile of one token chunk lives on the caller's stack: 32 KiB.
constexpr std::int64_t stack_floats = 8192;
// Rows per task when the rows of a product are split over threads.
constexpr std::int64_t rank_rows_per_task = 16;
constexpr std::int64_t output_rows_per_task = 64;

int threads_for(std::int64_t work) {
#if defined(_OPENMP)
  return work >= (std::int64_t(1) << 18) ? omp_get_max_threads() : 1;
#else
  (void)work;
  return 1;
#endif
}

void check_matrix_operand(std::string_view fn, std::string_view name, const tensor_view& v, device where) {
  cinch::detail::check_device(fn, name, v, where);
  cinch::detail::check_dtype(fn, name, v, dtype::f32);
  if (v.rank() != 2)
    cinch::detail::fail(errc::shape_mismatch, fn, name, " must be a matrix, got rank ", v.rank(), " ", v.shape());
  cinch::detail::check_rows_dense(fn, name, v);
}

const float* floats(const tensor_view& v) { return static_cast<const float*>(v.data()); }

// Rows [0, count) in tasks of `per_task`, spread over the threads of the enclosing parallel region.
template <class Body>
void for_row_tasks(std::int64_t count, std::int64_t per_task, Body body) {
  const std::int64_t tasks = (count + per_task - 1) / per_task;
#pragma omp for schedule(static)
  for (std::int64_t t = 0; t < tasks; ++t) body(t * per_task, std::min(count, (t + 1) * per_task));
}

}  // namespace

void apply(const tensor_view& a, const tensor_view& b, const tensor_view& x, const tensor_view& y,
           const apply_options& options) {
  constexpr std::string_view fn = "lowrank::apply";
  const device where = x.where();
  for (auto [v, name] : {std::pair{&a, "a"}, std::pair{&b, "b"}, std::pair{&x, "x"}, std::pair{&y, "y"}})
    check_matrix_operand(fn, name, *v, where);
  cinch::detail::require_backend(fn, where);
  if (a.size(1) != b.size(0) || a.size(1) < 1)
    cinch::detail::fail(errc::shape_mismatch, fn, "a [m, r] and b [r, n] must share a rank r >= 1, got a ", a.shape(),
                        " and b ", b.shape());
  const std::int64_t m = a.size(0), r = a.size(1), n = b.size(1), tokens = x.size(0);
  if (x.size(1) != n)
    cinch::detail::fail(errc::shape_mismatch, fn, "x must be [tokens, ", n, "] (b's columns), got ", x.shape());
  const std::int64_t expected[] = {tokens, m};
  cinch::detail::check_shape(fn, "y", y, expected);
  cinch::detail::check_output(fn, "y", y, {a, b, x});
  if (options.rank_tile < 0)
    cinch::detail::fail(errc::invalid_argument, fn, "apply_options::rank_tile must be >= 0, got ", options.rank_tile);
  if (tokens == 0 || m == 0) return;
  const std::int64_t tile = options.rank_tile == 0 ? r : std::min({options.rank_tile, r, stack_floats});
  const float *ap = floats(a), *bp = floats(b), *xp = floats(x);
  auto* yp = static_cast<float*>(y.data());
  const std::int64_t lda = a.stride(0), ldb = b.stride(0), ldx = x.stride(0), ldy = y.stride(0);

#if CINCH_WITH_CUDA
  if (where.kind == device_kind::cuda) {
    cuda::lowrank_apply({tokens, m, n, r, tile, lda, ldb, ldx, ldy, options.accumulate}, ap, bp, xp, yp, where.index);
    return;
  }
#endif
  const auto& kernels = cinch::detail::active_lowrank_kernels();
  // Token chunks whose z tile fits the stack; the two-GEMM form holds every token's
  // full intermediate instead, as two separate products do.
  std::vector<float> full(options.rank_tile == 0 ? std::size_t(tokens * r) : 0);
  float stack[stack_floats];
  float* z = options.rank_tile == 0 ? full.data() : stack;
  const std::int64_t chunk = options.rank_tile == 0 ? tokens : std::max<std::int64_t>(1, stack_floats / tile);
  const int threads = threads_for(tokens * r * (m + n));
#pragma omp parallel num_threads(threads) if (threads > 1)
  for (std::int64_t t0 = 0; t0 < tokens; t0 += chunk) {
    const std::int64_t tc = std::min(chunk, tokens - t0);
    for (std::int64_t j0 = 0; j0 < r; j0 += tile) {
      const std::int64_t len = std::min(tile, r - j0);
      for_row_tasks(len, rank_rows_per_task, [&](std::int64_t begin, std::int64_t end) {
        kernels.dot_rows(tc, end - begin, n, xp + t0 * ldx, ldx, bp + (j0 + begin) * ldb, ldb, z + begin, len, false);
      });
      for_row_tasks(m, output_rows_per_task, [&](std::int64_t begin, std::int64_t end) {
        kernels.dot_rows(tc, end - begin, len, z, len, ap + begin * lda + j0, lda, yp + t0 * ldy + begin, ldy,
                         options.accumulate || j0 > 0);
      });
    }
  }
}

void apply_dense(const tensor_view& w, const tensor_view& x, const tensor_view& y, bool accumulate) {
  constexpr std::string_view fn = "lowrank::apply_dense";
  const device where = x.where();
  for (auto [v, name] : {std::pair{&w, "w"}, std::pair{&x, "x"}, std::pair{&y, "y"}})
    check_matrix_operand(fn, name, *v, where);
  cinch::detail::require_backend(fn, where);
  const std::int64_t m = w.size(0), n = w.size(1), tokens = x.size(0);
  if (x.size(1) != n)
    cinch::detail::fail(errc::shape_mismatch, fn, "x must be [tokens, ", n, "] (w's columns), got ", x.shape());
  const std::int64_t expected[] = {tokens, m};
  cinch::detail::check_shape(fn, "y", y, expected);
  cinch::detail::check_output(fn, "y", y, {w, x});
  if (tokens == 0 || m == 0) return;
  const float *wp = floats(w), *xp = floats(x);
  auto* yp = static_cast<float*>(y.data());
  const std::int64_t ldw = w.stride(0), ldx = x.stride(0), ldy = y.stride(0);
#if CINCH_WITH_CUDA
  if (where.kind == device_kind::cuda) {
    cuda::dense_apply({tokens, m, n, ldw, ldx, ldy, accumulate}, wp, xp, yp, where.index);
    return;
  }
#endif
  const auto& kernels = cinch::detail::active_lowrank_kernels();
  const int threads = threads_for(tokens * m * n);
#pragma omp parallel num_threads(threads) if (threads > 1)
  for_row_tasks(m, output_rows_per_task, [&](std::int64_t begin, std::int64_t end) {
    kernels.dot_rows(tokens, end - begin, n, xp, ldx, wp + begin * ldw, ldw, yp + begin, ldy, accumulate);
  });
}

}  // namespace cinch::lowrank
