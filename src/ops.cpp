// The core operations: validate at the boundary, split into rows, dispatch.
#include <cstring>

#include "cinch/core/convert.hpp"
#include "cinch/core/quantize.hpp"
#include "cinch/detail/checks.hpp"
#include "cinch/detail/rows.hpp"
#include "dispatch.hpp"
#include "parallel.hpp"

#if CINCH_WITH_CUDA
#include "cuda/cuda_backend.hpp"
#endif

namespace cinch {
namespace {

constexpr std::int64_t whole_rows = std::int64_t(1) << 62;

}  // namespace

void convert(const tensor_view& src, const tensor_view& dst) {
  constexpr std::string_view fn = "convert";
  detail::check_device(fn, "dst", dst, src.where());
  detail::require_backend(fn, src.where());
  const bool supported = (src.type() == dtype::f32 && detail::is_float_format(dst.type())) ||
                         (dst.type() == dtype::f32 && detail::is_float_format(src.type()));
  if (!supported)
    detail::fail(errc::unsupported, fn, "src and dst dtypes must be f32 and one of f32, f16, bf16, f8_e4m3, f8_e5m2, got ",
                 to_string(src.type()), " -> ", to_string(dst.type()));
  detail::check_shape(fn, "dst", dst, src.shape());
  detail::check_rows_dense(fn, "src", src);
  detail::check_rows_dense(fn, "dst", dst);
  detail::check_output(fn, "dst", dst, {src});
  if (src.numel() == 0) return;

  const detail::row_layout s = detail::rows_of(src), d = detail::rows_of(dst);
#if CINCH_WITH_CUDA
  if (src.where().kind == device_kind::cuda) {
    cuda::convert(s, src.data(), src.type(), d, dst.data(), dst.type(), src.where().index);
    return;
  }
#endif
  const detail::host_kernels& k = detail::active_host_kernels();
  const detail::convert_row_fn row =
      src.type() == dtype::f32 ? k.from_f32[static_cast<int>(dst.type())] : k.to_f32[static_cast<int>(src.type())];
  detail::for_each_chunk(s.rows, s.cols, 16384, [&](std::int64_t r, std::int64_t begin, std::int64_t end) {
    row(src.address(s.row_offset(r) + begin), dst.address(d.row_offset(r) + begin), end - begin);
  });
}

namespace {

// Shared checks of quantize_rows / dequantize_rows: values [..., n] (f32),
// codes [..., n] (i8) and scales [...] (f32) on one device.
void check_row_quant(std::string_view fn, const tensor_view& values, std::string_view values_name,
                     const tensor_view& codes, const tensor_view& scales) {
  detail::check_device(fn, "codes", codes, values.where());
  detail::check_device(fn, "scales", scales, values.where());
  detail::require_backend(fn, values.where());
  detail::check_dtype(fn, values_name, values, dtype::f32);
  detail::check_dtype(fn, "codes", codes, dtype::i8);
  detail::check_dtype(fn, "scales", scales, dtype::f32);
  if (values.rank() < 1)
    detail::fail(errc::shape_mismatch, fn, values_name, " must have at least one dimension (the row), got rank 0");
  detail::check_shape(fn, "codes", codes, values.shape());
  detail::check_shape(fn, "scales", scales, values.shape().first(std::size_t(values.rank() - 1)));
  detail::check_rows_dense(fn, values_name, values);
  detail::check_rows_dense(fn, "codes", codes);
}

}  // namespace

void quantize_rows(const tensor_view& x, const tensor_view& codes, const tensor_view& scales) {
  constexpr std::string_view fn = "quantize_rows";
  check_row_quant(fn, x, "x", codes, scales);
  detail::check_output(fn, "codes", codes, {x});
  detail::check_output(fn, "scales", scales, {x, codes});
  if (x.numel() == 0 && scales.numel() == 0) return;

  const detail::row_layout xr = detail::rows_of(x), cr = detail::rows_of(codes), sr = detail::rows_of(scales, 0);
#if CINCH_WITH_CUDA
  if (x.where().kind == device_kind::cuda) {
    cuda::quantize_rows(xr, static_cast<const float*>(x.data()), cr, static_cast<std::int8_t*>(codes.data()), sr,
                        static_cast<float*>(scales.data()), x.where().index);
    return;
  }
#endif
  const detail::host_kernels& k = detail::active_host_kernels();
  const auto* xp = static_cast<const float*>(x.data());
  auto* cp = static_cast<std::int8_t*>(codes.data());
  auto* sp = static_cast<float*>(scales.data());
  detail::for_each_chunk(xr.rows, xr.cols, whole_rows, [&](std::int64_t r, std::int64_t, std::int64_t) {
    const float* next = r + 1 < xr.rows ? xp + xr.row_offset(r + 1) : nullptr;
    sp[sr.row_offset(r)] = k.quantize_row_i8(xp + xr.row_offset(r), cp + cr.row_offset(r), xr.cols, next);
  });
}

void dequantize_rows(const tensor_view& codes, const tensor_view& scales, const tensor_view& y) {
  constexpr std::string_view fn = "dequantize_rows";
  check_row_quant(fn, y, "y", codes, scales);
  detail::check_output(fn, "y", y, {codes, scales});
  if (y.numel() == 0) return;

  const detail::row_layout yr = detail::rows_of(y), cr = detail::rows_of(codes), sr = detail::rows_of(scales, 0);
#if CINCH_WITH_CUDA
  if (y.where().kind == device_kind::cuda) {
    cuda::dequantize_rows(cr, static_cast<const std::int8_t*>(codes.data()), sr,
                          static_cast<const float*>(scales.data()), yr, static_cast<float*>(y.data()),
                          y.where().index);
    return;
  }
#endif
  const detail::host_kernels& k = detail::active_host_kernels();
  const auto* cp = static_cast<const std::int8_t*>(codes.data());
  const auto* sp = static_cast<const float*>(scales.data());
  auto* yp = static_cast<float*>(y.data());
  detail::for_each_chunk(yr.rows, yr.cols, 16384, [&](std::int64_t r, std::int64_t begin, std::int64_t end) {
    k.dequantize_row_i8(cp + cr.row_offset(r) + begin, sp[sr.row_offset(r)], yp + yr.row_offset(r) + begin,
                        end - begin);
  });
}

}  // namespace cinch
