// Bad input: every case is a cinch::error whose message names the function,
// the argument, what was expected and what came.
#include <cinch/cinch.hpp>

#include <cstdint>
#include <limits>
#include <vector>

#include "error_matchers.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;

TEST_CASE("views reject impossible shapes", "[errors]") {
  std::vector<float> data(64);
  require_error([&] { tensor_view(data.data(), dtype::f32, {4, -2}); }, errc::invalid_argument,
                {"tensor_view", "extents must be >= 0", "[4, -2]"});
  require_error([&] { tensor_view(data.data(), dtype::f32, {1, 1, 1, 1, 1, 1, 1}); }, errc::invalid_argument,
                {"tensor_view", "rank must be at most 6", "rank 7"});
  const std::int64_t huge = std::int64_t(1) << 40;
  require_error([&] { tensor_view(data.data(), dtype::f32, {huge, huge}); }, errc::invalid_argument,
                {"tensor_view", "overflows"});
  require_error([&] { tensor_view(data.data(), dtype::f32, {2, 2}, {std::numeric_limits<std::int64_t>::max() / 2, 1}); },
                errc::invalid_argument, {"tensor_view", "overflow the address range"});
  require_error([&] { tensor_view(static_cast<float*>(nullptr), dtype::f32, {2, 3}); }, errc::invalid_argument,
                {"tensor_view", "data must not be null", "6 elements"});
  require_error([&] { tensor_view(data.data(), dtype::f32, {2, 3}, {1}); }, errc::shape_mismatch,
                {"tensor_view", "strides must have one entry per dimension"});
  CHECK_NOTHROW(tensor_view(static_cast<float*>(nullptr), dtype::f32, {0, 3}));  // null is fine when empty
}

TEST_CASE("block dtypes must keep whole, dense blocks", "[errors]") {
  std::vector<std::uint8_t> bytes(256);
  require_error([&] { tensor_view(bytes.data(), dtype::q8_0, {2, 48}); }, errc::invalid_argument,
                {"tensor_view", "multiple of 32", "extent 48"});
  require_error([&] { tensor_view(bytes.data(), dtype::q4_0, {2, 64}, {64, 2}); }, errc::invalid_argument,
                {"tensor_view", "dense (stride 1)"});
  const tensor_view q(bytes.data(), dtype::q4_0, {2, 64});
  require_error([&] { (void)q.slice(1, 8, 40); }, errc::invalid_argument, {"tensor_view::slice", "whole blocks of 32"});
  require_error([&] { (void)q.select(1, 3); }, errc::unsupported, {"tensor_view::select", "innermost"});
  require_error([&] { (void)q.permute({1, 0}); }, errc::unsupported, {"tensor_view::permute", "must stay innermost"});
}

TEST_CASE("view operations check their arguments", "[errors]") {
  std::vector<float> data(24);
  const tensor_view v(data.data(), dtype::f32, {2, 3, 4});
  require_error([&] { (void)v.size(3); }, errc::invalid_argument, {"tensor_view::size", "dimension must be in [-3, 3)", "got 3"});
  require_error([&] { (void)v.slice(1, 2, 5); }, errc::invalid_argument, {"tensor_view::slice", "<= 3", "[2, 5)"});
  require_error([&] { (void)v.select(0, 2); }, errc::invalid_argument, {"tensor_view::select", "[0, 2)", "got 2"});
  require_error([&] { (void)v.permute({0, 0, 1}); }, errc::invalid_argument, {"tensor_view::permute", "permutation"});
  require_error([&] { (void)v.permute({0, 1}); }, errc::invalid_argument, {"tensor_view::permute", "3 dimensions, got 2"});
  require_error([&] { (void)v.reshape({5, 5}); }, errc::shape_mismatch, {"tensor_view::reshape", "24 elements"});
  require_error([&] { (void)v.permute({1, 0, 2}).reshape({24}); }, errc::unsupported, {"tensor_view::reshape", "contiguous"});
  require_error([&] { (void)v.as<float, 2>(); }, errc::shape_mismatch, {"tensor_view::as", "rank must be 2", "rank 3 [2, 3, 4]"});
  require_error([&] { (void)v.as<std::int32_t, 3>(); }, errc::invalid_argument, {"tensor_view::as", "dtype f32", "i32"});
  require_error([&] { (void)v.as_read_only().as<float, 3>(); }, errc::invalid_argument, {"tensor_view::as", "read-only"});
  CHECK_NOTHROW(v.as_read_only().as<const float, 3>());
}

