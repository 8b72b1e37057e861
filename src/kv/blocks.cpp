// kv::quantize_blocks / kv::dequantize_blocks: validate at the boundary, split
// into rows (or chunks of a long row), dispatch to the block kernel table.
#include "cinch/kv/blocks.hpp"

#include <string_view>

#include "cinch/detail/checks.hpp"
#include "cinch/detail/rows.hpp"
#include "cinch/ref/ggml.hpp"
#include "dispatch.hpp"
#include "kv/block_kernels.hpp"
#include "parallel.hpp"

namespace cinch::kv {
namespace detail {
namespace {

template <dtype Format, class T>
void ref_quantize(const void* x, std::uint8_t* blocks, std::int64_t n) noexcept {
  ref::quantize_row_blocks<Format>(static_cast<const T*>(x), blocks, n);
}
template <dtype Format, class T>
void ref_dequantize(const std::uint8_t* blocks, void* y, std::int64_t n) noexcept {
  ref::dequantize_row_blocks<Format>(blocks, static_cast<T*>(y), n);
}
template <dtype Format>
float ref_dot(const float* q, const std::uint8_t* blocks, std::int64_t n) noexcept {
  return ref::dot_row_blocks<Format>(q, blocks, n);
}
template <dtype Format>
void ref_axpy(float w, const std::uint8_t* blocks, float* y, std::int64_t n) noexcept {
  ref::axpy_row_blocks<Format>(w, blocks, y, n);
}

template <dtype... Formats>
constexpr block_kernels make_ref_table() {
  return {{ref_quantize<Formats, float>...},    {ref_quantize<Formats, f16_bits>...},
          {ref_dequantize<Formats, float>...},  {ref_dequantize<Formats, f16_bits>...},
          {ref_dot<Formats>...},                {ref_axpy<Formats>...}};
}

constexpr block_kernels ref_table =
    make_ref_table<dtype::q8_0, dtype::q4_0, dtype::q4_1, dtype::q5_0, dtype::q5_1, dtype::iq4_nl>();

}  // namespace

const block_kernels& ref_block_kernels() noexcept { return ref_table; }

const block_kernels& active_block_kernels() {
  return cinch::detail::use_reference_kernels() ? ref_table : simd_block_kernels();
}

}  // namespace detail

namespace {

constexpr std::int64_t chunk_values = 16384;  // 512 blocks: a unit of work for one thread

// Rows of the two views; one long row when both are dense, so that the kernels
// see whole groups of blocks even for short head dimensions.
struct row_pair {
  cinch::detail::row_layout values, blocks;
};

row_pair rows_of(const tensor_view& values, const tensor_view& blocks) {
  if (values.is_contiguous() && blocks.is_contiguous()) {
    cinch::detail::row_layout one;
    one.cols = values.numel();
    return {one, one};
  }
  return {cinch::detail::rows_of(values), cinch::detail::rows_of(blocks)};
}

// Shared checks: `values` ([..., d], f32 or f16) and `blocks` (a ggml dtype, same shape) on one device.
void check_pair(std::string_view fn, const tensor_view& values, std::string_view values_name,
                const tensor_view& blocks) {
  cinch::detail::check_device(fn, "blocks", blocks, values.where());
  cinch::detail::require_backend(fn, values.where());
  if (values.type() != dtype::f32 && values.type() != dtype::f16)
    cinch::detail::fail(errc::invalid_argument, fn, values_name, " must have dtype f32 or f16, got ",
                        to_string(values.type()));
  if (!is_ggml_block(blocks.type()))
    cinch::detail::fail(errc::invalid_argument, fn,
                        "blocks must have a ggml block dtype (q8_0, q4_0, q4_1, q5_0, q5_1 or iq4_nl), got ",
                        to_string(blocks.type()));
  if (values.rank() < 1)
    cinch::detail::fail(errc::shape_mismatch, fn, values_name,
                        " must have at least one dimension (the head dimension), got rank 0");
  if (values.size(-1) % ref::ggml_block_values)
    cinch::detail::fail(errc::shape_mismatch, fn, values_name,
                        "'s innermost dimension (the head dimension) must be a multiple of 32, got ",
                        values.size(-1), " in shape ", values.shape());
  cinch::detail::check_shape(fn, "blocks", blocks, values.shape());
  cinch::detail::check_rows_dense(fn, values_name, values);
}

}  // namespace

void quantize_blocks(const tensor_view& x, const tensor_view& blocks) {
  constexpr std::string_view fn = "kv::quantize_blocks";
  check_pair(fn, x, "x", blocks);
  cinch::detail::check_output(fn, "blocks", blocks, {x});
  if (x.numel() == 0) return;

  const row_pair rows = rows_of(x, blocks);
#if CINCH_WITH_CUDA
  if (x.where().kind == device_kind::cuda) {
    cuda::quantize_blocks(rows.values, x.data(), x.type(), rows.blocks, blocks.data(), blocks.type(), x.where().index);
    return;
  }
#endif
  const detail::block_kernels& k = detail::active_block_kernels();
  const int f = detail::block_format_index(blocks.type());
  const detail::quantize_row_fn row = x.type() == dtype::f32 ? k.quantize_f32[f] : k.quantize_f16[f];
  const auto chunk = [&](std::int64_t r, std::int64_t begin, std::int64_t end) {
    row(x.address(rows.values.row_offset(r) + begin),
        reinterpret_cast<std::uint8_t*>(blocks.address(rows.blocks.row_offset(r) + begin)), end - begin);
  };
  cinch::detail::for_each_chunk(rows.values.rows, rows.values.cols, chunk_values, chunk);
}

void dequantize_blocks(const tensor_view& blocks, const tensor_view& y) {
  constexpr std::string_view fn = "kv::dequantize_blocks";
  check_pair(fn, y, "y", blocks);
  cinch::detail::check_output(fn, "y", y, {blocks});
  if (y.numel() == 0) return;

  const row_pair rows = rows_of(y, blocks);
#if CINCH_WITH_CUDA
  if (y.where().kind == device_kind::cuda) {
    cuda::dequantize_blocks(rows.blocks, blocks.data(), blocks.type(), rows.values, y.data(), y.type(), y.where().index);
    return;
  }
#endif
  const detail::block_kernels& k = detail::active_block_kernels();
  const int f = detail::block_format_index(blocks.type());
  const detail::dequantize_row_fn row = y.type() == dtype::f32 ? k.dequantize_f32[f] : k.dequantize_f16[f];
  const auto chunk = [&](std::int64_t r, std::int64_t begin, std::int64_t end) {
    row(reinterpret_cast<const std::uint8_t*>(blocks.address(rows.blocks.row_offset(r) + begin)),
        y.address(rows.values.row_offset(r) + begin), end - begin);
  };
  cinch::detail::for_each_chunk(rows.values.rows, rows.values.cols, chunk_values, chunk);
}

}  // namespace cinch::kv
