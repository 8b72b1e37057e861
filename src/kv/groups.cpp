// KIVI group quantization: validation at the boundary, the kernel table, and the
// split into rows (per token) or chunks (per channel) spread over threads.
#include "cinch/kv/groups.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "cinch/detail/checks.hpp"
#include "cinch/detail/rows.hpp"
#include "cinch/ref/groups.hpp"
#include "dispatch.hpp"
#include "kv/group_kernels.hpp"

#if CINCH_WITH_CUDA
#include "cuda/groups_backend.hpp"
#endif

namespace cinch {
namespace detail {
namespace {

constexpr group_kernels ref_groups{ref::quantize_per_token_row, ref::dequantize_per_token_row,
                                   ref::quantize_per_channel_chunk, ref::dequantize_per_channel_chunk};
constexpr group_kernels simd_groups{cpu::quantize_groups_row, cpu::dequantize_groups_row, cpu::quantize_groups_chunk,
                                    cpu::dequantize_groups_chunk};

}  // namespace

const group_kernels& active_group_kernels() { return use_reference_kernels() ? ref_groups : simd_groups; }

}  // namespace detail

namespace kv {
namespace {

// A shape assembled from a prefix of another and a few extents, without allocating.
struct shape_buf {
  std::array<std::int64_t, max_rank + 1> dims{};
  std::size_t rank = 0;
  shape_buf(std::span<const std::int64_t> prefix, std::initializer_list<std::int64_t> tail) {
    for (std::int64_t e : prefix) dims[rank++] = e;
    for (std::int64_t e : tail) dims[rank++] = e;
  }
  [[nodiscard]] std::span<const std::int64_t> span() const { return {dims.data(), rank}; }
};

int bits_of(std::string_view fn, dtype codes) {
  switch (codes) {
    case dtype::u4x2: return 4;
    case dtype::u2x4: return 2;
    case dtype::u8: return 8;
    default:
      detail::fail(errc::invalid_argument, fn, "codes must have dtype u4x2 (4-bit), u2x4 (2-bit) or u8 (8-bit), got ",
                   to_string(codes));
  }
}

// The checks both layouts share. `values` is x or y, `extent` the grouped extent.
int check_common(std::string_view fn, const tensor_view& values, std::string_view values_name,
                 const tensor_view& codes, const tensor_view& scales, const tensor_view& mins,
                 std::int64_t group_size, std::int64_t extent, std::string_view extent_name) {
  detail::check_device(fn, "codes", codes, values.where());
  detail::check_device(fn, "scales", scales, values.where());
  detail::check_device(fn, "mins", mins, values.where());
  detail::require_backend(fn, values.where());
  detail::check_dtype(fn, values_name, values, dtype::f32);
  const int bits = bits_of(fn, codes.type());
  detail::check_dtype(fn, "scales", scales, dtype::f16);
  detail::check_dtype(fn, "mins", mins, dtype::f16);
  const int per_byte = ref::codes_per_byte(bits);
  if (group_size < 1) detail::fail(errc::invalid_argument, fn, "group_size must be >= 1, got ", group_size);
  if (group_size % per_byte)
    detail::fail(errc::invalid_argument, fn, "group_size must be a multiple of ", per_byte, " for ",
                 to_string(codes.type()), " codes (groups start on a byte), got ", group_size);
  if (extent % group_size)
    detail::fail(errc::shape_mismatch, fn, "group_size ", group_size, " must divide ", extent_name, " ", extent,
                 " of ", values_name, " ", values.shape());
  return bits;
}

void check_dense(std::string_view fn, const tensor_view& values, std::string_view values_name,
                 const tensor_view& codes, const tensor_view& scales, const tensor_view& mins) {
  detail::check_rows_dense(fn, values_name, values);
  detail::check_rows_dense(fn, "codes", codes);
  detail::check_rows_dense(fn, "scales", scales);
  detail::check_rows_dense(fn, "mins", mins);
}

template <class T>
T* bytes_at(const tensor_view& v, std::int64_t element_offset) {
  return reinterpret_cast<T*>(v.address(element_offset));
}

// The base pointers of a quantize call (x -> codes, scales, mins), taken once no
// output is found to overlap x or an earlier output.
struct quantize_ptrs {
  const float* x;
  std::uint8_t* codes;
  std::uint16_t* scales;
  std::uint16_t* mins;
};

quantize_ptrs quantize_outputs(std::string_view fn, const tensor_view& x, const tensor_view& codes,
                               const tensor_view& scales, const tensor_view& mins) {
  detail::check_output(fn, "codes", codes, {x});
  detail::check_output(fn, "scales", scales, {x, codes});
  detail::check_output(fn, "mins", mins, {x, codes, scales});
  return {static_cast<const float*>(x.data()), static_cast<std::uint8_t*>(codes.data()),
          static_cast<std::uint16_t*>(scales.data()), static_cast<std::uint16_t*>(mins.data())};
}

// The base pointers of a dequantize call (codes, scales, mins -> y), taken once y
// is found not to overlap an input.
struct dequantize_ptrs {
  const std::uint8_t* codes;
  const std::uint16_t* scales;
  const std::uint16_t* mins;
  float* y;
};

dequantize_ptrs dequantize_output(std::string_view fn, const tensor_view& codes, const tensor_view& scales,
                                  const tensor_view& mins, const tensor_view& y) {
  detail::check_output(fn, "y", y, {codes, scales, mins});
  return {static_cast<const std::uint8_t*>(codes.data()), static_cast<const std::uint16_t*>(scales.data()),
          static_cast<const std::uint16_t*>(mins.data()), static_cast<float*>(y.data())};
}

// ---------------------------------------------------------------- per token

struct token_plan {
  int bits;
  std::int64_t n;
  detail::row_layout values, codes, scales, mins;
};

token_plan plan_per_token(std::string_view fn, const tensor_view& values, std::string_view values_name,
                          const tensor_view& codes, const tensor_view& scales, const tensor_view& mins,
                          std::int64_t group_size) {
  if (values.rank() < 1)
    detail::fail(errc::shape_mismatch, fn, values_name, " must have at least one dimension (the token's channels), got rank 0");
  const std::int64_t n = values.size(-1);
  const int bits = check_common(fn, values, values_name, codes, scales, mins, group_size, n, "the row length");
  detail::check_shape(fn, "codes", codes, values.shape());
  const shape_buf param_shape(values.shape().first(std::size_t(values.rank() - 1)), {n / group_size});
  detail::check_shape(fn, "scales", scales, param_shape.span());
  detail::check_shape(fn, "mins", mins, param_shape.span());
  check_dense(fn, values, values_name, codes, scales, mins);
  return {bits, n, detail::rows_of(values), detail::rows_of(codes), detail::rows_of(scales), detail::rows_of(mins)};
}

// ---------------------------------------------------------------- per channel

struct channel_plan {
  int bits;
  std::int64_t chunks, d, token_stride, channel_stride;  // channel_stride in bytes
  detail::row_layout values, codes, scales, mins;
};

channel_plan plan_per_channel(std::string_view fn, const tensor_view& values, std::string_view values_name,
                              const tensor_view& codes, const tensor_view& scales, const tensor_view& mins,
                              std::int64_t group_size) {
  if (values.rank() < 2)
    detail::fail(errc::shape_mismatch, fn, values_name, " must be [..., tokens, channels] (rank >= 2), got rank ",
                 values.rank(), " ", values.shape());
  const std::int64_t tokens = values.size(-2), d = values.size(-1);
  const int bits = check_common(fn, values, values_name, codes, scales, mins, group_size, tokens, "the token count");
  const auto prefix = values.shape().first(std::size_t(values.rank() - 2));
  const std::int64_t chunks_per_row = tokens / group_size;
  detail::check_shape(fn, "codes", codes, shape_buf(prefix, {chunks_per_row, d, group_size}).span());
  const shape_buf param_shape(prefix, {chunks_per_row, d});
  detail::check_shape(fn, "scales", scales, param_shape.span());
  detail::check_shape(fn, "mins", mins, param_shape.span());
  check_dense(fn, values, values_name, codes, scales, mins);
  const detail::row_layout code_chunks = detail::rows_of(codes, 2);
  return {bits,
          code_chunks.rows,
          d,
          values.stride(-2),
          codes.stride(-2) / ref::codes_per_byte(bits),
          detail::rows_of(values),
          code_chunks,
          detail::rows_of(scales),
          detail::rows_of(mins)};
}

// Channels per task when a chunk is split across threads.
constexpr std::int64_t channel_block = 512;

template <class Body>
void for_each_chunk_block(const channel_plan& p, std::int64_t group_size, Body body) {
  const std::int64_t blocks = (p.d + channel_block - 1) / channel_block;
  detail::parallel_tasks(p.chunks * blocks, p.chunks * group_size * p.d, [&](std::int64_t task) {
    const std::int64_t chunk = task / blocks, c0 = (task % blocks) * channel_block;
    body(chunk, c0, (c0 + channel_block < p.d ? c0 + channel_block : p.d) - c0);
  });
}

}  // namespace

int group_bits(dtype codes) { return bits_of("kv::group_bits", codes); }

void quantize_per_token(const tensor_view& x, const tensor_view& codes, const tensor_view& scales,
                        const tensor_view& mins, std::int64_t group_size) {
  constexpr std::string_view fn = "kv::quantize_per_token";
  const token_plan p = plan_per_token(fn, x, "x", codes, scales, mins, group_size);
  const quantize_ptrs ptr = quantize_outputs(fn, x, codes, scales, mins);
  if (x.numel() == 0) return;
#if CINCH_WITH_CUDA
  if (x.where().kind == device_kind::cuda) {
    cuda::quantize_per_token({p.values, p.codes, p.scales, p.mins, p.n, group_size, p.bits}, ptr.x, ptr.codes,
                             ptr.scales, ptr.mins, x.where().index);
    return;
  }
#endif
  const detail::group_kernels& k = detail::active_group_kernels();
  detail::parallel_tasks(p.values.rows, x.numel(), [&](std::int64_t r) {
    k.quantize_row(ptr.x + p.values.row_offset(r), p.n, group_size, p.bits,
                   bytes_at<std::uint8_t>(codes, p.codes.row_offset(r)), ptr.scales + p.scales.row_offset(r),
                   ptr.mins + p.mins.row_offset(r));
  });
}

void dequantize_per_token(const tensor_view& codes, const tensor_view& scales, const tensor_view& mins,
                          const tensor_view& y, std::int64_t group_size) {
  constexpr std::string_view fn = "kv::dequantize_per_token";
  const token_plan p = plan_per_token(fn, y, "y", codes, scales, mins, group_size);
  const dequantize_ptrs ptr = dequantize_output(fn, codes, scales, mins, y);
  if (y.numel() == 0) return;
#if CINCH_WITH_CUDA
  if (y.where().kind == device_kind::cuda) {
    cuda::dequantize_per_token({p.values, p.codes, p.scales, p.mins, p.n, group_size, p.bits}, ptr.codes,
                               ptr.scales, ptr.mins, ptr.y, y.where().index);
    return;
  }
#endif
  const detail::group_kernels& k = detail::active_group_kernels();
  detail::parallel_tasks(p.values.rows, y.numel(), [&](std::int64_t r) {
    k.dequantize_row(bytes_at<const std::uint8_t>(codes, p.codes.row_offset(r)), ptr.scales + p.scales.row_offset(r),
                     ptr.mins + p.mins.row_offset(r), p.n, group_size, p.bits, ptr.y + p.values.row_offset(r));
  });
}

void quantize_per_channel(const tensor_view& x, const tensor_view& codes, const tensor_view& scales,
                          const tensor_view& mins, std::int64_t group_size) {
  constexpr std::string_view fn = "kv::quantize_per_channel";
  const channel_plan p = plan_per_channel(fn, x, "x", codes, scales, mins, group_size);
  const quantize_ptrs ptr = quantize_outputs(fn, x, codes, scales, mins);
  if (x.numel() == 0) return;
#if CINCH_WITH_CUDA
  if (x.where().kind == device_kind::cuda) {
    cuda::quantize_per_channel(
        {p.values, p.codes, p.scales, p.mins, p.chunks, p.d, group_size, p.token_stride, p.channel_stride, p.bits},
        ptr.x, ptr.codes, ptr.scales, ptr.mins, x.where().index);
    return;
  }
#endif
  const detail::group_kernels& k = detail::active_group_kernels();
  for_each_chunk_block(p, group_size, [&](std::int64_t chunk, std::int64_t c0, std::int64_t channels) {
    k.quantize_chunk(ptr.x + p.values.row_offset(chunk * group_size) + c0, p.token_stride, channels, group_size,
                     p.bits, bytes_at<std::uint8_t>(codes, p.codes.row_offset(chunk)) + c0 * p.channel_stride,
                     p.channel_stride, ptr.scales + p.scales.row_offset(chunk) + c0,
                     ptr.mins + p.mins.row_offset(chunk) + c0);
  });
}

void dequantize_per_channel(const tensor_view& codes, const tensor_view& scales, const tensor_view& mins,
                            const tensor_view& y, std::int64_t group_size) {
  constexpr std::string_view fn = "kv::dequantize_per_channel";
  const channel_plan p = plan_per_channel(fn, y, "y", codes, scales, mins, group_size);
  const dequantize_ptrs ptr = dequantize_output(fn, codes, scales, mins, y);
  if (y.numel() == 0) return;
#if CINCH_WITH_CUDA
  if (y.where().kind == device_kind::cuda) {
    cuda::dequantize_per_channel(
        {p.values, p.codes, p.scales, p.mins, p.chunks, p.d, group_size, p.token_stride, p.channel_stride, p.bits},
        ptr.codes, ptr.scales, ptr.mins, ptr.y, y.where().index);
    return;
  }
#endif
  const detail::group_kernels& k = detail::active_group_kernels();
  for_each_chunk_block(p, group_size, [&](std::int64_t chunk, std::int64_t c0, std::int64_t channels) {
    k.dequantize_chunk(bytes_at<const std::uint8_t>(codes, p.codes.row_offset(chunk)) + c0 * p.channel_stride,
                       p.channel_stride, ptr.scales + p.scales.row_offset(chunk) + c0,
                       ptr.mins + p.mins.row_offset(chunk) + c0, channels, group_size, p.bits,
                       ptr.y + p.values.row_offset(chunk * group_size) + c0, p.token_stride);
  });
}

}  // namespace kv
}  // namespace cinch
