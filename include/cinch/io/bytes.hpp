// byte_writer / byte_reader: fixed-width integers and IEEE floats in a byte
// buffer, always little-endian, whatever the host. The reader checks every
// read against the end of its buffer and throws errc::corrupt_data instead of
// reading past it, so a section payload can be decoded without trusting it.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cinch/core/error.hpp"

namespace cinch::io {

// Types with one fixed size on every platform (no long, char or bool).
template <class T>
concept wire_scalar = std::same_as<T, std::uint8_t> || std::same_as<T, std::uint16_t> ||
                      std::same_as<T, std::uint32_t> || std::same_as<T, std::uint64_t> ||
                      std::same_as<T, std::int8_t> || std::same_as<T, std::int16_t> ||
                      std::same_as<T, std::int32_t> || std::same_as<T, std::int64_t> || std::same_as<T, float> ||
                      std::same_as<T, double>;

namespace detail {

template <std::size_t Bytes> struct unsigned_of_size;
template <> struct unsigned_of_size<1> { using type = std::uint8_t; };
template <> struct unsigned_of_size<2> { using type = std::uint16_t; };
template <> struct unsigned_of_size<4> { using type = std::uint32_t; };
template <> struct unsigned_of_size<8> { using type = std::uint64_t; };
template <class T> using bits_of = typename unsigned_of_size<sizeof(T)>::type;

static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559,
              "cinch::io writes IEEE-754 binary32/binary64");

}  // namespace detail

class byte_writer {
 public:
  template <wire_scalar T>
  void write(T value) {
    const auto bits = std::bit_cast<detail::bits_of<T>>(value);
    for (std::size_t i = 0; i < sizeof(T); ++i) bytes_.push_back(static_cast<std::byte>(bits >> (8 * i)));
  }

  // Many values at once: one copy on little-endian hosts.
  template <wire_scalar T>
  void write_array(std::span<const T> values) {
    if constexpr (std::endian::native == std::endian::little) {
      write_bytes(std::as_bytes(values));
    } else {
      for (const T v : values) write(v);
    }
  }

  void write_bytes(std::span<const std::byte> bytes) { bytes_.insert(bytes_.end(), bytes.begin(), bytes.end()); }

  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::size_t size() const noexcept { return bytes_.size(); }
  // Moves the bytes out; the writer is empty afterwards.
  [[nodiscard]] std::vector<std::byte> take() noexcept { return std::exchange(bytes_, {}); }

 private:
  std::vector<std::byte> bytes_;
};

class byte_reader {
 public:
  // `what` names the buffer in error messages, e.g. "section 'KEYS'".
  byte_reader(std::span<const std::byte> bytes, std::string what) : bytes_(bytes), what_(std::move(what)) {}

  template <wire_scalar T>
  [[nodiscard]] T read() {
    const std::span<const std::byte> b = consume(sizeof(T));
    detail::bits_of<T> bits = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
      bits = static_cast<detail::bits_of<T>>(bits | detail::bits_of<T>(std::to_integer<std::uint8_t>(b[i])) << (8 * i));
    return std::bit_cast<T>(bits);
  }

  // Fills `out` completely, or throws before writing anything.
  template <wire_scalar T>
  void read_array(std::span<T> out) {
    const std::span<const std::byte> b = consume(out.size_bytes());
    if constexpr (std::endian::native == std::endian::little) {
      if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
    } else {
      byte_reader items(b, what_);
      for (T& v : out) v = items.read<T>();
    }
  }

  // The next n bytes, as a view into the buffer.
  [[nodiscard]] std::span<const std::byte> read_bytes(std::size_t n) { return consume(n); }

  [[nodiscard]] std::size_t position() const noexcept { return position_; }
  [[nodiscard]] std::size_t remaining() const noexcept { return bytes_.size() - position_; }

  // Call after the last read: bytes left over mean the writer and reader disagree.
  void expect_end() const {
    if (remaining() != 0)
      cinch::detail::fail(errc::corrupt_data, "byte_reader", what_, " has ", remaining(),
                          " unread bytes after offset ", position_, " of ", bytes_.size());
  }

 private:
  std::span<const std::byte> consume(std::size_t n) {
    if (n > remaining())
      cinch::detail::fail(errc::corrupt_data, "byte_reader", what_, " ends at byte ", bytes_.size(),
                          ": cannot read ", n, " bytes at offset ", position_);
    const std::span<const std::byte> out = bytes_.subspan(position_, n);
    position_ += n;
    return out;
  }

  std::span<const std::byte> bytes_;
  std::string what_;
  std::size_t position_ = 0;
};

}  // namespace cinch::io
