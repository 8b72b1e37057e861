// The stream container: writer, reader and the checks between them.
#include "cinch/io/stream.hpp"

#include <algorithm>
#include <array>
#include <ostream>

#include "cinch/io/crc32c.hpp"

namespace cinch::io {
namespace {

constexpr std::array<std::byte, 6> magic{std::byte{'C'}, std::byte{'I'}, std::byte{'N'},
                                         std::byte{'C'}, std::byte{'H'}, std::byte{0}};
constexpr std::size_t header_bytes = 16;
constexpr std::size_t record_bytes = 16;   // tag, payload CRC, payload length
constexpr std::size_t trailer_bytes = 8;   // end tag, table CRC
constexpr std::size_t alignment = 8;
constexpr std::array<std::byte, alignment> zeros{};

constexpr std::size_t padding_after(std::uint64_t length) noexcept {
  return static_cast<std::size_t>((alignment - length % alignment) % alignment);
}

std::string hex32(std::uint32_t v) {
  constexpr char digits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(digits[(v >> shift) & 0xFu]);
  return out;
}

std::uint32_t load_u32(std::span<const std::byte> bytes, std::size_t at) {
  return byte_reader(bytes.subspan(at, 4), "stream").read<std::uint32_t>();
}

}  // namespace

std::string to_string(tag t) {
  std::string text = "'";
  for (int i = 0; i < 4; ++i) {
    const auto c = static_cast<unsigned char>(t.value >> (8 * i));
    if (c < 0x20 || c > 0x7E) return hex32(t.value);
    text.push_back(static_cast<char>(c));
  }
  return text + "'";
}

// ---------------------------------------------------------------- writer

stream_writer::stream_writer(std::vector<std::byte>& out, tag kind, std::uint16_t kind_version, std::uint16_t flags)
    : vector_(&out) {
  start(kind, kind_version, flags);
}

stream_writer::stream_writer(std::ostream& out, tag kind, std::uint16_t kind_version, std::uint16_t flags)
    : ostream_(&out) {
  start(kind, kind_version, flags);
}

void stream_writer::start(tag kind, std::uint16_t kind_version, std::uint16_t flags) {
  byte_writer header;
  header.write_bytes(magic);
  header.write(stream_format_version);
  header.write(kind.value);
  header.write(kind_version);
  header.write(flags);
  put(header.bytes());
  table_crc_ = crc32c(header.bytes());
}

void stream_writer::add(tag name, std::span<const std::byte> payload) {
  constexpr std::string_view fn = "stream_writer::add";
  if (finished_) cinch::detail::fail(errc::invalid_argument, fn, "cannot add section ", to_string(name), " after finish()");
  if (name == end_tag)
    cinch::detail::fail(errc::invalid_argument, fn, "tag ", to_string(name), " is reserved for the end marker");
  const auto slot = std::lower_bound(tags_.begin(), tags_.end(), name);
  if (slot != tags_.end() && *slot == name)
    cinch::detail::fail(errc::invalid_argument, fn, "section ", to_string(name), " was already added");
  tags_.insert(slot, name);

  byte_writer record;
  record.write(name.value);
  record.write(crc32c(payload));
  record.write(std::uint64_t{payload.size()});
  put(record.bytes());
  put(payload);
  put(std::span(zeros).first(padding_after(payload.size())));
  table_crc_ = crc32c(record.bytes(), table_crc_);
}

void stream_writer::finish() {
  if (finished_) cinch::detail::fail(errc::invalid_argument, "stream_writer::finish", "the stream is already finished");
  byte_writer trailer;
  trailer.write(end_tag.value);
  trailer.write(crc32c(trailer.bytes(), table_crc_));
  put(trailer.bytes());
  if (ostream_ && !ostream_->flush())
    cinch::detail::fail(errc::invalid_argument, "stream_writer", "the output stream failed after ", written_, " bytes");
  finished_ = true;
}

void stream_writer::put(std::span<const std::byte> bytes) {
  if (vector_) {
    vector_->insert(vector_->end(), bytes.begin(), bytes.end());
  } else if (!ostream_->write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()))) {
    cinch::detail::fail(errc::invalid_argument, "stream_writer", "the output stream failed after ", written_, " bytes");
  }
  written_ += bytes.size();
}

// ---------------------------------------------------------------- reader

