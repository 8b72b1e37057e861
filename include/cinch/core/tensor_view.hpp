// tensor_view: a non-owning, trivially copyable view of memory the engine owns.
//
// Shape and strides are int64 and counted in ELEMENTS, as in DLPack, Eigen and
// xtensor, so llama.cpp's token-major rows, HF's [batch, heads, tokens, dim] and
// vLLM's paged blocks are all views, never copies. Block and packed dtypes keep
// their innermost dimension dense (stride 1) and aligned to whole blocks.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "cinch/core/device.hpp"
#include "cinch/core/dtype.hpp"
#include "cinch/core/error.hpp"
#include "cinch/core/strided.hpp"

namespace cinch {

inline constexpr int max_rank = 6;

// A list of extents or strides passed as an argument: {4096, 128}, a std::vector,
// a std::array or a std::span. It only refers to the caller's storage.
class dims {
 public:
  dims(std::initializer_list<std::int64_t> list) noexcept : values_(list.begin(), list.size()) {}
  dims(std::span<const std::int64_t> values) noexcept : values_(values) {}
  template <class Container>
    requires requires(const Container& c) {
      { c.data() } -> std::convertible_to<const std::int64_t*>;
      c.size();
    }
  dims(const Container& c) noexcept : values_(c.data(), c.size()) {}

  [[nodiscard]] std::span<const std::int64_t> span() const noexcept { return values_; }
  [[nodiscard]] std::size_t size() const noexcept { return values_.size(); }
  [[nodiscard]] std::int64_t operator[](std::size_t i) const noexcept { return values_[i]; }

 private:
  std::span<const std::int64_t> values_;
};

class tensor_view {
 public:
  // An empty rank-0 view with no data.
  tensor_view() = default;

  // Dense row-major view.
  tensor_view(void* data, dtype type, dims shape, device where = cpu_device)
      : tensor_view(data, type, shape, where, false) {}
  tensor_view(const void* data, dtype type, dims shape, device where = cpu_device)
      : tensor_view(const_cast<void*>(data), type, shape, where, true) {}

