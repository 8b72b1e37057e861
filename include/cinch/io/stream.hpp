// The cinch stream: a versioned, checksummed container of named byte
// sections, for offloading and reusing compressed state (a compressed KV
// cache, as CacheGen and LMCache store one). All integers little-endian:
//
//   header    16 B  magic "CINCH\0", format version u16 (1), kind u32,
//                   kind version u16, flags u16
//   section   16 B  tag u32, CRC-32C of the payload u32, payload length u64;
//                   then the payload and zero bytes up to a multiple of 8
//   ...             any number of sections, each tag at most once
//   trailer    8 B  end_tag u32, CRC-32C of the header, every 16-byte
//                   section record and the end tag
//
// The container versions only itself; the kind (what the stream holds, e.g.
// "KVC1") and the kind version belong to the code that fills the sections,
// and the flags are that code's too: the container only checksums them.
// Payloads start at multiples of 8 bytes from the stream start.
//
// stream_reader checks everything before it hands out a byte: a truncated,
// bit-flipped, wrongly versioned stream or one with a duplicated or missing
// section is errc::corrupt_data, never a crash or silently wrong data.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cinch/io/bytes.hpp"

namespace cinch::io {

// Four bytes naming a section or a kind of stream. Built from a 4-character
// literal ("KEYS") it reads as text in a hex dump; any 32-bit value suits
// numbered sections (tag{layer << 8 | part}).
struct tag {
  std::uint32_t value = 0;

  constexpr tag() = default;
  constexpr explicit tag(std::uint32_t v) noexcept : value(v) {}
  consteval tag(const char (&name)[5]) noexcept  // NOLINT: a literal is the natural spelling
      : value(std::uint32_t(static_cast<unsigned char>(name[0])) |
              std::uint32_t(static_cast<unsigned char>(name[1])) << 8 |
              std::uint32_t(static_cast<unsigned char>(name[2])) << 16 |
              std::uint32_t(static_cast<unsigned char>(name[3])) << 24) {}

  friend constexpr auto operator<=>(tag, tag) = default;
};

// "'KEYS'" when all four bytes are printable ASCII, else "0x0000012a".
[[nodiscard]] std::string to_string(tag t);

inline constexpr std::uint16_t stream_format_version = 1;
// Marks the trailer; no section may use it.
inline constexpr tag end_tag{0xFFFFFFFFu};

struct stream_section {
  tag name;
  std::span<const std::byte> payload;
};

// Writes a stream section by section, straight to its output: nothing is
// buffered, so a large cache goes to a file without a second copy. The stream
// is complete only after finish(); a reader rejects one without its trailer.
class stream_writer {
 public:
  // Appends to `out`, which must outlive the writer.
  stream_writer(std::vector<std::byte>& out, tag kind, std::uint16_t kind_version, std::uint16_t flags = 0);
  // Writes to `out`, which must outlive the writer. A failing stream is
  // errc::invalid_argument.
  stream_writer(std::ostream& out, tag kind, std::uint16_t kind_version, std::uint16_t flags = 0);
  stream_writer(const stream_writer&) = delete;
  stream_writer& operator=(const stream_writer&) = delete;

  // errc::invalid_argument for end_tag, a tag already added, or after finish().
  void add(tag name, std::span<const std::byte> payload);
  // Writes the trailer; errc::invalid_argument when called twice.
  void finish();

  // Bytes written so far.
  [[nodiscard]] std::uint64_t size() const noexcept { return written_; }

 private:
  void start(tag kind, std::uint16_t kind_version, std::uint16_t flags);
  void put(std::span<const std::byte> bytes);

  std::vector<std::byte>* vector_ = nullptr;
  std::ostream* ostream_ = nullptr;
  std::vector<tag> tags_;  // sorted, to refuse duplicates
  std::uint32_t table_crc_ = 0;
  std::uint64_t written_ = 0;
  bool finished_ = false;
};

// Validates a whole stream up front (magic, format version, every length
// against the buffer, zero padding, the table checksum, every payload
// checksum, unique tags), then gives access to sections by tag. It views
// `bytes` without copying: they must outlive the reader and its sections.
class stream_reader {
 public:
  explicit stream_reader(std::span<const std::byte> bytes);
  // Also requires the stream to hold `kind` at exactly `kind_version`.
  stream_reader(std::span<const std::byte> bytes, tag kind, std::uint16_t kind_version);

  [[nodiscard]] tag kind() const noexcept { return kind_; }
  [[nodiscard]] std::uint16_t kind_version() const noexcept { return kind_version_; }
  [[nodiscard]] std::uint16_t flags() const noexcept { return flags_; }

  // All sections, sorted by tag.
  [[nodiscard]] std::span<const stream_section> sections() const noexcept { return sections_; }
  // An optional section's payload.
  [[nodiscard]] std::optional<std::span<const std::byte>> find(tag name) const noexcept;
  // A required section's payload; errc::corrupt_data when it is missing.
  [[nodiscard]] std::span<const std::byte> payload(tag name) const;
  // payload(name) as a bounds-checked reader whose errors name the section.
  [[nodiscard]] byte_reader open(tag name) const;

 private:
  tag kind_;
  std::uint16_t kind_version_ = 0;
  std::uint16_t flags_ = 0;
  std::vector<stream_section> sections_;
};

}  // namespace cinch::io
