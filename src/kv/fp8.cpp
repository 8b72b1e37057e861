// Scaled FP8: validation, calibration, the kernel table, rows over threads.
//
// The simd kernels divide by the scale in blocks (IEEE division, the reference's
// own operation) and convert with the core's dispatched Highway conversions, which
// match cinch/ref/convert.hpp bit for bit; loading multiplies after the conversion.
#include "cinch/kv/fp8.hpp"

#include <cmath>
#include <cstring>
#include <string_view>
#include <vector>

#include "cinch/core/backend.hpp"
#include "cinch/detail/checks.hpp"
#include "cinch/detail/rows.hpp"
#include "cinch/ref/quantize.hpp"
#include "dispatch.hpp"
#include "host_kernels.hpp"
#include "kv/group_kernels.hpp"

#if CINCH_WITH_CUDA
#include "cuda/groups_backend.hpp"
#endif

namespace cinch {
namespace detail {
namespace {

template <class T>
void ref_quantize(const float* x, float scale, std::uint8_t* q, std::int64_t n) noexcept {
  ref::quantize_scaled_row(x, scale, reinterpret_cast<T*>(q), n);
}
template <class T>
void ref_dequantize(const std::uint8_t* q, float scale, float* y, std::int64_t n) noexcept {
  ref::dequantize_scaled_row(reinterpret_cast<const T*>(q), scale, y, n);
}

constexpr std::int64_t block = 512;

template <convert_row_fn encode>
void simd_quantize(const float* x, float scale, std::uint8_t* q, std::int64_t n) noexcept {
  float scaled[block];
  for (std::int64_t i = 0; i < n; i += block) {
    const std::int64_t m = n - i < block ? n - i : block;
    for (std::int64_t j = 0; j < m; ++j) scaled[j] = x[i + j] / scale;
    encode(scaled, q + i, m);
  }
}
template <convert_row_fn decode>
void simd_dequantize(const std::uint8_t* q, float scale, float* y, std::int64_t n) noexcept {
  decode(q, y, n);
  for (std::int64_t i = 0; i < n; ++i) y[i] *= scale;
}

constexpr fp8_kernels ref_fp8{{ref_quantize<f8_e4m3_bits>, ref_quantize<f8_e5m2_bits>},
                              {ref_dequantize<f8_e4m3_bits>, ref_dequantize<f8_e5m2_bits>}};
constexpr fp8_kernels simd_fp8{{simd_quantize<cpu::f32_to_e4m3_row>, simd_quantize<cpu::f32_to_e5m2_row>},
                               {simd_dequantize<cpu::e4m3_to_f32_row>, simd_dequantize<cpu::e5m2_to_f32_row>}};

}  // namespace

const fp8_kernels& active_fp8_kernels() { return use_reference_kernels() ? ref_fp8 : simd_fp8; }

}  // namespace detail

namespace kv {
namespace {

bool usable_scale(float s) { return std::isfinite(s) && s > 0.0f; }

int format_of(std::string_view fn, const tensor_view& q) {
  if (q.type() == dtype::f8_e4m3) return 0;
  if (q.type() == dtype::f8_e5m2) return 1;
  detail::fail(errc::invalid_argument, fn, "q must have dtype f8_e4m3 or f8_e5m2, got ", to_string(q.type()));
}

void check_constant(std::string_view fn, float constant) {
  if (!usable_scale(constant))
    detail::fail(errc::invalid_argument, fn, "constant must be finite and > 0, got ", detail::float_text(constant));
}

// head_scales: [heads] f32 on x's device, each finite and > 0; returns the rows per head.
std::int64_t check_head_scales(std::string_view fn, const tensor_view& x, std::string_view x_name,
                               const tensor_view& head_scales) {
  detail::check_device(fn, "head_scales", head_scales, x.where());
  detail::check_dtype(fn, "head_scales", head_scales, dtype::f32);
  if (x.rank() < 2)
    detail::fail(errc::shape_mismatch, fn, x_name, " must be [heads, ...] with rank >= 2, got rank ", x.rank(), " ",
                 x.shape());
  const std::int64_t heads[] = {x.size(0)};
  detail::check_shape(fn, "head_scales", head_scales, heads);
  detail::check_rows_dense(fn, "head_scales", head_scales);
  auto check_values = [&](const float* values) {
    for (std::int64_t h = 0; h < heads[0]; ++h)
      if (!usable_scale(values[h]))
        detail::fail(errc::invalid_argument, fn, "head_scales[", h, "] must be finite and > 0, got ",
                     detail::float_text(values[h]));
  };
  if (head_scales.where().kind == device_kind::cpu) {
    check_values(static_cast<const float*>(head_scales.data()));
  } else {  // one small copy to check device-resident scales
    std::vector<float> host(static_cast<std::size_t>(heads[0]));
    copy(head_scales, tensor_view(host.data(), dtype::f32, {heads[0]}));
    check_values(host.data());
  }
  return heads[0] ? detail::rows_of(x).rows / heads[0] : 0;
}

void check_pair(std::string_view fn, const tensor_view& f32, std::string_view f32_name, const tensor_view& q) {
  detail::check_device(fn, "q", q, f32.where());
  detail::require_backend(fn, f32.where());
  detail::check_dtype(fn, f32_name, f32, dtype::f32);
  format_of(fn, q);
  detail::check_shape(fn, "q", q, f32.shape());
  detail::check_rows_dense(fn, f32_name, f32);
  detail::check_rows_dense(fn, "q", q);
}

// Row r uses head_scales[r / rows_per_head] (device memory) or, when null, `scale`.
void quantize(const tensor_view& x, const float* head_scales, float scale, std::int64_t rows_per_head,
              const tensor_view& q) {
  const int format = q.type() == dtype::f8_e4m3 ? 0 : 1;
  const detail::row_layout xr = detail::rows_of(x), qr = detail::rows_of(q);
#if CINCH_WITH_CUDA
  if (x.where().kind == device_kind::cuda) {
    cuda::quantize_scaled(xr, static_cast<const float*>(x.data()), qr, static_cast<std::uint8_t*>(q.data()), format,
                          head_scales, scale, rows_per_head, x.where().index);
    return;
  }
#endif
  const auto row = detail::active_fp8_kernels().quantize_row[format];
  const auto* xp = static_cast<const float*>(x.data());
  auto* qp = static_cast<std::uint8_t*>(q.data());
  detail::parallel_tasks(xr.rows, x.numel(), [&](std::int64_t r) {
    row(xp + xr.row_offset(r), head_scales ? head_scales[r / rows_per_head] : scale, qp + qr.row_offset(r), xr.cols);
  });
}

void dequantize(const tensor_view& q, const float* head_scales, float scale, std::int64_t rows_per_head,
                const tensor_view& y) {
  const int format = q.type() == dtype::f8_e4m3 ? 0 : 1;
  const detail::row_layout qr = detail::rows_of(q), yr = detail::rows_of(y);
#if CINCH_WITH_CUDA
  if (y.where().kind == device_kind::cuda) {
    cuda::dequantize_scaled(qr, static_cast<const std::uint8_t*>(q.data()), format, head_scales, scale, rows_per_head,
                            yr, static_cast<float*>(y.data()), y.where().index);
    return;
  }
#endif
  const auto row = detail::active_fp8_kernels().dequantize_row[format];
  const auto* qp = static_cast<const std::uint8_t*>(q.data());
  auto* yp = static_cast<float*>(y.data());
  detail::parallel_tasks(yr.rows, y.numel(), [&](std::int64_t r) {
    row(qp + qr.row_offset(r), head_scales ? head_scales[r / rows_per_head] : scale, yp + yr.row_offset(r), yr.cols);
  });
}

// max |x| bit patterns per group of rows_per_group rows.
std::vector<std::uint32_t> absmax_bits(const tensor_view& x, std::int64_t groups) {
  const detail::row_layout xr = detail::rows_of(x);
  const std::int64_t rows_per_group = xr.rows / groups;
  std::vector<std::uint32_t> amax(static_cast<std::size_t>(groups), 0u);
#if CINCH_WITH_CUDA
  if (x.where().kind == device_kind::cuda) {
    cuda::absmax_bits(xr, static_cast<const float*>(x.data()), rows_per_group, amax.data(), x.where().index);
    return amax;
  }
#endif
  std::vector<std::uint32_t> per_row(static_cast<std::size_t>(xr.rows));
  const auto* xp = static_cast<const float*>(x.data());
  detail::parallel_tasks(xr.rows, x.numel(), [&](std::int64_t r) {
    per_row[std::size_t(r)] = ref::absmax_bits(xp + xr.row_offset(r), xr.cols);
  });
  for (std::int64_t r = 0; r < xr.rows; ++r) {
    std::uint32_t& a = amax[std::size_t(r / rows_per_group)];
    a = per_row[std::size_t(r)] > a ? per_row[std::size_t(r)] : a;
  }
  return amax;
}

void check_calibration_input(std::string_view fn, const tensor_view& x, float constant) {
  detail::require_backend(fn, x.where());
  detail::check_dtype(fn, "x", x, dtype::f32);
  detail::check_rows_dense(fn, "x", x);
  check_constant(fn, constant);
}

float scale_of(std::string_view fn, std::uint32_t amax_bits, float constant) {
  if (amax_bits >= 0x7F800000u)
    detail::fail(errc::invalid_argument, fn, "x must be finite to calibrate a scale, got ",
                 amax_bits == 0x7F800000u ? "inf" : "NaN");
  return ref::fp8_scale_from_absmax(ref::float_of(amax_bits), constant);
}

}  // namespace

float calibrate_scale(const tensor_view& x, float constant) {
  constexpr std::string_view fn = "kv::calibrate_scale";
  check_calibration_input(fn, x, constant);
  if (x.numel() == 0) return 1.0f;
  return scale_of(fn, absmax_bits(x, 1)[0], constant);
}

void calibrate_head_scales(const tensor_view& x, float constant, const tensor_view& scales) {
  constexpr std::string_view fn = "kv::calibrate_head_scales";
  check_calibration_input(fn, x, constant);
  detail::check_device(fn, "scales", scales, x.where());
  detail::check_dtype(fn, "scales", scales, dtype::f32);
  if (x.rank() < 2)
    detail::fail(errc::shape_mismatch, fn, "x must be [heads, ...] with rank >= 2, got rank ", x.rank(), " ", x.shape());
  const std::int64_t heads = x.size(0);
  const std::int64_t expect[] = {heads};
  detail::check_shape(fn, "scales", scales, expect);
  detail::check_rows_dense(fn, "scales", scales);
  detail::check_output(fn, "scales", scales, {x});
  std::vector<float> host(static_cast<std::size_t>(heads), 1.0f);
  if (x.numel() > 0) {
    const std::vector<std::uint32_t> amax = absmax_bits(x, heads);
    for (std::int64_t h = 0; h < heads; ++h) host[std::size_t(h)] = scale_of(fn, amax[std::size_t(h)], constant);
  }
  copy(tensor_view(static_cast<const float*>(host.data()), dtype::f32, {heads}), scales);
}

void quantize_scaled(const tensor_view& x, float scale, const tensor_view& q) {
  constexpr std::string_view fn = "kv::quantize_scaled";
  check_pair(fn, x, "x", q);
  if (!usable_scale(scale))
    detail::fail(errc::invalid_argument, fn, "scale must be finite and > 0, got ", detail::float_text(scale));
  detail::check_output(fn, "q", q, {x});
  if (x.numel() == 0) return;
  quantize(x, nullptr, scale, 1, q);
}

void dequantize_scaled(const tensor_view& q, float scale, const tensor_view& y) {
  constexpr std::string_view fn = "kv::dequantize_scaled";
  check_pair(fn, y, "y", q);
  if (!usable_scale(scale))
    detail::fail(errc::invalid_argument, fn, "scale must be finite and > 0, got ", detail::float_text(scale));
  detail::check_output(fn, "y", y, {q});
  if (y.numel() == 0) return;
  dequantize(q, nullptr, scale, 1, y);
}

void quantize_scaled(const tensor_view& x, const tensor_view& head_scales, const tensor_view& q) {
  constexpr std::string_view fn = "kv::quantize_scaled";
  check_pair(fn, x, "x", q);
  const std::int64_t rows_per_head = check_head_scales(fn, x, "x", head_scales);
  detail::check_output(fn, "q", q, {x, head_scales});
  if (x.numel() == 0) return;
  quantize(x, static_cast<const float*>(head_scales.data()), 0.0f, rows_per_head, q);
}

void dequantize_scaled(const tensor_view& q, const tensor_view& head_scales, const tensor_view& y) {
  constexpr std::string_view fn = "kv::dequantize_scaled";
  check_pair(fn, y, "y", q);
  const std::int64_t rows_per_head = check_head_scales(fn, y, "y", head_scales);
  detail::check_output(fn, "y", y, {q, head_scales});
  if (y.numel() == 0) return;
  dequantize(q, static_cast<const float*>(head_scales.data()), 0.0f, rows_per_head, y);
}

}  // namespace kv
}  // namespace cinch
