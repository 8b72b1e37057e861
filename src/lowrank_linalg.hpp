// Internal linear algebra of the lowrank module: Eigen matrices for the
// factorizations, the lowrank GEMM kernel for the large products, and the
// conversions between tensor views and Eigen. Only src/lowrank_*.cpp include it;
// no Eigen type crosses the public API.
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <string_view>
#include <type_traits>

#include "cinch/core/tensor.hpp"
#include "cinch/lowrank/svd.hpp"
#include "lowrank_multiply.hpp"

namespace cinch::lowrank::detail {

using matd = Eigen::MatrixXd;  // column-major
using vecd = Eigen::VectorXd;
using matf_rows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using matd_rows = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class M>
auto as_strided(M& m) {
  using T = std::remove_pointer_t<decltype(m.data())>;
  return strided_matrix<T>{m.data(), std::int64_t(m.rows()), std::int64_t(m.cols()), std::int64_t(m.rowStride()),
                           std::int64_t(m.colStride())};
}

// Eigen-facing conveniences: the product of two Eigen matrices as a new matrix.
template <class MA, class MB>
matd product(const MA& a, const MB& b) {
  matd c(a.rows(), b.cols());
  multiply(as_strided(c), as_strided(a), as_strided(b));
  return c;
}

// Boundary checks: an f32 CPU matrix [rows, cols] with finite entries.
void check_matrix(std::string_view fn, std::string_view name, const tensor_view& w);
// A copy of a checked matrix.
[[nodiscard]] matd to_matd(const tensor_view& w);
// A new dense f32 [rows, cols] tensor holding m.
[[nodiscard]] tensor to_tensor(const matd& m);

// The rank-k truncated SVD W ~ U diag(s) V^T, internally (double, thin factors).
struct svd_parts {
  matd u;  // [m, k]
  vecd s;  // [k]
  matd v;  // [n, k]
  svd_method method;
};

// Throws through the public checks' messages (fn) for k outside [1, min(m, n)]
// and bad options; runs `options.method`, resolving automatic.
[[nodiscard]] svd_parts svd_of(std::string_view fn, const matd& w, std::int64_t k, const svd_options& options);
// The same for a checked tensor view, copied once into the precision the method needs.
[[nodiscard]] svd_parts svd_of(std::string_view fn, const tensor_view& w, std::int64_t k, const svd_options& options);
void check_svd_request(std::string_view fn, std::int64_t m, std::int64_t n, std::int64_t k, const svd_options& options);

// All singular values, exact.
[[nodiscard]] vecd all_singular_values(const matd& w);

}  // namespace cinch::lowrank::detail
