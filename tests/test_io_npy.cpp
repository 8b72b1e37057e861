// .npy files: byte-exact headers as NumPy writes them, hand-built files of
// every format version, round trips of every dtype and rank, and every
// malformed input rejected with the right error (never a crash: these tests
// also run under ASan/UBSan).
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/io/npy.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "error_matchers.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
namespace io = cinch::io;
using namespace std::string_view_literals;

namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

template <class T>
std::vector<std::byte> bytes_of(const std::vector<T>& values) {
  std::vector<std::byte> out(values.size() * sizeof(T));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// A .npy file from its parts: the preamble of version major.0 with the
// header's length, the header text as given, then the data.
std::vector<std::byte> npy_file(int major, std::string_view header, std::span<const std::byte> data = {}) {
  std::string pre = "\x93NUMPY";
  pre += static_cast<char>(major);
  pre += '\0';
  const std::size_t n = header.size();
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) pre += static_cast<char>((n >> (8 * i)) & 0xFF);
  std::vector<std::byte> out = bytes_of(pre + std::string(header));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// The header NumPy writes: dict literal, spaces, newline, data at byte 128.
std::string numpy_header(std::string_view dict, std::size_t spaces) {
  return std::string(dict) + std::string(spaces, ' ') + "\n";
}

std::vector<std::byte> raw_bytes(const tensor_view& v) {
  const auto* p = static_cast<const std::byte*>(v.data());
  return {p, p + v.nbytes()};
}

std::vector<std::int64_t> dims_of(const cinch::tensor& t) { return {t.shape().begin(), t.shape().end()}; }

// A fresh scratch directory per run, removed at the end.
struct temp_dir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("cinch_io_npy_" + std::to_string(std::random_device{}()));
  temp_dir() { std::filesystem::create_directories(path); }
  ~temp_dir() { std::filesystem::remove_all(path); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_file(const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

const std::vector<float> zero_to_five{0, 1, 2, 3, 4, 5};

}  // namespace

TEST_CASE("encode_npy writes the header NumPy writes, byte for byte", "[io][npy]") {
  const tensor_view x(zero_to_five.data(), dtype::f32, {2, 3});
  // 10-byte preamble + 118-byte header (0x76): the data starts at 128.
  const std::vector<std::byte> expected = npy_file(
      1, numpy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 58), bytes_of(zero_to_five));
  CHECK(expected.size() == 128 + 24);
  CHECK(std::to_integer<int>(expected[8]) == 0x76);
  CHECK(io::encode_npy(x) == expected);

  // Rank 0 prints (), rank 1 the one-element tuple (5,).
  const std::vector<std::uint8_t> five{1, 2, 3, 4, 5};
  CHECK(io::encode_npy(tensor_view(five.data(), dtype::u8, {5})) ==
        npy_file(1, numpy_header("{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", 60), bytes_of(five)));
  const std::vector<std::int32_t> scalar{-7};
  CHECK(io::encode_npy(tensor_view(scalar.data(), dtype::i32, {})) ==
        npy_file(1, numpy_header("{'descr': '<i4', 'fortran_order': False, 'shape': (), }", 62), bytes_of(scalar)));
}

TEST_CASE("decode_npy reads hand-built files of versions 1.0, 2.0 and 3.0", "[io][npy]") {
  const std::string header = numpy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 58);
  for (const int major : {1, 2, 3}) {
    INFO("version " << major << ".0");
    const cinch::tensor t = io::decode_npy(npy_file(major, header, bytes_of(zero_to_five)));
    CHECK(t.type() == dtype::f32);
    CHECK(dims_of(t) == std::vector<std::int64_t>{2, 3});
    CHECK(t.view().is_contiguous());
    CHECK(std::vector<float>(t.data<float>(), t.data<float>() + 6) == zero_to_five);
  }
}

