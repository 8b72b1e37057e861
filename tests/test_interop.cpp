// Zero-copy interop: Eigen maps, xtensor adaptors and DLPack exchange share
// memory with tensor views, and reject what they cannot represent.
#include <catch2/catch.hpp>

#include <cinch/interop/dlpack.hpp>
#include <cinch/interop/eigen.hpp>
#include <cinch/interop/xtensor.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

using cinch::dtype;
using cinch::errc;
using cinch::tensor;
using cinch::tensor_view;

namespace {

// Runs `call`, which must throw cinch::error, and returns the error.
template <class Call>
cinch::error error_of(Call&& call) {
  try {
    call();
  } catch (const cinch::error& e) {
    return e;
  }
  FAIL("expected a cinch::error");
  return cinch::error(errc::invalid_argument, "unreachable");
}

bool contains(const cinch::error& e, const std::string& fragment) {
  return std::string(e.what()).find(fragment) != std::string::npos;
}

// `expr` throws cinch::error with `expected_code` and a message that names
// `function_name` and contains `fragment`.
#define REQUIRE_CINCH_ERROR(expr, expected_code, function_name, fragment) \
  do {                                                                    \
    REQUIRE_THROWS_AS(expr, cinch::error);                                \
    const cinch::error e_ = error_of([&] { (void)(expr); });              \
    INFO("message: " << e_.what());                                       \
    CHECK(e_.code() == (expected_code));                                  \
    CHECK(contains(e_, function_name));                                   \
    CHECK(contains(e_, fragment));                                        \
  } while (false)

std::vector<float> iota_floats(std::size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

// Compile-time properties: rvalue matrices would dangle; unmapped scalars have no dtype.
template <class M>
concept viewable = requires(M&& m) { cinch::view_of(std::forward<M>(m)); };
template <class T>
concept eigen_mappable = requires(const tensor_view& v) { cinch::as_eigen<T>(v); };
template <class T>
concept xtensor_adaptable = requires(const tensor_view& v) { cinch::as_xtensor<T>(v); };

static_assert(viewable<Eigen::MatrixXf&>);
static_assert(viewable<const Eigen::MatrixXf&>);
static_assert(!viewable<Eigen::MatrixXf>);
static_assert(eigen_mappable<const float> && eigen_mappable<Eigen::half> && eigen_mappable<Eigen::bfloat16>);
static_assert(!eigen_mappable<double> && !eigen_mappable<cinch::f16_bits>);
static_assert(xtensor_adaptable<float> && xtensor_adaptable<const cinch::bf16_bits>);
static_assert(!xtensor_adaptable<double>);

// Counts calls of a DLManagedTensor deleter, forwarding to the original one.
int deleter_calls = 0;
void (*original_deleter)(DLManagedTensor*) = nullptr;
void counting_deleter(DLManagedTensor* self) {
  ++deleter_calls;
  if (original_deleter) original_deleter(self);
}

// A DLManagedTensor over caller storage whose deleter only counts.
struct foreign_tensor {
  std::vector<std::int64_t> shape;
  DLManagedTensor managed{};

  foreign_tensor(void* data, DLDataType type, std::vector<std::int64_t> extents) : shape(std::move(extents)) {
    managed.dl_tensor.data = data;
    managed.dl_tensor.device = {kDLCPU, 0};
    managed.dl_tensor.ndim = static_cast<int>(shape.size());
    managed.dl_tensor.dtype = type;
    managed.dl_tensor.shape = shape.data();
    managed.dl_tensor.strides = nullptr;
    managed.dl_tensor.byte_offset = 0;
    managed.deleter = &counting_deleter;
  }
};

constexpr DLDataType dl_f32{kDLFloat, 32, 1};

}  // namespace

// ------------------------------------------------------------------ Eigen

TEST_CASE("as_eigen writes through to the view's memory", "[interop][eigen]") {
  std::vector<float> data = iota_floats(12);
  const tensor_view v(data.data(), dtype::f32, {3, 4});
  auto m = cinch::as_eigen<float>(v);
  REQUIRE(m.rows() == 3);
  REQUIRE(m.cols() == 4);
  CHECK(m.data() == data.data());
  CHECK(m(2, 1) == 9.0f);
  m(1, 2) = 42.0f;
  m.row(2).setConstant(-1.0f);
  CHECK(data[1 * 4 + 2] == 42.0f);
  const auto typed = v.as<const float, 2>();
  CHECK(typed(1, 2) == 42.0f);
  for (int j = 0; j < 4; ++j) CHECK(typed(2, j) == -1.0f);
  CHECK(typed(0, 3) == 3.0f);  // untouched
}

TEST_CASE("view_of follows the Eigen storage order", "[interop][eigen]") {
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor> col(3, 5);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j) col(i, j) = float(10 * i + j);
  const tensor_view cv = cinch::view_of(col);
  CHECK(cv.type() == dtype::f32);
  CHECK(cv.data() == col.data());
  CHECK_FALSE(cv.read_only());
  REQUIRE(cv.rank() == 2);
  CHECK(cv.size(0) == 3);
  CHECK(cv.size(1) == 5);
  CHECK(cv.stride(0) == 1);
  CHECK(cv.stride(1) == 3);
  const auto typed = cv.as<const float, 2>();
  CHECK(typed(2, 4) == 24.0f);
  CHECK(typed(1, 3) == 13.0f);

