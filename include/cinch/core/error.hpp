// cinch::error: the one exception type the library throws on bad input.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace cinch {

enum class errc : std::int32_t {
  invalid_argument = 1,  // a value outside what the function accepts
  shape_mismatch,        // shapes, ranks or strides that do not fit together
  unsupported,           // valid, but not implemented for this dtype/device/build
  corrupt_data,          // a stream or file that fails its checks
  out_of_memory,         // an allocation failed
  device_error,          // the CUDA runtime reported a failure
};

[[nodiscard]] constexpr std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::invalid_argument: return "invalid_argument";
    case errc::shape_mismatch: return "shape_mismatch";
    case errc::unsupported: return "unsupported";
    case errc::corrupt_data: return "corrupt_data";
    case errc::out_of_memory: return "out_of_memory";
    case errc::device_error: return "device_error";
  }
  return "unknown";
}

// Messages name the function, the argument, what was expected and what came:
//   "convert: dst must have the shape of src [4, 8], got [4, 9]"
class error : public std::runtime_error {
 public:
  error(errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] errc code() const noexcept { return code_; }

 private:
  errc code_;
};

namespace detail {

inline void append(std::string& out, std::string_view s) { out.append(s); }
inline void append(std::string& out, const char* s) { out.append(s); }
inline void append(std::string& out, const std::string& s) { out.append(s); }
inline void append(std::string& out, char c) { out.push_back(c); }
template <class Int>
  requires std::is_integral_v<Int>
void append(std::string& out, Int v) {
  out.append(std::to_string(v));
}
// Shapes print as "[4096, 128]".
inline void append(std::string& out, std::span<const std::int64_t> dims) {
  out.push_back('[');
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) out.append(", ");
    out.append(std::to_string(dims[i]));
  }
  out.push_back(']');
}

template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (append(out, parts), ...);
  return out;
}

// Throws cinch::error(code, "<function>: <parts...>").
template <class... Parts>
[[noreturn]] void fail(errc code, std::string_view function, const Parts&... parts) {
  throw error(code, cat(function, ": ", parts...));
}

}  // namespace detail
}  // namespace cinch
