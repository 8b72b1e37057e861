// Zero-copy exchange with DLPack (PyTorch, JAX, CuPy, TVM, ...) through the
// legacy DLManagedTensor, which DLPack 0.6 and 1.x both define.
//
//   cinch::tensor t = cinch::from_dlpack(managed);  // takes ownership of `managed`
//   DLManagedTensor* m = cinch::to_dlpack(t);        // the consumer calls m->deleter(m)
//
// dtypes: f32, f16, bf16, i32, i8 and u8 map to their DLPack types both ways.
// f8, packed (i4x2, u4x2, u2x4) and block (q8_0, q4_*, q5_*) tensors have no
// DLPack type in 0.6: to_dlpack exports them as kDLUInt 8 over their raw
// bytes, the innermost extent and every stride counted in bytes, so a framework
// can carry and copy them; from_dlpack of that export gives back a u8 tensor.
// DLPack 1.0's DLManagedTensorVersioned (read-only flag) is not handled here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>

#include <dlpack/dlpack.h>

#include "cinch/core/device.hpp"
#include "cinch/core/dtype.hpp"
#include "cinch/core/error.hpp"
#include "cinch/core/tensor.hpp"
#include "cinch/core/tensor_view.hpp"

namespace cinch {
namespace detail {

// device_kind is defined with DLPack's numbering; keep the two in step.
static_assert(static_cast<int>(device_kind::cpu) == static_cast<int>(kDLCPU));
static_assert(static_cast<int>(device_kind::cuda) == static_cast<int>(kDLCUDA));

// Owner of an imported DLManagedTensor: calls its deleter once, when the last
// tensor sharing it dies.
struct dlpack_import {
  DLManagedTensor* managed = nullptr;