  Eigen::Matrix<std::int8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row(2, 7);
  row.setZero();
  const tensor_view rv = cinch::view_of(row);
  CHECK(rv.type() == dtype::i8);
  CHECK(rv.stride(0) == 7);
  CHECK(rv.stride(1) == 1);
  CHECK(rv.is_contiguous());
  rv.as<std::int8_t, 2>()(1, 5) = 7;
  CHECK(row(1, 5) == 7);

  // Both directions compose: view of a column-major matrix -> row-major map, same elements.
  const auto back = cinch::as_eigen<float>(cv);
  CHECK(back == col);
  CHECK(back.data() == col.data());

  const Eigen::VectorXi vec = Eigen::VectorXi::LinSpaced(4, 0, 3);
  const tensor_view vv = cinch::view_of(vec);
  CHECK(vv.read_only());
  CHECK(vv.type() == dtype::i32);
  CHECK(vv.size(0) == 4);
  CHECK(vv.size(1) == 1);
  CHECK(vv.stride(0) == 1);
  CHECK(vv.as<const std::int32_t, 2>()(3, 0) == 3);
}

TEST_CASE("as_eigen maps transposed, sliced and reversed views", "[interop][eigen]") {
  std::vector<float> data = iota_floats(24);
  const tensor_view v(data.data(), dtype::f32, {4, 6});

  const auto t = cinch::as_eigen<float>(v.permute({1, 0}));
  REQUIRE(t.rows() == 6);
  REQUIRE(t.cols() == 4);
  CHECK(t.outerStride() == 1);
  CHECK(t.innerStride() == 6);
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 4; ++j) CHECK(t(i, j) == data[std::size_t(j * 6 + i)]);
  CHECK(t == cinch::as_eigen<float>(v).transpose());

  const auto s = cinch::as_eigen<float>(v.slice(0, 1, 3).slice(1, 2, 5));
  REQUIRE(s.rows() == 2);
  REQUIRE(s.cols() == 3);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) CHECK(s(i, j) == data[std::size_t((i + 1) * 6 + j + 2)]);

  // Rows in reverse order: a negative outer stride from the last row.
  const tensor_view reversed(data.data() + 18, dtype::f32, {4, 6}, {-6, 1});
  const auto r = cinch::as_eigen<const float>(reversed);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 6; ++j) CHECK(r(i, j) == data[std::size_t((3 - i) * 6 + j)]);
}

