// The stream container: CRC-32C against published check values, the
// little-endian byte helpers, the byte layout of a small stream, and every
// truncation and every single-bit flip rejected as corrupt data.
#include <catch2/catch.hpp>

#include <cinch/io/bytes.hpp>
#include <cinch/io/crc32c.hpp>
#include <cinch/io/stream.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "error_matchers.hpp"

using cinch::errc;
namespace io = cinch::io;

namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

std::vector<std::byte> bytes_of(std::initializer_list<unsigned> values) {
  std::vector<std::byte> out;
  for (const unsigned v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

// CRC-32C one bit at a time, straight from its definition (reflected polynomial 0x82F63B78).
std::uint32_t crc32c_bitwise(std::span<const std::byte> bytes) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (const std::byte b : bytes) {
    c ^= std::to_integer<std::uint32_t>(b);
    for (int bit = 0; bit < 8; ++bit) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}

std::uint32_t le32(std::span<const std::byte> b, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v |= std::to_integer<std::uint32_t>(b[at + i]) << (8 * i);
  return v;
}

void set_le32(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<std::byte>(v >> (8 * i));
}

constexpr io::tag test_kind{"TEST"};
constexpr std::uint16_t test_kind_version = 3;
constexpr io::tag numbered{0x00010002u};

// 16 header + (16 + 5 + 3 padding) + 16 + (16 + 12 + 4 padding) + 8 trailer = 96 bytes.
std::vector<std::byte> sample_stream() {
  std::vector<std::byte> out;
  io::stream_writer w(out, test_kind, test_kind_version, 0x00A5);
  w.add("META", bytes_of("hello"));
  w.add("EMPT", {});
  w.add(numbered, bytes_of("twelve bytes"));
  w.finish();
  return out;
}

// Empty when reading `bytes` throws corrupt_data, else what happened instead.
std::string outcome(std::span<const std::byte> bytes) {
  try {
    const io::stream_reader reader(bytes, test_kind, test_kind_version);
    return "accepted with " + std::to_string(reader.sections().size()) + " sections";
  } catch (const cinch::error& e) {
    return e.code() == errc::corrupt_data ? "" : std::string(cinch::to_string(e.code())) + ": " + e.what();
  } catch (const std::exception& e) {
    return std::string("std::exception: ") + e.what();
  }
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<io::tag> {
  static std::string convert(io::tag t) { return io::to_string(t); }
};
}  // namespace Catch

TEST_CASE("crc32c matches the published check values", "[io][crc]") {
  CHECK(io::crc32c(bytes_of("123456789")) == 0xE3069283u);
  CHECK(io::crc32c({}) == 0u);
  // RFC 3720 (iSCSI) appendix B.4.
  std::vector<std::byte> zeros(32), ones(32, std::byte{0xFF}), up(32), down(32);
  for (std::size_t i = 0; i < 32; ++i) {
    up[i] = static_cast<std::byte>(i);
    down[i] = static_cast<std::byte>(31 - i);
  }
  CHECK(io::crc32c(zeros) == 0x8A9136AAu);
  CHECK(io::crc32c(ones) == 0x62A8AB43u);
  CHECK(io::crc32c(up) == 0x46DD794Eu);
  CHECK(io::crc32c(down) == 0x113FDB5Cu);
}

TEST_CASE("crc32c agrees with the bitwise definition at every length and alignment, and chains", "[io][crc]") {
  std::mt19937 rng(7);
  std::vector<std::byte> data(300);
  for (std::byte& b : data) b = static_cast<std::byte>(rng());
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t n = 0; n + offset <= 90; ++n) {
      const std::span<const std::byte> s = std::span(data).subspan(offset, n);
      REQUIRE(io::crc32c(s) == crc32c_bitwise(s));
    }
  }
  const std::uint32_t whole = io::crc32c(data);
  for (std::size_t split = 0; split <= data.size(); split += 13)
    CHECK(io::crc32c(std::span(data).subspan(split), io::crc32c(std::span(data).first(split))) == whole);
}