TEST_CASE("decode_npy accepts any Python dict literal NumPy would", "[io][npy]") {
  const std::vector<std::int32_t> values{10, -20, 30};
  for (const std::string& header : {
           std::string("{'shape': (3,), 'fortran_order': False, 'descr': '<i4'}"),       // any key order
           std::string("{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (3,)}\n"),  // double quotes
           std::string("{ 'descr' : '<i4' ,\n\t'fortran_order':False,'shape':( 3 , ) , }   \n"),
           std::string("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }"),     // no padding at all
       }) {
    INFO(header);
    const cinch::tensor t = io::decode_npy(npy_file(1, header, bytes_of(values)));
    CHECK(t.type() == dtype::i32);
    CHECK(dims_of(t) == std::vector<std::int64_t>{3});
    CHECK(std::vector<std::int32_t>(t.data<std::int32_t>(), t.data<std::int32_t>() + 3) == values);
  }
  // Byte order means nothing for one-byte types.
  const std::vector<std::int8_t> small{-1, 2};
  for (const char* descr : {"|i1", "<i1", ">i1"}) {
    const cinch::tensor t = io::decode_npy(
        npy_file(1, std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (2,)}", bytes_of(small)));
    CHECK(t.type() == dtype::i8);
    CHECK(t.data<std::int8_t>()[0] == -1);
  }
}

TEST_CASE("Fortran-order files load in row-major order", "[io][npy]") {
  // [[0, 1, 2], [3, 4, 5]] stored column by column.
  const std::vector<float> column_major{0, 3, 1, 4, 2, 5};
  const cinch::tensor t =
      io::decode_npy(npy_file(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", bytes_of(column_major)));
  CHECK(dims_of(t) == std::vector<std::int64_t>{2, 3});
  CHECK(std::vector<float>(t.data<float>(), t.data<float>() + 6) == zero_to_five);

  // Rank 3: element (i, j, k) of shape (2, 3, 4) is stored at i + 2 j + 6 k.
  std::vector<std::int32_t> stored(24);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) stored[std::size_t(i + 2 * j + 6 * k)] = 100 * i + 10 * j + k;
  const cinch::tensor u =
      io::decode_npy(npy_file(2, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 4), }", bytes_of(stored)));
  const auto s = u.view().as<const std::int32_t, 3>();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) CHECK(s(i, j, k) == 100 * i + 10 * j + k);
}

TEST_CASE("every dtype and rank 0..6 round-trips through memory and files", "[io][npy]") {
  const temp_dir dir;
  const std::vector<std::int64_t> extents{2, 3, 1, 4, 2, 3};
  for (const dtype type : {dtype::f32, dtype::f16, dtype::i32, dtype::i8, dtype::u8}) {
    for (std::size_t rank = 0; rank <= 6; ++rank) {
      INFO(cinch::to_string(type) << " rank " << rank);
      const std::span<const std::int64_t> shape(extents.data(), rank);
      const cinch::tensor x = cinch::tensor::empty(shape, type);
      auto* bytes = static_cast<std::uint8_t*>(x.data());
      for (std::int64_t i = 0; i < x.nbytes(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 37 + 11);

      const cinch::tensor from_memory = io::decode_npy(io::encode_npy(x));
      CHECK(from_memory.type() == type);
      CHECK(dims_of(from_memory) == dims_of(x));
      CHECK(raw_bytes(from_memory) == raw_bytes(x));

      const std::string path = dir.file("t.npy");
      io::save_npy(path, x);
      const cinch::tensor from_file = io::load_npy(path);
      CHECK(from_file.type() == type);
      CHECK(dims_of(from_file) == dims_of(x));
      CHECK(raw_bytes(from_file) == raw_bytes(x));
    }
  }
}

TEST_CASE("empty arrays round-trip", "[io][npy]") {
  for (const std::vector<std::int64_t>& shape : {std::vector<std::int64_t>{0}, std::vector<std::int64_t>{3, 0, 2}}) {
    const cinch::tensor x = cinch::tensor::empty(shape, dtype::f32);
    const std::vector<std::byte> file = io::encode_npy(x);
    CHECK(file.size() == 128);
    const cinch::tensor y = io::decode_npy(file);
    CHECK(dims_of(y) == shape);
    CHECK(y.numel() == 0);
  }
}

TEST_CASE("strided views are saved in C order", "[io][npy]") {
  std::vector<float> data(24);
  std::iota(data.begin(), data.end(), 0.0f);
  const tensor_view base(data.data(), dtype::f32, {4, 6});
  const auto expect = [](const tensor_view& v, const std::vector<float>& values) {
    const cinch::tensor t = io::decode_npy(io::encode_npy(v));
    CHECK(dims_of(t) == std::vector<std::int64_t>(v.shape().begin(), v.shape().end()));
    CHECK(std::vector<float>(t.data<float>(), t.data<float>() + t.numel()) == values);
  };
  // Transposed: innermost stride 6.
  expect(base.slice(0, 0, 2).slice(1, 0, 3).permute({1, 0}), {0, 6, 1, 7, 2, 8});
  // Every other column of rows 1..2: gaps between rows and inside them.
  expect(tensor_view(data.data() + 6, dtype::f32, {2, 3}, {6, 2}), {6, 8, 10, 12, 14, 16});
  // Negative strides: rows and columns reversed.
  expect(tensor_view(data.data() + 23, dtype::f32, {2, 2}, {-6, -1}), {23, 22, 17, 16});
  // A strided f16 view goes through the same gather, two bytes at a time.
  const std::vector<std::uint16_t> halves{1, 2, 3, 4, 5, 6};
  const cinch::tensor h = io::decode_npy(io::encode_npy(tensor_view(halves.data(), dtype::f16, {3}, {2})));
  CHECK(std::vector<std::uint16_t>(static_cast<const std::uint16_t*>(h.data()),
                                   static_cast<const std::uint16_t*>(h.data()) + 3) == std::vector<std::uint16_t>{1, 3, 5});
}

TEST_CASE("malformed files are corrupt data naming the file and the fault", "[io][npy][errors]") {
  const auto data = bytes_of(zero_to_five);
  const auto decode = [](std::vector<std::byte> file) { return [file] { (void)io::decode_npy(file, "k.npy"); }; };
  const auto with_dict = [&](std::string_view dict, int major = 1) { return decode(npy_file(major, dict, data)); };

  require_error(decode({}), errc::corrupt_data, {"decode_npy: k.npy: ", "truncated preamble", "0 bytes"});
  require_error(decode(bytes_of("abc")), errc::corrupt_data, {"k.npy", "not a .npy file", "'a' at offset 0"});
  require_error(decode(bytes_of("\x93NUMPX\x01\x00\x00\x00"sv)), errc::corrupt_data, {"magic", "'X' at offset 5"});
  require_error(decode(bytes_of(std::string("\x93NUMPY\x02\x00\x10", 9))), errc::corrupt_data,
                {"truncated preamble", "9 bytes"});
  require_error(decode(bytes_of(std::string("\x93NUMPY\x02\x00\x10\x00\x00", 11))), errc::corrupt_data,
                {"truncated preamble: 11 bytes, version 2.0 starts with 12"});
  {
    std::vector<std::byte> file = npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data);
    file[8] = std::byte{0xFF};  // header length 0x7FFF, far beyond the file
    file[9] = std::byte{0x7F};
    require_error(decode(file), errc::corrupt_data, {"truncated header", "32767 bytes"});
  }
  require_error(decode(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                                std::span(data).first(20))),
                errc::corrupt_data, {"shape [2, 3] of f32 needs 24 data bytes", "the file has 20"});
  {
    std::vector<std::byte> longer = data;
    longer.push_back(std::byte{0});
    require_error(decode(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", longer)),
                  errc::corrupt_data, {"needs 24 data bytes", "the file has 25"});
  }

  const std::pair<std::string_view, const char*> syntax[] = {
      {"'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)"sv, "expected '{', got '''"},
      {"{'descr': '<f4', 'fortran_order': False}"sv, "missing key 'shape'"},
      {"{'fortran_order': False, 'shape': (2, 3)}"sv, "missing key 'descr'"},
      {"{'descr': '<f4', 'shape': (2, 3)}"sv, "missing key 'fortran_order'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}"sv, "unknown key 'extra'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}"sv, "duplicate key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3)}"sv, "expected True or False, got 'f'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6)}"sv, "shape (n) is an integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}"sv, "non-negative integer in the shape, got '-'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}"sv, "expected ',' or ')' in the shape, got '3'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}"sv, "expected '(', got '['"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3),"sv, "expected a string, got the end of the header"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}"sv, "expected ',' or '}' after the value of 'descr'"},
      {"{'descr: '<f4', 'fortran_order': False, 'shape': (2, 3)}"sv, "unknown key 'descr: ' (expected 'descr',"},
      {"{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3)}"sv, "expected ':', got '''"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}"sv, "expected ',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x"sv, "unexpected 'x' after the closing '}'"},
      {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2, 3)}"sv, "escape sequences"},
      {"{'descr': '<f4\n', 'fortran_order': False, 'shape': (2, 3)}"sv, "unterminated string"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)"sv, "expected ',' or '}' after the value of 'shape', got the end"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 1)}"sv, "extent above 2^62"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 03)}"sv, "leading zero"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"sv, "more than 2^62 bytes"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\x01"sv, "control byte 0x01"},
      {"{'descr': '<f4', 'fortran_order': False,\0 'shape': (2, 3)}"sv, "control byte 0x00"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\xc3\xa9"sv, "non-ASCII byte 0xc3 at header offset 57"},
  };
  for (const auto& [dict, fragment] : syntax) {
    INFO(dict);
    require_error(with_dict(dict), errc::corrupt_data, {"decode_npy: k.npy: bad header", fragment});
  }
  // In version 3.0 non-ASCII is valid inside strings (and only there).
  require_error(with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\xc3\xa9", 3), errc::corrupt_data,
                {"unexpected byte 0xc3 after the closing '}'"});
}

