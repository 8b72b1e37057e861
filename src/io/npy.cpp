// .npy reading and writing. The header is a Python dict literal; it is parsed
// by a small recursive-descent parser that checks every index against the
// end, so no input can make it read out of bounds.
#include "cinch/io/npy.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "cinch/io/bytes.hpp"
#include "io/origin.hpp"

namespace cinch::io {
namespace {

// Array data is copied as stored; NumPy writes '<' (little-endian) types.
static_assert(std::endian::native == std::endian::little, "cinch::io npy assumes a little-endian host");

constexpr std::array<unsigned char, 6> npy_magic{0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t preamble_v1 = 10;  // magic, major, minor, u16 header length
constexpr std::size_t preamble_v2 = 12;  // versions 2.0 and 3.0: u32 header length
constexpr std::size_t data_alignment = 64;
// Extents stay below tensor_view's limit on bytes.
constexpr std::uint64_t max_extent = std::uint64_t(1) << 62;

struct npy_type {
  std::string_view descr;
  dtype type;
};
constexpr std::array<npy_type, 5> npy_types{{
    {"<f4", dtype::f32}, {"<f2", dtype::f16}, {"<i4", dtype::i32}, {"|i1", dtype::i8}, {"|u1", dtype::u8}}};
constexpr std::string_view supported_types = "'<f4' (f32), '<f2' (f16), '<i4' (i32), '|i1' (i8), '|u1' (u8)";

std::optional<dtype> dtype_of_descr(std::string_view descr) {
  // Byte order means nothing for one-byte types: '<u1', '>u1' and '|u1' are all u8.
  const bool one_byte = descr.size() == 3 && descr[2] == '1' && std::string_view("<>=|").find(descr[0]) != std::string_view::npos;
  for (const npy_type& t : npy_types)
    if (descr == t.descr || (one_byte && descr.substr(1) == t.descr.substr(1))) return t.type;
  return std::nullopt;
}

std::optional<std::string_view> descr_of_dtype(dtype type) {
  for (const npy_type& t : npy_types)
    if (t.type == type) return t.descr;
  return std::nullopt;
}

std::string byte_name(unsigned char c) {
  if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
  constexpr char digits[] = "0123456789abcdef";
  return std::string("byte 0x") + digits[c >> 4] + digits[c & 0xF];
}

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

struct preamble {
  int major;
  std::size_t header_begin;
  std::uint64_t header_end;  // where the data starts
};

// `first` holds the first min(file_size, 12) bytes.
preamble read_preamble(std::span<const std::byte> first, std::uint64_t file_size, const origin& at) {
  for (std::size_t i = 0; i < std::min(first.size(), npy_magic.size()); ++i)
    if (std::to_integer<unsigned char>(first[i]) != npy_magic[i])
      at.fail(errc::corrupt_data, "not a .npy file: expected the magic \"\\x93NUMPY\", got ",
              byte_name(std::to_integer<unsigned char>(first[i])), " at offset ", i);
  if (file_size < preamble_v1)
    at.fail(errc::corrupt_data, "truncated preamble: ", file_size, " bytes, a .npy file starts with ", preamble_v1);
  const int major = std::to_integer<int>(first[6]), minor = std::to_integer<int>(first[7]);
  if (major < 1 || major > 3 || minor != 0)
    at.fail(errc::unsupported, "format version ", major, ".", minor, " is not 1.0, 2.0 or 3.0");
  const std::size_t begin = major == 1 ? preamble_v1 : preamble_v2;
  if (file_size < begin)
    at.fail(errc::corrupt_data, "truncated preamble: ", file_size, " bytes, version ", major, ".0 starts with ", begin);
  byte_reader length(first.subspan(8, begin - 8), "npy header length");
  const std::uint64_t header_bytes = major == 1 ? length.read<std::uint16_t>() : length.read<std::uint32_t>();
  if (header_bytes > file_size - begin)
    at.fail(errc::corrupt_data, "truncated header: it claims ", header_bytes, " bytes, only ", file_size - begin,
            " follow the preamble");
  return {major, begin, begin + header_bytes};
}

struct npy_header {
  dtype type = dtype::f32;
  std::size_t rank = 0;
  std::array<std::int64_t, max_rank> shape{};
  bool fortran_order = false;

  [[nodiscard]] std::span<const std::int64_t> dims() const { return {shape.data(), std::min(rank, shape.size())}; }
};

// The header: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// then spaces and a newline. Accepts the Python literal syntax NumPy's
// reader accepts for these three keys, except string escapes.
class header_parser {
 public:
  header_parser(std::string_view text, bool utf8, const origin& at) : text_(text), utf8_(utf8), at_(at) {}

  npy_header parse() {
    check_bytes();
    npy_header h;
    bool has_descr = false, has_fortran = false, has_shape = false;
    std::string_view descr;
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::size_t key_at = i_;
      const std::string_view key = string_literal();
      bool* seen = key == "descr" ? &has_descr : key == "fortran_order" ? &has_fortran : key == "shape" ? &has_shape : nullptr;
      if (!seen || *seen) {
        i_ = key_at;  // the message points at the key
        if (!seen) fail("unknown key '", key, "' (expected 'descr', 'fortran_order' and 'shape')");
        fail("duplicate key '", key, "'");
      }
      *seen = true;
      expect(':');
      skip_space();
      if (seen == &has_descr) {
        if (peek() == '[') at_.fail(errc::unsupported, "structured dtypes (a list as 'descr') are not supported");
        descr = string_literal();
      } else if (seen == &has_fortran) {
        h.fortran_order = boolean();
      } else {
        parse_shape(h);
      }
      skip_space();
      if (peek() == ',')
        ++i_;
      else if (peek() != '}')
        fail("expected ',' or '}' after the value of '", key, "', got ", next());
    }
    ++i_;
    skip_space();
    if (i_ < text_.size()) fail("unexpected ", next(), " after the closing '}'");
    if (!has_descr || !has_fortran || !has_shape)
      fail("missing key '", !has_descr ? "descr" : !has_fortran ? "fortran_order" : "shape", "'");

    const std::optional<dtype> type = dtype_of_descr(descr);
    if (!type)
      at_.fail(errc::unsupported, descr.starts_with('>') ? "big-endian dtype '" : "dtype '", descr,
               "' is not supported; supported: ", supported_types);
    h.type = *type;
    if (h.rank > std::size_t(max_rank))
      at_.fail(errc::unsupported, "rank ", h.rank, " is above cinch's maximum of ", max_rank);
    return h;
  }

 private:
  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    at_.fail(errc::corrupt_data, "bad header: ", parts..., " at header offset ", i_);
  }