TEST_CASE("byte_writer writes little-endian scalars whatever the host", "[io][bytes]") {
  io::byte_writer w;
  w.write(std::uint8_t{0xAB});
  w.write(std::uint16_t{0x0102});
  w.write(std::uint32_t{0x03040506});
  w.write(std::uint64_t{0x0708090A0B0C0D0E});
  w.write(std::int16_t{-2});
  w.write(1.0f);
  w.write(-2.0);
  const std::vector<std::byte> expected =
      bytes_of({0xAB, 0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0x09, 0x08, 0x07, 0xFE, 0xFF,
                0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0});
  CHECK(std::vector<std::byte>(w.bytes().begin(), w.bytes().end()) == expected);
  const std::vector<std::uint16_t> pair{0x1122, 0x3344};
  w.write_array<std::uint16_t>(pair);
  CHECK(w.size() == expected.size() + 4);
  CHECK(std::to_integer<unsigned>(w.bytes()[expected.size()]) == 0x22);
  const std::vector<std::byte> taken = w.take();
  CHECK(taken.size() == expected.size() + 4);
  CHECK(w.size() == 0);
}

TEST_CASE("byte_reader reads back every scalar type and special float exactly", "[io][bytes]") {
  using lim8 = std::numeric_limits<std::int8_t>;
  using lim64 = std::numeric_limits<std::int64_t>;
  const float nan_with_payload = std::bit_cast<float>(0x7FC12345u);
  io::byte_writer w;
  w.write(lim8::min());
  w.write(std::numeric_limits<std::uint16_t>::max());
  w.write(std::int32_t{-123456789});
  w.write(lim64::min());
  w.write(std::numeric_limits<std::uint64_t>::max());
  w.write(-0.0f);
  w.write(nan_with_payload);
  w.write(std::numeric_limits<float>::denorm_min());
  w.write(-std::numeric_limits<double>::infinity());
  const std::vector<float> scales{0.5f, -3.25f, 1e-30f};
  w.write_array<float>(scales);
  w.write_bytes(bytes_of("tail"));

  io::byte_reader r(w.bytes(), "test buffer");
  CHECK(r.read<std::int8_t>() == lim8::min());
  CHECK(r.read<std::uint16_t>() == 0xFFFF);
  CHECK(r.read<std::int32_t>() == -123456789);
  CHECK(r.read<std::int64_t>() == lim64::min());
  CHECK(r.read<std::uint64_t>() == std::numeric_limits<std::uint64_t>::max());
  CHECK(std::bit_cast<std::uint32_t>(r.read<float>()) == 0x80000000u);
  CHECK(std::bit_cast<std::uint32_t>(r.read<float>()) == 0x7FC12345u);
  CHECK(r.read<float>() == std::numeric_limits<float>::denorm_min());
  CHECK(r.read<double>() == -std::numeric_limits<double>::infinity());
  std::vector<float> back(3);
  r.read_array<float>(back);
  CHECK(back == scales);
  const std::span<const std::byte> tail = r.read_bytes(4);
  CHECK(std::vector<std::byte>(tail.begin(), tail.end()) == bytes_of("tail"));
  CHECK(r.remaining() == 0);
  CHECK_NOTHROW(r.expect_end());
}

TEST_CASE("byte_reader refuses to read past its end", "[io][bytes][errors]") {
  const std::vector<std::byte> five = bytes_of("abcde");
  io::byte_reader r(five, "section 'TEST'");
  CHECK(r.read<std::uint32_t>() == 0x64636261u);
  require_error([&] { (void)r.read<std::uint16_t>(); }, errc::corrupt_data,
                {"byte_reader: section 'TEST' ends at byte 5", "cannot read 2 bytes at offset 4"});
  std::vector<float> out{7.0f, 7.0f};
  require_error([&] { r.read_array<float>(out); }, errc::corrupt_data, {"cannot read 8 bytes at offset 4"});
  CHECK(out == std::vector<float>{7.0f, 7.0f});  // untouched
  require_error([&] { (void)r.read_bytes(2); }, errc::corrupt_data, {"cannot read 2 bytes"});
  CHECK(r.position() == 4);  // failed reads consume nothing
  require_error([&] { r.expect_end(); }, errc::corrupt_data, {"section 'TEST' has 1 unread bytes after offset 4 of 5"});
  CHECK(r.read<std::uint8_t>() == 'e');
  CHECK_NOTHROW(r.expect_end());
}