TEST_CASE("convert rejects mismatched and unsafe arguments", "[errors]") {
  std::vector<float> x(32), y(32);
  std::vector<std::uint16_t> h(32);
  const tensor_view src(x.data(), dtype::f32, {4, 8});
  require_error([&] { cinch::convert(src, tensor_view(h.data(), dtype::f16, {4, 7})); }, errc::shape_mismatch,
                {"convert", "dst must have shape [4, 8]", "got [4, 7]"});
  require_error([&] { cinch::convert(tensor_view(h.data(), dtype::f16, {4, 8}), tensor_view(h.data() + 0, dtype::bf16, {4, 8})); },
                errc::unsupported, {"convert", "f16 -> bf16"});
  require_error([&] { cinch::convert(src, tensor_view(y.data(), dtype::i32, {4, 8})); }, errc::unsupported,
                {"convert", "f32 -> i32"});
  require_error([&] { cinch::convert(src, tensor_view(static_cast<const std::uint16_t*>(h.data()), dtype::f16, {4, 8})); },
                errc::invalid_argument, {"convert", "dst must be writable"});
  require_error([&] { cinch::convert(src, tensor_view(h.data(), dtype::f16, {4, 8}, {0, 1})); }, errc::invalid_argument,
                {"convert", "dst must not alias itself", "strides [0, 1]"});
  require_error([&] { cinch::convert(src, tensor_view(x.data() + 4, dtype::f32, {4, 8})); }, errc::invalid_argument,
                {"convert", "dst must not overlap an input"});
  require_error([&] { cinch::convert(src.permute({1, 0}), tensor_view(h.data(), dtype::f16, {8, 4})); },
                errc::unsupported, {"convert", "src must have a dense innermost dimension"});
}

TEST_CASE("device mismatches and CUDA tensors without a CUDA device", "[errors]") {
  std::vector<float> x(8);
  std::vector<std::uint16_t> h(8);
  const tensor_view on_gpu(x.data(), dtype::f32, {8}, cinch::cuda_device(0));
  require_error([&] { cinch::convert(on_gpu, tensor_view(h.data(), dtype::f16, {8})); }, errc::invalid_argument,
                {"convert", "dst must be on cuda:0", "got cpu"});
  const tensor_view gpu_out(h.data(), dtype::f16, {8}, cinch::cuda_device(0));
  if (cinch::cuda_device_count() == 0) {
    // A CPU-only build says so; a CUDA build on a machine without a GPU says no device is visible.
    const bool compiled = cinch::compiled_backends().back() == cinch::backend_kind::cuda;
    require_error([&] { cinch::convert(on_gpu, gpu_out); }, compiled ? errc::invalid_argument : errc::unsupported,
                  {"convert", "tensors are on cuda:0"});
    require_error([&] { (void)cinch::tensor::empty({4}, dtype::f32, cinch::cuda_device(0)); },
                  compiled ? errc::invalid_argument : errc::unsupported, {"tensor::empty", "cuda:0"});
  }
}

TEST_CASE("row quantization checks dtypes and shapes", "[errors]") {
  std::vector<float> x(32), s(4);
  std::vector<std::int8_t> q(32);
  const tensor_view xv(x.data(), dtype::f32, {4, 8});
  const tensor_view qv(q.data(), dtype::i8, {4, 8});
  require_error([&] { cinch::quantize_rows(xv, qv, tensor_view(s.data(), dtype::f32, {3})); }, errc::shape_mismatch,
                {"quantize_rows", "scales must have shape [4]", "got [3]"});
  require_error([&] { cinch::quantize_rows(xv, tensor_view(q.data(), dtype::u8, {4, 8}), tensor_view(s.data(), dtype::f32, {4})); },
                errc::invalid_argument, {"quantize_rows", "codes must have dtype i8", "got u8"});
  require_error([&] { cinch::quantize_rows(tensor_view(x.data(), dtype::f32, {}), tensor_view(q.data(), dtype::i8, {}),
                                           tensor_view(s.data(), dtype::f32, {})); },
                errc::shape_mismatch, {"quantize_rows", "at least one dimension"});
  require_error([&] { cinch::dequantize_rows(qv, tensor_view(s.data(), dtype::f32, {4}), tensor_view(x.data(), dtype::f16, {4, 8})); },
                errc::invalid_argument, {"dequantize_rows", "y must have dtype f32", "got f16"});
  require_error([&] { cinch::quantize_rows(xv, qv, tensor_view(x.data(), dtype::f32, {4})); }, errc::invalid_argument,
                {"quantize_rows", "scales must not overlap an input"});
}

TEST_CASE("backend controls reject bad values", "[errors]") {
  require_error([] { cinch::force_backend(cinch::backend_kind::cuda); }, errc::invalid_argument,
                {"force_backend", "ref or simd", "got cuda"});
  require_error([] { cinch::set_threads(0); }, errc::invalid_argument, {"set_threads", ">= 1", "got 0"});
  require_error([] { (void)cinch::tensor::empty({-1, 4}, dtype::f32); }, errc::invalid_argument,
                {"tensor::empty", "extents must be >= 0", "[-1, 4]"});
  require_error([] { (void)cinch::tensor::empty({3, 40}, dtype::q8_0); }, errc::invalid_argument,
                {"tensor::empty", "multiple of 32"});
  std::vector<float> a(4);
  std::vector<std::int32_t> b(4);
  require_error([&] { cinch::copy(tensor_view(a.data(), dtype::f32, {4}), tensor_view(b.data(), dtype::i32, {4})); },
                errc::invalid_argument, {"copy", "dst must have dtype f32", "got i32"});
}
