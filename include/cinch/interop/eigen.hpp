// Zero-copy adapters between tensor_view and Eigen 3.4 matrices.
//
//   auto m = cinch::as_eigen<float>(view);     // Eigen::Map over the view's memory
//   cinch::tensor_view v = cinch::view_of(mat);  // a view over an Eigen matrix
//
// Neither copies nor owns: the memory must outlive the map or the view.
// f16 maps to Eigen::half and bf16 to Eigen::bfloat16 (the same 16-bit layout).
#pragma once

#include <cstdint>
#include <type_traits>

#include <Eigen/Core>

#include "cinch/core/device.hpp"
#include "cinch/core/dtype.hpp"
#include "cinch/core/error.hpp"
#include "cinch/core/tensor_view.hpp"

namespace cinch {
namespace detail {

// The cinch dtype that stores an Eigen scalar type; no `value` for any other.
template <class T> struct eigen_dtype {};
template <> struct eigen_dtype<float> { static constexpr dtype value = dtype::f32; };
template <> struct eigen_dtype<std::int32_t> { static constexpr dtype value = dtype::i32; };
template <> struct eigen_dtype<std::int8_t> { static constexpr dtype value = dtype::i8; };
template <> struct eigen_dtype<std::uint8_t> { static constexpr dtype value = dtype::u8; };
template <> struct eigen_dtype<Eigen::half> { static constexpr dtype value = dtype::f16; };
template <> struct eigen_dtype<Eigen::bfloat16> { static constexpr dtype value = dtype::bf16; };

template <class T>
concept eigen_scalar = requires { eigen_dtype<std::remove_const_t<T>>::value; };

// Reinterpreting f16/bf16 storage as Eigen's types is only sound if the layouts agree.
static_assert(sizeof(Eigen::half) == 2 && sizeof(Eigen::bfloat16) == 2);

}  // namespace detail

// Row-major, any strides: a row-major Map with (outer, inner) = (stride(0),
// stride(1)) reaches element (i, j) at i * stride(0) + j * stride(1), which is
// exactly the view's addressing, so transposed and sliced views map as they are.
template <class T>
using eigen_map = Eigen::Map<std::conditional_t<std::is_const_v<T>,
                                                const Eigen::Matrix<std::remove_const_t<T>, Eigen::Dynamic,
                                                                    Eigen::Dynamic, Eigen::RowMajor>,
                                                Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>,
                             Eigen::Unaligned, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;

// An Eigen map over a rank-2 cpu view. T must match the view's dtype and be
// const for a read-only view. Throws cinch::error otherwise.
template <class T>
  requires detail::eigen_scalar<T>
[[nodiscard]] eigen_map<T> as_eigen(const tensor_view& v) {
  constexpr dtype expected = detail::eigen_dtype<std::remove_const_t<T>>::value;
  if (v.type() != expected)
    detail::fail(errc::invalid_argument, "as_eigen", "view must have dtype ", to_string(expected),
                 " to match the element type, got ", to_string(v.type()));
  // Eigen dereferences on the host: device memory cannot be mapped.
  if (v.where() != cpu_device)
    detail::fail(errc::unsupported, "as_eigen", "view must be on cpu, got ", to_string(v.where()));
  if (v.rank() != 2)
    detail::fail(errc::shape_mismatch, "as_eigen", "view must be rank 2, got rank ", v.rank(), " ", v.shape());
  if (v.read_only() && !std::is_const_v<T>)
    detail::fail(errc::invalid_argument, "as_eigen", "view is read-only: ask for a const element type, got a mutable one");
  return eigen_map<T>(static_cast<T*>(v.data()), v.size(0), v.size(1),
                      Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(v.stride(0), v.stride(1)));
}

// A rank-2 view [rows, cols] over an Eigen matrix or vector (a vector is one
// column, or one row for a row vector). Strides follow the storage order:
// {cols, 1} for row-major, {1, rows} for column-major.
template <class Derived>
  requires detail::eigen_scalar<typename Derived::Scalar>
[[nodiscard]] tensor_view view_of(Eigen::PlainObjectBase<Derived>& m) {
  using scalar = typename Derived::Scalar;
  const std::int64_t rows = m.rows(), cols = m.cols();
  return tensor_view(static_cast<void*>(m.data()), detail::eigen_dtype<scalar>::value, {rows, cols},
                     {std::int64_t(m.rowStride()), std::int64_t(m.colStride())});
}

// The same over a const matrix: a read-only view.
template <class Derived>
  requires detail::eigen_scalar<typename Derived::Scalar>
[[nodiscard]] tensor_view view_of(const Eigen::PlainObjectBase<Derived>& m) {
  using scalar = typename Derived::Scalar;
  const std::int64_t rows = m.rows(), cols = m.cols();
  return tensor_view(static_cast<const void*>(m.data()), detail::eigen_dtype<scalar>::value, {rows, cols},
                     {std::int64_t(m.rowStride()), std::int64_t(m.colStride())});
}

// A view of a temporary would dangle as soon as the statement ends.
template <class Derived>
tensor_view view_of(Eigen::PlainObjectBase<Derived>&& m) = delete;

}  // namespace cinch
