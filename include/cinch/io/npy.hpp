// NumPy .npy files: load one into a cinch::tensor, save any view as one.
//
// Reads format versions 1.0, 2.0 and 3.0 and these dtypes:
//   '<f4' f32, '<f2' f16, '<i4' i32, '|i1' i8, '|u1' u8
// (one-byte types with any byte-order mark). Fortran-order arrays are
// transposed on load, so a loaded tensor is always dense and row-major.
// Errors:
//   errc::corrupt_data   bad magic, a truncated preamble or header, a header
//                        that is not a Python dict literal with exactly the keys
//                        'descr', 'fortran_order' and 'shape', control or
//                        non-ASCII bytes outside strings, or a data size that
//                        differs from shape x itemsize;
//   errc::unsupported    other format versions, other dtypes ('<i8', '<f8',
//                        big-endian '>f4', structured), rank above 6;
//   errc::invalid_argument  a path that cannot be opened, read or written.
// Messages name the function and the file: "load_npy: k.npy: ...".
//
// save_npy writes version 1.0, C order, with the header padded so the data
// starts at a multiple of 64 bytes, as NumPy does. Strided views are
// gathered into C order (through a temporary copy of the data).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cinch/core/tensor.hpp"

namespace cinch::io {

[[nodiscard]] tensor load_npy(const std::string& path);
// The same from bytes in memory; `source` names them in error messages.
[[nodiscard]] tensor decode_npy(std::span<const std::byte> bytes, std::string_view source = "<memory>");

// `x` must be on the CPU with dtype f32, f16, i32, i8 or u8 (else errc::unsupported).
void save_npy(const std::string& path, const tensor_view& x);
[[nodiscard]] std::vector<std::byte> encode_npy(const tensor_view& x);

}  // namespace cinch::io