TEST_CASE("as_eigen maps f16 and bf16 storage to Eigen::half and Eigen::bfloat16", "[interop][eigen]") {
  std::vector<std::uint16_t> halves = {0x3E00, 0xC000};  // 1.5, -2
  const tensor_view h(halves.data(), dtype::f16, {1, 2});
  auto hm = cinch::as_eigen<Eigen::half>(h);
  CHECK(float(hm(0, 0)) == 1.5f);
  CHECK(float(hm(0, 1)) == -2.0f);
  hm(0, 1) = Eigen::half(2.0f);
  CHECK(halves[1] == 0x4000);

  std::vector<std::uint16_t> brains = {0x3FC0, 0x4040};  // 1.5, 3
  const tensor_view b(brains.data(), dtype::bf16, {2, 1});
  const auto bm = cinch::as_eigen<const Eigen::bfloat16>(b);
  CHECK(float(bm(0, 0)) == 1.5f);
  CHECK(float(bm(1, 0)) == 3.0f);
}

TEST_CASE("as_eigen rejects what it cannot map", "[interop][eigen][errors]") {
  std::vector<float> data = iota_floats(24);
  const tensor_view v3(data.data(), dtype::f32, {2, 3, 4});
  REQUIRE_CINCH_ERROR(cinch::as_eigen<float>(v3), errc::shape_mismatch, "as_eigen",
                      "view must be rank 2, got rank 3 [2, 3, 4]");

  const tensor_view as_ints(data.data(), dtype::i32, {4, 6});
  REQUIRE_CINCH_ERROR(cinch::as_eigen<float>(as_ints), errc::invalid_argument, "as_eigen", "dtype f32");
  REQUIRE_CINCH_ERROR(cinch::as_eigen<std::uint8_t>(as_ints), errc::invalid_argument, "as_eigen", "got i32");

  const tensor_view on_gpu(data.data(), dtype::f32, {4, 6}, cinch::cuda_device(1));
  REQUIRE_CINCH_ERROR(cinch::as_eigen<float>(on_gpu), errc::unsupported, "as_eigen", "cuda:1");

  const tensor_view frozen = tensor_view(data.data(), dtype::f32, {4, 6}).as_read_only();
  REQUIRE_CINCH_ERROR(cinch::as_eigen<float>(frozen), errc::invalid_argument, "as_eigen", "read-only");
  const auto ok = cinch::as_eigen<const float>(frozen);
  CHECK(ok(3, 5) == 23.0f);
}

// ------------------------------------------------------------------ xtensor

TEST_CASE("as_xtensor adapts strided slices in place", "[interop][xtensor]") {
  std::vector<float> data = iota_floats(24);
  const tensor_view v(data.data(), dtype::f32, {4, 6});

  // Every other row, every other column from column 1: strides {12, 2}.
  const tensor_view strided(data.data() + 1, dtype::f32, {2, 3}, {12, 2});
  auto x = cinch::as_xtensor<float>(strided);
  REQUIRE(x.dimension() == 2);
  CHECK(x.shape()[0] == 2);
  CHECK(x.shape()[1] == 3);
  CHECK(x.data() == data.data() + 1);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j) CHECK(x(i, j) == data[1 + 12 * i + 2 * j]);
  x(1, 2) = -5.0f;
  CHECK(data[1 + 12 + 4] == -5.0f);
  CHECK(data[1 + 12 + 5] == 18.0f);  // the column in between is untouched
  // Iteration and whole-array assignment visit exactly the six strided elements.
  CHECK(std::accumulate(x.begin(), x.end(), 0.0f) == 1.0f + 3 + 5 + 13 + 15 - 5);
  x += 1000.0f;
  for (std::size_t k = 0; k < data.size(); ++k) {
    const bool in_x = k >= 1 && (k - 1) % 12 <= 4 && (k - 1) % 2 == 0 && k <= 17;
    CHECK((data[k] >= 900.0f) == in_x);
  }
  CHECK(x(1, 2) == 995.0f);

  // A contiguous slice of a slice, written through xtensor, read through the view.
  auto s = cinch::as_xtensor<float>(v.slice(0, 1, 3).slice(1, 2, 5));
  REQUIRE(s.shape()[0] == 2);
  REQUIRE(s.shape()[1] == 3);
  s(0, 0) = 100.0f;
  CHECK(v.as<const float, 2>()(1, 2) == 100.0f);
  CHECK(s(1, 2) == data[2 * 6 + 4]);
}

