// lowrank::reconstruct and relative_error: the product of two factors on the
// lowrank GEMM, densely or one row tile at a time.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "cinch/detail/checks.hpp"
#include "cinch/lowrank/factors.hpp"
#include "lowrank_multiply.hpp"

namespace cinch::lowrank {
namespace {

void check_factors(std::string_view fn, const tensor_view& a, const tensor_view& b) {
  for (auto [v, name] : {std::pair{&a, "a"}, std::pair{&b, "b"}}) {
    cinch::detail::check_device(fn, name, *v, cpu_device);
    cinch::detail::check_dtype(fn, name, *v, dtype::f32);
    if (v->rank() != 2)
      cinch::detail::fail(errc::shape_mismatch, fn, name, " must be a matrix, got rank ", v->rank(), " ", v->shape());
  }
  if (a.size(1) != b.size(0))
    cinch::detail::fail(errc::shape_mismatch, fn, "a's columns must equal b's rows, got a ", a.shape(), " and b ",
                        b.shape());
}

detail::strided_matrix<const float> as_matrix(const tensor_view& x) {
  return {static_cast<const float*>(x.data()), x.size(0), x.size(1), x.stride(0), x.stride(1)};
}

// rows [first, first + count) of x into a dense double buffer, times `sign`.
void rows_to_double(detail::strided_matrix<const float> x, std::int64_t first, std::int64_t count, double sign,
                    double* out) {
  for (std::int64_t i = 0; i < count; ++i)
    for (std::int64_t j = 0; j < x.cols; ++j)
      out[i * x.cols + j] = sign * double(x.data[(first + i) * x.rs + j * x.cs]);
}

}  // namespace

tensor reconstruct(const tensor_view& a, const tensor_view& b) {
  check_factors("lowrank::reconstruct", a, b);
  tensor w = tensor::empty({a.size(0), b.size(1)}, dtype::f32);
  detail::multiply(detail::strided_matrix<float>{w.data<float>(), a.size(0), b.size(1), b.size(1), 1}, as_matrix(a),
                   as_matrix(b));
  return w;
}

double relative_error(const tensor_view& w, const tensor_view& a, const tensor_view& b) {
  constexpr std::string_view fn = "lowrank::relative_error";
  check_factors(fn, a, b);
  cinch::detail::check_device(fn, "w", w, cpu_device);
  cinch::detail::check_dtype(fn, "w", w, dtype::f32);
  if (w.rank() != 2 || w.size(0) != a.size(0) || w.size(1) != b.size(1))
    cinch::detail::fail(errc::shape_mismatch, fn, "w must have shape [", a.size(0), ", ", b.size(1),
                        "] (a's rows, b's columns), got ", w.shape());
  constexpr std::int64_t tile = 64;
  const std::int64_t m = w.size(0), n = w.size(1), r = a.size(1);
  std::vector<double> bd(std::size_t(r * n)), residual(std::size_t(std::min(m, tile) * n)),
      ad(std::size_t(std::min(m, tile) * r));
  rows_to_double(as_matrix(b), 0, r, 1.0, bd.data());
  const detail::strided_matrix<const double> bm{bd.data(), r, n, n, 1};
  double error = 0, norm = 0;
  for (std::int64_t first = 0; first < m; first += tile) {
    const std::int64_t rows = std::min(tile, m - first);
    rows_to_double(as_matrix(w), first, rows, 1.0, residual.data());
    for (std::int64_t i = 0; i < rows * n; ++i) norm += residual[std::size_t(i)] * residual[std::size_t(i)];
    rows_to_double(as_matrix(a), first, rows, -1.0, ad.data());  // W - A B as W + (-A) B
    detail::multiply(detail::strided_matrix<double>{residual.data(), rows, n, n, 1},
                     detail::strided_matrix<const double>{ad.data(), rows, r, r, 1}, bm, true);
    for (std::int64_t i = 0; i < rows * n; ++i) error += residual[std::size_t(i)] * residual[std::size_t(i)];
  }
  if (norm == 0) return error == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(error / norm);
}

}  // namespace cinch::lowrank