  // Arbitrary strides in elements.
  tensor_view(void* data, dtype type, dims shape, dims strides, device where = cpu_device)
      : tensor_view(data, type, shape, strides, where, false) {}
  tensor_view(const void* data, dtype type, dims shape, dims strides, device where = cpu_device)
      : tensor_view(const_cast<void*>(data), type, shape, strides, where, true) {}

  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] dtype type() const noexcept { return type_; }
  [[nodiscard]] device where() const noexcept { return where_; }
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] bool read_only() const noexcept { return read_only_; }
  [[nodiscard]] std::span<const std::int64_t> shape() const noexcept { return {shape_.data(), std::size_t(rank_)}; }
  [[nodiscard]] std::span<const std::int64_t> strides() const noexcept { return {strides_.data(), std::size_t(rank_)}; }

  // Extent and stride of dimension d; a negative d counts from the end.
  [[nodiscard]] std::int64_t size(int d) const { return shape_[axis("tensor_view::size", d)]; }
  [[nodiscard]] std::int64_t stride(int d) const { return strides_[axis("tensor_view::stride", d)]; }

  [[nodiscard]] std::int64_t numel() const noexcept {
    std::int64_t n = 1;
    for (int d = 0; d < rank_; ++d) n *= shape_[d];
    return n;
  }
  // Bytes of storage that numel() elements take.
  [[nodiscard]] std::int64_t nbytes() const noexcept {
    const dtype_info i = info(type_);
    return numel() / i.block_elems * i.block_bytes;
  }
  // Row-major dense: no gaps, no reordering (dimensions of extent 1 ignored).
  [[nodiscard]] bool is_contiguous() const noexcept {
    std::int64_t expected = 1;
    for (int d = rank_ - 1; d >= 0; --d) {
      if (shape_[d] == 1) continue;
      if (strides_[d] != expected) return false;
      expected *= shape_[d];
    }
    return true;
  }

  // Address of the element at a flat element offset (a block start for block dtypes).
  [[nodiscard]] std::byte* address(std::int64_t element_offset) const noexcept {
    const dtype_info i = info(type_);
    return static_cast<std::byte*>(data_) + element_offset / i.block_elems * i.block_bytes;
  }

  // Elements [begin, end) of dimension d; no copy.
  [[nodiscard]] tensor_view slice(int d, std::int64_t begin, std::int64_t end) const {
    const int a = axis("tensor_view::slice", d);
    if (begin < 0 || begin > end || end > shape_[a])
      detail::fail(errc::invalid_argument, "tensor_view::slice", "range must satisfy 0 <= begin <= end <= ",
                   shape_[a], " on dimension ", a, ", got [", begin, ", ", end, ")");
    const std::int64_t block = info(type_).block_elems;
    if (a == rank_ - 1 && (begin % block || end % block))
      detail::fail(errc::invalid_argument, "tensor_view::slice", "range on the innermost dimension of ",
                   info(type_).name, " must be whole blocks of ", block, ", got [", begin, ", ", end, ")");
    tensor_view out = *this;
    out.data_ = end > begin ? address(begin * strides_[a]) : data_;
    out.shape_[a] = end - begin;
    return out;
  }

  // Index i of dimension d; the result has one dimension fewer.
  [[nodiscard]] tensor_view select(int d, std::int64_t i) const {
    const int a = axis("tensor_view::select", d);
    if (i < 0 || i >= shape_[a])
      detail::fail(errc::invalid_argument, "tensor_view::select", "index must be in [0, ", shape_[a],
                   ") on dimension ", a, ", got ", i);
    if (a == rank_ - 1 && info(type_).is_block)
      detail::fail(errc::unsupported, "tensor_view::select", "cannot select within the innermost dimension of ",
                   info(type_).name, " (elements are packed in blocks)");
    tensor_view out = *this;
    out.data_ = address(i * strides_[a]);
    for (int k = a; k + 1 < rank_; ++k) {
      out.shape_[k] = shape_[k + 1];
      out.strides_[k] = strides_[k + 1];
    }
    --out.rank_;
    return out;
  }

  // Reorders dimensions: result dimension k is this view's dimension order[k].
  [[nodiscard]] tensor_view permute(dims order) const {
    if (order.size() != std::size_t(rank_))
      detail::fail(errc::invalid_argument, "tensor_view::permute", "order must list ", int(rank_),
                   " dimensions, got ", order.size());
    tensor_view out = *this;
    std::array<bool, max_rank> seen{};
    for (int k = 0; k < rank_; ++k) {
      const std::int64_t from = order[std::size_t(k)];
      if (from < 0 || from >= rank_ || seen[std::size_t(from)])
        detail::fail(errc::invalid_argument, "tensor_view::permute", "order must be a permutation of 0..",
                     rank_ - 1, ", got ", order.span());
      seen[std::size_t(from)] = true;
      out.shape_[k] = shape_[from];
      out.strides_[k] = strides_[from];
    }
    if (info(type_).is_block && rank_ > 0 && order[std::size_t(rank_ - 1)] != rank_ - 1)
      detail::fail(errc::unsupported, "tensor_view::permute", "the innermost dimension of ", info(type_).name,
                   " must stay innermost, got order ", order.span());
    return out;
  }

  // A dense view with another shape of the same number of elements.
  [[nodiscard]] tensor_view reshape(dims shape) const {
    if (!is_contiguous())
      detail::fail(errc::unsupported, "tensor_view::reshape", "view must be contiguous, got strides ", strides());
    tensor_view out(data_, type_, shape, where_, read_only_);
    if (out.numel() != numel())
      detail::fail(errc::shape_mismatch, "tensor_view::reshape", "shape must hold ", numel(),
                   " elements like ", this->shape(), ", got ", shape.span());
    return out;
  }

  [[nodiscard]] tensor_view as_read_only() const noexcept {
    tensor_view out = *this;
    out.read_only_ = true;
    return out;
  }

  // Typed access with every property checked: dtype, rank, constness.
  template <class T, int Rank>
  [[nodiscard]] strided<T, Rank> as() const {
    if (dtype_of_v<T> != type_)
      detail::fail(errc::invalid_argument, "tensor_view::as", "element type must match dtype ",
                   info(type_).name, ", got a type for ", info(dtype_of_v<T>).name);
    if (Rank != rank_)
      detail::fail(errc::shape_mismatch, "tensor_view::as", "rank must be ", Rank, ", got rank ", int(rank_), " ",
                   shape());
    if (read_only_ && !std::is_const_v<T>)
      detail::fail(errc::invalid_argument, "tensor_view::as", "view is read-only: ask for a const element type");
    strided<T, Rank> out{static_cast<T*>(data_), {}, {}};
    for (int d = 0; d < Rank; ++d) {
      out.shape[d] = shape_[d];
      out.strides[d] = strides_[d];
    }
    return out;
  }

 private:
  tensor_view(void* data, dtype type, dims shape, device where, bool read_only)
      : data_(data), type_(type), where_(where), read_only_(read_only) {
    set_shape(shape);
    std::int64_t stride = 1;
    for (int d = rank_ - 1; d >= 0; --d) {
      strides_[d] = stride;
      stride *= shape_[d];
    }
    validate();
  }
  tensor_view(void* data, dtype type, dims shape, dims strides, device where, bool read_only)
      : data_(data), type_(type), where_(where), read_only_(read_only) {
    set_shape(shape);
    if (strides.size() != shape.size())
      detail::fail(errc::shape_mismatch, "tensor_view", "strides must have one entry per dimension (",
                   shape.size(), "), got ", strides.size());
    std::copy(strides.span().begin(), strides.span().end(), strides_.begin());
    validate();
  }

  void set_shape(dims shape) {
    if (shape.size() > std::size_t(max_rank))
      detail::fail(errc::invalid_argument, "tensor_view", "rank must be at most ", max_rank, ", got rank ",
                   shape.size(), " ", shape.span());
    rank_ = static_cast<std::int8_t>(shape.size());
    std::copy(shape.span().begin(), shape.span().end(), shape_.begin());
    // Checked before any stride is derived from the extents.
    const std::int64_t limit = max_bytes / info(type_).block_bytes;
    std::int64_t n = 1;
    for (int d = 0; d < rank_; ++d) {
      if (shape_[d] < 0) detail::fail(errc::invalid_argument, "tensor_view", "extents must be >= 0, got ", this->shape());
      if (shape_[d] && n > limit / shape_[d])
        detail::fail(errc::invalid_argument, "tensor_view", "element count of ", this->shape(), " overflows");
      n *= shape_[d];
    }
  }

  void validate() const {
    const dtype_info i = info(type_);
    const std::int64_t limit = max_bytes / i.block_bytes;
    const std::int64_t n = numel();
    std::int64_t reach = 0;  // largest |element offset|, to catch overflowing strides
    for (int d = 0; d < rank_; ++d) {
      const std::int64_t s = strides_[d] < 0 ? -strides_[d] : strides_[d];
      if (shape_[d] > 1 && (s > limit / (shape_[d] - 1) || reach > limit - s * (shape_[d] - 1)))
        detail::fail(errc::invalid_argument, "tensor_view", "strides ", strides(), " with shape ", shape(),
                     " overflow the address range");
      if (shape_[d] > 1) reach += s * (shape_[d] - 1);
    }
    if (n > 0 && data_ == nullptr)
      detail::fail(errc::invalid_argument, "tensor_view", "data must not be null for ", n, " elements of shape ",
                   shape());
    if (i.block_elems > 1) {
      if (rank_ == 0)
        detail::fail(errc::invalid_argument, "tensor_view", i.name, " needs at least one dimension");
      const std::int64_t inner = shape_[rank_ - 1];
      if (inner % i.block_elems || (inner > i.block_elems && strides_[rank_ - 1] != 1))
        detail::fail(errc::invalid_argument, "tensor_view", "innermost dimension of ", i.name,
                     " must be dense (stride 1) and a multiple of ", i.block_elems, ", got extent ", inner,
                     " stride ", strides_[rank_ - 1]);
      for (int d = 0; d + 1 < rank_; ++d)
        if (strides_[d] % i.block_elems)
          detail::fail(errc::invalid_argument, "tensor_view", "strides of ", i.name, " must be multiples of ",
                       i.block_elems, ", got ", strides());
    }
  }

  int axis(const char* function, int d) const {
    const int a = d < 0 ? d + rank_ : d;
    if (a < 0 || a >= rank_)
      detail::fail(errc::invalid_argument, function, "dimension must be in [", -int(rank_), ", ", int(rank_),
                   "), got ", d);
    return a;
  }

  // Bytes and element offsets stay far below int64 overflow.
  static constexpr std::int64_t max_bytes = std::int64_t(1) << 62;

  void* data_ = nullptr;
  std::array<std::int64_t, max_rank> shape_{};
  std::array<std::int64_t, max_rank> strides_{};
  dtype type_ = dtype::f32;
  device where_{};
  std::int8_t rank_ = 0;
  bool read_only_ = false;
};

}  // namespace cinch