TEST_CASE("as_xtensor adapts any rank, permuted and read-only", "[interop][xtensor]") {
  std::vector<float> data = iota_floats(24);
  const tensor_view v(data.data(), dtype::f32, {2, 3, 4});
  const auto p = cinch::as_xtensor<const float>(v.permute({2, 0, 1}).as_read_only());
  REQUIRE(p.dimension() == 3);
  CHECK(p.shape()[0] == 4);
  for (std::size_t k = 0; k < 4; ++k)
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 3; ++j) CHECK(p(k, i, j) == data[i * 12 + j * 4 + k]);

  std::vector<std::uint16_t> bits = {0x3C00, 0x4000};
  const auto b = cinch::as_xtensor<cinch::bf16_bits>(tensor_view(bits.data(), dtype::bf16, {2}));
  CHECK(b(1).bits == 0x4000);

  float scalar = 7.0f;
  const auto z = cinch::as_xtensor<float>(tensor_view(&scalar, dtype::f32, {}));
  CHECK(z.dimension() == 0);
  CHECK(z() == 7.0f);
}

TEST_CASE("as_xtensor rejects what it cannot adapt", "[interop][xtensor][errors]") {
  std::vector<float> data = iota_floats(24);
  const tensor_view v(data.data(), dtype::f32, {4, 6});
  REQUIRE_CINCH_ERROR(cinch::as_xtensor<std::int32_t>(v), errc::invalid_argument, "as_xtensor", "dtype i32");
  REQUIRE_CINCH_ERROR(cinch::as_xtensor<float>(tensor_view(data.data(), dtype::f32, {4, 6}, cinch::cuda_device())),
                      errc::unsupported, "as_xtensor", "cuda:0");
  REQUIRE_CINCH_ERROR(cinch::as_xtensor<float>(v.as_read_only()), errc::invalid_argument, "as_xtensor", "read-only");
  const tensor_view reversed(data.data() + 18, dtype::f32, {4, 6}, {-6, 1});
  REQUIRE_CINCH_ERROR(cinch::as_xtensor<float>(reversed), errc::unsupported, "as_xtensor", "[-6, 1]");
}

// ------------------------------------------------------------------ DLPack

TEST_CASE("to_dlpack then from_dlpack shares memory and releases it once", "[interop][dlpack]") {
  auto buffer = std::make_shared<std::vector<float>>(iota_floats(12));
  const std::weak_ptr<std::vector<float>> alive = buffer;
  float* base = buffer->data();
  tensor t = tensor::adopt(tensor_view(base, dtype::f32, {3, 4}).permute({1, 0}), std::move(buffer));

  DLManagedTensor* m = cinch::to_dlpack(t);
  t = tensor();
  REQUIRE(m != nullptr);
  CHECK_FALSE(alive.expired());  // the export keeps the memory alive
  const DLTensor& dl = m->dl_tensor;
  CHECK(dl.data == base);
  CHECK(dl.byte_offset == 0);
  CHECK(dl.device.device_type == kDLCPU);
  CHECK(dl.dtype.code == kDLFloat);
  CHECK(dl.dtype.bits == 32);
  CHECK(dl.dtype.lanes == 1);
  REQUIRE(dl.ndim == 2);
  REQUIRE(dl.strides != nullptr);
  CHECK(dl.shape[0] == 4);
  CHECK(dl.shape[1] == 3);
  CHECK(dl.strides[0] == 1);
  CHECK(dl.strides[1] == 4);

  deleter_calls = 0;
  original_deleter = m->deleter;
  m->deleter = &counting_deleter;
  {
    tensor back = cinch::from_dlpack(m);
    CHECK(back.data() == base);
    CHECK(back.type() == dtype::f32);
    CHECK(back.where() == cinch::cpu_device);
    CHECK(back.view().shape()[0] == 4);
    CHECK(back.view().shape()[1] == 3);
    CHECK(back.view().strides()[0] == 1);
    CHECK(back.view().strides()[1] == 4);
    CHECK(back.view().as<const float, 2>()(3, 2) == 2 * 4 + 3.0f);
    tensor copy = back;
    back = tensor();
    CHECK(deleter_calls == 0);  // a copy still holds it
    CHECK_FALSE(alive.expired());
  }
  CHECK(deleter_calls == 1);
  CHECK(alive.expired());
  original_deleter = nullptr;
}

