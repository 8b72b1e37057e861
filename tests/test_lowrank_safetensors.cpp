// safetensors: round trips of every dtype, zero-copy loads, hand-written files,
// misaligned data, strided writes, every corrupt-header rule, writer misuse, and
// lowrank::compress_file end to end with its progress callback.
#include <catch2/catch.hpp>

#include <cinch/core/convert.hpp>
#include <cinch/io/npy.hpp>
#include <cinch/io/safetensors.hpp>
#include <cinch/lowrank/compress_file.hpp>
#include <cinch/lowrank/methods.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include "error_matchers.hpp"
#include "lowrank_test_data.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
using namespace cinch::io;
using namespace lowrank_test;

namespace {

// A fresh path in the temporary directory, removed with the object.
class temp_file {
 public:
  explicit temp_file(std::string_view tag)
      : path_((std::filesystem::temp_directory_path() /
               ("cinch_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++) + "_" + std::string(tag) +
                ".safetensors"))
                  .string()) {}
  ~temp_file() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::string path_;
};

// A file from a header text and data bytes, with the header length as given.
std::vector<std::byte> file_bytes(const std::string& header, std::size_t data_bytes, std::uint64_t length) {
  std::vector<std::byte> out(8 + header.size() + data_bytes, std::byte{0});
  std::memcpy(out.data(), &length, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}
std::vector<std::byte> file_bytes(const std::string& header, std::size_t data_bytes) {
  return file_bytes(header, data_bytes, header.size());
}

void require_corrupt(const std::string& header, std::size_t data_bytes, std::initializer_list<const char*> fragments) {
  INFO("header " << header);
  const std::vector<std::byte> bytes = file_bytes(header, data_bytes);
  require_error([&] { (void)safetensors_file::parse(bytes, "bad.safetensors"); }, errc::corrupt_data, fragments);
}

}  // namespace

TEST_CASE("safetensors round-trips every dtype and loads without copying", "[lowrank][safetensors]") {
  std::vector<float> f32{1.5f, -2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<std::uint16_t> f16{0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000};
  std::vector<std::uint16_t> bf16{0x3F80, 0x4000, 0xBF80, 0x7F80, 0x0000, 0x1234, 0x4321, 0xFFFF};
  std::vector<std::int8_t> i8{-128, -1, 0, 1, 127, 5, 6};
  std::vector<std::int32_t> i32{-7};
  std::vector<std::uint8_t> e4m3{0x38, 0x80, 0x7E};
  std::vector<std::uint8_t> none;
  const std::vector<std::pair<std::string, tensor_view>> tensors{
      {"w.f32", tensor_view(f32.data(), dtype::f32, {3, 4})},
      {"w.f16", tensor_view(f16.data(), dtype::f16, {5})},
      {"w.bf16", tensor_view(bf16.data(), dtype::bf16, {2, 2, 2})},
      {"w.i8", tensor_view(i8.data(), dtype::i8, {7})},
      {"w.i32", tensor_view(i32.data(), dtype::i32, {})},
      {"w.e4m3", tensor_view(e4m3.data(), dtype::f8_e4m3, {3, 1})},
      {"w.empty", tensor_view(none.data(), dtype::u8, {0, 4})},
  };
  const temp_file file("roundtrip");
  save_safetensors(file.path(), tensors, {{"format", "pt"}, {"note", "\"quoted\" \\ text"}});
  const safetensors_file f = safetensors_file::open(file.path());
  REQUIRE(f.entries().size() == tensors.size());
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("note") == "\"quoted\" \\ text");
  for (const auto& [name, view] : tensors) {
    INFO(name);
    REQUIRE(f.find(name) != nullptr);
    const safetensors_entry& e = *f.find(name);
    CHECK(e.type == view.type());
    CHECK(e.dtype_name == safetensors_dtype(view.type()));
    const cinch::tensor t = f.load(name);
    CHECK(t.type() == view.type());
    CHECK(std::equal(t.shape().begin(), t.shape().end(), view.shape().begin(), view.shape().end()));
    CHECK((view.nbytes() == 0 || std::memcmp(t.data(), view.data(), std::size_t(view.nbytes())) == 0));
    CHECK(t.view().read_only());  // in place: save_safetensors aligned every tensor
  }
  // File order: widest dtype first, stable otherwise.
  std::vector<std::string> order;
  for (const safetensors_entry& e : f.entries()) order.push_back(e.name);
  CHECK(order == std::vector<std::string>{"w.f32", "w.i32", "w.f16", "w.bf16", "w.i8", "w.e4m3", "w.empty"});
  // Zero copy: the data lies in the mapping (the same address every time), and the
  // tensor keeps the mapping alive after the file object is gone.
  cinch::tensor kept;
  {
    const safetensors_file g = safetensors_file::open(file.path());
    kept = g.load("w.f32");
    CHECK(g.load("w.f32").data() == kept.data());
    CHECK(g.bytes(*g.find("w.f32")).data() == static_cast<const std::byte*>(kept.data()));
  }
  CHECK(kept.data<const float>()[0] == 1.5f);
  CHECK(kept.owner() != nullptr);
  CHECK(f.find("missing") == nullptr);
}

TEST_CASE("safetensors reads a hand-written file, copies misaligned data and lists foreign dtypes",
          "[lowrank][safetensors]") {
  // A header of 109 bytes (JSON allows the trailing space): the data starts at byte
  // 117, not 4-byte aligned.
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}} )";
  REQUIRE(header.size() == 109);
  std::vector<std::byte> bytes = file_bytes(header, 16);
  const float a[2] = {0.25f, -3.0f};
  const double d = 2.5;
  std::memcpy(bytes.data() + 8 + header.size(), a, 8);
  std::memcpy(bytes.data() + 8 + header.size() + 8, &d, 8);
  const safetensors_file f = safetensors_file::parse(bytes, "hand.safetensors");
  REQUIRE(f.entries().size() == 2);
  CHECK(f.entries()[1].dtype_name == "F64");
  CHECK_FALSE(f.entries()[1].type.has_value());
  const cinch::tensor t = f.load("a");
  CHECK(t.data<const float>()[0] == 0.25f);
  CHECK(t.data<const float>()[1] == -3.0f);
  CHECK(t.data() != static_cast<const void*>(bytes.data() + 8 + header.size()));  // copied: misaligned
  CHECK(f.bytes(f.entries()[1]).size() == 8);
  require_error([&] { (void)f.load("d"); }, errc::unsupported,
                {"safetensors_file::load", "tensor 'd' has dtype F64, which cinch has no type for"});
  require_error([&] { (void)f.load("zz"); }, errc::invalid_argument, {"no tensor named 'zz' among 2"});
}

