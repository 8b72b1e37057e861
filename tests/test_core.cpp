// Core types: dtype table, device, tensor_view layout operations, tensor, rows.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/detail/checks.hpp>
#include <cinch/detail/rows.hpp>

#include <array>
#include <cstdint>
#include <numeric>
#include <vector>

using cinch::dtype;
using cinch::tensor_view;

TEST_CASE("dtype info matches the ggml block layouts", "[dtype]") {
  CHECK(cinch::info(dtype::f32).block_bytes == 4);
  CHECK(cinch::info(dtype::bf16).block_bytes == 2);
  CHECK(cinch::info(dtype::i4x2).block_elems == 2);
  CHECK(cinch::info(dtype::u2x4).block_elems == 4);
  // ggml: q8_0 = f16 + 32 bytes, q4_0 = f16 + 16, q4_1 = 2 f16 + 16, q5_0 = f16 + 4 + 16, q5_1 = 2 f16 + 4 + 16.
  CHECK(cinch::info(dtype::q8_0).block_bytes == 34);
  CHECK(cinch::info(dtype::q4_0).block_bytes == 18);
  CHECK(cinch::info(dtype::q4_1).block_bytes == 20);
  CHECK(cinch::info(dtype::q5_0).block_bytes == 22);
  CHECK(cinch::info(dtype::q5_1).block_bytes == 24);
  for (int t = 0; t < cinch::dtype_count; ++t) {
    const auto i = cinch::info(static_cast<dtype>(t));
    CHECK(i.name != "invalid");
    CHECK(i.block_elems >= 1);
    CHECK(i.is_block == (i.block_elems > 1));
  }
  STATIC_REQUIRE(cinch::info(dtype::q4_0).block_elems == 32);  // usable at compile time
}

TEST_CASE("device values equal DLPack's and print", "[device]") {
  STATIC_REQUIRE(static_cast<int>(cinch::device_kind::cpu) == 1);
  STATIC_REQUIRE(static_cast<int>(cinch::device_kind::cuda) == 2);
  CHECK(cinch::to_string(cinch::cpu_device) == "cpu");
  CHECK(cinch::to_string(cinch::cuda_device(3)) == "cuda:3");
  CHECK(cinch::cuda_device(1) != cinch::cuda_device(0));
}

TEST_CASE("a dense view has row-major strides", "[tensor_view]") {
  std::vector<float> data(2 * 3 * 4);
  const tensor_view v(data.data(), dtype::f32, {2, 3, 4});
  CHECK(v.rank() == 3);
  CHECK(v.numel() == 24);
  CHECK(v.nbytes() == 96);
  CHECK(v.stride(0) == 12);
  CHECK(v.stride(1) == 4);
  CHECK(v.stride(-1) == 1);
  CHECK(v.size(-2) == 3);
  CHECK(v.is_contiguous());
  CHECK_FALSE(v.read_only());
  const tensor_view c(static_cast<const float*>(data.data()), dtype::f32, {24});
  CHECK(c.read_only());
  const tensor_view scalar(data.data(), dtype::f32, {});
  CHECK(scalar.rank() == 0);
  CHECK(scalar.numel() == 1);
}

TEST_CASE("slice, select and permute address the right elements", "[tensor_view]") {
  std::vector<float> data(4 * 5 * 6);
  std::iota(data.begin(), data.end(), 0.0f);
  const tensor_view v(data.data(), dtype::f32, {4, 5, 6});

  const tensor_view s = v.slice(1, 2, 4);  // [4, 2, 6]
  CHECK(s.size(1) == 2);
  CHECK_FALSE(s.is_contiguous());
  auto ts = s.as<float, 3>();
  CHECK(ts(3, 1, 5) == data[3 * 30 + 3 * 6 + 5]);

  const tensor_view sel = v.select(0, 2);  // [5, 6]
  CHECK(sel.rank() == 2);
  CHECK(sel.as<float, 2>()(4, 1) == data[2 * 30 + 4 * 6 + 1]);

  const tensor_view p = v.permute({2, 0, 1});  // [6, 4, 5]
  CHECK(p.size(0) == 6);
  CHECK(p.stride(0) == 1);
  CHECK(p.as<float, 3>()(5, 3, 2) == data[3 * 30 + 2 * 6 + 5]);

  const tensor_view r = v.reshape({20, 6});
  CHECK(r.as<float, 2>()(7, 3) == data[7 * 6 + 3]);

  const tensor_view empty = v.slice(0, 1, 1);
  CHECK(empty.numel() == 0);
}

TEST_CASE("block dtypes address whole blocks", "[tensor_view]") {
  std::vector<std::uint8_t> storage(4 * 2 * 18);  // 4 rows of 64 q4_0 values = 2 blocks each
  const tensor_view q(storage.data(), dtype::q4_0, {4, 64});
  CHECK(q.stride(0) == 64);
  CHECK(q.nbytes() == 4 * 2 * 18);
  CHECK(q.select(0, 1).data() == storage.data() + 36);
  CHECK(q.slice(1, 32, 64).data() == storage.data() + 18);
  std::vector<std::uint8_t> nibbles(3 * 4);
  const tensor_view packed(nibbles.data(), dtype::u4x2, {3, 8});
  CHECK(packed.nbytes() == 12);
  CHECK(packed.select(0, 2).data() == nibbles.data() + 8);
}