TEST_CASE("to_dlpack maps every plain dtype and keeps its device", "[interop][dlpack]") {
  struct expected {
    dtype type;
    std::uint8_t code, bits;
  };
  std::vector<std::uint32_t> storage(8);
  for (const expected e : {expected{dtype::f32, kDLFloat, 32}, expected{dtype::f16, kDLFloat, 16},
                           expected{dtype::bf16, kDLBfloat, 16}, expected{dtype::i32, kDLInt, 32},
                           expected{dtype::i8, kDLInt, 8}, expected{dtype::u8, kDLUInt, 8}}) {
    INFO("dtype " << cinch::to_string(e.type));
    DLManagedTensor* m = cinch::to_dlpack(tensor::adopt(tensor_view(storage.data(), e.type, {2, 3}), nullptr));
    CHECK(m->dl_tensor.dtype.code == e.code);
    CHECK(m->dl_tensor.dtype.bits == e.bits);
    const tensor back = cinch::from_dlpack(m);
    CHECK(back.type() == e.type);
    CHECK(back.data() == storage.data());
  }

  // Device memory is only described, never touched: a host pointer stands in for it.
  DLManagedTensor* m = cinch::to_dlpack(
      tensor::adopt(tensor_view(storage.data(), dtype::f32, {8}, cinch::cuda_device(1)), nullptr));
  CHECK(m->dl_tensor.device.device_type == kDLCUDA);
  CHECK(m->dl_tensor.device.device_id == 1);
  const tensor back = cinch::from_dlpack(m);
  CHECK(back.where() == cinch::cuda_device(1));
}

TEST_CASE("to_dlpack exports f8, packed and block dtypes as raw bytes", "[interop][dlpack]") {
  std::vector<std::uint8_t> bytes(256);
  // q4_0: 32 elements in 18 bytes, so a [2, 64] tensor is [2, 36] bytes.
  DLManagedTensor* q = cinch::to_dlpack(tensor::adopt(tensor_view(bytes.data(), dtype::q4_0, {2, 64}), nullptr));
  CHECK(q->dl_tensor.dtype.code == kDLUInt);
  CHECK(q->dl_tensor.dtype.bits == 8);
  CHECK(q->dl_tensor.shape[0] == 2);
  CHECK(q->dl_tensor.shape[1] == 36);
  CHECK(q->dl_tensor.strides[0] == 36);
  CHECK(q->dl_tensor.strides[1] == 1);
  const tensor raw = cinch::from_dlpack(q);
  CHECK(raw.type() == dtype::u8);
  CHECK(raw.nbytes() == 72);

  // u4x2 with a padded row: the stride in elements halves into bytes.
  DLManagedTensor* u = cinch::to_dlpack(
      tensor::adopt(tensor_view(bytes.data(), dtype::u4x2, {3, 10}, {16, 1}), nullptr));
  CHECK(u->dl_tensor.shape[1] == 5);
  CHECK(u->dl_tensor.strides[0] == 8);
  u->deleter(u);

  // f8: one byte per element, shape and strides unchanged.
  DLManagedTensor* f = cinch::to_dlpack(
      tensor::adopt(tensor_view(bytes.data(), dtype::f8_e4m3, {4, 3}).permute({1, 0}), nullptr));
  CHECK(f->dl_tensor.dtype.code == kDLUInt);
  CHECK(f->dl_tensor.shape[0] == 3);
  CHECK(f->dl_tensor.strides[0] == 1);
  CHECK(f->dl_tensor.strides[1] == 3);
  f->deleter(f);

  REQUIRE_CINCH_ERROR(cinch::to_dlpack(tensor()), errc::invalid_argument, "to_dlpack", "empty tensor");
  const tensor frozen = tensor::adopt(tensor_view(bytes.data(), dtype::u8, {4}).as_read_only(), nullptr);
  REQUIRE_CINCH_ERROR(cinch::to_dlpack(frozen), errc::unsupported, "to_dlpack", "read-only");
}