TEST_CASE("safetensors writes strided views densely", "[lowrank][safetensors]") {
  const matrix m = gaussian(3, 5, 1);
  const std::vector<float> v = to_f32(m);
  const tensor_view transposed = view_of(v, 3, 5).permute({1, 0});
  const temp_file file("strided");
  const std::vector<std::pair<std::string, tensor_view>> tensors{{"t", transposed}};
  save_safetensors(file.path(), tensors);
  const cinch::tensor t = safetensors_file::open(file.path()).load("t");
  REQUIRE(t.size(0) == 5);
  for (std::int64_t i = 0; i < 5; ++i)
    for (std::int64_t j = 0; j < 3; ++j) CHECK(t.data<const float>()[i * 3 + j] == float(m(j, i)));
}

TEST_CASE("safetensors rejects truncated and lying headers", "[lowrank][safetensors][errors]") {
  const std::vector<std::byte> tiny(5);
  require_error([&] { (void)safetensors_file::parse(tiny, "t.safetensors"); }, errc::corrupt_data,
                {"safetensors_file", "t.safetensors", "truncated: 5 bytes"});
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::vector<std::byte> long_header = file_bytes(ok, 8, ok.size() + 9);
  require_error([&] { (void)safetensors_file::parse(long_header, "t"); }, errc::corrupt_data,
                {"header length 63 runs past the end of the file (70 bytes)"});
  const std::vector<std::byte> huge = file_bytes(ok, 8, std::uint64_t(1) << 40);
  require_error([&] { (void)safetensors_file::parse(huge, "t"); }, errc::corrupt_data, {"above the 100 MB limit"});
  require_corrupt("{\"a\":", 0, {"header is not valid JSON"});
  require_corrupt("[1, 2]", 0, {"header must be a JSON object, got array"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                  4, {"header names 'a' twice"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[2]}})", 8, {"tensor 'a': expected an object with exactly dtype, shape and data_offsets"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8, {"exactly dtype, shape"});
  require_corrupt(R"({"a":{"dtype":"F12","shape":[2],"data_offsets":[0,8]}})", 8, {"tensor 'a': unknown dtype 'F12'"});
  require_corrupt(R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", 8, {"dtype must be a string"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, {"shape must hold non-negative integers"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8, {"shape must hold non-negative integers"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8, {"shape must be an array"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}})", 12,
                  {"data_offsets [0, 12] must span 8 bytes for shape [2] of F32"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, {"must span 8 bytes"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8, {"data_offsets must be [begin, end]"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", 8, {"two unsigned integers"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}})", 8, {"non-negative integers"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[1152921504606846976,8],"data_offsets":[0,8]}})", 8, {"overflows"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8,
                  {"tensors must tile the data buffer: 'a' begins at byte 4, expected 0"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  8, {"'b' begins at byte 4, expected 8"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 12,
                  {"the data buffer holds 12 bytes but the tensors cover 8"});
  require_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4, {"holds 4 bytes but the tensors cover 8"});
  require_corrupt(R"({"__metadata__":{"k":1}})", 0, {"__metadata__ value of 'k' must be a string"});
  require_corrupt(R"({"__metadata__":[]})", 0, {"__metadata__ must be an object"});
  require_error([] { (void)safetensors_file::open("/nonexistent/dir/x.safetensors"); }, errc::invalid_argument,
                {"safetensors_file::open", "/nonexistent/dir/x.safetensors", "cannot open"});
  // A writer that never finished leaves a file whose data is short: rejected.
  const temp_file file("unfinished");
  { safetensors_writer w(file.path(), {{"a", "F32", {4}}}); }
  require_error([&] { (void)safetensors_file::open(file.path()); }, errc::corrupt_data,
                {"holds 0 bytes but the tensors cover 16"});
}

TEST_CASE("safetensors_writer rejects misuse", "[lowrank][safetensors][errors]") {
  const temp_file file("misuse");
  require_error([&] { safetensors_writer w(file.path(), {{"a", "F32", {1}}, {"a", "F32", {1}}}); },
                errc::invalid_argument, {"safetensors_writer", "tensor names must be unique", "got 'a'"});
  require_error([&] { safetensors_writer w(file.path(), {{"__metadata__", "F32", {1}}}); }, errc::invalid_argument,
                {"not __metadata__"});
  require_error([&] { safetensors_writer w(file.path(), {{"a", "F48", {1}}}); }, errc::invalid_argument,
                {"tensor 'a': unknown dtype 'F48'"});
  require_error([&] { safetensors_writer w(file.path(), {{"a", "F32", {-1}}}); }, errc::invalid_argument,
                {"extents must be >= 0"});
  require_error([] { safetensors_writer w("/nonexistent/dir/x.safetensors", {}); }, errc::invalid_argument,
                {"cannot create"});
  const std::vector<float> v(6, 1.0f);
  safetensors_writer w(file.path(), {{"a", "F32", {2, 3}}, {"b", "F16", {2}}});
  require_error([&] { w.write(view_of(v, 3, 2)); }, errc::shape_mismatch,
                {"tensor 'a' was declared with shape [2, 3], got [3, 2]"});
  std::vector<std::int8_t> i8(6);
  require_error([&] { w.write(tensor_view(i8.data(), dtype::i8, {2, 3})); }, errc::invalid_argument,
                {"tensor 'a' was declared F32, got i8"});
  w.write(view_of(v, 2, 3));
  require_error([&] { w.finish(); }, errc::invalid_argument, {"only 1 of 2 declared tensors were written"});
  require_error([&] { w.write_bytes(std::vector<std::byte>(3)); }, errc::shape_mismatch,
                {"tensor 'b' needs 4 bytes, got 3"});
  w.write_bytes(std::vector<std::byte>(4));
  require_error([&] { w.write_bytes(std::vector<std::byte>(4)); }, errc::invalid_argument,
                {"all 2 declared tensors were written already"});
  w.finish();
  CHECK(safetensors_file::open(file.path()).entries().size() == 2);
  require_error([] { (void)safetensors_dtype(dtype::q4_0); }, errc::unsupported, {"dtype q4_0 has no safetensors name"});
}

TEST_CASE("lowrank::compress_file factorizes the selected matrices one tensor at a time", "[lowrank][safetensors]") {
  using namespace cinch::lowrank;
  const matrix q = gaussian(48, 40, 3), k = gaussian(24, 40, 4), embed = gaussian(10, 8, 5);
  const std::vector<float> qf = to_f32(q), kf = to_f32(k), ef = to_f32(embed), norm(40, 1.0f), tiny{1, 2, 3, 4};
  cinch::tensor kb = cinch::tensor::empty({24, 40}, dtype::bf16);
  cinch::convert(view_of(kf, 24, 40), kb);
  const std::vector<std::int32_t> ids{1, 2, 3};
  const temp_file in("model"), out("compressed");
  const std::vector<std::pair<std::string, tensor_view>> tensors{
      {"model.embed_tokens.weight", view_of(ef, 10, 8)},
      {"model.layers.0.q.weight", view_of(qf, 48, 40)},
      {"model.layers.0.k.weight", kb},
      {"model.norm.weight", tensor_view(norm.data(), dtype::f32, {40})},
      {"tiny.weight", view_of(tiny, 2, 2)},
      {"ids", tensor_view(ids.data(), dtype::i32, {3})},
  };
  save_safetensors(in.path(), tensors, {{"format", "pt"}});
  std::vector<std::string> seen;
  std::vector<std::int64_t> seen_ranks;
  const file_report report = compress_file(in.path(), out.path(), {.keep = keep_ratio{0.5}}, [&](const file_progress& p) {
    CHECK(p.count == 6);
    CHECK(p.index == seen.size());
    seen.emplace_back(p.name);
    seen_ranks.push_back(p.rank);
  });
  // File order (save_safetensors put the 4-byte dtypes before bf16).
  CHECK(seen == std::vector<std::string>{"model.embed_tokens.weight", "model.layers.0.q.weight", "model.norm.weight",
                                         "tiny.weight", "ids", "model.layers.0.k.weight"});
  // q: floor(0.5 * 48 * 40 / 88) = 10; k: floor(0.5 * 24 * 40 / 64) = 7; tiny: 0.5 * 4 < 4, stays dense.
  CHECK(seen_ranks == std::vector<std::int64_t>{0, 10, 0, 0, 0, 7});
  CHECK(report.factorized == 2);
  CHECK(report.copied == 4);
  CHECK(report.dense_parameters == 48 * 40 + 24 * 40);
  CHECK(report.factor_parameters == 10 * 88 + 7 * 64);
  CHECK(report.max_relative_error > 0);
  CHECK(report.max_relative_error < 1);

  const safetensors_file f = safetensors_file::open(out.path());
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("cinch.lowrank.keep_ratio") == "0.5");
  CHECK(f.metadata().at("cinch.lowrank.method") == "svd");
  CHECK(f.find("model.layers.0.q.weight") == nullptr);
  const cinch::tensor qa = f.load("model.layers.0.q.weight.lowrank_a"), qb = f.load("model.layers.0.q.weight.lowrank_b");
  const factors expected = compress_svd(view_of(qf, 48, 40), 10);
  CHECK(std::memcmp(qa.data(), expected.a.data(), std::size_t(expected.a.nbytes())) == 0);
  CHECK(std::memcmp(qb.data(), expected.b.data(), std::size_t(expected.b.nbytes())) == 0);
  const cinch::tensor ka = f.load("model.layers.0.k.weight.lowrank_a");
  CHECK(ka.type() == dtype::bf16);
  CHECK(ka.size(1) == 7);
  for (const char* name : {"model.embed_tokens.weight", "model.norm.weight", "tiny.weight", "ids"}) {
    INFO(name);
    const safetensors_file src = safetensors_file::open(in.path());
    const auto a = src.bytes(*src.find(name)), b = f.bytes(*f.find(name));
    CHECK(std::equal(a.begin(), a.end(), b.begin(), b.end()));
  }

  // Bad input.
  require_error([&] { (void)compress_file(in.path(), out.path(), {.keep = keep_ratio{1.5}}); }, errc::invalid_argument,
                {"lowrank::compress_file", "keep_ratio must be in (0, 1], got 1.5"});
  require_error([&] { (void)compress_file(in.path(), out.path(), {.include = "(["}); }, errc::invalid_argument,
                {"include must be a valid regular expression, got '(['"});
  require_error([&] { (void)compress_file(in.path(), in.path()); }, errc::invalid_argument, {"output must differ from input"});
  require_error([&] { (void)compress_file("/nonexistent/in.safetensors", out.path()); }, errc::invalid_argument,
                {"cannot open"});
  std::vector<float> bad = qf;
  bad[41] = std::numeric_limits<float>::quiet_NaN();
  const temp_file nan_in("nan");
  const std::vector<std::pair<std::string, tensor_view>> nan_tensors{{"x.weight", view_of(bad, 48, 40)}};
  save_safetensors(nan_in.path(), nan_tensors);
  require_error([&] { (void)compress_file(nan_in.path(), out.path()); }, errc::invalid_argument,
                {"lowrank::compress_file", "tensor 'x.weight'", "w must be finite, got NaN at [1, 1]"});
}

TEST_CASE("lowrank::compress_file reports the relative error of the factors it wrote", "[lowrank][safetensors]") {
  using namespace cinch::lowrank;
  // W [60, 40] with sigma_i = 0.9^i; keep 0.5 gives rank floor(0.5 * 60 * 40 / 100) = 12, so
  // the error is the Eckart-Young value sqrt(sum_{i >= 12} sigma_i^2) / ||sigma||.
  std::vector<double> sigma(40);
  for (std::size_t i = 0; i < sigma.size(); ++i) sigma[i] = std::pow(0.9, double(i));
  const std::vector<float> wf = to_f32(with_spectrum(60, 40, sigma, 5));
  cinch::tensor wb = cinch::tensor::empty({60, 40}, dtype::bf16);
  cinch::convert(view_of(wf, 60, 40), wb);
  const temp_file in("spectrum"), out("spectrum_out");
  const std::vector<std::pair<std::string, tensor_view>> tensors{{"a.weight", view_of(wf, 60, 40)}, {"b.weight", wb}};
  save_safetensors(in.path(), tensors);
  std::vector<double> errors;
  const file_report report = compress_file(in.path(), out.path(), {.keep = keep_ratio{0.5}}, [&](const file_progress& p) {
    CHECK(p.rank == 12);
    errors.push_back(p.relative_error);
  });
  REQUIRE(errors.size() == 2);
  const std::vector<double> actual = cinch::lowrank::singular_values(view_of(wf, 60, 40));
  const double optimum = tail_norm(actual, 12) / tail_norm(actual, 0);
  CHECK(std::abs(errors[0] - optimum) <= 1e-6 * optimum);
  CHECK(errors[0] == Approx(tail_norm(sigma, 12) / tail_norm(sigma, 0)).epsilon(1e-5));
  // bf16: the error of the bf16 factors as stored, against the bf16 weights as stored.
  const safetensors_file f = safetensors_file::open(out.path());
  const auto f32_of = [](const cinch::tensor& t) {
    cinch::tensor x = cinch::tensor::empty(t.shape(), dtype::f32);
    cinch::convert(t, x);
    return x;
  };
  const cinch::tensor w16 = f32_of(safetensors_file::open(in.path()).load("b.weight"));
  CHECK(errors[1] == relative_error(w16, f32_of(f.load("b.weight.lowrank_a")), f32_of(f.load("b.weight.lowrank_b"))));
  CHECK(errors[1] == Approx(optimum).epsilon(0.05));  // bf16 rounding moves it a little
  CHECK(report.max_relative_error == std::max(errors[0], errors[1]));
}

namespace {

// A fresh directory in the temporary directory, removed with its files.
class temp_dir {
 public:
  explicit temp_dir(std::string_view tag)
      : path_(std::filesystem::temp_directory_path() /
              ("cinch_act_" + std::to_string(::getpid()) + "_" + std::string(tag))) {
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// ||(W - A B) X^T||_F for X [tokens, n].
double output_error(const matrix& w, const cinch::tensor& a, const cinch::tensor& b, const matrix& x) {
  return frobenius(multiply(difference(w, multiply(from_tensor(a), from_tensor(b))), transpose(x)));
}

}  // namespace

TEST_CASE("lowrank::compress_file takes per-tensor activations for ASVD and SVD-LLM", "[lowrank][safetensors]") {
  using namespace cinch::lowrank;
  // layer.weight [48, 64] has an activation file with 4 outlier channels; other.weight has none.
  const matrix w = gaussian(48, 64, 31), other = gaussian(40, 64, 32), x = activations(2000, 64, 4, 33);
  const std::vector<float> wf = to_f32(w), of = to_f32(other), xf = to_f32(x);
  const temp_file in("calibrated");
  const std::vector<std::pair<std::string, tensor_view>> tensors{{"layer.weight", view_of(wf, 48, 64)},
                                                                 {"other.weight", view_of(of, 40, 64)}};
  save_safetensors(in.path(), tensors);
  const temp_dir dir("ok");
  save_npy(dir.file("layer.weight.npy"), view_of(xf, 2000, 64));
  calibration stats(64);
  stats.add(view_of(xf, 2000, 64));
  const std::int64_t rank = 13;  // floor(0.5 * 48 * 64 / 112)

  std::map<file_method, double> errors;
  for (file_method method : {file_method::svd, file_method::asvd, file_method::svd_llm}) {
    INFO(to_string(method));
    const temp_file out("calibrated_out");
    file_options options{.keep = keep_ratio{0.5}, .method = method};
    if (method != file_method::svd) options.calibration = dir.path();
    std::vector<file_progress> seen;
    (void)compress_file(in.path(), out.path(), options, [&](const file_progress& p) { seen.push_back(p); });
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].rank == rank);
    CHECK(seen[0].method == method);
    CHECK(seen[0].calibration_tokens == (method == file_method::svd ? 0 : 2000));
    CHECK(seen[1].method == file_method::svd);  // no other.weight.npy: plain SVD
    CHECK(seen[1].calibration_tokens == 0);
    const safetensors_file f = safetensors_file::open(out.path());
    CHECK(f.metadata().at("cinch.lowrank.method") == to_string(method));
    const cinch::tensor a = f.load("layer.weight.lowrank_a"), b = f.load("layer.weight.lowrank_b");
    // The same factors as the in-memory method on the same statistics.
    const factors expected = method == file_method::svd    ? compress_svd(view_of(wf, 48, 64), rank)
                             : method == file_method::asvd ? compress_asvd(view_of(wf, 48, 64), rank, stats)
                                                           : compress_svd_llm(view_of(wf, 48, 64), rank, stats);
    CHECK(std::memcmp(a.data(), expected.a.data(), std::size_t(expected.a.nbytes())) == 0);
    CHECK(std::memcmp(b.data(), expected.b.data(), std::size_t(expected.b.nbytes())) == 0);
    CHECK(seen[1].rank == 12);  // floor(0.5 * 40 * 64 / 104)
    const factors plain = compress_svd(view_of(of, 40, 64), 12);
    CHECK(std::memcmp(f.load("other.weight.lowrank_a").data(), plain.a.data(), std::size_t(plain.a.nbytes())) == 0);
    errors[method] = output_error(w, a, b, x);
  }
  // On the activations with outliers: SVD > ASVD > SVD-LLM in output error, as published.
  INFO("svd " << errors[file_method::svd] << ", asvd " << errors[file_method::asvd] << ", svd-llm "
              << errors[file_method::svd_llm]);
  CHECK(errors[file_method::svd_llm] < 0.5 * errors[file_method::svd]);
  CHECK(errors[file_method::asvd] < errors[file_method::svd]);
  CHECK(errors[file_method::svd_llm] < errors[file_method::asvd]);
}

TEST_CASE("lowrank::compress_file rejects bad activation files and calibration settings",
          "[lowrank][safetensors][errors]") {
  using namespace cinch::lowrank;
  const std::vector<float> wf = to_f32(gaussian(48, 64, 41));
  const temp_file in("bad_act"), out("bad_act_out");
  const std::vector<std::pair<std::string, tensor_view>> tensors{{"layer.weight", view_of(wf, 48, 64)}};
  save_safetensors(in.path(), tensors);
  const temp_dir dir("bad");
  const std::string file = dir.file("layer.weight.npy");
  const file_options svd_llm{.method = file_method::svd_llm, .calibration = dir.path()};

  const std::vector<float> narrow = to_f32(gaussian(100, 63, 42));
  save_npy(file, view_of(narrow, 100, 63));
  require_error([&] { (void)compress_file(in.path(), out.path(), svd_llm); }, errc::shape_mismatch,
                {"lowrank::compress_file", "tensor 'layer.weight'", file.c_str(),
                 "must hold inputs [tokens >= 1, 64] of the [48, 64] weight, got [100, 63]"});
  save_npy(file, tensor_view(narrow.data(), dtype::f32, {64}));
  require_error([&] { (void)compress_file(in.path(), out.path(), svd_llm); }, errc::shape_mismatch,
                {file.c_str(), "got [64]"});
  save_npy(file, tensor_view(narrow.data(), dtype::f32, {0, 64}));
  require_error([&] { (void)compress_file(in.path(), out.path(), svd_llm); }, errc::shape_mismatch,
                {file.c_str(), "got [0, 64]"});
  const std::vector<std::int32_t> ints(640);
  save_npy(file, tensor_view(ints.data(), dtype::i32, {10, 64}));
  require_error([&] { (void)compress_file(in.path(), out.path(), svd_llm); }, errc::invalid_argument,
                {file.c_str(), "must hold f32 inputs, got i32"});
  std::vector<float> nan = to_f32(gaussian(10, 64, 43));
  nan[70] = std::numeric_limits<float>::quiet_NaN();
  save_npy(file, view_of(nan, 10, 64));
  require_error([&] { (void)compress_file(in.path(), out.path(), svd_llm); }, errc::invalid_argument,
                {file.c_str(), "x must be finite, got NaN in row 1 column 6"});
  { std::ofstream(file, std::ios::binary) << "not an npy file"; }
  require_error([&] { (void)compress_file(in.path(), out.path(), svd_llm); }, errc::corrupt_data,
                {"tensor 'layer.weight', activation file", file.c_str(), "load_npy"});

  require_error([&] { (void)compress_file(in.path(), out.path(), {.method = file_method::asvd}); },
                errc::invalid_argument, {"lowrank::compress_file", "method asvd needs calibration", "got none"});
  require_error([&] { (void)compress_file(in.path(), out.path(), {.calibration = dir.path()}); },
                errc::invalid_argument, {"calibration is for asvd and svd-llm, got method svd"});
  require_error(
      [&] {
        (void)compress_file(in.path(), out.path(), {.method = file_method::svd_llm, .calibration = dir.file("none")});
      },
      errc::invalid_argument, {"calibration must be a directory, got '", dir.file("none").c_str()});
}
