// safetensors files: read (memory-mapped, zero-copy where the data is aligned)
// and write (streaming, one tensor at a time).
//
// Layout: an unsigned 64-bit little-endian header length N, N bytes of JSON
//   {"<name>": {"dtype": "F32", "shape": [4096, 4096], "data_offsets": [begin, end]},
//    ..., "__metadata__": {"<key>": "<string>"}}
// and the data buffer, in which [begin, end) are byte offsets. The header is
// checked completely before any data is touched:
//   errc::corrupt_data  a file shorter than 8 bytes, a header length beyond the
//                       file or above 100 MB, text that is not a JSON object,
//                       duplicate names, an entry without exactly dtype, shape and
//                       data_offsets, an unknown dtype, negative or overflowing
//                       extents, offsets whose length is not shape x item size,
//                       tensors that do not tile the data buffer exactly (gaps,
//                       overlaps, trailing bytes), non-string metadata;
//   errc::invalid_argument  a path that cannot be opened, read or written.
// Entries with a dtype cinch has no type for (F64, I64, BOOL, ...) are listed and
// their bytes can be copied through, but load() throws errc::unsupported for them.
// Messages name the function and the file: "safetensors_file: m.safetensors: ...".
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cinch/core/tensor.hpp"

namespace cinch::io {

struct safetensors_entry {
  std::string name;
  std::string dtype_name;           // as stored: "F32", "BF16", "F64", ...
  std::optional<dtype> type;        // cinch's dtype for it, when there is one
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte range in the data buffer
};

class safetensors_file {
 public:
  // Maps the file read-only (reads it into memory where mapping is unavailable).
  [[nodiscard]] static safetensors_file open(const std::string& path);
  // The same over bytes in memory, which must outlive every view taken from the
  // result; `source` names them in messages.
  [[nodiscard]] static safetensors_file parse(std::span<const std::byte> bytes, std::string_view source = "<memory>");

  // In file order (by data offset).
  [[nodiscard]] const std::vector<safetensors_entry>& entries() const noexcept { return entries_; }
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  [[nodiscard]] const safetensors_entry* find(std::string_view name) const noexcept;

  // The tensor `name`: a read-only view into the mapping, kept alive by the
  // tensor, when its data is aligned for its dtype; otherwise a copy. Throws
  // errc::invalid_argument for an unknown name, errc::unsupported for a dtype
  // cinch lacks or a rank above 6.
  [[nodiscard]] tensor load(std::string_view name) const;
  // The raw bytes of an entry (any dtype).
  [[nodiscard]] std::span<const std::byte> bytes(const safetensors_entry& e) const noexcept;

 private:
  std::shared_ptr<const void> owner_;  // the mapping or buffer
  std::span<const std::byte> data_;    // the data buffer
  std::string source_;
  std::vector<safetensors_entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Declares a file's tensors up front (the header holds every offset), then takes
// their data one tensor at a time in the declared order, so a converter holds one
// tensor in memory. The header is padded with spaces so the data starts at a
// multiple of 8 bytes. finish() checks that every tensor arrived; a writer
// destroyed before that leaves a truncated file, which open() rejects.
class safetensors_writer {
 public:
  struct spec {
    std::string name;
    std::string dtype_name;  // "F32", ... (any safetensors dtype, for copied bytes)
    std::vector<std::int64_t> shape;
  };
  // Throws errc::invalid_argument for duplicate or empty names, "__metadata__",
  // an unknown dtype, negative extents, or a file that cannot be created.
  safetensors_writer(const std::string& path, std::vector<spec> tensors,
                     const std::map<std::string, std::string>& metadata = {});
  ~safetensors_writer();
  safetensors_writer(const safetensors_writer&) = delete;
  safetensors_writer& operator=(const safetensors_writer&) = delete;

  // The next declared tensor: a CPU view of its dtype and shape (any strides), or
  // its raw bytes. Throws errc::invalid_argument or errc::shape_mismatch when they
  // do not match the declaration, or when every tensor was written already.
  void write(const tensor_view& data);
  void write_bytes(std::span<const std::byte> data);
  void finish();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// The safetensors dtype name of a cinch dtype ("F32", "F16", "BF16", "F8_E4M3",
// "F8_E5M2", "I32", "I8", "U8"); errc::unsupported for the others.
[[nodiscard]] std::string_view safetensors_dtype(dtype type);

// Writes named CPU tensors (dtypes as above, any strides), widest dtype first and
// otherwise in the given order, so every tensor's data is aligned for loading in place.
void save_safetensors(const std::string& path, std::span<const std::pair<std::string, tensor_view>> tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace cinch::io