TEST_CASE("tensor::empty allocates aligned, owning storage", "[tensor]") {
  const cinch::tensor t = cinch::tensor::empty({3, 5}, dtype::f32);
  CHECK(t.numel() == 15);
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  CHECK(t.where() == cinch::cpu_device);
  float* p = t.data<float>();
  for (int i = 0; i < 15; ++i) p[i] = float(i);  // writable across its whole extent
  const cinch::tensor copy = t;                  // shares ownership
  CHECK(copy.data() == t.data());
  CHECK(t.owner().use_count() == 2);

  const cinch::tensor blocks = cinch::tensor::empty({2, 64}, dtype::q8_0);
  CHECK(blocks.nbytes() == 2 * 2 * 34);
  const cinch::tensor none = cinch::tensor::empty({0, 7}, dtype::f16);
  CHECK(none.numel() == 0);
}

TEST_CASE("tensor::adopt keeps the engine's buffer alive without copying", "[tensor]") {
  auto buffer = std::make_shared<std::vector<float>>(8, 1.0f);
  const cinch::tensor t = cinch::tensor::adopt(tensor_view(buffer->data(), dtype::f32, {2, 4}), buffer);
  const std::weak_ptr<std::vector<float>> watch = buffer;
  buffer.reset();
  CHECK_FALSE(watch.expired());
  CHECK(t.data<float>()[7] == 1.0f);
}

TEST_CASE("copy handles strided host views", "[copy]") {
  std::vector<float> a(6 * 4), b(3 * 4, -1.0f);
  std::iota(a.begin(), a.end(), 0.0f);
  const tensor_view every_other_row(a.data(), dtype::f32, {3, 4}, {8, 1});
  cinch::copy(every_other_row, tensor_view(b.data(), dtype::f32, {3, 4}));
  CHECK(b[0] == 0.0f);
  CHECK(b[4] == 8.0f);
  CHECK(b[11] == 19.0f);
}

TEST_CASE("rows_of maps rows back to the engine's layout", "[rows]") {
  std::vector<float> data(2 * 3 * 8);
  const tensor_view v = tensor_view(data.data(), dtype::f32, {2, 3, 8}).slice(2, 0, 4);  // rows of 4, pitch 8
  const cinch::detail::row_layout rows = cinch::detail::rows_of(v);
  CHECK(rows.rows == 6);
  CHECK(rows.cols == 4);
  CHECK(rows.row_offset(0) == 0);
  CHECK(rows.row_offset(4) == 24 + 8);  // [1, 1, :]
  const cinch::detail::row_layout elems = cinch::detail::rows_of(v.select(2, 0), 0);
  CHECK(elems.rows == 6);
  CHECK(elems.row_offset(5) == 24 + 16);
}

TEST_CASE("overlap and self-alias detection", "[checks]") {
  std::vector<float> data(64);
  const tensor_view a(data.data(), dtype::f32, {4, 8});
  const tensor_view b(data.data() + 32, dtype::f32, {4, 8});
  const tensor_view c(data.data() + 31, dtype::f32, {4, 8});
  CHECK_FALSE(cinch::detail::overlaps(a, b));
  CHECK(cinch::detail::overlaps(a, c));
  CHECK_FALSE(cinch::detail::may_alias_itself(a));
  CHECK_FALSE(cinch::detail::may_alias_itself(a.permute({1, 0})));
  CHECK(cinch::detail::may_alias_itself(tensor_view(data.data(), dtype::f32, {4, 8}, {0, 1})));    // broadcast
  CHECK(cinch::detail::may_alias_itself(tensor_view(data.data(), dtype::f32, {4, 8}, {4, 1})));    // rows overlap
  CHECK_FALSE(cinch::detail::may_alias_itself(tensor_view(data.data(), dtype::f32, {2, 8}, {-8, 1})));
}

TEST_CASE("describe names the version, backends and CPU target", "[backend]") {
  const std::string text = cinch::describe();
  CHECK(text.find("cinch " CINCH_VERSION_STRING) != std::string::npos);
  CHECK(text.find("cpu target: " + cinch::cpu_target()) != std::string::npos);
  const auto backends = cinch::compiled_backends();
  CHECK(backends.front() == cinch::backend_kind::ref);
  CHECK(backends.size() >= 2);
  CHECK_FALSE(cinch::cpu_targets().empty());

  cinch::force_backend(cinch::backend_kind::ref);
  CHECK(cinch::active_backend() == cinch::backend_kind::ref);
  CHECK(cinch::describe().find("host backend: ref") != std::string::npos);
  cinch::force_backend(std::nullopt);
  CHECK(cinch::active_backend(cinch::cuda_device()) == cinch::backend_kind::cuda);
}

TEST_CASE("thread count can be set for the host kernels", "[backend]") {
  const int before = cinch::threads();
  cinch::set_threads(1);
  CHECK(cinch::threads() == 1);
  cinch::set_threads(before);
  CHECK(cinch::threads() == before);
}