  // Control bytes never belong in a header; non-ASCII only inside the UTF-8 strings of version 3.0.
  void check_bytes() {
    for (i_ = 0; i_ < text_.size(); ++i_) {
      const auto c = static_cast<unsigned char>(text_[i_]);
      if ((c < 0x20 && !is_space(c)) || c == 0x7F) fail("control ", byte_name(c));
      if (c >= 0x80 && !utf8_) fail("non-ASCII ", byte_name(c));
    }
    i_ = 0;
  }

  [[nodiscard]] unsigned char peek() const { return i_ < text_.size() ? static_cast<unsigned char>(text_[i_]) : 0; }
  [[nodiscard]] std::string next() const { return i_ < text_.size() ? byte_name(peek()) : "the end of the header"; }
  void skip_space() {
    while (i_ < text_.size() && is_space(peek())) ++i_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != static_cast<unsigned char>(c)) fail("expected '", c, "', got ", next());
    ++i_;
  }

  std::string_view string_literal() {
    skip_space();
    const unsigned char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a string, got ", next());
    const std::size_t begin = ++i_;
    for (; peek() != quote; ++i_) {
      if (i_ >= text_.size() || peek() == '\n' || peek() == '\r') fail("unterminated string");
      if (peek() == '\\') fail("escape sequences in strings are not supported");
    }
    return text_.substr(begin, i_++ - begin);
  }

  bool boolean() {
    for (const bool value : {true, false}) {
      const std::string_view word = value ? "True" : "False";
      if (text_.substr(i_).starts_with(word)) {
        i_ += word.size();
        return value;
      }
    }
    fail("expected True or False, got ", next());
  }

  std::uint64_t integer() {
    skip_space();
    if (!is_digit(peek())) fail("expected a non-negative integer in the shape, got ", next());
    if (peek() == '0' && is_digit(i_ + 1 < text_.size() ? static_cast<unsigned char>(text_[i_ + 1]) : 0))
      fail("leading zero in an extent (not a Python integer)");
    std::uint64_t value = 0;
    for (; is_digit(peek()); ++i_) {
      const unsigned digit = peek() - '0';
      if (value > (max_extent - digit) / 10) fail("extent above 2^62");
      value = value * 10 + digit;
    }
    return value;
  }