TEST_CASE("from_dlpack reads NULL strides as row-major and honours byte_offset", "[interop][dlpack]") {
  std::vector<float> data = iota_floats(16);
  deleter_calls = 0;
  {
    foreign_tensor f(data.data(), dl_f32, {2, 3});
    {
      const tensor t = cinch::from_dlpack(&f.managed);
      REQUIRE(t.rank() == 2);
      CHECK(t.view().strides()[0] == 3);
      CHECK(t.view().strides()[1] == 1);
      CHECK(t.view().is_contiguous());
      CHECK(t.data() == data.data());
      CHECK(t.view().as<const float, 2>()(1, 2) == 5.0f);
    }
    CHECK(deleter_calls == 1);
  }
  {
    foreign_tensor f(data.data(), dl_f32, {2, 2});
    const std::int64_t strides[] = {1, 4};
    f.managed.dl_tensor.strides = const_cast<std::int64_t*>(strides);
    f.managed.dl_tensor.byte_offset = 3 * sizeof(float);
    {
      const tensor t = cinch::from_dlpack(&f.managed);
      CHECK(t.data() == data.data() + 3);
      CHECK(t.view().strides()[1] == 4);
      CHECK(t.view().as<const float, 2>()(1, 1) == 3.0f + 1 + 4);
    }
    CHECK(deleter_calls == 2);
  }
  {
    // A NULL deleter is allowed: nothing to call.
    foreign_tensor f(data.data(), dl_f32, {16});
    f.managed.deleter = nullptr;
    const tensor t = cinch::from_dlpack(&f.managed);
    CHECK(t.numel() == 16);
  }
  CHECK(deleter_calls == 2);
}

TEST_CASE("from_dlpack rejects bad tensors and leaves them to the caller", "[interop][dlpack][errors]") {
  std::vector<float> data = iota_floats(16);
  deleter_calls = 0;

  foreign_tensor lanes(data.data(), DLDataType{kDLFloat, 32, 4}, {2});
  REQUIRE_CINCH_ERROR(cinch::from_dlpack(&lanes.managed), errc::unsupported, "from_dlpack", "lanes 4");

  foreign_tensor complex(data.data(), DLDataType{kDLComplex, 64, 1}, {2});
  REQUIRE_CINCH_ERROR(cinch::from_dlpack(&complex.managed), errc::unsupported, "from_dlpack", "code 5 bits 64");
  foreign_tensor f64(data.data(), DLDataType{kDLFloat, 64, 1}, {2});
  REQUIRE_CINCH_ERROR(cinch::from_dlpack(&f64.managed), errc::unsupported, "from_dlpack", "code 2 bits 64 lanes 1");

  foreign_tensor deep(data.data(), dl_f32, {1, 1, 1, 1, 1, 1, 2});
  REQUIRE_CINCH_ERROR(cinch::from_dlpack(&deep.managed), errc::unsupported, "from_dlpack", "ndim must be at most 6, got 7");

  foreign_tensor opencl(data.data(), dl_f32, {2});
  opencl.managed.dl_tensor.device = {kDLOpenCL, 0};
  REQUIRE_CINCH_ERROR(cinch::from_dlpack(&opencl.managed), errc::unsupported, "from_dlpack", "device type 4");

  foreign_tensor negative(data.data(), dl_f32, {2, -3});
  REQUIRE_CINCH_ERROR(cinch::from_dlpack(&negative.managed), errc::invalid_argument, "from_dlpack", "[2, -3]");

  foreign_tensor no_shape(data.data(), dl_f32, {2});
  no_shape.managed.dl_tensor.shape = nullptr;
  REQUIRE_CINCH_ERROR(cinch::from_dlpack(&no_shape.managed), errc::invalid_argument, "from_dlpack", "shape");

  REQUIRE_CINCH_ERROR(cinch::from_dlpack(nullptr), errc::invalid_argument, "from_dlpack", "null");

  CHECK(deleter_calls == 0);  // no failure released anything

  // The caller still owns a rejected tensor: fixed, it imports and is released once.
  lanes.managed.dl_tensor.dtype.lanes = 1;
  { const tensor t = cinch::from_dlpack(&lanes.managed); CHECK(t.numel() == 2); }
  CHECK(deleter_calls == 1);
}