TEST_CASE("valid files of types cinch does not hold are unsupported", "[io][npy][errors]") {
  const auto data = bytes_of(zero_to_five);
  const auto decode = [&](std::string_view dict, int major = 1) {
    return [file = npy_file(major, dict, data)] { (void)io::decode_npy(file, "k.npy"); };
  };
  require_error(decode("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3)}"), errc::unsupported,
                {"decode_npy: k.npy: big-endian dtype '>f4' is not supported", "'<f4' (f32)"});
  require_error(decode("{'descr': '<i8', 'fortran_order': False, 'shape': (3,)}"), errc::unsupported,
                {"dtype '<i8' is not supported", "'<i4' (i32)"});
  require_error(decode("{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}"), errc::unsupported, {"'<f8'"});
  require_error(decode("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}"), errc::unsupported,
                {"structured dtypes"});
  require_error(decode("{'descr': '<f4\xc3\xa9', 'fortran_order': False, 'shape': (6,)}", 3), errc::unsupported,
                {"dtype '<f4"});
  require_error(decode("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 2, 1, 3, 1)}"), errc::unsupported,
                {"rank 7 is above cinch's maximum of 6"});
  for (const char* version : {"\x04\x00", "\x01\x01", "\x00\x00"}) {
    std::vector<std::byte> file = npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", data);
    file[6] = std::byte(static_cast<unsigned char>(version[0]));
    file[7] = std::byte(static_cast<unsigned char>(version[1]));
    require_error([&] { (void)io::decode_npy(file, "k.npy"); }, errc::unsupported,
                  {"format version", "is not 1.0, 2.0 or 3.0"});
  }
}

