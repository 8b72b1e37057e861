// tensor: an owning tensor = a view + a type-erased owner of its memory.
//
// The owner is cinch's allocator (64-byte aligned host memory, or CUDA device
// memory when the CUDA backend is built), a DLPack deleter, or any buffer an
// engine already holds, adopted without a copy.
#pragma once

#include <memory>
#include <utility>

#include "cinch/core/tensor_view.hpp"

namespace cinch {

class tensor {
 public:
  tensor() = default;

  // Uninitialized storage for `shape` on `where`. Defined in cinch::kernels.
  // Throws errc::unsupported for a CUDA device in a build without CUDA,
  // errc::out_of_memory when the allocation fails.
  static tensor empty(dims shape, dtype type, device where = cpu_device);

  // Takes shared ownership of memory that `view` points into: no copy.
  static tensor adopt(const tensor_view& view, std::shared_ptr<void> owner) {
    tensor t;
    t.view_ = view;
    t.owner_ = std::move(owner);
    return t;
  }

  [[nodiscard]] const tensor_view& view() const noexcept { return view_; }
  operator const tensor_view&() const noexcept { return view_; }  // NOLINT: a tensor is usable as its view

  [[nodiscard]] void* data() const noexcept { return view_.data(); }
  template <class T>
  [[nodiscard]] T* data() const noexcept { return static_cast<T*>(view_.data()); }
  [[nodiscard]] dtype type() const noexcept { return view_.type(); }
  [[nodiscard]] device where() const noexcept { return view_.where(); }
  [[nodiscard]] int rank() const noexcept { return view_.rank(); }
  [[nodiscard]] std::span<const std::int64_t> shape() const noexcept { return view_.shape(); }
  [[nodiscard]] std::int64_t size(int d) const { return view_.size(d); }
  [[nodiscard]] std::int64_t numel() const noexcept { return view_.numel(); }
  [[nodiscard]] std::int64_t nbytes() const noexcept { return view_.nbytes(); }

  // Whoever keeps the memory alive (shared with every copy of this tensor).
  [[nodiscard]] const std::shared_ptr<void>& owner() const noexcept { return owner_; }

 private:
  tensor_view view_;
  std::shared_ptr<void> owner_;
};

}  // namespace cinch