  // A tuple of extents: (), (n,), (n, m), trailing comma optional from two on.
  void parse_shape(npy_header& h) {
    expect('(');
    skip_space();
    if (peek() == ')') {
      ++i_;
      return;
    }
    for (;;) {
      const std::uint64_t extent = integer();
      if (h.rank < h.shape.size()) h.shape[h.rank] = static_cast<std::int64_t>(extent);
      ++h.rank;
      skip_space();
      if (peek() == ')') {
        if (h.rank == 1) fail("shape (n) is an integer, not a tuple (write (n,))");
        break;
      }
      if (peek() != ',') fail("expected ',' or ')' in the shape, got ", next());
      ++i_;
      skip_space();
      if (peek() == ')') break;
    }
    ++i_;
  }

  std::string_view text_;
  bool utf8_;
  const origin& at_;
  std::size_t i_ = 0;
};

// Parses the header and checks that the data after it is exactly shape x itemsize bytes.
npy_header read_header(std::span<const std::byte> text, const preamble& p, std::uint64_t file_size, const origin& at) {
  const npy_header h =
      header_parser({reinterpret_cast<const char*>(text.data()), text.size()}, p.major == 3, at).parse();
  const std::uint64_t item = info(h.type).block_bytes;
  std::uint64_t count = 1;
  for (const std::int64_t e : h.dims()) {
    if (e && count > max_extent / item / static_cast<std::uint64_t>(e))
      at.fail(errc::corrupt_data, "bad header: shape ", h.dims(), " holds more than 2^62 bytes");
    count *= static_cast<std::uint64_t>(e);
  }
  const std::uint64_t stored = file_size - p.header_end;
  if (count * item != stored)
    at.fail(errc::corrupt_data, "shape ", h.dims(), " of ", to_string(h.type), " needs ", count * item,
            " data bytes, the file has ", stored, " after the header");
  return h;
}

// Copies x's elements into dst in row-major order.
void gather(const tensor_view& x, std::byte* dst) {
  if (x.numel() == 0) return;
  const auto item = static_cast<std::ptrdiff_t>(info(x.type()).block_bytes);
  const auto* base = static_cast<const std::byte*>(x.data());
  if (x.rank() == 0) {
    std::memcpy(dst, base, static_cast<std::size_t>(item));
    return;
  }
  const int inner_dim = x.rank() - 1;
  const std::int64_t inner = x.size(inner_dim), step = x.stride(inner_dim);
  std::array<std::int64_t, max_rank> index{};
  for (std::int64_t row = 0, rows = x.numel() / inner; row < rows; ++row) {
    std::int64_t offset = 0;
    for (int d = 0; d < inner_dim; ++d) offset += index[std::size_t(d)] * x.stride(d);
    const std::byte* src = base + offset * item;
    if (step == 1) {
      std::memcpy(dst, src, static_cast<std::size_t>(inner * item));
      dst += inner * item;
    } else {
      for (std::int64_t k = 0; k < inner; ++k, dst += item) std::memcpy(dst, src + k * step * item, std::size_t(item));
    }
    for (int d = inner_dim - 1; d >= 0 && ++index[std::size_t(d)] == x.size(d); --d) index[std::size_t(d)] = 0;
  }
}

// Allocates the tensor and lets `fill` write the stored bytes; Fortran order
// is stored into a scratch tensor and gathered into row-major order.
template <class Fill>
tensor make_tensor(const npy_header& h, Fill&& fill) {
  tensor out = tensor::empty(h.dims(), h.type);
  if (!h.fortran_order || h.rank < 2) {
    fill(static_cast<std::byte*>(out.data()));
    return out;
  }
  const tensor stored = tensor::empty(h.dims(), h.type);
  fill(static_cast<std::byte*>(stored.data()));
  std::array<std::int64_t, max_rank> strides{};
  std::int64_t stride = 1;
  for (std::size_t d = 0; d < h.rank; ++d) {
    strides[d] = stride;
    stride *= h.shape[d];
  }
  gather(tensor_view(stored.data(), h.type, h.dims(), std::span<const std::int64_t>(strides.data(), h.rank)),
         static_cast<std::byte*>(out.data()));
  return out;
}

