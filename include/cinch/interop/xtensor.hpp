// Zero-copy adapter from tensor_view to an xtensor expression.
//
//   auto x = cinch::as_xtensor<float>(view);  // an xtensor expression over the view's memory
//
// It neither copies nor owns: the memory must outlive the expression. Any rank
// 0..6 and any non-negative strides (in elements, as xtensor counts them).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

// xtensor 0.26 moved its headers into subfolders; 0.24/0.25 keep them flat.
#if __has_include(<xtensor/containers/xadapt.hpp>)
#include <xtensor/containers/xadapt.hpp>
#include <xtensor/views/xstrided_view.hpp>
#else
#include <xtensor/xadapt.hpp>
#include <xtensor/xstrided_view.hpp>
#endif

#include "cinch/core/device.hpp"
#include "cinch/core/dtype.hpp"
#include "cinch/core/error.hpp"
#include "cinch/core/tensor_view.hpp"

namespace cinch {
namespace detail {

template <class T>
concept xtensor_element = requires { dtype_of<std::remove_const_t<T>>::value; };

}  // namespace detail

// A zero-copy xtensor expression over a cpu view: an xt::xstrided_view
// (dynamic rank and layout) of a non-owning 1-D adaptor of the elements the
// view spans. T is the element type of the view's dtype (float, std::int32_t,
// std::int8_t, std::uint8_t, f16_bits, bf16_bits, f8_*_bits) and must be const
// for a read-only view. Throws cinch::error otherwise, and errc::unsupported
// for negative strides.
//
// Why not xt::adapt(ptr, size, no_ownership(), shape, strides) directly: an
// xtensor container assumes its storage holds exactly its elements. It sizes
// the buffer as the product of the shape (a non-owning buffer of any other
// size throws "xbuffer_storage not resizable"), and scalar updates such as
// `a += 1` walk the storage linearly, so a view with gaps between rows (a
// slice) would update the gaps. A strided view steps through the strides.
template <class T>
  requires detail::xtensor_element<T>
[[nodiscard]] auto as_xtensor(const tensor_view& v) {
  constexpr dtype expected = dtype_of_v<T>;
  if (v.type() != expected)
    detail::fail(errc::invalid_argument, "as_xtensor", "view must have dtype ", to_string(expected),
                 " to match the element type, got ", to_string(v.type()));
  // xtensor dereferences on the host: device memory cannot be adapted.
  if (v.where() != cpu_device)
    detail::fail(errc::unsupported, "as_xtensor", "view must be on cpu, got ", to_string(v.where()));
  if (v.read_only() && !std::is_const_v<T>)
    detail::fail(errc::invalid_argument, "as_xtensor",
                 "view is read-only: ask for a const element type, got a mutable one");

  std::vector<std::size_t> shape(std::size_t(v.rank()));
  std::vector<std::ptrdiff_t> strides(std::size_t(v.rank()));
  std::int64_t reach = 0;  // the largest element offset the view touches
  for (int d = 0; d < v.rank(); ++d) {
    // The view's data pointer must be the lowest address, the buffer's start.
    if (v.stride(d) < 0 && v.size(d) > 1)
      detail::fail(errc::unsupported, "as_xtensor", "view must have non-negative strides, got strides ",
                   v.strides());
    shape[std::size_t(d)] = static_cast<std::size_t>(v.size(d));
    // xtensor's own convention: a dimension that never steps has stride 0.
    strides[std::size_t(d)] = static_cast<std::ptrdiff_t>(v.size(d) > 1 ? v.stride(d) : 0);
    if (v.size(d) > 1) reach += (v.size(d) - 1) * v.stride(d);
  }
  const auto span = static_cast<std::size_t>(v.numel() == 0 ? 0 : reach + 1);
  // The pointer goes in as a prvalue: xtensor keeps an lvalue argument by reference.
  auto flat = xt::adapt(static_cast<T*>(v.data()), span, xt::no_ownership(), std::array<std::size_t, 1>{span});
  return xt::strided_view(std::move(flat), std::move(shape), std::move(strides), 0, xt::layout_type::dynamic);
}

}  // namespace cinch