TEST_CASE("every truncation of a valid file is corrupt data", "[io][npy][errors][fuzz]") {
  const std::vector<std::byte> file = io::encode_npy(tensor_view(zero_to_five.data(), dtype::f32, {3, 2}));
  for (std::size_t n = 0; n < file.size(); ++n) {
    // A copy of exactly n bytes, so a read past it is caught by the sanitizers.
    const std::vector<std::byte> prefix(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(n));
    try {
      (void)io::decode_npy(prefix);
      FAIL("a " << n << "-byte prefix was accepted");
    } catch (const cinch::error& e) {
      if (e.code() != errc::corrupt_data) FAIL("a " << n << "-byte prefix gave " << e.what());
    }
  }
  const temp_dir dir;
  for (const std::size_t n : {std::size_t(0), std::size_t(7), std::size_t(11), std::size_t(127), std::size_t(128),
                              file.size() - 1}) {
    const std::string path = dir.file("cut.npy");
    write_file(path, std::span(file).first(n));
    require_error([&] { (void)io::load_npy(path); }, errc::corrupt_data, {"load_npy: ", "cut.npy: "});
  }
}

TEST_CASE("bit flips in a header never crash the parser", "[io][npy][fuzz]") {
  const std::vector<std::byte> file = io::encode_npy(tensor_view(zero_to_five.data(), dtype::f32, {2, 3}));
  std::vector<std::string> accepted;
  for (std::size_t at = 0; at < 128; ++at) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<std::byte> flipped = file;
      flipped[at] ^= std::byte(1u << bit);
      try {
        (void)io::decode_npy(flipped);
        accepted.push_back("bit " + std::to_string(bit) + " of byte " + std::to_string(at));
      } catch (const cinch::error&) {
        // any code: a flip can turn '<f4' into the valid but unsupported '>f4'
      }
    }
  }
  // A .npy file has no checksum, but in this header no single flip happens to
  // leave a valid header for the same number of data bytes.
  INFO((accepted.empty() ? std::string() : accepted.front()));
  CHECK(accepted.empty());
}

TEST_CASE("load_npy and save_npy report files they cannot use", "[io][npy][errors]") {
  const temp_dir dir;
  require_error([&] { (void)io::load_npy(dir.file("missing.npy")); }, errc::invalid_argument,
                {"load_npy: ", "missing.npy: cannot read the file"});
  require_error([&] { (void)io::load_npy(dir.path.string()); }, errc::invalid_argument, {"cannot read the file"});

  const tensor_view x(zero_to_five.data(), dtype::f32, {2, 3});
  require_error([&] { io::save_npy(dir.file("no/such/dir/x.npy"), x); }, errc::invalid_argument,
                {"save_npy: ", "x.npy: cannot open the file for writing"});
  if (std::filesystem::exists("/dev/full"))
    require_error([&] { io::save_npy("/dev/full", x); }, errc::invalid_argument,
                  {"save_npy: /dev/full: writing the file failed"});

  const std::vector<std::uint16_t> bf16(6);
  require_error([&] { io::save_npy(dir.file("b.npy"), tensor_view(bf16.data(), dtype::bf16, {6})); },
                errc::unsupported, {"save_npy: ", "dtype bf16 has no .npy type", "'<f2' (f16)"});
  CHECK_FALSE(std::filesystem::exists(dir.file("b.npy")));  // checked before the file is created
  require_error([&] { (void)io::encode_npy(tensor_view(zero_to_five.data(), dtype::f32, {6}, cinch::cuda_device(0))); },
                errc::unsupported, {"encode_npy", "x must be on cpu, got cuda:0"});
}