// The header NumPy itself writes: version 1.0 (rank <= 6 keeps it far below
// 64 KiB), then spaces and a newline so the data starts at a multiple of 64.
std::vector<std::byte> header_for(const tensor_view& x, const origin& at) {
  if (x.where() != cpu_device) at.fail(errc::unsupported, "x must be on cpu, got ", to_string(x.where()));
  const std::optional<std::string_view> descr = descr_of_dtype(x.type());
  if (!descr) at.fail(errc::unsupported, "dtype ", to_string(x.type()), " has no .npy type; supported: ", supported_types);
  std::string dict = "{'descr': '" + std::string(*descr) + "', 'fortran_order': False, 'shape': (";
  for (int d = 0; d < x.rank(); ++d) dict += (d ? ", " : "") + std::to_string(x.size(d));
  dict += x.rank() == 1 ? ",), }" : "), }";
  dict.append((data_alignment - (preamble_v1 + dict.size() + 1) % data_alignment) % data_alignment, ' ');
  dict.push_back('\n');
  byte_writer out;
  out.write_bytes(std::as_bytes(std::span(npy_magic)));
  out.write(std::uint8_t{1});
  out.write(std::uint8_t{0});
  out.write(static_cast<std::uint16_t>(dict.size()));
  out.write_bytes(std::as_bytes(std::span(dict)));
  return out.take();
}

// x's data in row-major order: its own bytes when dense, else gathered into `scratch`.
std::span<const std::byte> row_major_bytes(const tensor_view& x, std::vector<std::byte>& scratch) {
  const auto bytes = static_cast<std::size_t>(x.nbytes());
  if (x.is_contiguous()) return {static_cast<const std::byte*>(x.data()), bytes};
  scratch.resize(bytes);
  gather(x, scratch.data());
  return scratch;
}

void read_exact(std::istream& in, std::byte* dst, std::uint64_t bytes, const origin& at) {
  if (!in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(bytes)))
    at.fail(errc::corrupt_data, "the file ended early (did it change while being read?)");
}

}  // namespace

tensor decode_npy(std::span<const std::byte> bytes, std::string_view source) {
  const origin at{"decode_npy", source};
  const preamble p = read_preamble(bytes.first(std::min(bytes.size(), preamble_v2)), bytes.size(), at);
  const npy_header h = read_header(bytes.subspan(p.header_begin, p.header_end - p.header_begin), p, bytes.size(), at);
  const std::span<const std::byte> data = bytes.subspan(p.header_end);
  return make_tensor(h, [&](std::byte* dst) {
    if (!data.empty()) std::memcpy(dst, data.data(), data.size());
  });
}

tensor load_npy(const std::string& path) {
  const origin at{"load_npy", path};
  std::error_code why;
  const std::uint64_t size = std::filesystem::file_size(path, why);  // fails for directories too
  if (why) at.fail(errc::invalid_argument, "cannot read the file: ", why.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) at.fail(errc::invalid_argument, "cannot open the file for reading");
  std::array<std::byte, preamble_v2> first{};
  const std::size_t first_bytes = std::min<std::uint64_t>(size, first.size());
  read_exact(in, first.data(), first_bytes, at);
  const preamble p = read_preamble(std::span(first).first(first_bytes), size, at);
  std::vector<std::byte> text(p.header_end - p.header_begin);
  in.seekg(static_cast<std::streamoff>(p.header_begin));
  read_exact(in, text.data(), text.size(), at);
  const npy_header h = read_header(text, p, size, at);
  return make_tensor(h, [&](std::byte* dst) { read_exact(in, dst, size - p.header_end, at); });
}

std::vector<std::byte> encode_npy(const tensor_view& x) {
  const origin at{"encode_npy", "<memory>"};
  std::vector<std::byte> out = header_for(x, at);
  std::vector<std::byte> scratch;
  const std::span<const std::byte> data = row_major_bytes(x, scratch);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void save_npy(const std::string& path, const tensor_view& x) {
  const origin at{"save_npy", path};
  const std::vector<std::byte> header = header_for(x, at);  // checks x before the file is touched
  std::vector<std::byte> scratch;
  const std::span<const std::byte> data = row_major_bytes(x, scratch);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) at.fail(errc::invalid_argument, "cannot open the file for writing");
  out.write(reinterpret_cast<const char*>(header.data()), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) at.fail(errc::invalid_argument, "writing the file failed (disk full?)");
}

}  // namespace cinch::io