TEST_CASE("tags print as text or hex", "[io][stream]") {
  CHECK(io::to_string(io::tag{"KEYS"}) == "'KEYS'");
  CHECK(io::tag{"KEYS"}.value == 0x5359454Bu);  // 'K' is the first byte in the stream
  CHECK(io::to_string(numbered) == "0x00010002");
  CHECK(io::to_string(io::end_tag) == "0xffffffff");
}

TEST_CASE("a stream has the documented byte layout", "[io][stream]") {
  const std::vector<std::byte> s = sample_stream();
  REQUIRE(s.size() == 96);
  const std::span<const std::byte> b(s);
  // Header: magic, format version 1, kind, kind version 3, flags 0x00A5.
  CHECK(std::vector<std::byte>(s.begin(), s.begin() + 16) ==
        bytes_of({'C', 'I', 'N', 'C', 'H', 0, 1, 0, 'T', 'E', 'S', 'T', 3, 0, 0xA5, 0}));
  // META at 16: tag, CRC of "hello", length 5, payload, 3 zero bytes.
  CHECK(std::vector<std::byte>(s.begin() + 16, s.begin() + 20) == bytes_of("META"));
  CHECK(le32(b, 20) == io::crc32c(bytes_of("hello")));
  CHECK(std::vector<std::byte>(s.begin() + 24, s.begin() + 40) == bytes_of({5, 0, 0, 0, 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o', 0, 0, 0}));
  // EMPT at 40: CRC of nothing is 0, length 0, no payload.
  CHECK(std::vector<std::byte>(s.begin() + 40, s.begin() + 56) == bytes_of({'E', 'M', 'P', 'T', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  // The numbered section at 56, 12 bytes: no padding.
  CHECK(le32(b, 56) == 0x00010002u);
  CHECK(le32(b, 60) == io::crc32c(bytes_of("twelve bytes")));
  CHECK(le32(b, 64) == 12);
  CHECK(std::vector<std::byte>(s.begin() + 72, s.begin() + 84) == bytes_of("twelve bytes"));
  // The payload ends at 84: zero padding to 88, then the trailer.
  CHECK(std::vector<std::byte>(s.begin() + 84, s.begin() + 88) == bytes_of({0, 0, 0, 0}));
  CHECK(le32(b, 88) == 0xFFFFFFFFu);
  // The table checksum covers the header, the three 16-byte records and the end tag.
  std::uint32_t table = io::crc32c(b.subspan(0, 16));
  for (const std::size_t record : {16, 40, 56}) table = io::crc32c(b.subspan(record, 16), table);
  table = io::crc32c(b.subspan(88, 4), table);
  CHECK(le32(b, 92) == table);
}

TEST_CASE("stream_reader gives back what stream_writer wrote", "[io][stream]") {
  const std::vector<std::byte> s = sample_stream();
  const io::stream_reader r(s, test_kind, test_kind_version);
  CHECK(r.kind() == test_kind);
  CHECK(r.kind_version() == test_kind_version);
  CHECK(r.flags() == 0x00A5);
  REQUIRE(r.sections().size() == 3);
  // Sorted by tag value: 0x00010002 < 'META' (0x4154454d) < 'EMPT' (0x54504d45).
  CHECK(r.sections()[0].name == numbered);
  CHECK(r.sections()[1].name == io::tag{"META"});
  CHECK(r.sections()[2].name == io::tag{"EMPT"});
  for (const io::stream_section& section : r.sections())
    CHECK((section.payload.data() - s.data()) % 8 == 0);  // payloads start 8-aligned
  const std::span<const std::byte> meta = r.payload("META");
  CHECK(std::vector<std::byte>(meta.begin(), meta.end()) == bytes_of("hello"));
  CHECK(r.payload("EMPT").empty());
  CHECK(r.find("META").has_value());
  CHECK_FALSE(r.find("NOPE").has_value());
  io::byte_reader twelve = r.open(numbered);
  CHECK(twelve.read<std::uint32_t>() == le32(bytes_of("twel"), 0));
  require_error([&] { (void)twelve.read_bytes(9); }, errc::corrupt_data, {"section 0x00010002 ends at byte 12"});
  // The kind is optional to check.
  CHECK(io::stream_reader(s).kind() == test_kind);
}

TEST_CASE("a stream with no sections and large payloads round-trip", "[io][stream]") {
  std::vector<std::byte> empty;
  io::stream_writer(empty, "NONE", 0).finish();
  CHECK(empty.size() == 24);
  CHECK(io::stream_reader(empty, "NONE", 0).sections().empty());

  std::vector<std::byte> big(100'003);
  std::mt19937 rng(1);
  for (std::byte& b : big) b = static_cast<std::byte>(rng());
  std::vector<std::byte> out;
  io::stream_writer w(out, "BIG!", 1);
  w.add("DATA", big);
  w.finish();
  CHECK(w.size() == out.size());
  const std::span<const std::byte> back = io::stream_reader(out, "BIG!", 1).payload("DATA");
  CHECK(std::equal(back.begin(), back.end(), big.begin(), big.end()));
}

TEST_CASE("stream_writer writes the same bytes to a std::ostream", "[io][stream]") {
  std::ostringstream os;
  io::stream_writer w(os, test_kind, test_kind_version, 0x00A5);
  w.add("META", bytes_of("hello"));
  w.add("EMPT", {});
  w.add(numbered, bytes_of("twelve bytes"));
  w.finish();
  CHECK(bytes_of(os.str()) == sample_stream());
}

TEST_CASE("stream_writer refuses streams a reader would reject", "[io][stream][errors]") {
  std::vector<std::byte> out;
  io::stream_writer w(out, test_kind, 1);
  w.add("KEYS", bytes_of("k"));
  require_error([&] { w.add("KEYS", bytes_of("again")); }, errc::invalid_argument,
                {"stream_writer::add", "section 'KEYS' was already added"});
  require_error([&] { w.add(io::end_tag, {}); }, errc::invalid_argument,
                {"stream_writer::add", "tag 0xffffffff is reserved for the end marker"});
  w.finish();
  require_error([&] { w.add("VALS", {}); }, errc::invalid_argument, {"cannot add section 'VALS' after finish()"});
  require_error([&] { w.finish(); }, errc::invalid_argument, {"stream_writer::finish", "already finished"});
  CHECK(io::stream_reader(out).sections().size() == 1);

  std::ostringstream broken;
  broken.setstate(std::ios::badbit);
  require_error([&] { io::stream_writer failing(broken, test_kind, 1); }, errc::invalid_argument,
                {"stream_writer", "the output stream failed after 0 bytes"});

  // A sink that takes the bytes but fails to flush them, like a full disk.
  struct unflushable : std::stringbuf {
    int sync() override { return -1; }
  } sink;
  std::ostream unflushed(&sink);
  io::stream_writer late(unflushed, test_kind, 1);
  require_error([&] { late.finish(); }, errc::invalid_argument, {"the output stream failed after 24 bytes"});
}

TEST_CASE("stream_reader names what is wrong with a stream", "[io][stream][errors]") {
  const std::vector<std::byte> good = sample_stream();
  const auto read = [](std::vector<std::byte> s) { return [s] { (void)io::stream_reader(s, test_kind, test_kind_version); }; };
  const auto patched = [&](std::size_t at, std::initializer_list<unsigned> values) {
    std::vector<std::byte> s = good;
    for (const unsigned v : values) s[at++] = static_cast<std::byte>(v);
    return s;
  };

  require_error(read({}), errc::corrupt_data, {"stream_reader: stream of 0 bytes is shorter than the 16-byte header"});
  require_error(read(patched(0, {'c'})), errc::corrupt_data, {"does not start with the magic"});
  require_error(read(patched(6, {2, 0})), errc::corrupt_data, {"format version 2, this build reads version 1"});
  require_error(read(std::vector<std::byte>(good.begin(), good.begin() + 88)), errc::corrupt_data,
                {"truncated: no end marker after 3 sections", "0 bytes left at offset 88"});
  require_error(read(std::vector<std::byte>(good.begin(), good.begin() + 50)), errc::corrupt_data,
                {"section record at offset 40 needs 16 bytes, 10 remain"});
  require_error(read(patched(24, {0, 0, 0, 0, 0, 0, 0, 0x80})), errc::corrupt_data,
                {"section 'META' at offset 16 claims 9223372036854775808 payload bytes", "64 bytes remain"});
  require_error(read(patched(37, {1})), errc::corrupt_data, {"padding after section 'META' at offset 37 must be zero"});
  require_error(read(patched(33, {'E'})), errc::corrupt_data, {"checksum of section 'META' is", "the stream stores"});
  require_error(read(patched(40, {'e'})), errc::corrupt_data, {"checksum of the header and section table is"});
  {
    std::vector<std::byte> longer = good;
    longer.resize(good.size() + 8);
    require_error(read(longer), errc::corrupt_data, {"end marker at offset 88 must be the last 8 bytes, but 16 bytes remain"});
  }
  // Valid streams, but not what the caller asked for.
  require_error([&] { (void)io::stream_reader(good, "KVC1", test_kind_version); }, errc::corrupt_data,
                {"stream holds 'TEST' version 3, expected 'KVC1' version 3"});
  require_error([&] { (void)io::stream_reader(good, test_kind, 4); }, errc::corrupt_data,
                {"stream holds 'TEST' version 3, expected 'TEST' version 4"});
  require_error([&] { (void)io::stream_reader(good).payload("NOPE"); }, errc::corrupt_data,
                {"stream_reader::payload", "stream of kind 'TEST' has no section 'NOPE'"});
  require_error([&] { (void)io::stream_reader(good).open("NOPE"); }, errc::corrupt_data, {"no section 'NOPE'"});
}

TEST_CASE("stream_reader rejects a duplicated section even with valid checksums", "[io][stream][errors]") {
  // Two streams glued by hand: the records of the first, the META record again, a recomputed trailer.
  std::vector<std::byte> s;
  {
    io::stream_writer w(s, test_kind, test_kind_version);
    w.add("META", bytes_of("hello"));
    w.finish();
  }
  const std::vector<std::byte> meta_record(s.begin() + 16, s.begin() + 40);
  s.insert(s.begin() + 40, meta_record.begin(), meta_record.end());
  std::uint32_t table = io::crc32c(std::span(s).subspan(0, 16));
  table = io::crc32c(std::span(s).subspan(16, 16), table);
  table = io::crc32c(std::span(s).subspan(40, 16), table);
  table = io::crc32c(std::span(s).subspan(64, 4), table);
  set_le32(s, 68, table);
  require_error([&] { (void)io::stream_reader(s); }, errc::corrupt_data, {"section 'META' appears twice"});
}

TEST_CASE("every truncation and every bit flip of a stream is corrupt data", "[io][stream][errors][fuzz]") {
  const std::vector<std::byte> good = sample_stream();
  REQUIRE(outcome(good) == "accepted with 3 sections");
  std::vector<std::string> failures;
  for (std::size_t n = 0; n < good.size(); ++n) {
    // A copy of exactly n bytes, so a read past it is caught by the sanitizers.
    const std::vector<std::byte> prefix(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    if (std::string what = outcome(prefix); !what.empty()) failures.push_back("truncated to " + std::to_string(n) + ": " + what);
  }
  for (std::size_t at = 0; at < good.size(); ++at) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<std::byte> flipped = good;
      flipped[at] ^= static_cast<std::byte>(1u << bit);
      if (std::string what = outcome(flipped); !what.empty())
        failures.push_back("bit " + std::to_string(bit) + " of byte " + std::to_string(at) + ": " + what);
    }
  }
  INFO((failures.empty() ? std::string() : failures.front()));
  CHECK(failures.empty());
}
