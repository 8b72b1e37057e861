// Boundary checks shared by the public operations. Each throws cinch::error
// naming the function and the argument.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>

#include "cinch/core/tensor_view.hpp"

namespace cinch::detail {

// Bytes [first, last) that a view can touch.
struct byte_span {
  const std::byte* first;
  const std::byte* last;
};

inline byte_span span_of(const tensor_view& v) {
  const auto* base = static_cast<const std::byte*>(v.data());
  if (v.numel() == 0) return {base, base};
  std::int64_t lo = 0, hi = 0;
  for (int d = 0; d < v.rank(); ++d) {
    const std::int64_t reach = (v.size(d) - 1) * v.stride(d);
    (reach < 0 ? lo : hi) += reach;
  }
  const dtype_info i = info(v.type());
  const std::int64_t first = lo / i.block_elems * i.block_bytes;
  const std::int64_t last = (hi / i.block_elems + 1) * i.block_bytes;
  return {base + first, base + last};
}

inline bool overlaps(const tensor_view& a, const tensor_view& b) {
  const byte_span x = span_of(a), y = span_of(b);
  return x.first < y.last && y.first < x.last;
}

// True unless distinct indices provably reach distinct elements: dimensions
// sorted by |stride| must each step past everything the smaller ones span.
inline bool may_alias_itself(const tensor_view& v) {
  std::int64_t s[max_rank], n[max_rank];
  int k = 0;
  for (int d = 0; d < v.rank(); ++d) {
    if (v.size(d) <= 1) continue;
    s[k] = v.stride(d) < 0 ? -v.stride(d) : v.stride(d);
    n[k++] = v.size(d);
  }
  for (int i = 1; i < k; ++i)  // insertion sort by stride: at most 6 entries
    for (int j = i; j > 0 && s[j] < s[j - 1]; --j) {
      std::swap(s[j], s[j - 1]);
      std::swap(n[j], n[j - 1]);
    }
  std::int64_t covered = 0;  // largest offset reachable by the smaller dimensions
  for (int i = 0; i < k; ++i) {
    if (s[i] <= covered) return true;
    covered += s[i] * (n[i] - 1);
  }
  return false;
}

inline void check_device(std::string_view function, std::string_view name, const tensor_view& v, device expected) {
  if (v.where() != expected)
    fail(errc::invalid_argument, function, name, " must be on ", to_string(expected), " like the other arguments, got ",
         to_string(v.where()));
}

inline void check_dtype(std::string_view function, std::string_view name, const tensor_view& v, dtype expected) {
  if (v.type() != expected)
    fail(errc::invalid_argument, function, name, " must have dtype ", to_string(expected), ", got ",
         to_string(v.type()));
}

inline void check_shape(std::string_view function, std::string_view name, const tensor_view& v,
                        std::span<const std::int64_t> expected) {
  if (!std::equal(v.shape().begin(), v.shape().end(), expected.begin(), expected.end()))
    fail(errc::shape_mismatch, function, name, " must have shape ", expected, ", got ", v.shape());
}

inline void check_rows_dense(std::string_view function, std::string_view name, const tensor_view& v) {
  if (v.rank() > 0 && v.size(-1) > 1 && v.stride(-1) != 1)
    fail(errc::unsupported, function, name, " must have a dense innermost dimension (stride 1), got strides ",
         v.strides());
}

// An output must be writable, must not write one element through two indices,
// and must not overlap an input.
inline void check_output(std::string_view function, std::string_view name, const tensor_view& out,
                         std::initializer_list<tensor_view> inputs) {
  if (out.read_only()) fail(errc::invalid_argument, function, name, " must be writable, got a read-only view");
  if (may_alias_itself(out))
    fail(errc::invalid_argument, function, name, " must not alias itself, got shape ", out.shape(), " strides ",
         out.strides());
  for (const tensor_view& in : inputs)
    if (overlaps(out, in)) fail(errc::invalid_argument, function, name, " must not overlap an input");
}

}  // namespace cinch::detail