stream_reader::stream_reader(std::span<const std::byte> bytes) {
  constexpr std::string_view fn = "stream_reader";
  using cinch::detail::fail;
  if (bytes.size() < header_bytes)
    fail(errc::corrupt_data, fn, "stream of ", bytes.size(), " bytes is shorter than the ", header_bytes, "-byte header");
  if (!std::equal(magic.begin(), magic.end(), bytes.begin()))
    fail(errc::corrupt_data, fn, "stream does not start with the magic \"CINCH\\0\"");
  byte_reader header(bytes.first(header_bytes), "stream header");
  (void)header.read_bytes(magic.size());
  // Checked before anything else is read: another version may lay out the rest differently.
  const auto version = header.read<std::uint16_t>();
  if (version != stream_format_version)
    fail(errc::corrupt_data, fn, "stream has format version ", version, ", this build reads version ",
         stream_format_version);
  kind_ = tag{header.read<std::uint32_t>()};
  kind_version_ = header.read<std::uint16_t>();
  flags_ = header.read<std::uint16_t>();

  // Walk the records, trusting their lengths only as far as the buffer reaches.
  std::uint32_t table_crc = crc32c(bytes.first(header_bytes));
  std::vector<std::uint32_t> payload_crcs;
  std::size_t at = header_bytes;
  for (;;) {
    const std::size_t left = bytes.size() - at;
    if (left < 4)
      fail(errc::corrupt_data, fn, "stream is truncated: no end marker after ", sections_.size(), " sections (",
           left, " bytes left at offset ", at, ")");
    const tag name{load_u32(bytes, at)};
    if (name == end_tag) {
      if (left != trailer_bytes)
        fail(errc::corrupt_data, fn, "end marker at offset ", at, " must be the last ", trailer_bytes,
             " bytes, but ", left, " bytes remain");
      table_crc = crc32c(bytes.subspan(at, 4), table_crc);
      const std::uint32_t stored = load_u32(bytes, at + 4);
      if (stored != table_crc)
        fail(errc::corrupt_data, fn, "checksum of the header and section table is ", hex32(table_crc),
             ", the stream stores ", hex32(stored));
      break;
    }
    if (left < record_bytes)
      fail(errc::corrupt_data, fn, "stream is truncated: section record at offset ", at, " needs ", record_bytes,
           " bytes, ", left, " remain");
    byte_reader record(bytes.subspan(at, record_bytes), "section record");
    (void)record.read<std::uint32_t>();
    const auto crc = record.read<std::uint32_t>();
    const auto length = record.read<std::uint64_t>();
    const std::size_t room = left - record_bytes;
    if (length > room || padding_after(length) > room - length)
      fail(errc::corrupt_data, fn, "section ", to_string(name), " at offset ", at, " claims ", length,
           " payload bytes (plus ", padding_after(length), " padding), but ", room, " bytes remain");
    const std::size_t payload_at = at + record_bytes, pad = padding_after(length);
    const std::span<const std::byte> padding = bytes.subspan(payload_at + length, pad);
    if (std::any_of(padding.begin(), padding.end(), [](std::byte b) { return b != std::byte{0}; }))
      fail(errc::corrupt_data, fn, "padding after section ", to_string(name), " at offset ", payload_at + length,
           " must be zero");
    table_crc = crc32c(bytes.subspan(at, record_bytes), table_crc);
    sections_.push_back({name, bytes.subspan(payload_at, length)});
    payload_crcs.push_back(crc);
    at = payload_at + length + pad;
  }

  for (std::size_t i = 0; i < sections_.size(); ++i) {
    const std::uint32_t computed = crc32c(sections_[i].payload);
    if (computed != payload_crcs[i])
      fail(errc::corrupt_data, fn, "checksum of section ", to_string(sections_[i].name), " is ", hex32(computed),
           ", the stream stores ", hex32(payload_crcs[i]));
  }
  std::stable_sort(sections_.begin(), sections_.end(),
                   [](const stream_section& a, const stream_section& b) { return a.name < b.name; });
  const auto twice = std::adjacent_find(sections_.begin(), sections_.end(),
                                        [](const stream_section& a, const stream_section& b) { return a.name == b.name; });
  if (twice != sections_.end()) fail(errc::corrupt_data, fn, "section ", to_string(twice->name), " appears twice");
}

stream_reader::stream_reader(std::span<const std::byte> bytes, tag kind, std::uint16_t kind_version)
    : stream_reader(bytes) {
  if (kind_ != kind || kind_version_ != kind_version)
    cinch::detail::fail(errc::corrupt_data, "stream_reader", "stream holds ", to_string(kind_), " version ",
                        kind_version_, ", expected ", to_string(kind), " version ", kind_version);
}

std::optional<std::span<const std::byte>> stream_reader::find(tag name) const noexcept {
  const auto it = std::lower_bound(sections_.begin(), sections_.end(), name,
                                   [](const stream_section& s, tag t) { return s.name < t; });
  if (it == sections_.end() || it->name != name) return std::nullopt;
  return it->payload;
}

std::span<const std::byte> stream_reader::payload(tag name) const {
  const auto found = find(name);
  if (!found)
    cinch::detail::fail(errc::corrupt_data, "stream_reader::payload", "stream of kind ", to_string(kind_),
                        " has no section ", to_string(name));
  return *found;
}

byte_reader stream_reader::open(tag name) const { return byte_reader(payload(name), "section " + to_string(name)); }

}  // namespace cinch::io