  dlpack_import() = default;
  dlpack_import(const dlpack_import&) = delete;
  dlpack_import& operator=(const dlpack_import&) = delete;
  ~dlpack_import() {
    if (managed != nullptr && managed->deleter != nullptr) managed->deleter(managed);
  }
};

// Everything an exported DLManagedTensor points to, in one allocation: the
// tensor that keeps the memory alive and the shape and strides arrays.
struct dlpack_export {
  tensor keep;
  std::array<std::int64_t, max_rank> shape{};
  std::array<std::int64_t, max_rank> strides{};
  DLManagedTensor managed{};
};

inline void dlpack_export_deleter(DLManagedTensor* self) {
  if (self != nullptr) delete static_cast<dlpack_export*>(self->manager_ctx);
}

inline dtype dtype_from_dlpack(DLDataType t) {
  if (t.lanes != 1)
    fail(errc::unsupported, "from_dlpack", "dtype must have lanes 1, got code ", int(t.code), " bits ",
         int(t.bits), " lanes ", int(t.lanes));
  switch (t.code) {
    case kDLFloat:
      if (t.bits == 32) return dtype::f32;
      if (t.bits == 16) return dtype::f16;
      break;
    case kDLBfloat:
      if (t.bits == 16) return dtype::bf16;
      break;
    case kDLInt:
      if (t.bits == 32) return dtype::i32;
      if (t.bits == 8) return dtype::i8;
      break;
    case kDLUInt:
      if (t.bits == 8) return dtype::u8;
      break;
    default:
      break;
  }
  fail(errc::unsupported, "from_dlpack",
       "dtype must be float 32/16, bfloat 16, int 32/8 or uint 8 (kDLFloat=2, kDLBfloat=4, kDLInt=0, kDLUInt=1), "
       "got code ", int(t.code), " bits ", int(t.bits), " lanes ", int(t.lanes));
}

inline device device_from_dlpack(DLDevice d) {
  if (d.device_type == kDLCPU) return cpu_device;
  if (d.device_type == kDLCUDA) return cuda_device(d.device_id);
  fail(errc::unsupported, "from_dlpack", "device must be kDLCPU (1) or kDLCUDA (2), got device type ",
       int(d.device_type), " id ", int(d.device_id));
}

}  // namespace detail

// Wraps a DLManagedTensor as a cinch tensor without copying. NULL strides mean
// row-major; byte_offset is added to data; the view is writable. On success the tensor owns
// `managed`: its deleter (when not NULL) runs exactly once, when the last copy
// of the returned tensor dies. On error it throws cinch::error and does NOT
// call the deleter: the caller still owns `managed` and must release it.
[[nodiscard]] inline tensor from_dlpack(DLManagedTensor* managed) {
  if (managed == nullptr) detail::fail(errc::invalid_argument, "from_dlpack", "managed must not be null");
  const DLTensor& t = managed->dl_tensor;
  if (t.ndim < 0) detail::fail(errc::invalid_argument, "from_dlpack", "ndim must be >= 0, got ", t.ndim);
  if (t.ndim > max_rank)
    detail::fail(errc::unsupported, "from_dlpack", "ndim must be at most ", max_rank, ", got ", t.ndim);
  if (t.ndim > 0 && t.shape == nullptr)
    detail::fail(errc::invalid_argument, "from_dlpack", "shape must not be null for ndim ", t.ndim);
  const dtype type = detail::dtype_from_dlpack(t.dtype);
  const device where = detail::device_from_dlpack(t.device);

  void* data = t.data == nullptr ? nullptr : static_cast<std::byte*>(t.data) + t.byte_offset;
  const std::span<const std::int64_t> shape(t.shape, std::size_t(t.ndim));
  tensor_view view;
  try {  // the view's own checks (extents, overflow, null data), reported under this function's name
    view = t.strides == nullptr ? tensor_view(data, type, shape, where)
                                : tensor_view(data, type, shape, std::span<const std::int64_t>(t.strides, shape.size()),
                                              where);
  } catch (const error& e) {
    detail::fail(e.code(), "from_dlpack", "managed does not describe a valid tensor (", e.what(), ")");
  }

  // Allocate before taking ownership, so a failed allocation leaves `managed` to the caller.
  auto owner = std::make_shared<detail::dlpack_import>();
  owner->managed = managed;
  return tensor::adopt(view, std::move(owner));
}

// Exports a tensor without copying. The result keeps `t`'s memory alive until
// the consumer calls its deleter, which frees everything to_dlpack allocated.
// Strides are always filled, data points at the first element, byte_offset is
// 0. f8, packed and block dtypes go out as raw bytes (see the top of this file);
// read-only tensors are refused with errc::unsupported.
[[nodiscard]] inline DLManagedTensor* to_dlpack(tensor t) {
  const tensor_view v = t.view();  // a copy: t is moved into the export below
  if (v.data() == nullptr && v.numel() > 0)
    detail::fail(errc::invalid_argument, "to_dlpack", "t must hold data, got an empty tensor of shape ", v.shape());
  // A DLManagedTensor has no read-only flag (DLPack 1.0 added one to the
  // versioned struct), so consumers may write: refuse rather than lose the flag.
  if (v.read_only())
    detail::fail(errc::unsupported, "to_dlpack", "t must be writable (legacy DLPack cannot mark memory read-only), "
                 "got a read-only tensor");

  DLDataType code{};
  code.lanes = 1;
  const dtype_info i = info(v.type());
  bool raw_bytes = false;
  switch (v.type()) {
    case dtype::f32: code.code = kDLFloat; code.bits = 32; break;
    case dtype::f16: code.code = kDLFloat; code.bits = 16; break;
    case dtype::bf16: code.code = kDLBfloat; code.bits = 16; break;
    case dtype::i32: code.code = kDLInt; code.bits = 32; break;
    case dtype::i8: code.code = kDLInt; code.bits = 8; break;
    case dtype::u8: code.code = kDLUInt; code.bits = 8; break;
    default: code.code = kDLUInt; code.bits = 8; raw_bytes = true; break;
  }

  auto ctx = std::make_unique<detail::dlpack_export>();
  for (int d = 0; d < v.rank(); ++d) {
    ctx->shape[std::size_t(d)] = v.size(d);
    ctx->strides[std::size_t(d)] = v.stride(d);
  }
  if (raw_bytes && v.rank() > 0) {
    // Element counts -> byte counts. Blocks are whole along the innermost
    // dimension and outer strides are multiples of a block (tensor_view checks).
    for (int d = 0; d < v.rank(); ++d)
      ctx->strides[std::size_t(d)] = v.stride(d) / i.block_elems * i.block_bytes;
    const std::size_t last = std::size_t(v.rank() - 1);
    ctx->shape[last] = v.size(-1) / i.block_elems * i.block_bytes;
    if (i.is_block) ctx->strides[last] = 1;  // the bytes of one block row are contiguous
  }

  DLManagedTensor& m = ctx->managed;
  m.dl_tensor.data = v.data();
  m.dl_tensor.device.device_type = static_cast<DLDeviceType>(v.where().kind);
  m.dl_tensor.device.device_id = v.where().index;
  m.dl_tensor.ndim = v.rank();
  m.dl_tensor.dtype = code;
  m.dl_tensor.shape = ctx->shape.data();
  m.dl_tensor.strides = ctx->strides.data();
  m.dl_tensor.byte_offset = 0;
  m.deleter = &detail::dlpack_export_deleter;
  ctx->keep = std::move(t);
  detail::dlpack_export* raw = ctx.release();
  m.manager_ctx = raw;
  return &raw->managed;
}

}  // namespace cinch
